"""A plugin's template overrides for the caller's tenant: list, diff, edit, test render.

Reads and writes go through :mod:`provisor.services.templates`, the same code as
``/0.2/pg_mgr/plugins/{id}/templates`` with the same ACLs (``...templates.read`` and
``...templates.update``); an override is always the caller's own tenant's. The diff against
the plugin's template is :mod:`difflib`'s unified diff, escaped by the page's autoescape. A
test render renders one device of the caller's subtree through the phone preview's path
(budgeted sandbox render, secrets blanked, keys and device token masked); a device outside the
subtree is a 404, the same as a missing one.
"""

from __future__ import annotations

import difflib
import logging
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from provisor.api.deps import Caller, authorize_token, path_id, provisor_of
from provisor.console.phone import file_previews
from provisor.console.sessions import Session
from provisor.console.web import PREFIX, ConsoleRoute, console_caller, read_form, redirect, render
from provisor.domain import ids
from provisor.errors import InvalidInput, NotFound
from provisor.services.templates import (
    SCOPES,
    delete_override,
    put_override,
    template_names,
    template_source,
)

__all__ = ["router"]

log = logging.getLogger(__name__)
router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute)

ACL = "provd.pg_mgr.plugins.{plugin_id}.templates"
DIFF_LINES = 2000


def _plugin(request: Request, plugin_id: str) -> Any:
    plugin = provisor_of(request).plugins.get(ids.plugin_id(plugin_id, "plugin_id"))
    if plugin is None:
        raise NotFound("No such resource")
    return plugin


def unified(base: str, override: str, name: str) -> list[str]:
    """The lines of a unified diff from the plugin's template to the override (capped)."""
    lines = list(
        difflib.unified_diff(
            base.splitlines(),
            override.splitlines(),
            fromfile=f"plugin/{name}",
            tofile=f"override/{name}",
            lineterm="",
        )
    )
    return lines[:DIFF_LINES]


async def _page(
    request: Request,
    session: Session,
    caller: Caller,
    plugin_id: str,
    *,
    device: dict[str, Any] | None = None,
    previews: list[dict[str, Any]] | None = None,
) -> Response:
    prov = provisor_of(request)
    plugin = _plugin(request, plugin_id)
    rows = await prov.param_store.list_overrides(caller.tenant_uuid, plugin_id)
    overrides = []
    for row in sorted(rows, key=lambda r: (r["name"], r["scope"], r["target"])):
        try:
            base = template_source(plugin, row["name"])
        except NotFound:  # the plugin no longer has this template (upgraded)
            base = ""
        overrides.append({**row, "diff": unified(base, row["source"], row["name"])})
    return render(
        request,
        "overrides.html",
        session=session,
        plugin_id=plugin_id,
        names=sorted(template_names(plugin)),
        scopes=SCOPES,
        overrides=overrides,
        device=device,
        previews=previews,
    )


@router.get("/plugins/{plugin_id}/templates")
async def overrides(request: Request, plugin_id: str) -> Response:
    """The caller tenant's overrides of a plugin, each with its diff."""
    _plugin(request, plugin_id)
    session, caller = await console_caller(request, f"{ACL}.read", plugin_id=plugin_id)
    return await _page(request, session, caller, plugin_id)


@router.post("/plugins/{plugin_id}/templates/save")
async def save(request: Request, plugin_id: str) -> Response:
    """Create or replace an override (validated and sandbox-checked like the REST API)."""
    plugin = _plugin(request, plugin_id)
    session, caller = await console_caller(request, f"{ACL}.update", plugin_id=plugin_id)
    form = await read_form(request, session)
    scope, name = form.get("scope", ""), form.get("name", "")
    prov = provisor_of(request)
    source = form.get("source", "").replace("\r\n", "\n")  # a browser's textarea sends CRLF
    await put_override(prov, caller, plugin, plugin_id, scope, name, form.get("target"), source)
    log.info("console: %s saved a %s override of %s/%s", session.label, scope, plugin_id, name)
    return redirect(f"{PREFIX}/plugins/{plugin_id}/templates")


@router.post("/plugins/{plugin_id}/templates/delete")
async def remove(request: Request, plugin_id: str) -> Response:
    """Delete one of the caller tenant's overrides."""
    _plugin(request, plugin_id)
    session, caller = await console_caller(request, f"{ACL}.update", plugin_id=plugin_id)
    form = await read_form(request, session)
    scope, target, name = form.get("scope", ""), form.get("target", ""), form.get("name", "")
    await delete_override(provisor_of(request), caller, plugin_id, scope, target, name)
    log.info("console: %s deleted a %s override of %s/%s", session.label, scope, plugin_id, name)
    return redirect(f"{PREFIX}/plugins/{plugin_id}/templates")


@router.post("/plugins/{plugin_id}/templates/render")
async def test_render(request: Request, plugin_id: str) -> Response:
    """Render a device of the caller's subtree as its phone would get it now (masked)."""
    _plugin(request, plugin_id)
    session, caller = await console_caller(request, f"{ACL}.read", plugin_id=plugin_id)
    form = await read_form(request, session)
    device_id = form.get("device", "").strip()
    path_id(device_id, "device")
    prov = provisor_of(request)
    # the device must be readable by this token over REST too, and in its subtree
    await authorize_token(
        prov,
        session.token,
        session.acting_tenant,
        "provd.dev_mgr.devices.{device_id}.read",
        recurse=True,
        device_id=device_id,
    )
    doc = await prov.devices.get(device_id, caller.scope)  # 404 outside the subtree
    if doc.get("plugin") != plugin_id:
        raise InvalidInput(f"device: {device_id!r} does not use plugin {plugin_id!r}")
    tenant = prov.tenants.get(doc.get("tenant_uuid"))
    token = await prov.devices.store.get_token(device_id)
    previews = await file_previews(prov, doc, [tenant.provisioning_key if tenant else None, token])
    return await _page(request, session, caller, plugin_id, device=doc, previews=previews)
