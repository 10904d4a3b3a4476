"""``/0.2/dev_mgr/requests``: why a phone got what it got (provisor extension)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from provisor.api.deps import authorize, provisor_of
from provisor.api.http import check_accept, json_response
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
    pipeline = prov.extra.get("pipeline")
    entries = (
        pipeline.trace.query(
            device_id=qp.get("device"),
            client_ip=qp.get("ip"),
            tenants=None if caller.tenant_uuid == await prov.master_tenant() else caller.subtree,
            limit=int(limit_text),
        )
        if pipeline is not None
        else []
    )
    return json_response({"requests": entries})
