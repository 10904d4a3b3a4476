"""``POST /0.2/dev_mgr/provisioning_code``: a phone in autoprov mode dials a user's code.

The PBX's dialplan (``contrib/provisor-autoprov.agi`` for Asterisk) sends the digits, the
caller's SIP account and address. provisor finds the device (by the peer it registered as, else
by its address), finds the config carrying that code in the caller's tenants, gives it to the
device (moving the device to the config's tenant), and tells the phone to resync. Wrong codes
count as failures of the phone's address, like any other failure, and a banned address is
refused.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from provisor.api.deps import authorize, provisor_of
from provisor.api.http import check_accept, json_response, read_json
from provisor.domain.selector import Selector
from provisor.domain.values import normalize_ip
from provisor.errors import InvalidInput, NotFound

__all__ = ["router"]

router = APIRouter(prefix="/0.2/dev_mgr")


@router.post("/provisioning_code")
async def provisioning_code(request: Request) -> Response:
    """Associate the calling phone with the config carrying the dialled code."""
    check_accept(request)
    caller = await authorize(request, "provd.dev_mgr.provisioning_code.create")
    prov = provisor_of(request)
    body = await read_json(request, prov.settings.rest_api.max_body_bytes)
    if not isinstance(body, dict):
        raise InvalidInput("body: expected a JSON object")
    code = body.get("code")
    if not isinstance(code, str) or not code.isdigit() or not 2 <= len(code) <= 16:
        raise InvalidInput("code: 2 to 16 digits")
    ip = normalize_ip(body.get("ip")) if body.get("ip") is not None else None
    peer = body.get("caller") if isinstance(body.get("caller"), str) else None
    pipeline = prov.extra.get("pipeline")
    if ip and pipeline is not None and pipeline.failures.is_banned(ip):
        raise NotFound("this address is refused after repeated failures")
    store = prov.devices.store
    device = None
    if peer:
        matches = await store.query(
            Selector.eq(remote_state_sip_username=peer), tenants=caller.subtree
        )
        device = matches[0] if len(matches) == 1 else None
    if device is None and ip:
        candidates = [
            d for d in await store.find_all(limit=2, ip=ip) if d["tenant_uuid"] in caller.subtree
        ]
        device = candidates[0] if len(candidates) == 1 else None
    if device is None:
        raise NotFound("no single device matches this caller and address")
    config = None
    for tenant in sorted(caller.subtree):
        config = await prov.configs.store.find_by_code(tenant, code)
        if config is not None:
            break
    if config is None:
        config = await prov.configs.store.find_by_code(None, code)
    if config is None:
        if ip and pipeline is not None and pipeline.failures.failure(ip):
            pipeline.security.banned(ip, "too many wrong provisioning codes")
        if pipeline is not None and ip:
            pipeline.security.refused(ip, "wrong provisioning code")
        raise NotFound("unknown provisioning code")
    doc = dict(device)
    doc["config"] = config["id"]
    target_tenant = config.get("tenant_uuid") or device["tenant_uuid"]
    saved = await prov.devices.replace(
        device["id"],
        {k: v for k, v in doc.items() if k != "tenant_uuid"},
        scope=None,  # the device and the config were both found in the caller's tenants
        tenant=target_tenant,
    )
    sync = prov.extra.get("sync")
    operation = None
    if sync is not None and saved.get("configured"):
        op = sync.start_one(saved)
        op.tenant_uuid = caller.tenant_uuid  # the caller's operation (authz rule 6)
        operation = f"/0.2/dev_mgr/synchronize/{op.id}"
    return json_response({"device": saved["id"], "config": config["id"], "synchronize": operation})
