"""``/0.2/cfg_mgr``: configs (tenant-scoped, unlike upstream), raw configs, autocreate.

A config belongs to the tenant the caller acts in (``Wazo-Tenant``, or the token's own), the
master's included: one the master creates without the header is the master's, not everybody's
(upstream shares every config). Shared configs are the system ones and those a master token
creates with ``"shared": true``. Visibility and references are decided in provisor.authz.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from provisor.api.deps import Caller, authorize, path_id, provisor_of
from provisor.api.http import check_accept, created, json_response, no_content, read_json
from provisor.api.listing import list_query
from provisor.errors import Forbidden, InvalidInput, NotFound
from provisor.services.configs import SYSTEM_CONFIGS

__all__ = ["router"]

router = APIRouter(prefix="/0.2/cfg_mgr")

P = "provd.cfg_mgr"


def _owner(caller: Caller, body: Any) -> str | None:
    """The tenant a new config belongs to (None: shared, for master tokens that ask)."""
    shared = body.get("shared", False) if isinstance(body, dict) else False
    if not isinstance(shared, bool):
        raise InvalidInput("config.shared: must be true or false")
    system = isinstance(body, dict) and body.get("id") in SYSTEM_CONFIGS
    if shared or system:
        if not caller.scope.is_master:
            raise Forbidden("config.shared: only the master tenant creates shared configs")
        return None
    return caller.tenant_uuid


def _config_body(body: Any) -> Any:
    if not isinstance(body, dict) or "config" not in body:
        raise InvalidInput("body: expected a JSON object with a 'config' key")
    return body["config"]


@router.get("")
async def cfg_mgr_index(request: Request) -> Response:
    """Links to the config manager's resources."""
    check_accept(request)
    await authorize(request, f"{P}.read")
    return json_response(
        {
            "links": [
                {"rel": "cfg.configs", "href": "/0.2/cfg_mgr/configs"},
                {"rel": "cfg.autocreate", "href": "/0.2/cfg_mgr/autocreate"},
            ]
        }
    )


@router.get("/configs")
async def list_configs(request: Request) -> Response:
    """Configs the caller may see, matching q."""
    check_accept(request)
    caller = await authorize(request, f"{P}.configs.read")
    prov = provisor_of(request)
    query = list_query(request)
    docs = await prov.configs.list(query.selector, caller.list_tenants, query.page)
    return json_response({"configs": query.project(docs)})


@router.post("/configs")
async def create_config(request: Request) -> Response:
    """Create a config in the caller's tenant (or shared, for the master)."""
    check_accept(request)
    caller = await authorize(request, f"{P}.configs.create")
    prov = provisor_of(request)
    body = await read_json(request, prov.settings.rest_api.max_body_bytes)
    doc = _config_body(body)
    config_id = await prov.configs.create(doc, _owner(caller, doc), caller.scope)
    return created(f"/0.2/cfg_mgr/configs/{config_id}", {"id": config_id})


@router.get("/configs/{config_id}")
async def get_config(request: Request, config_id: str) -> Response:
    """One config."""
    check_accept(request)
    path_id(config_id, "config_id")
    caller = await authorize(request, f"{P}.configs.{{config_id}}.read", config_id=config_id)
    prov = provisor_of(request)
    doc = await prov.configs.get(config_id, caller.scope)
    return json_response({"config": doc})


@router.put("/configs/{config_id}")
async def update_config(request: Request, config_id: str) -> Response:
    """Replace a config; devices using it (or a descendant) see the change on next fetch."""
    check_accept(request)
    path_id(config_id, "config_id")
    caller = await authorize(request, f"{P}.configs.{{config_id}}.update", config_id=config_id)
    prov = provisor_of(request)
    body = await read_json(request, prov.settings.rest_api.max_body_bytes)
    await prov.configs.replace(config_id, _config_body(body), caller.scope)
    return no_content()


@router.delete("/configs/{config_id}")
async def delete_config(request: Request, config_id: str) -> Response:
    """Delete a deletable config (403 when deletable is false)."""
    path_id(config_id, "config_id")
    caller = await authorize(request, f"{P}.configs.{{config_id}}.delete", config_id=config_id)
    await provisor_of(request).configs.delete(config_id, caller.scope)
    return no_content()


@router.get("/configs/{config_id}/raw")
async def raw_config(request: Request, config_id: str) -> Response:
    """The config flattened over its parents and the base raw config."""
    check_accept(request)
    path_id(config_id, "config_id")
    caller = await authorize(request, f"{P}.configs.{{config_id}}.raw.read", config_id=config_id)
    prov = provisor_of(request)
    raw = await prov.configs.raw(config_id, caller.scope)
    return json_response({"raw_config": raw})


@router.post("/autocreate")
async def autocreate(request: Request) -> Response:
    """Create a transient config from the autocreate template (400 if there is none)."""
    check_accept(request)
    caller = await authorize(request, f"{P}.autocreate.create")
    prov = provisor_of(request)
    await read_json(request, prov.settings.rest_api.max_body_bytes)
    config_id = await prov.configs.autocreate(caller.tenant_uuid)
    if config_id is None:
        raise NotFound("no config with role autocreate and a sip_lines.1 to copy")
    return created(f"/0.2/cfg_mgr/configs/{config_id}", {"id": config_id})
