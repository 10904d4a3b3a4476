"""Hot REST endpoints called without FastAPI's routing and exception layers.

Why: profiled under one sequential client creating devices, FastAPI's routing, exception and
exit-stack layers took about half of a request's Python time, more than the endpoint itself
(docs/benchmarks.md). The endpoints listed here take only the request (no path parameters, no
FastAPI dependencies), so this middleware calls them directly for an exact method and path,
and answers their exceptions with the app's own handlers, so every status and message stays
the one the full stack gives; an exception without a handler goes on up, as it would have.
Everything else, and any other method on these paths, goes through FastAPI unchanged.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, APIRouter
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["FAST_ROUTES", "FastRoutes"]

#: (method, path) of the endpoints served here
FAST_ROUTES = (("POST", "/0.2/dev_mgr/devices"),)

Endpoint = Callable[[Request], Awaitable[Response]]
Handler = Callable[[Request, Any], Any]


def _direct_routes(
    routers: Iterable[APIRouter], wanted: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], tuple[Endpoint, APIRoute]]:
    """The endpoints of ``wanted`` that take the request alone (others stay with FastAPI)."""
    found: dict[tuple[str, str], tuple[Endpoint, APIRoute]] = {}
    keys = set(wanted)
    for route in (r for router in routers for r in router.routes):
        if not isinstance(route, APIRoute):
            continue
        params = list(inspect.signature(route.endpoint).parameters.values())
        if len(params) != 1 or params[0].annotation not in (Request, "Request"):
            continue
        for method in route.methods or ():
            if (method, route.path) in keys:
                found[(method, route.path)] = (route.endpoint, route)
    return found


class FastRoutes:
    """Call the listed endpoints straight from the middleware stack (see the module doc)."""

    def __init__(self, app: ASGIApp, api: FastAPI, routers: Iterable[APIRouter]) -> None:
        self.app = app
        self.api = api
        self.routes = _direct_routes(routers, FAST_ROUTES)

    def _handler(self, exc: Exception) -> Handler | None:
        handlers: dict[Any, Handler] = dict(self.api.exception_handlers)
        for cls in type(exc).__mro__:
            if cls is Exception:  # the catch-all answers from the outermost layer, as before
                return None
            if cls in handlers:
                return handlers[cls]
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hit = (
            self.routes.get((scope["method"], scope["path"]))
            if scope["type"] == "http" and not scope.get("root_path")
            else None
        )
        if hit is None:
            await self.app(scope, receive, send)
            return
        endpoint, route = hit
        scope["route"] = route  # what the request counter labels by
        request = Request(scope, receive, send)
        try:
            response = await endpoint(request)
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                raise
            answer = handler(request, exc)
            response = await answer if inspect.isawaitable(answer) else answer
        await response(scope, receive, send)
