"""The Plugins page: installed and available plugins, and install / upgrade / uninstall / index
update with live progress (the operation page).

The same operations as ``/0.2/pg_mgr/install/*`` (:mod:`provisor.plugins.manager`), the same
ACLs, and the same rule: plugins are global state, changed by master-tenant tokens only.
A plugin's firmware packages (:mod:`provisor.console.firmware`) and its template overrides
(:mod:`provisor.console.overrides`) have their own pages, linked from each installed plugin.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from provisor.api.deps import provisor_of
from provisor.authz import require_master
from provisor.console.web import (
    PREFIX,
    ConsoleRoute,
    console_caller,
    read_form,
    redirect,
    render,
)
from provisor.domain import ids
from provisor.errors import InvalidInput
from provisor.plugins.manager import get_manager
from provisor.services.operations import Operation

__all__ = ["router"]

log = logging.getLogger(__name__)
router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute)

P = "provd.pg_mgr.install"


@router.get("/plugins")
async def plugins(request: Request) -> Response:
    """The Plugins page."""
    session, caller = await console_caller(request, f"{P}.installed.read")
    manager = get_manager(provisor_of(request))
    installed = manager.installed()
    available = []
    for pid, entry in sorted(manager.installable().items()):
        public = entry.public()
        version = str(public.get("version", ""))
        current = installed.get(pid, {}).get("version")
        available.append(
            {
                "id": pid,
                "version": version,
                "description": public.get("description", ""),
                "installed": current,
                "upgrade": current is not None and current != version,
            }
        )
    return render(
        request,
        "plugins.html",
        session=session,
        installed=sorted(installed.items()),
        available=available,
        may_change=caller.scope.is_master,
    )


@router.post("/plugins/{action}")
async def plugin_action(request: Request, action: str) -> Response:
    """Start an install, upgrade or index update, or uninstall a plugin."""
    if action not in ("install", "upgrade", "uninstall", "update"):
        raise InvalidInput("action: install, upgrade, uninstall or update")
    session, caller = await console_caller(request, f"{P}.{action}.create")
    require_master(caller.scope, "plugins")
    form = await read_form(request, session)
    prov = provisor_of(request)
    manager = get_manager(prov)
    if action == "update":

        async def update(op: Operation) -> None:
            await manager.update(op)

        op = prov.operations.start(
            "pg.update", update, label="update", tenant_uuid=caller.tenant_uuid
        )
        return redirect(f"{PREFIX}/operations/pg.update/{op.id}")
    plugin_id = ids.plugin_id(form.get("id", ""), "id")
    if action == "uninstall":
        await manager.uninstall(plugin_id)
        log.info("console: %s uninstalled plugin %s", session.label, plugin_id)
        return redirect(f"{PREFIX}/plugins")
    upgrade = action == "upgrade"
    manager.check_install(plugin_id, upgrade=upgrade)

    async def work(op: Operation) -> None:
        await manager.install(plugin_id, op, upgrade=upgrade)

    op = prov.operations.start(f"pg.{action}", work, label=action, tenant_uuid=caller.tenant_uuid)
    log.info("console: %s started %s of plugin %s", session.label, action, plugin_id)
    return redirect(f"{PREFIX}/operations/pg.{action}/{op.id}")
