"""The REST API application (FastAPI), with wazo-provd's error and status conventions.

Errors are plain text with the status of :mod:`provisor.errors`; unknown paths are 404 before
any auth; FastAPI's own validation errors become 400s naming the parameter, never 422 or 500.
Unexpected exceptions are logged with the request path and answered 500 without details.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import yaml
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

from provisor import __version__
from provisor.api import cfg_mgr, configure, dev_mgr, status
from provisor.api.health import router as health_router
from provisor.api.http import error_response
from provisor.errors import InvalidInput, NotFound, ProvisorError
from provisor.service import Provisor

__all__ = ["create_api"]

log = logging.getLogger(__name__)

Extra = Callable[[FastAPI], None]


def create_api(prov: Provisor, *, extra_routers: tuple[Any, ...] = ()) -> FastAPI:
    """The REST API app bound to a running Provisor."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield

    extra: dict[str, Any] = {}
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters:
        # FastAPI's native OpenTelemetry looks up the tracer providers on every request;
        # provisor exports no traces, so the lookups are turned off (3 % of a request).
        extra["telemetry"] = {"tracing": False, "metrics": False, "logs": False}
    app = FastAPI(
        title="provisor REST API",
        version=__version__,
        description="Phone provisioning API, compatible with wazo-provd's 0.2 API.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
        **extra,
    )
    app.state.provisor = prov
    for router in (status.router, dev_mgr.router, cfg_mgr.router, configure.router):
        app.include_router(router)
    for router in extra_routers:
        app.include_router(router)
    app.include_router(health_router)

    @app.exception_handler(ProvisorError)
    async def _provisor_error(_request: Request, exc: ProvisorError) -> Response:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        return error_response(InvalidInput(problems or "invalid request"))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return error_response(NotFound("No such resource"))
        err = ProvisorError(str(exc.detail))
        err.status_code = exc.status_code
        return error_response(err)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return Response(b"Internal error", status_code=500, media_type="text/plain")

    spec = app.openapi()
    spec["info"]["x-compatibility"] = "wazo-provd REST API 0.2"
    app.state.api_spec = yaml.safe_dump(spec, sort_keys=False).encode("utf-8")
    return app
