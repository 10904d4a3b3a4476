"""``/0.2/dev_mgr``: devices, reconfigure, synchronize, dhcpinfo, per-device tokens.

Ownership is decided by provisor.authz through the services; ids from the URL are validated
here; ``dhcpinfo`` (the platform's DHCP server reporting leases) is master-only.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from provisor.api.deps import authorize, path_id, provisor_of
from provisor.api.http import check_accept, created, json_response, no_content, read_json
from provisor.api.listing import list_query
from provisor.authz import require_master
from provisor.domain.ids import plugin_id, shown
from provisor.domain.values import validate_id
from provisor.errors import InvalidInput
from provisor.services.operations import op_status

__all__ = ["router"]

router = APIRouter(prefix="/0.2/dev_mgr")

P = "provd.dev_mgr"


def _body_key(body: Any, key: str) -> Any:
    if not isinstance(body, dict) or key not in body:
        raise InvalidInput(f"body: expected a JSON object with a {key!r} key")
    return body[key]


@router.get("")
async def dev_mgr_index(request: Request) -> Response:
    """Links to the device manager's resources."""
    check_accept(request)
    await authorize(request, f"{P}.read")
    base = "/0.2/dev_mgr"
    return json_response(
        {
            "links": [
                {"rel": "dev.synchronize", "href": f"{base}/synchronize"},
                {"rel": "dev.reconfigure", "href": f"{base}/reconfigure"},
                {"rel": "dev.dhcpinfo", "href": f"{base}/dhcpinfo"},
                {"rel": "dev.devices", "href": f"{base}/devices"},
            ]
        }
    )


@router.get("/devices")
async def list_devices(request: Request) -> Response:
    """Devices in the caller's tenant (or subtree with recurse=true) matching q."""
    check_accept(request)
    caller = await authorize(request, f"{P}.devices.read")
    query = list_query(request)
    docs = await provisor_of(request).devices.list(query.selector, caller.list_tenants, query.page)
    return json_response({"devices": query.project(docs)})


@router.post("/devices")
async def create_device(request: Request) -> Response:
    """Create a device in the caller's tenant."""
    check_accept(request)
    caller = await authorize(request, f"{P}.devices.create")
    prov = provisor_of(request)
    body = await read_json(request, prov.settings.rest_api.max_body_bytes)
    doc = await prov.devices.create(
        _body_key(body, "device"), caller.tenant_uuid, scope=caller.scope
    )
    return created(f"/0.2/dev_mgr/devices/{doc['id']}", {"id": doc["id"]})


@router.get("/devices/{device_id}")
async def get_device(request: Request, device_id: str) -> Response:
    """One device of the caller's subtree."""
    check_accept(request)
    path_id(device_id, "device_id")
    caller = await authorize(request, f"{P}.devices.{{device_id}}.read", device_id=device_id)
    doc = await provisor_of(request).devices.get(device_id, caller.scope)
    return json_response({"device": doc})


@router.put("/devices/{device_id}")
async def update_device(request: Request, device_id: str) -> Response:
    """Replace a device (a new device is claimed by the caller's tenant)."""
    check_accept(request)
    path_id(device_id, "device_id")
    caller = await authorize(request, f"{P}.devices.{{device_id}}.update", device_id=device_id)
    prov = provisor_of(request)
    body = await read_json(request, prov.settings.rest_api.max_body_bytes)
    await prov.devices.replace(device_id, _body_key(body, "device"), scope=caller.scope)
    return no_content()


@router.delete("/devices/{device_id}")
async def delete_device(request: Request, device_id: str) -> Response:
    """Delete a device of the caller's subtree."""
    path_id(device_id, "device_id")
    caller = await authorize(request, f"{P}.devices.{{device_id}}.delete", device_id=device_id)
    await provisor_of(request).devices.delete(device_id, caller.scope)
    return no_content()


@router.get("/devices/{device_id}/provisioning_token")
async def get_device_token(request: Request, device_id: str) -> Response:
    """The device's per-device provisioning token (provisor extension)."""
    check_accept(request)
    path_id(device_id, "device_id")
    caller = await authorize(request, f"{P}.devices.{{device_id}}.token.read", device_id=device_id)
    token = await provisor_of(request).devices.token(device_id, caller.scope)
    return json_response({"provisioning_token": token})


@router.post("/devices/{device_id}/provisioning_token")
async def rotate_device_token(request: Request, device_id: str) -> Response:
    """Rotate the device's provisioning token; the old one stops working at once."""
    check_accept(request)
    path_id(device_id, "device_id")
    caller = await authorize(
        request, f"{P}.devices.{{device_id}}.token.update", device_id=device_id
    )
    token = await provisor_of(request).devices.rotate_token(device_id, caller.scope)
    return json_response({"provisioning_token": token})


@router.post("/reconfigure")
async def reconfigure(request: Request) -> Response:
    """Recompute a device's configuration state."""
    check_accept(request)
    caller = await authorize(request, f"{P}.reconfigure.create")
    prov = provisor_of(request)
    body = await read_json(request, prov.settings.rest_api.max_body_bytes)
    device_id = _body_key(body, "id")
    if not isinstance(device_id, str):
        raise InvalidInput("id: must be a string")
    await prov.devices.reconfigure(path_id(device_id, "id"), caller.scope)
    return no_content()


@router.post("/synchronize")
async def synchronize(request: Request) -> Response:
    """Tell a device (``id``) or many (``config``, ``plugin``, ``tenant_uuid``) to resync."""
    check_accept(request)
    caller = await authorize(request, f"{P}.synchronize.create")
    prov = provisor_of(request)
    body = await read_json(request, prov.settings.rest_api.max_body_bytes)
    if not isinstance(body, dict):
        raise InvalidInput("body: expected a JSON object")
    sync = prov.extra.get("sync")
    many = {k: body[k] for k in ("config", "plugin", "tenant_uuid") if k in body}
    if many:
        if "id" in body or len(many) != 1 or not all(isinstance(v, str) for v in many.values()):
            raise InvalidInput("body: give exactly one of id, config, plugin or tenant_uuid")
        key, value = next(iter(many.items()))
        # ids are checked where they enter (authz rule 8): a bad one is a 400, not an empty run
        if key == "config":
            validate_id(value, "config")
        elif key == "plugin":
            plugin_id(value, "plugin")
        elif value not in caller.subtree:
            raise InvalidInput(f"tenant_uuid: {shown(value)} is not yours")
        ids = await prov.devices.store.ids_where(**{key: value}, tenant_uuid=list(caller.subtree))
        if sync is None:
            op = prov.operations.failed("synchronize", "no sync service configured")
        else:
            op = sync.start_many(ids, tenants=caller.subtree)
        op.tenant_uuid = caller.tenant_uuid  # the operation is the caller's (authz rule 6)
        return created(f"/0.2/dev_mgr/synchronize/{op.id}")
    device_id = _body_key(body, "id")
    if not isinstance(device_id, str):
        raise InvalidInput("id: must be a string")
    doc = await prov.devices.get(path_id(device_id, "id"), caller.scope)
    if sync is None:
        op = prov.operations.failed("synchronize", "no sync service configured")
    else:
        op = sync.start_one(doc)
    op.tenant_uuid = caller.tenant_uuid  # the operation is the caller's (authz rule 6)
    return created(f"/0.2/dev_mgr/synchronize/{op.id}")


@router.get("/synchronize/{op_id}")
async def synchronize_status(request: Request, op_id: str) -> Response:
    """The status of a synchronize operation."""
    check_accept(request)
    caller = await authorize(request, "provd.operation.read")
    op = provisor_of(request).operations.get("synchronize", op_id, caller.scope)
    return json_response(op_status(op))


@router.delete("/synchronize/{op_id}")
async def synchronize_delete(request: Request, op_id: str) -> Response:
    """Forget a synchronize operation's monitor."""
    caller = await authorize(request, "provd.operation.delete")
    provisor_of(request).operations.delete("synchronize", op_id, caller.scope)
    return no_content()


@router.post("/dhcpinfo")
async def dhcpinfo(request: Request) -> Response:
    """Lease information from a DHCP server: identifies (and creates) the device.

    The DHCP server serves the whole platform, and a lease rewrites the address of whatever
    device has the MAC, in any tenant: master tokens only."""
    check_accept(request)
    caller = await authorize(request, f"{P}.dhcpinfo.create")
    require_master(caller.scope, "DHCP lease information")
    prov = provisor_of(request)
    body = await read_json(request, prov.settings.rest_api.max_body_bytes)
    info = _body_key(body, "dhcp_info")
    pipeline = prov.extra.get("pipeline")
    if pipeline is None:  # pragma: no cover - the app always wires a pipeline
        raise InvalidInput("dhcpinfo: provisioning is not running")
    await pipeline.dhcp_info(info)
    return no_content()
