"""The REST API application (FastAPI), with wazo-provd's error and status conventions.

Errors are plain text with the status of :mod:`provisor.errors`; unknown paths are 404 before
any auth; FastAPI's own validation errors become 400s naming the parameter, never 422 or 500.
A database that cannot be reached is a 503 with ``Retry-After`` (logged once per outage by
:mod:`provisor.store.health`, never a traceback per request); a value the database refuses
(out of range, too long) is a 400. Other unexpected exceptions are logged with the request path
and answered 500 without details.
"""

from __future__ import annotations

import inspect
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

import asyncpg  # type: ignore[import-untyped,unused-ignore]
import sqlalchemy.exc
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from provisor import __version__
from provisor.api import bans, cfg_mgr, configure, dev_mgr, dev_ports, status
from provisor.api.fastroutes import FastRoutes
from provisor.api.health import router as health_router
from provisor.api.http import error_response, unavailable
from provisor.api.metrics import router as metrics_router
from provisor.errors import InvalidInput, NotFound, ProvisorError
from provisor.metrics import REST_REQUESTS, observe_database, status_class
from provisor.service import Provisor
from provisor.store.health import DatabaseHealth, is_unavailable

__all__ = ["create_api"]

log = logging.getLogger(__name__)

Extra = Callable[[FastAPI], None]

# what the driver layers raise; caught in the exception middleware, which answers without
# re-raising (the catch-all ``Exception`` handler re-raises, and uvicorn logs a traceback)
_DB_ERRORS: tuple[type[Exception], ...] = (
    sqlalchemy.exc.SQLAlchemyError,
    sqlite3.Error,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    OSError,
)
# paths that work without the database (or say it is down themselves)
_WITHOUT_DB = ("/0.2/status", "/0.2/api/api.yml", "/health/live", "/health/ready", "/metrics")
_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"))


def _refused_value(exc: BaseException) -> str | None:
    """The database's reason when ``exc`` says a value does not fit (SQLSTATE class 22)."""
    current: BaseException | None = exc
    for _ in range(5):  # SQLAlchemy's error → the driver adapter's → asyncpg's
        if current is None:
            return None
        if isinstance(current, asyncpg.DataError | asyncpg.exceptions._base.DataError):
            text = str(current).splitlines()
            return text[0][:200] if text else type(current).__name__
        current = current.__cause__ or current.__context__
    return None


class DatabaseGate:
    """While the database is known to be down, answer 503 at once instead of trying it.

    Pure ASGI (no per-request cost beyond one attribute check when the database is up).
    """

    def __init__(self, app: ASGIApp, health: DatabaseHealth, retry_after: int) -> None:
        self.app = app
        self.health = health
        self.retry_after = retry_after

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and self.health.skip()
            and scope.get("path", "").rstrip("/") not in _WITHOUT_DB
        ):
            await error_response(unavailable(self.retry_after))(scope, receive, send)
            return
        await self.app(scope, receive, send)


class LastResort:
    """An exception no handler took: logged once with its traceback, answered 500.

    Starlette's own catch-all handler answers and then raises the exception again for the
    server to log, so every such error's traceback was logged twice (once by provisor, once
    by uvicorn); this layer, inside Starlette's, stops it here.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:
            log.exception("unexpected error on %s %s", scope.get("method"), scope.get("path"))
            if not started:
                response = Response(b"Internal error", status_code=500, media_type="text/plain")
                await response(scope, receive, send)


class RestCounter:
    """Counts REST requests by route template (never the raw path: it may carry ids), method
    and status class; a path no route matched counts as ``unmatched``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # an exception that escapes is answered 500 by Starlette's outer layer

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            template = getattr(route, "path_format", None) or "unmatched"
            method = scope.get("method", "")
            REST_REQUESTS.labels(
                template, method if method in _METHODS else "other", status_class(status)
            ).inc()


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
    for router in (
        status.router,
        bans.router,
        dev_mgr.router,
        dev_ports.router,
        cfg_mgr.router,
        configure.router,
    ):
        app.include_router(router)
    for router in extra_routers:
        app.include_router(router)
    app.include_router(health_router)
    if prov.settings.console.enabled:
        from provisor.console import install as install_console

        install_console(app, prov)
    if prov.settings.observability.metrics_enabled:
        app.include_router(metrics_router)
        observe_database(prov.engine)

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

    health = prov.feed.health
    retry_after = prov.settings.database.retry_after
    # innermost: behind the gate and the counter
    app.add_middleware(FastRoutes, api=app, routers=(dev_mgr.router,))
    app.add_middleware(DatabaseGate, health=health, retry_after=retry_after)
    app.add_middleware(RestCounter)  # outside the gate: its 503s are counted too
    app.add_middleware(LastResort)  # outside the counter: an escaped error counts as a 500

    async def _database(request: Request, exc: Exception) -> Response:
        if is_unavailable(exc):
            health.failed(exc)
            return error_response(unavailable(retry_after))
        refused = _refused_value(exc)
        if refused is not None:  # out of range, too long for its column
            return error_response(InvalidInput(f"value refused by the database: {refused}"))
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return Response(b"Internal error", status_code=500, media_type="text/plain")

    for error_class in _DB_ERRORS:
        app.add_exception_handler(error_class, _database)

    app.state.api_spec = api_document()
    return app


def api_document() -> bytes:
    """The Swagger 2.0 document served at ``/0.2/api/api.yml`` (``api.yml`` beside this module).

    Kept by hand, as wazo-provd's is, because the handlers read their bodies themselves and
    FastAPI cannot see them; tests/api/test_swagger.py holds it to the registered routes, a
    spec validator and real responses.
    """
    return (resources.files("provisor.api") / "api.yml").read_bytes()
