"""``/0.2``, ``/0.2/status`` and the OpenAPI document ``/0.2/api/api.yml``."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from provisor.api.deps import authorize, provisor_of
from provisor.api.http import check_accept, json_response

__all__ = ["router"]

router = APIRouter(prefix="/0.2")


@router.get("")
@router.get("/")
async def index(request: Request) -> Response:
    """Links to the top-level resources."""
    check_accept(request)
    await authorize(request, "provd.read")
    return json_response(
        {
            "links": [
                {"rel": "dev", "href": "/0.2/dev_mgr"},
                {"rel": "cfg", "href": "/0.2/cfg_mgr"},
                {"rel": "pg", "href": "/0.2/pg_mgr"},
                {"rel": "status", "href": "/0.2/status"},
                {"rel": "srv.configure", "href": "/0.2/configure"},
            ]
        }
    )


@router.get("/status")
async def status(request: Request) -> Response:
    """Health of the REST API and the bus consumer."""
    check_accept(request)
    await authorize(request, "provd.status.read")
    prov = provisor_of(request)
    bus = prov.extra.get("bus")
    bus_status = "ok" if bus is None or bus.healthy else "fail"
    return json_response({"rest_api": "ok", "bus_consumer": {"status": bus_status}})


@router.get("/api/api.yml")
async def api_spec(request: Request) -> Response:
    """The OpenAPI document; open without a token."""
    spec: bytes = request.app.state.api_spec
    return Response(spec, media_type="application/yaml")
