"""``/0.2/configure``: parameters, with per-tenant ones (provisioning_key) scoped to the caller.

The ACL of one parameter is ``provd.configure.<tenant>.<name>.read|update`` (the form
wazo-provd's code checks), where the tenant is the ``Wazo-Tenant`` header or the token's own.
Global parameters are read and changed by master tokens only (provisor.authz rule 1).
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from provisor.api.deps import Caller, authorize, provisor_of
from provisor.api.http import check_accept, json_response, no_content, read_json
from provisor.errors import InvalidInput

__all__ = ["router"]

router = APIRouter(prefix="/0.2/configure")


@router.get("")
async def list_params(request: Request) -> Response:
    """Every parameter with its description, value and link."""
    check_accept(request)
    caller = await authorize(request, "provd.configure.read")
    params = await provisor_of(request).params.all(caller.tenant_uuid, caller.scope)
    for p in params:
        p["links"] = [{"rel": "srv.configure.param", "href": f"/0.2/configure/{p['id']}"}]
    return json_response({"params": params})


async def _param_caller(request: Request, name: str, action: str) -> Caller:
    tenant = request.headers.get("wazo-tenant")
    if tenant is None:
        tenant = (await authorize(request, "provd.configure.read")).tenant_uuid
    return await authorize(
        request, f"provd.configure.{{tenant}}.{{name}}.{action}", tenant=tenant, name=name
    )


@router.get("/{name}")
async def get_param(request: Request, name: str) -> Response:
    """One parameter's value (404 for an unknown name, before auth)."""
    check_accept(request)
    prov = provisor_of(request)
    prov.params.describe(name)
    caller = await _param_caller(request, name, "read")
    value = await prov.params.get(name, caller.tenant_uuid, caller.scope)
    return json_response({"param": {"value": value}})


@router.put("/{name}")
async def set_param(request: Request, name: str) -> Response:
    """Set (null clears) a parameter; 400 with the reason when invalid."""
    check_accept(request)
    prov = provisor_of(request)
    prov.params.describe(name)
    caller = await _param_caller(request, name, "update")
    body = await read_json(request, prov.settings.rest_api.max_body_bytes)
    if not isinstance(body, dict) or not isinstance(body.get("param"), dict):
        raise InvalidInput('body: expected {"param": {"value": ...}}')
    if "value" not in body["param"]:
        raise InvalidInput("param.value: required (null clears the parameter)")
    await prov.params.set(name, body["param"]["value"], caller.tenant_uuid, caller.scope)
    return no_content()
