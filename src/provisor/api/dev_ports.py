"""``/0.2/dev_mgr/.../ports``: a device's ports held by tenants (gateways shared by tenants).

A provisor extension in wazo-provd's shapes: a port document is ``{"device_id", "port",
"tenant_uuid", "config"}``, bodies are ``{"port": {...}}``. The device's owner assigns and
revokes ports; a port's tenant names the config its line comes from. Who sees and changes
what is decided in provisor.authz and services/ports.py; docs/api.md, "Devices shared by
tenants", is the integrator's view.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from provisor.api.deps import authorize, path_id, provisor_of
from provisor.api.http import check_accept, json_response, no_content, read_json
from provisor.errors import InvalidInput
from provisor.services.ports import validate_port

__all__ = ["router"]

router = APIRouter(prefix="/0.2/dev_mgr")

P = "provd.dev_mgr"


def _port_body(body: Any) -> Any:
    if not isinstance(body, dict) or "port" not in body:
        raise InvalidInput("body: expected a JSON object with a 'port' key")
    return body["port"]


@router.get("/ports")
async def list_held_ports(request: Request) -> Response:
    """The ports the caller's tenant (or subtree with recurse=true) holds, on any device."""
    check_accept(request)
    caller = await authorize(request, f"{P}.ports.read")
    ports = await provisor_of(request).devices.ports.list_held(caller.list_tenants)
    return json_response({"ports": ports})


@router.get("/devices/{device_id}/ports")
async def list_device_ports(request: Request, device_id: str) -> Response:
    """A device's ports: every one for its owner, its own for a port tenant."""
    check_accept(request)
    path_id(device_id, "device_id")
    caller = await authorize(request, f"{P}.devices.{{device_id}}.ports.read", device_id=device_id)
    ports = await provisor_of(request).devices.ports.list_device(device_id, caller.scope)
    return json_response({"ports": ports})


@router.get("/devices/{device_id}/ports/{port}")
async def get_port(request: Request, device_id: str, port: str) -> Response:
    """One port of a device, for its owner or the port's tenant."""
    check_accept(request)
    path_id(device_id, "device_id")
    number = validate_port(port)
    caller = await authorize(request, f"{P}.devices.{{device_id}}.ports.read", device_id=device_id)
    doc = await provisor_of(request).devices.ports.get(device_id, number, caller.scope)
    return json_response({"port": doc})


@router.put("/devices/{device_id}/ports/{port}")
async def put_port(request: Request, device_id: str, port: str) -> Response:
    """Assign a port to a tenant (owner), or name the config of its line (port tenant)."""
    check_accept(request)
    path_id(device_id, "device_id")
    number = validate_port(port)
    caller = await authorize(
        request, f"{P}.devices.{{device_id}}.ports.update", device_id=device_id
    )
    prov = provisor_of(request)
    body = await read_json(request, prov.settings.rest_api.max_body_bytes)
    await prov.devices.ports.put(device_id, number, _port_body(body), caller.scope)
    return no_content()


@router.delete("/devices/{device_id}/ports/{port}")
async def delete_port(request: Request, device_id: str, port: str) -> Response:
    """Revoke a port (the device's owner); its tenant's line leaves the device's file."""
    path_id(device_id, "device_id")
    number = validate_port(port)
    caller = await authorize(
        request, f"{P}.devices.{{device_id}}.ports.delete", device_id=device_id
    )
    await provisor_of(request).devices.ports.delete(device_id, number, caller.scope)
    return no_content()
