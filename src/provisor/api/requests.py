"""``/0.2/dev_mgr/requests``: why a phone got what it got (provisor extension)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from provisor.api.deps import authorize, provisor_of
from provisor.api.http import check_accept, json_response
from provisor.domain.values import normalize_ip, validate_id
from provisor.errors import InvalidInput

__all__ = ["router"]

router = APIRouter(prefix="/0.2/dev_mgr")


@router.get("/requests")
async def list_requests(request: Request) -> Response:
    """The last phone requests with the pipeline's decisions, newest first."""
    check_accept(request)
    caller = await authorize(request, "provd.dev_mgr.requests.read")
    prov = provisor_of(request)
    qp = request.query_params
    limit_text = qp.get("limit", "100")
    if not limit_text.isascii() or not limit_text.isdigit() or len(limit_text) > 5:
        raise InvalidInput("limit: an integer from 1 to 10000")
    if not 1 <= int(limit_text) <= 10_000:
        raise InvalidInput("limit: an integer from 1 to 10000")
    # a filter that is not an id or an address is a 400, never an empty list that looks
    # like "no requests" (an IPv6 address is matched in its compressed form, as recorded)
    device = qp.get("device")
    if device is not None:
        validate_id(device, "device")
    address = qp.get("ip")
    if address is not None:
        try:
            address = normalize_ip(address)
        except InvalidInput as exc:
            raise InvalidInput(f"ip: {exc.message}") from None
    pipeline = prov.extra.get("pipeline")
    entries = (
        pipeline.trace.query(
            device_id=device,
            client_ip=address,
            tenants=None if caller.tenant_uuid == await prov.master_tenant() else caller.subtree,
            limit=int(limit_text),
        )
        if pipeline is not None
        else []
    )
    return json_response({"requests": entries})
