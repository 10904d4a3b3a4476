"""``/0.2/pg_mgr``: plugin repository, install/upgrade/uninstall, firmware packages, template
overrides (provisor extension). Answers follow wazo-provd's (§2): long operations are 201 with a
Location, lists are ``{"pkgs": …}``, an unknown plugin's info is 404 before auth.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from provisor.api.deps import authorize, provisor_of
from provisor.api.http import check_accept, created, json_response, no_content, read_json
from provisor.authz import require_master
from provisor.domain import ids
from provisor.errors import InvalidInput, NotFound
from provisor.plugins.manager import get_manager
from provisor.services.operations import Operation, op_status
from provisor.services.templates import delete_override, put_override

__all__ = ["router"]

router = APIRouter(prefix="/0.2/pg_mgr")
P = "provd.pg_mgr"
BASE = "/0.2/pg_mgr"


async def _id(request: Request, rule: Callable[[object, str], str]) -> str:
    """The body's ``id``, checked by ``rule`` (a plugin or a package id) before any use."""
    body = await read_json(request, provisor_of(request).settings.rest_api.max_body_bytes)
    if not isinstance(body, dict) or not isinstance(body.get("id"), str):
        raise InvalidInput('body: expected {"id": "<plugin or package id>"}')
    return rule(body["id"], "id")


def _links(*pairs: tuple[str, str]) -> Response:
    return json_response({"links": [{"rel": rel, "href": href} for rel, href in pairs]})


@router.get("")
async def index(request: Request) -> Response:
    """Links of the plugin manager."""
    check_accept(request)
    await authorize(request, f"{P}.read")
    return _links(
        ("srv.install", f"{BASE}/install"),
        ("pg.plugins", f"{BASE}/plugins"),
        ("pg.reload", f"{BASE}/reload"),
    )


@router.get("/install")
async def install_index(request: Request) -> Response:
    """Links of the install service."""
    check_accept(request)
    await authorize(request, f"{P}.install.read")
    i = f"{BASE}/install"
    return _links(
        ("srv.install.install", f"{i}/install"),
        ("srv.install.uninstall", f"{i}/uninstall"),
        ("srv.install.installed", f"{i}/installed"),
        ("srv.install.installable", f"{i}/installable"),
        ("srv.install.upgrade", f"{i}/upgrade"),
        ("srv.install.update", f"{i}/update"),
    )


@router.post("/install/update")
async def update(request: Request) -> Response:
    """Fetch the repository index (long operation)."""
    check_accept(request)
    caller = await authorize(request, f"{P}.install.update.create")
    require_master(caller.scope, "the plugin repository")
    prov = provisor_of(request)
    manager = get_manager(prov)

    async def work(op: Operation) -> None:
        await manager.update(op)

    op = prov.operations.start("pg.update", work, label="update", tenant_uuid=caller.tenant_uuid)
    return created(f"{BASE}/install/update/{op.id}")


@router.get("/install/installable")
async def installable(request: Request) -> Response:
    """Plugins of the repository index."""
    check_accept(request)
    await authorize(request, f"{P}.install.installable.read")
    pkgs = {pid: e.public() for pid, e in get_manager(provisor_of(request)).installable().items()}
    return json_response({"pkgs": pkgs})


@router.get("/install/installed")
async def installed(request: Request) -> Response:
    """Installed plugins."""
    check_accept(request)
    await authorize(request, f"{P}.install.installed.read")
    return json_response({"pkgs": get_manager(provisor_of(request)).installed()})


async def _start_install(request: Request, upgrade: bool) -> Response:
    check_accept(request)
    action = "upgrade" if upgrade else "install"
    caller = await authorize(request, f"{P}.install.{action}.create")
    require_master(caller.scope, "plugins")
    prov = provisor_of(request)
    plugin_id = await _id(request, ids.plugin_id)
    manager = get_manager(prov)
    manager.check_install(plugin_id, upgrade=upgrade)

    async def work(op: Operation) -> None:
        await manager.install(plugin_id, op, upgrade=upgrade)

    op = prov.operations.start(f"pg.{action}", work, label=action, tenant_uuid=caller.tenant_uuid)
    return created(f"{BASE}/install/{action}/{op.id}")


@router.post("/install/install")
async def install(request: Request) -> Response:
    """Install a plugin from the repository (long operation with download progress)."""
    return await _start_install(request, upgrade=False)


@router.post("/install/upgrade")
async def upgrade(request: Request) -> Response:
    """Upgrade an installed plugin; the old version serves until the new one is loaded."""
    return await _start_install(request, upgrade=True)


@router.post("/install/uninstall")
async def uninstall(request: Request) -> Response:
    """Uninstall a plugin; its devices become unconfigured."""
    check_accept(request)
    caller = await authorize(request, f"{P}.install.uninstall.create")
    require_master(caller.scope, "plugins")
    prov = provisor_of(request)
    await get_manager(prov).uninstall(await _id(request, ids.plugin_id))
    return no_content()


@router.get("/install/{action}/{op_id}")
async def op_get(request: Request, action: str, op_id: str) -> Response:
    """Status of an install/upgrade/update operation."""
    check_accept(request)
    if action not in ("install", "upgrade", "update"):
        raise NotFound("No such resource")
    caller = await authorize(request, "provd.operation.read")
    op = provisor_of(request).operations.get(f"pg.{action}", op_id, caller.scope)
    return json_response(op_status(op))


@router.delete("/install/{action}/{op_id}")
async def op_delete(request: Request, action: str, op_id: str) -> Response:
    """Forget an operation's monitor."""
    if action not in ("install", "upgrade", "update"):
        raise NotFound("No such resource")
    caller = await authorize(request, "provd.operation.delete")
    provisor_of(request).operations.delete(f"pg.{action}", op_id, caller.scope)
    return no_content()


@router.post("/reload")
async def reload(request: Request) -> Response:
    """Load a plugin again from its folder."""
    check_accept(request)
    caller = await authorize(request, f"{P}.reload.create")
    require_master(caller.scope, "plugins")
    prov = provisor_of(request)
    await get_manager(prov).reload(await _id(request, ids.plugin_id))
    return no_content()


@router.get("/plugins")
async def plugins(request: Request) -> Response:
    """Loaded plugins."""
    check_accept(request)
    await authorize(request, f"{P}.plugins.read")
    ids = provisor_of(request).plugins.ids()
    return json_response(
        {
            "plugins": {
                pid: {"links": [{"rel": "pg.plugin", "href": f"{BASE}/plugins/{pid}"}]}
                for pid in ids
            }
        }
    )


def _plugin(request: Request, plugin_id: str) -> Any:
    plugin = provisor_of(request).plugins.get(ids.plugin_id(plugin_id, "plugin_id"))
    if plugin is None:
        raise NotFound("No such resource")
    return plugin


@router.get("/plugins/{plugin_id}")
async def plugin(request: Request, plugin_id: str) -> Response:
    """Links of one plugin."""
    check_accept(request)
    _plugin(request, plugin_id)
    await authorize(request, f"{P}.plugins.{{plugin_id}}.read", plugin_id=plugin_id)
    base = f"{BASE}/plugins/{plugin_id}"
    return _links(("pg.info", f"{base}/info"), ("srv.install", f"{base}/install"))


@router.get("/plugins/{plugin_id}/info")
async def plugin_info(request: Request, plugin_id: str) -> Response:
    """Version, description and capabilities of a plugin (404 before auth when unknown)."""
    check_accept(request)
    _plugin(request, plugin_id)
    await authorize(request, f"{P}.plugins.{{plugin_id}}.info.read", plugin_id=plugin_id)
    info = get_manager(provisor_of(request)).installed()[plugin_id]
    return json_response({"plugin_info": info})


@router.get("/plugins/{plugin_id}/install")
async def plugin_install_index(request: Request, plugin_id: str) -> Response:
    """Links of a plugin's firmware package service."""
    check_accept(request)
    _plugin(request, plugin_id)
    await authorize(request, f"{P}.plugins.{{plugin_id}}.install.read", plugin_id=plugin_id)
    i = f"{BASE}/plugins/{plugin_id}/install"
    return _links(
        ("srv.install.install", f"{i}/install"),
        ("srv.install.uninstall", f"{i}/uninstall"),
        ("srv.install.installed", f"{i}/installed"),
        ("srv.install.installable", f"{i}/installable"),
    )


@router.get("/plugins/{plugin_id}/install/installable")
async def packages_installable(request: Request, plugin_id: str) -> Response:
    """A plugin's firmware packages."""
    check_accept(request)
    _plugin(request, plugin_id)
    await authorize(
        request, f"{P}.plugins.{{plugin_id}}.install.installable.read", plugin_id=plugin_id
    )
    pkgs = get_manager(provisor_of(request)).packages(plugin_id)
    return json_response(
        {
            "pkgs": {
                k: {
                    "version": v.get("version", ""),
                    "description": v.get("description", ""),
                    "dsize": v.get("size"),
                }
                for k, v in pkgs.items()
            }
        }
    )


@router.get("/plugins/{plugin_id}/install/installed")
async def packages_installed(request: Request, plugin_id: str) -> Response:
    """A plugin's installed firmware packages."""
    check_accept(request)
    _plugin(request, plugin_id)
    await authorize(
        request, f"{P}.plugins.{{plugin_id}}.install.installed.read", plugin_id=plugin_id
    )
    return json_response({"pkgs": get_manager(provisor_of(request)).installed_packages(plugin_id)})


@router.post("/plugins/{plugin_id}/install/install")
async def package_install(request: Request, plugin_id: str) -> Response:
    """Install a firmware package (long operation with download progress)."""
    check_accept(request)
    _plugin(request, plugin_id)
    caller = await authorize(
        request, f"{P}.plugins.{{plugin_id}}.install.install.create", plugin_id=plugin_id
    )
    require_master(caller.scope, "firmware packages")
    prov = provisor_of(request)
    pkg_id = await _id(request, ids.package_id)
    op = get_manager(prov).start_firmware_install(plugin_id, pkg_id, caller.tenant_uuid)
    return created(f"{BASE}/plugins/{plugin_id}/install/install/{op.id}")


@router.get("/plugins/{plugin_id}/install/install/{op_id}")
async def package_op(request: Request, plugin_id: str, op_id: str) -> Response:
    """Status of a firmware package install."""
    check_accept(request)
    caller = await authorize(request, "provd.operation.read")
    op = provisor_of(request).operations.get(f"pkg.{plugin_id}", op_id, caller.scope)
    return json_response(op_status(op))


@router.delete("/plugins/{plugin_id}/install/install/{op_id}")
async def package_op_delete(request: Request, plugin_id: str, op_id: str) -> Response:
    """Forget a firmware package operation."""
    caller = await authorize(request, "provd.operation.delete")
    provisor_of(request).operations.delete(f"pkg.{plugin_id}", op_id, caller.scope)
    return no_content()


@router.post("/plugins/{plugin_id}/install/uninstall")
async def package_uninstall(request: Request, plugin_id: str) -> Response:
    """Remove a firmware package's files."""
    check_accept(request)
    _plugin(request, plugin_id)
    caller = await authorize(
        request, f"{P}.plugins.{{plugin_id}}.install.uninstall.create", plugin_id=plugin_id
    )
    require_master(caller.scope, "firmware packages")
    prov = provisor_of(request)
    await get_manager(prov).uninstall_firmware(plugin_id, await _id(request, ids.package_id))
    return no_content()


# -- template overrides (provisor extension) -------------------------------------------------


@router.get("/plugins/{plugin_id}/templates")
async def templates(request: Request, plugin_id: str) -> Response:
    """The caller tenant's template overrides of a plugin."""
    check_accept(request)
    _plugin(request, plugin_id)
    caller = await authorize(
        request, f"{P}.plugins.{{plugin_id}}.templates.read", plugin_id=plugin_id
    )
    rows = await provisor_of(request).param_store.list_overrides(caller.tenant_uuid, plugin_id)
    return json_response({"templates": rows})


@router.put("/plugins/{plugin_id}/templates/{scope}/{name:path}")
async def put_template(request: Request, plugin_id: str, scope: str, name: str) -> Response:
    """Create or replace an override (validated; rendered in the sandbox)."""
    check_accept(request)
    plugin = _plugin(request, plugin_id)
    caller = await authorize(
        request, f"{P}.plugins.{{plugin_id}}.templates.update", plugin_id=plugin_id
    )
    prov = provisor_of(request)
    body = await read_json(request, prov.settings.rest_api.max_body_bytes)
    tpl = body.get("template") if isinstance(body, dict) else None
    if not isinstance(tpl, dict):
        raise InvalidInput('body: expected {"template": {"target": "...", "source": "..."}}')
    await put_override(
        prov, caller, plugin, plugin_id, scope, name, tpl.get("target"), tpl.get("source")
    )
    return no_content()


@router.delete("/plugins/{plugin_id}/templates/{scope}/{name:path}")
async def delete_template(request: Request, plugin_id: str, scope: str, name: str) -> Response:
    """Delete an override."""
    _plugin(request, plugin_id)
    caller = await authorize(
        request, f"{P}.plugins.{{plugin_id}}.templates.update", plugin_id=plugin_id
    )
    target = request.query_params.get("target", "")
    await delete_override(provisor_of(request), caller, plugin_id, scope, target, name)
    return no_content()
