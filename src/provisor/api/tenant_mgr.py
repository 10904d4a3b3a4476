"""``/0.2/tenant_mgr`` (provisor extension): tenants and their TFTP switch over the REST API.

A caller sees and changes only its own tenant's subtree (its token's tenant, or the
``Wazo-Tenant`` it may see); anything outside is 404, as if it did not exist. A new tenant goes
under a tenant of that subtree (default: the caller's own), so only master-tenant callers make
top-level tenants. Creating, renaming and deleting tenants needs the built-in auth backend
(with wazo-auth, tenants are wazo-auth's); the TFTP switch works with both. A caller cannot
delete its own tenant, nobody deletes the master, and a tenant that still owns devices,
configs or sub-tenants is deleted only with ``?force=true`` (409 otherwise).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from provisor.api.deps import Caller, authorize, provisor_of
from provisor.api.http import check_accept, created, json_response, no_content, read_json
from provisor.errors import InvalidInput, NotFound
from provisor.services.tenants import TenantAdmin, check_name, tenant_json
from provisor.store.tenancy import Tenant

__all__ = ["router"]

router = APIRouter(prefix="/0.2/tenant_mgr")

P = "provd.tenant_mgr.tenants"
BASE = "/0.2/tenant_mgr/tenants"
#: Fields of a tenant document a PUT may change; the others must keep their value.
_WRITABLE = {"name"}
_READ_ONLY = {"uuid", "parent_uuid", "is_master", "tftp_enabled", "provisioning_key_set"}


def _builtin_only(request: Request) -> None:
    if provisor_of(request).settings.auth.backend != "builtin":
        raise InvalidInput("tenants are managed in wazo-auth (auth.backend: wazo-auth)")


async def _visible(request: Request, caller: Caller, tenant_uuid: str) -> Tenant:
    """The tenant if it is in the caller's subtree; 404 (not 403) otherwise."""
    prov = provisor_of(request)
    tenant = await prov.tenants.reload_on_miss(tenant_uuid)  # created a moment ago elsewhere
    if tenant is None:
        raise NotFound("No such resource")
    subtree = caller.subtree
    if tenant_uuid not in subtree and prov.settings.auth.backend == "builtin":
        subtree = prov.tenants.subtree(caller.tenant_uuid)  # the tree may have just reloaded
    if tenant_uuid not in subtree:
        raise NotFound("No such resource")
    return tenant


def _body(body: Any, key: str) -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get(key), dict):
        raise InvalidInput(f'body: expected {{"{key}": {{...}}}}')
    inner: dict[str, Any] = body[key]
    return inner


@router.get("/tenants")
async def list_tenants(request: Request) -> Response:
    """The caller's tenant and every tenant below it."""
    check_accept(request)
    caller = await authorize(request, f"{P}.read")
    prov = provisor_of(request)
    found = [t for t in (prov.tenants.get(u) for u in caller.subtree) if t is not None]
    found.sort(key=lambda t: (not t.is_master, t.name, t.uuid))
    return json_response({"tenants": [tenant_json(t) for t in found]})


@router.post("/tenants")
async def create_tenant(request: Request) -> Response:
    """Create a tenant under the caller's tenant or one of its sub-tenants."""
    check_accept(request)
    caller = await authorize(request, f"{P}.create")
    _builtin_only(request)
    prov = provisor_of(request)
    doc = _body(await read_json(request, prov.settings.rest_api.max_body_bytes), "tenant")
    unknown = set(doc) - {"name", "parent_uuid"}
    if unknown:
        raise InvalidInput(f"tenant: unknown field {sorted(unknown)[0]!r}")
    parent = doc.get("parent_uuid") or caller.tenant_uuid
    if not isinstance(parent, str):
        raise InvalidInput("tenant.parent_uuid: expected a tenant uuid")
    try:
        await _visible(request, caller, parent)
    except NotFound:
        raise InvalidInput(f"tenant.parent_uuid: no tenant {parent!r} in your tenants") from None
    tenant = await prov.tenants.create(check_name(doc.get("name")), parent_uuid=parent)
    return created(f"{BASE}/{tenant.uuid}", {"id": tenant.uuid})


@router.get("/tenants/{tenant_uuid}")
async def get_tenant(request: Request, tenant_uuid: str) -> Response:
    """One tenant of the caller's subtree."""
    check_accept(request)
    caller = await authorize(request, f"{P}.{{tenant}}.read", tenant=tenant_uuid)
    tenant = await _visible(request, caller, tenant_uuid)
    return json_response({"tenant": tenant_json(tenant)})


@router.put("/tenants/{tenant_uuid}")
async def update_tenant(request: Request, tenant_uuid: str) -> Response:
    """Rename a tenant (the other fields are read-only and must keep their value)."""
    check_accept(request)
    caller = await authorize(request, f"{P}.{{tenant}}.update", tenant=tenant_uuid)
    _builtin_only(request)
    prov = provisor_of(request)
    tenant = await _visible(request, caller, tenant_uuid)
    doc = _body(await read_json(request, prov.settings.rest_api.max_body_bytes), "tenant")
    current = tenant_json(tenant)
    for key, value in doc.items():
        if key in _READ_ONLY and value != current[key]:
            raise InvalidInput(f"tenant.{key}: read-only here (TFTP: PUT {BASE}/{{uuid}}/tftp)")
        if key not in _READ_ONLY and key not in _WRITABLE:
            raise InvalidInput(f"tenant: unknown field {key!r}")
    if "name" in doc:
        await TenantAdmin(prov).rename(tenant_uuid, doc["name"])
    return no_content()


@router.delete("/tenants/{tenant_uuid}")
async def delete_tenant(request: Request, tenant_uuid: str) -> Response:
    """Delete a sub-tenant; ``?force=true`` also deletes what it owns and its sub-tenants."""
    check_accept(request)
    caller = await authorize(request, f"{P}.{{tenant}}.delete", tenant=tenant_uuid)
    _builtin_only(request)
    await _visible(request, caller, tenant_uuid)
    if tenant_uuid in (caller.tenant_uuid, caller.token.tenant_uuid):
        raise InvalidInput("a caller cannot delete its own tenant")
    force = request.query_params.get("force", "false").lower()
    if force not in ("true", "false"):
        raise InvalidInput("force: expected true or false")
    await TenantAdmin(provisor_of(request)).delete(tenant_uuid, force=force == "true")
    return no_content()


@router.get("/tenants/{tenant_uuid}/tftp")
async def get_tftp(request: Request, tenant_uuid: str) -> Response:
    """Whether the tenant's phones may be provisioned over TFTP."""
    check_accept(request)
    caller = await authorize(request, f"{P}.{{tenant}}.tftp.read", tenant=tenant_uuid)
    tenant = await _visible(request, caller, tenant_uuid)
    return json_response({"tftp": {"enabled": tenant.tftp_enabled}})


@router.put("/tenants/{tenant_uuid}/tftp")
async def set_tftp(request: Request, tenant_uuid: str) -> Response:
    """Allow or refuse TFTP for the tenant's phones (HTTP and HTTPS are not affected)."""
    check_accept(request)
    caller = await authorize(request, f"{P}.{{tenant}}.tftp.update", tenant=tenant_uuid)
    prov = provisor_of(request)
    await _visible(request, caller, tenant_uuid)
    doc = _body(await read_json(request, prov.settings.rest_api.max_body_bytes), "tftp")
    enabled = doc.get("enabled")
    if not isinstance(enabled, bool) or set(doc) != {"enabled"}:
        raise InvalidInput('body: expected {"tftp": {"enabled": true|false}}')
    await TenantAdmin(prov).set_tftp(tenant_uuid, enabled)
    return no_content()
