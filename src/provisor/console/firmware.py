"""A plugin's Firmware page: its firmware packages, installable and installed, and install /
uninstall (install with live progress on the operation page).

The same calls as ``/0.2/pg_mgr/plugins/{id}/install/*`` (:mod:`provisor.api.pg_mgr`): the same
ACLs, an unknown plugin is a 404 before anything else, a package id is checked by
:func:`provisor.domain.ids.package_id` (a bad one is a 400 naming the ``id`` field), and
firmware packages are global state, changed by master-tenant tokens only.
"""

from __future__ import annotations

import logging
from typing import Any

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
from provisor.errors import InvalidInput, NotFound
from provisor.plugins.manager import get_manager

__all__ = ["router"]

log = logging.getLogger(__name__)
router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute)

P = "provd.pg_mgr.plugins.{plugin_id}.install"


def _plugin_id(request: Request, plugin_id: str) -> str:
    """The path's plugin id, checked, of a loaded plugin (404 otherwise, as on REST)."""
    checked = ids.plugin_id(plugin_id, "plugin_id")
    if provisor_of(request).plugins.get(checked) is None:
        raise NotFound("No such plugin")
    return checked


def _size(value: object) -> str:
    """A package size for people (the index may hold anything: shown as given then)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,} bytes"
    return "" if value is None else str(value)


def _text(value: object) -> str:
    return "" if value is None else str(value)


@router.get("/plugins/{plugin_id}/firmware")
async def firmware(request: Request, plugin_id: str) -> Response:
    """The Firmware page of one plugin."""
    pid = _plugin_id(request, plugin_id)
    session, caller = await console_caller(request, f"{P}.installable.read", plugin_id=pid)
    await console_caller(request, f"{P}.installed.read", plugin_id=pid)
    manager = get_manager(provisor_of(request))
    installed = manager.installed_packages(pid)
    packages: list[dict[str, Any]] = []
    for name, pkg in sorted(manager.packages(pid).items()):
        version = _text(pkg.get("version"))
        current = installed.get(name)
        current_version = _text(current.get("version")) if isinstance(current, dict) else None
        packages.append(
            {
                "id": name,
                "version": version,
                "description": _text(pkg.get("description")),
                "size": _size(pkg.get("size")),
                "installed": current_version,
                "upgrade": current_version is not None and current_version != version,
            }
        )
    # installed packages the plugin no longer lists (a newer plugin dropped them): uninstall only
    orphans = [
        {"id": name, "version": _text(v.get("version")) if isinstance(v, dict) else ""}
        for name, v in sorted(installed.items())
        if name not in {p["id"] for p in packages}
    ]
    return render(
        request,
        "firmware.html",
        session=session,
        plugin_id=pid,
        packages=packages,
        installed=[p for p in packages if p["installed"] is not None],
        orphans=orphans,
        may_change=caller.scope.is_master,
    )


@router.post("/plugins/{plugin_id}/firmware/{action}")
async def firmware_action(request: Request, plugin_id: str, action: str) -> Response:
    """Start a firmware package install (to the operation page), or uninstall one."""
    if action not in ("install", "uninstall"):
        raise InvalidInput("action: install or uninstall")
    pid = _plugin_id(request, plugin_id)
    session, caller = await console_caller(request, f"{P}.{action}.create", plugin_id=pid)
    require_master(caller.scope, "firmware packages")
    form = await read_form(request, session)
    prov = provisor_of(request)
    manager = get_manager(prov)
    pkg_id = ids.package_id(form.get("id", ""), "id")
    if action == "uninstall":
        await manager.uninstall_firmware(pid, pkg_id)
        log.info("console: %s uninstalled firmware package %s of %s", session.label, pkg_id, pid)
        return redirect(f"{PREFIX}/plugins/{pid}/firmware")
    op = manager.start_firmware_install(pid, pkg_id, caller.tenant_uuid)
    log.info("console: %s started install of firmware package %s of %s", session.label, pkg_id, pid)
    return redirect(f"{PREFIX}/operations/pkg.{pid}/{op.id}")
