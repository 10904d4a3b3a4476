"""The Phones page: the fleet in a table, searched, filtered, sorted and paged by keyset.

Scoped like ``GET /0.2/dev_mgr/devices?recurse=true``: the caller's token needs
``provd.dev_mgr.devices.read`` and sees the devices of its tenant subtree only.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Any, cast

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from provisor.api.deps import provisor_of
from provisor.console.fleet_state import STATES, last_seen, page_by_state, state_of
from provisor.console.web import PREFIX, ConsoleRoute, console_caller, console_of, render
from provisor.errors import InvalidInput
from provisor.provisioning.trace import Trace
from provisor.store.fleet import SORTS, Cursor, FleetFilter, Sort, device_page

__all__ = ["router"]

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute)

MAX_FILTER = 128
_FILTERS = ("q", "vendor", "model", "version", "tenant", "state", "sort", "order", "after")


def _param(request: Request, name: str) -> str:
    value = request.query_params.get(name, "").strip()
    if len(value) > (512 if name == "after" else MAX_FILTER):
        raise InvalidInput(f"{name}: longer than {MAX_FILTER} characters")
    return value


def encode_cursor(cursor: Cursor | None) -> str:
    """A cursor as an opaque URL-safe string."""
    if cursor is None:
        return ""
    raw = json.dumps([cursor.value, cursor.id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str) -> Cursor | None:
    """The cursor of a page link; 400 when it was not made here."""
    if not text:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        value, ident = json.loads(raw)
    except (binascii.Error, ValueError, TypeError):
        raise InvalidInput("after: not a page cursor") from None
    if not isinstance(ident, str) or not (value is None or isinstance(value, str)):
        raise InvalidInput("after: not a page cursor")
    return Cursor(value, ident)


def when(ts: float | None) -> str:
    """A time for a table cell (UTC, seconds)."""
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def trace_of(request: Request) -> Trace | None:
    """The phone pipeline's request trace (None when provisioning does not run here)."""
    pipeline = provisor_of(request).extra.get("pipeline")
    return None if pipeline is None else pipeline.trace


def tenant_names(request: Request, uuids: frozenset[str]) -> list[tuple[str, str]]:
    """(uuid, name) of the tenants in view, by name."""
    tenants = provisor_of(request).tenants
    out = []
    for uuid in uuids:
        tenant = tenants.get(uuid)
        out.append((uuid, (tenant.name if tenant is not None and tenant.name else uuid)))
    return sorted(out, key=lambda pair: pair[1].lower())


@router.get("/phones")
async def phones(request: Request) -> Response:
    """The Phones page."""
    session, caller = await console_caller(request, "provd.dev_mgr.devices.read")
    prov = provisor_of(request)
    values = {name: _param(request, name) for name in _FILTERS}
    sort = values["sort"] or "mac"
    if sort not in SORTS:
        raise InvalidInput(f"sort: one of {', '.join(SORTS)}")
    order = values["order"] or "asc"
    if order not in ("asc", "desc"):
        raise InvalidInput("order: asc or desc")
    state = values["state"]
    if state and state not in STATES:
        raise InvalidInput(f"state: one of {', '.join(STATES)}")
    tenant = values["tenant"]
    if tenant and tenant not in caller.subtree:
        raise InvalidInput("tenant: not a tenant you see")
    after = decode_cursor(values["after"])
    flt = FleetFilter(
        search=values["q"],
        vendor=values["vendor"],
        model=values["model"],
        version=values["version"],
        tenant=tenant,
    )
    # the master acting in the master tenant sees every tenant: no tenant list to send
    master = await prov.master_tenant()
    everyone = caller.scope.is_master and caller.tenant_uuid == master
    tenants = None if everyone else caller.subtree
    limit = console_of(request).settings.page_size
    trace = trace_of(request)
    if state:
        page = await page_by_state(prov.engine, state, flt, tenants, after, limit)
    else:
        page = await device_page(
            prov.engine,
            flt,
            tenants,
            sort=cast(Sort, sort),
            desc=order == "desc",
            after=after,
            limit=limit,
        )
    names = dict(tenant_names(request, caller.subtree))
    rows: list[dict[str, Any]] = []
    seen = await last_seen(prov.engine, [d["id"] for d in page.docs], trace, prov.seen)
    for doc in page.docs:
        last = seen.get(doc["id"])
        rows.append(
            {
                "doc": doc,
                "tenant": names.get(doc.get("tenant_uuid", ""), doc.get("tenant_uuid", "")),
                "last_seen": when(last.time) if last else "",
                "last_file": last.file if last else "",
                "last_status": last.status if last else None,
                "state": state_of(last),
            }
        )
    keep = {k: v for k, v in values.items() if k != "after" and v}
    next_query = dict(keep, after=encode_cursor(page.next)) if page.next else None
    return render(
        request,
        "phones.html",
        session=session,
        rows=rows,
        values=values,
        sort=sort,
        order=order,
        states=STATES,
        sorts=SORTS,
        tenants=tenant_names(request, caller.subtree),
        next_query=next_query,
        first_query=keep if after else None,
    )
