"""The endpoints served straight from the middleware (api/fastroutes.py) answer every request,
good or bad, exactly as the full FastAPI stack answers it."""

from __future__ import annotations

from typing import Any

import httpx

from provisor.api.app import create_api
from provisor.api.fastroutes import FAST_ROUTES, FastRoutes
from provisor.api.http import MIME
from tests.conftest import Server

H = {"Accept": MIME, "Content-Type": MIME}


def _fast_layer(app: Any) -> FastRoutes:
    layer = app.middleware_stack
    while layer is not None and not isinstance(layer, FastRoutes):
        layer = getattr(layer, "app", None)
    assert isinstance(layer, FastRoutes)
    return layer


async def test_fast_routes_answer_as_the_full_stack(server: Server) -> None:
    fast_app, full_app = create_api(server.prov), create_api(server.prov)
    token = server.token
    limit = server.prov.settings.rest_api.max_body_bytes
    big = b'{"device": {"id": "IDX", "description": "' + b"x" * limit + b'"}}'
    cases: list[tuple[str, dict[str, str], bytes]] = [
        (
            "good",
            {**H, "X-Auth-Token": token},
            b'{"device": {"id": "IDX", "mac": "00:11:22:33:44:55"}}',
        ),
        ("duplicate", {**H, "X-Auth-Token": token}, b'{"device": {"id": "dup"}}'),
        ("no token", H, b'{"device": {}}'),
        ("bad token", {**H, "X-Auth-Token": "nope"}, b'{"device": {}}'),
        ("accept", {**H, "X-Auth-Token": token, "Accept": "text/html"}, b'{"device": {}}'),
        ("media", {**H, "X-Auth-Token": token, "Content-Type": "text/plain"}, b"{}"),
        ("syntax", {**H, "X-Auth-Token": token}, b'{"device": '),
        ("nan", {**H, "X-Auth-Token": token}, b'{"device": {"description": NaN}}'),
        ("no key", {**H, "X-Auth-Token": token}, b'{"dev": {}}'),
        ("bad mac", {**H, "X-Auth-Token": token}, b'{"device": {"mac": "zz"}}'),
        ("bad id", {**H, "X-Auth-Token": token}, b'{"device": {"id": "../x"}}'),
        ("bad config", {**H, "X-Auth-Token": token}, b'{"device": {"config": "nowhere"}}'),
        (
            "too big",
            {**H, "X-Auth-Token": token},
            big,
        ),
        ("tenant", {**H, "X-Auth-Token": token, "Wazo-Tenant": "not-a-tenant"}, b'{"device": {}}'),
    ]
    await server.api.post("/0.2/dev_mgr/devices", json={"device": {"id": "dup"}})
    answers: dict[str, list[tuple[int, str, bytes]]] = {}
    for name, app in (("fast", fast_app), ("full", full_app)):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            await client.get("/0.2/status")  # builds the middleware stack
            layer = _fast_layer(app)
            if name == "full":
                layer.routes = {}  # every request through FastAPI's routing
            else:
                assert set(layer.routes) == set(FAST_ROUTES)
            got = []
            for case, headers, body in cases:
                body = body.replace(b"IDX", name.encode())
                r = await client.post("/0.2/dev_mgr/devices", headers=headers, content=body)
                text = r.content.replace(name.encode(), b"IDX")
                got.append((r.status_code, r.headers.get("content-type", ""), text))
                assert r.status_code != 500, (case, r.text)
            answers[name] = got
    assert answers["fast"] == answers["full"]
    statuses = dict(zip([c[0] for c in cases], [a[0] for a in answers["fast"]], strict=True))
    assert statuses["good"] == 201 and statuses["duplicate"] == 409
    assert statuses["no token"] == 401 and statuses["accept"] == 406
    assert statuses["media"] == 415 and statuses["too big"] == 413
    assert statuses["syntax"] == statuses["nan"] == statuses["no key"] == 400
