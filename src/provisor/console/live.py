"""The Live page: phone requests as they happen, over server-sent events.

The stream takes the request trace's entries as the pipeline adds them, filtered on the
server by the caller's tenants (the same rule as ``GET /0.2/dev_mgr/requests``) and the
operator's filters (failures only, tenant, address). Each stream holds a bounded queue (a slow
browser loses entries, never grows the server's memory), the number of streams is bounded,
and a stream ends when its session does. The script puts every value in with ``textContent``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
from collections import Counter
from collections.abc import AsyncIterator

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from provisor.api.deps import provisor_of
from provisor.console.phones import tenant_names, trace_of
from provisor.console.web import PREFIX, ConsoleRoute, console_caller, console_of, render
from provisor.errors import InvalidInput, ProvisorError
from provisor.provisioning.trace import TraceEntry

__all__ = ["router"]

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute)

ACL = "provd.dev_mgr.requests.read"
MAX_STREAMS = 20
#: Streams one tenant (the session token's) may hold: a tenant opening stream after stream must
#: not take every slot and lock the other tenants, the master's operators included, out.
MAX_STREAMS_PER_TENANT = 5
QUEUE = 500
KEEPALIVE = 15.0


class TooManyStreams(ProvisorError):
    """Every live stream slot is taken (or every slot of the caller's tenant)."""

    status_code = 429


def _filters(request: Request, subtree: frozenset[str]) -> tuple[bool, str, str]:
    qp = request.query_params
    failures = qp.get("failures", "") in ("1", "on", "true")
    tenant = qp.get("tenant", "")
    if tenant and tenant not in subtree:
        raise InvalidInput("tenant: not a tenant you see")
    address = qp.get("ip", "").strip()
    if address:
        try:
            address = str(ipaddress.ip_address(address))
        except ValueError:
            raise InvalidInput(f"ip: {address[:60]!r} is not an IP address") from None
    return failures, tenant, address


@router.get("/live")
async def live(request: Request) -> Response:
    """The Live page (the table fills from the stream)."""
    session, caller = await console_caller(request, ACL)
    failures, tenant, address = _filters(request, caller.subtree)
    query = "&".join(
        f"{k}={v}"
        for k, v in (("failures", "1" if failures else ""), ("tenant", tenant), ("ip", address))
        if v
    )
    return render(
        request,
        "live.html",
        session=session,
        failures=failures,
        tenant=tenant,
        address=address,
        tenants=tenant_names(request, caller.subtree),
        stream=f"{PREFIX}/live/stream" + (f"?{query}" if query else ""),
    )


@router.get("/live/stream")
async def stream(request: Request) -> Response:
    """Server-sent events: one ``request`` event per phone request in view."""
    session, caller = await console_caller(request, ACL)
    failures, tenant, address = _filters(request, caller.subtree)
    prov = provisor_of(request)
    trace = trace_of(request)
    state = request.app.state
    if not hasattr(state, "console_streams_by_tenant"):
        state.console_streams_by_tenant = Counter()
    held: Counter[str] = state.console_streams_by_tenant
    if getattr(state, "console_streams", 0) >= MAX_STREAMS:
        raise TooManyStreams("too many live streams open; close one")
    if held[session.tenant_uuid] >= MAX_STREAMS_PER_TENANT:
        raise TooManyStreams("too many live streams open for this tenant; close one")
    everyone = caller.tenant_uuid == await prov.master_tenant()
    visible = None if everyone else caller.subtree
    queue: asyncio.Queue[TraceEntry] = asyncio.Queue(QUEUE)
    sessions = console_of(request).sessions

    def listener(entry: TraceEntry) -> None:
        if visible is not None and entry.tenant_uuid not in visible:
            return
        if failures and 0 < entry.status < 400:
            return
        if tenant and entry.tenant_uuid != tenant:
            return
        if address and entry.client_ip != address:
            return
        with contextlib.suppress(asyncio.QueueFull):  # a slow reader loses entries
            queue.put_nowait(entry)

    async def events() -> AsyncIterator[bytes]:
        state.console_streams = getattr(state, "console_streams", 0) + 1
        held[session.tenant_uuid] += 1
        if trace is not None:
            trace.listeners.add(listener)
        try:
            yield b"retry: 3000\n\n"
            while sessions.get(session.id) is session:
                try:
                    entry = await asyncio.wait_for(queue.get(), KEEPALIVE)
                except TimeoutError:
                    yield b": keepalive\n\n"
                    continue
                data = json.dumps(entry.as_dict(), separators=(",", ":"))
                yield f"event: request\ndata: {data}\n\n".encode()
        finally:
            if trace is not None:
                trace.listeners.discard(listener)
            state.console_streams -= 1
            held[session.tenant_uuid] -= 1

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )
