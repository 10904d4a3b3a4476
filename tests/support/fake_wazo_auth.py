"""A wazo-auth server on 127.0.0.1 speaking the subset provisor uses (edge of the world).

Tokens map to a tenant and ACLs; tenants form a tree; the service credentials give a token
in the master tenant. Calls are counted and can be delayed, to test caching and timeouts.
"""

from __future__ import annotations

import asyncio
import base64
import socket
from collections import Counter
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from provisor.auth.acl import acl_matches


@dataclass
class FakeWazoAuth:
    """State and control of the fake server."""

    master: str = "00000000-0000-4000-8000-00000000000a"
    tokens: dict[str, tuple[str, list[str]]] = field(default_factory=dict)
    parents: dict[str, str | None] = field(default_factory=dict)
    service: tuple[str, str] = ("provd", "service-secret")
    users: dict[tuple[str, str], tuple[str, list[str]]] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    delay: float = 0.0
    #: tenants left out of the next tenant listing only (a tenant deleted and put back at once)
    hidden_once: set[str] = field(default_factory=set)
    #: answer tenant listings with this error status (wazo-auth failing)
    tenants_error: int | None = None
    url: str = ""
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None

    def add_tenant(self, uuid: str, parent: str | None) -> None:
        self.parents[uuid] = parent

    def remove_tenant(self, uuid: str) -> None:
        self.parents.pop(uuid, None)

    def add_token(self, token: str, tenant: str, acl: list[str]) -> None:
        from tests.conftest import register_secret

        register_secret(token)  # never to be seen in a log (tests/conftest.py)
        self.tokens[token] = (tenant, acl)

    def subtree(self, tenant: str) -> set[str]:
        out = {tenant}
        changed = True
        while changed:
            changed = False
            for uuid, parent in self.parents.items():
                if parent in out and uuid not in out:
                    out.add(uuid)
                    changed = True
        return out

    async def _pause(self) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)

    async def head_token(self, request: Request) -> Response:
        self.calls["head"] += 1
        await self._pause()
        token = request.path_params["token"]
        if token not in self.tokens:
            return Response(status_code=404)
        tenant, acl = self.tokens[token]
        if not acl_matches(acl, request.query_params.get("scope", "")):
            return Response(status_code=403)
        wanted = request.query_params.get("tenant")
        if wanted and wanted not in self.subtree(tenant):
            return Response(status_code=403)
        return Response(status_code=204)

    async def get_token(self, request: Request) -> Response:
        self.calls["get"] += 1
        await self._pause()
        token = request.path_params["token"]
        if token not in self.tokens:
            return JSONResponse({"message": "No such token"}, status_code=404)
        tenant, acl = self.tokens[token]
        return JSONResponse(
            {
                "data": {
                    "token": token,
                    "acl": acl,
                    "auth_id": "user",
                    "metadata": {"tenant_uuid": tenant},
                }
            }
        )

    async def tenants(self, request: Request) -> Response:
        self.calls["tenants"] += 1
        await self._pause()
        token = request.headers.get("x-auth-token", "")
        if token not in self.tokens:
            return JSONResponse({"message": "Unauthorized"}, status_code=401)
        own = self.tokens[token][0]
        wanted = request.headers.get("wazo-tenant") or own
        if wanted not in self.subtree(own):
            return JSONResponse({"message": "Unauthorized tenant"}, status_code=401)
        if self.tenants_error is not None:
            return JSONResponse({"message": "failing"}, status_code=self.tenants_error)
        hidden, self.hidden_once = self.hidden_once, set()
        items = [
            {"uuid": u, "parent_uuid": self.parents.get(u)}
            for u in sorted(self.subtree(wanted) - hidden)
        ]
        return JSONResponse({"items": items, "total": len(items)})

    async def delete_token(self, request: Request) -> Response:
        """Revoke a token (wazo-auth answers 200 with no body)."""
        self.calls["delete"] += 1
        if self.tokens.pop(request.path_params["token"], None) is None:
            return JSONResponse({"message": "No such token"}, status_code=404)
        return Response(status_code=200)

    async def post_token(self, request: Request) -> Response:
        self.calls["post"] += 1
        header = request.headers.get("authorization", "")
        try:
            user, _, password = base64.b64decode(header.split(" ", 1)[1]).decode().partition(":")
        except (IndexError, ValueError):
            return Response(status_code=401)
        if (user, password) in self.users:  # a user signing in (the console)
            tenant, acl = self.users[(user, password)]
            token = f"user-token-{self.calls['post']}-{user}"
            self.add_token(token, tenant, acl)
            return JSONResponse({"data": {"token": token, "metadata": {"tenant_uuid": tenant}}})
        if (user, password) != self.service:
            return Response(status_code=401)
        token = f"service-token-{self.calls['post']}"
        self.add_token(token, self.master, ["provd.#", "auth.tenants.read"])
        return JSONResponse(
            {"data": {"token": token, "expires_in": 3600, "metadata": {"tenant_uuid": self.master}}}
        )

    async def start(self) -> FakeWazoAuth:
        from tests.conftest import register_secret

        register_secret(self.service[1])
        self.parents.setdefault(self.master, None)
        app = Starlette(
            routes=[
                Route("/0.1/token/{token}", self.head_token, methods=["HEAD"]),
                Route("/0.1/token/{token}", self.get_token, methods=["GET"]),
                Route("/0.1/token/{token}", self.delete_token, methods=["DELETE"]),
                Route("/0.1/token", self.post_token, methods=["POST"]),
                Route("/0.1/tenants", self.tenants, methods=["GET"]),
            ]
        )
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self._server.capture_signals = _no_signals  # type: ignore[method-assign]
        self._task = asyncio.get_running_loop().create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            await asyncio.sleep(0.01)
        return self

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task


def _no_signals():  # type: ignore[no-untyped-def]
    import contextlib

    return contextlib.nullcontext()


async def start_fake_wazo_auth() -> FakeWazoAuth:
    """Start a fake wazo-auth on 127.0.0.1."""
    return await FakeWazoAuth().start()
