"""``/0.2``, ``/0.2/status`` and the Swagger 2.0 document ``/0.2/api/api.yml``.

``/status`` has wazo-provd's shape (``rest_api``, ``bus_consumer``) plus ``database``, checked
by reading the change counters. While the database is down the token itself cannot be checked:
the answer is then a 503 whose body names the database and nothing else, which is what every
other endpoint's 503 already tells an anonymous caller.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from provisor.api.deps import authorize, provisor_of
from provisor.api.http import check_accept, json_response
from provisor.service import Provisor
from provisor.store.health import is_unavailable

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


async def _database_ok(prov: Provisor) -> bool:
    """Read the change counters (a real table read, not just a connection), within a bound."""
    health = prov.feed.health
    if health.skip():
        return False
    try:
        await asyncio.wait_for(prov.feed.read(), prov.settings.database.connect_timeout)
    except Exception as exc:
        if not (isinstance(exc, TimeoutError) or is_unavailable(exc)):
            raise
        health.failed(exc)
        return False
    health.succeeded()
    return True


@router.get("/status")
async def status(request: Request) -> Response:
    """Health of the REST API, the bus consumer and the database."""
    check_accept(request)
    prov = provisor_of(request)
    try:
        await authorize(request, "provd.status.read")
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        prov.feed.health.failed(exc)
        response = json_response({"rest_api": "ok", "database": {"status": "fail"}}, 503)
        response.headers["Retry-After"] = str(prov.settings.database.retry_after)
        return response
    bus = prov.extra.get("bus")
    bus_status = "ok" if bus is None or bus.healthy else "fail"
    database = "ok" if await _database_ok(prov) else "fail"
    return json_response(
        {"rest_api": "ok", "bus_consumer": {"status": bus_status}, "database": {"status": database}}
    )


@router.get("/api/api.yml")
async def api_spec(request: Request) -> Response:
    """The Swagger 2.0 document of this API; open without a token."""
    spec: bytes = request.app.state.api_spec
    return Response(spec, media_type="application/yaml")
