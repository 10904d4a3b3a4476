"""An operation's live result (a resync, a plugin or firmware package install): the page reloads
itself every second (a ``<meta http-equiv="refresh">``, no script) until the operation ends."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from provisor.api.deps import path_id, provisor_of
from provisor.console.web import PREFIX, ConsoleRoute, console_caller, render
from provisor.domain import ids
from provisor.errors import NotFound

__all__ = ["KINDS", "router"]

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute)

KINDS = frozenset({"synchronize", "pg.install", "pg.upgrade", "pg.update"})
PACKAGE = "pkg."  # a firmware package install of one plugin: ``pkg.<plugin id>``


def _known(kind: str) -> bool:
    """Whether ``kind`` names operations the console shows (any other is a 404)."""
    if kind.startswith(PACKAGE):
        return ids.is_plugin_id(kind.removeprefix(PACKAGE))
    return kind in KINDS


@router.get("/operations/{kind}/{op_id}")
async def operation(request: Request, kind: str, op_id: str) -> Response:
    """The state of one operation of the caller's tenants."""
    if not _known(kind):
        raise NotFound("No such operation")
    session, caller = await console_caller(request, "provd.operation.read")
    op = provisor_of(request).operations.get(kind, op_id, caller.scope)
    device = request.query_params.get("device")
    if device:
        path_id(device, "device")
    done = op.state in ("success", "fail")
    return render(
        request,
        "operation.html",
        session=session,
        kind=kind,
        op=op,
        op_status=op.format(),
        done=done,
        device=device,
        package_of=kind.removeprefix(PACKAGE) if kind.startswith(PACKAGE) else None,
    )
