"""``/0.2/api/api.yml``: a Swagger 2.0 document that says what the running server does.

Three checks hold the hand-kept document to the code: a real spec validator (the one
wazo-provd's own suite runs), the routes registered in the FastAPI app (each documented, and
nothing documented that is not served), and real answers of a running server to real requests
(each status documented for its operation, each body valid against the documented schema,
each request body valid against the documented body parameter).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import jsonschema
import pytest
import yaml
from openapi_spec_validator import OpenAPIV2SpecValidator
from starlette.routing import Route

from provisor.api.app import create_api
from provisor.api.extensions import extra_routers
from tests.conftest import Server

BASE = "/0.2"


async def _document(server: Server) -> dict[str, Any]:
    async with server.client("no-token") as anon:
        del anon.headers["X-Auth-Token"]
        r = await anon.get(f"{BASE}/api/api.yml")
    assert r.status_code == 200
    doc: dict[str, Any] = yaml.safe_load(r.text)
    return doc


def _shape(template: str) -> str:
    """A path template with its parameter names erased (``{device_id}`` and ``{x}`` alike)."""
    return re.sub(r"\{[^}]+\}", "{}", template)


def _json_schema(schema: Any) -> Any:
    """A Swagger 2.0 schema as JSON Schema: ``x-nullable: true`` also allows null."""
    if isinstance(schema, list):
        return [_json_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _json_schema(v) for k, v in schema.items()}
    if out.pop("x-nullable", False):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        elif "$ref" in out:
            out = {"anyOf": [{"$ref": out["$ref"]}, {"type": "null"}]}
    return out


@dataclass
class Checker:
    """Matches real exchanges to the document's operations and validates them."""

    doc: dict[str, Any]
    seen: set[tuple[str, str, int]] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.definitions = _json_schema(self.doc["definitions"])
        self.routes: list[tuple[re.Pattern[str], str]] = []
        for template in self.doc["paths"]:
            pattern = re.escape(template).replace(r"\{name\}", "(.+)")
            pattern = re.sub(r"\\\{[a-z_]+\\\}", "([^/]+)", pattern)
            self.routes.append((re.compile(f"{pattern}/?"), template))

    def _resolve(self, item: dict[str, Any], section: str) -> dict[str, Any]:
        ref = item.get("$ref")
        if ref is None:
            return item
        resolved: dict[str, Any] = self.doc[section][ref.rsplit("/", 1)[1]]
        return resolved

    def _validate(self, schema: dict[str, Any], value: Any, what: str) -> None:
        full = dict(_json_schema(schema), definitions=self.definitions)
        try:
            jsonschema.Draft4Validator(full).validate(value)
        except jsonschema.ValidationError as exc:
            self.problems.append(f"{what}: {exc.message}")

    def check(self, response: httpx.Response) -> None:
        """Record one exchange; a status or body the document does not describe is a problem."""
        request = response.request
        path = request.url.path.removeprefix(BASE) or "/"
        method = request.method.lower()
        what = f"{request.method} {request.url.path} → {response.status_code}"
        templates = [t for rx, t in self.routes if rx.fullmatch(path)]
        # the most specific template wins (``/configure/{param_id}`` over nothing else, and a
        # literal path segment over a parameter)
        templates.sort(key=lambda t: t.count("{"))
        if not templates or method not in self.doc["paths"][templates[0]]:
            self.problems.append(f"{what}: no such operation in the document")
            return
        template = templates[0]
        operation = self.doc["paths"][template][method]
        self.seen.add((template, method, response.status_code))
        responses = operation["responses"]
        if str(response.status_code) not in responses:
            self.problems.append(f"{what}: status not documented for {template}")
            return
        documented = self._resolve(responses[str(response.status_code)], "responses")
        for header in documented.get("headers", {}):
            if header not in response.headers:
                self.problems.append(f"{what}: documented header {header} missing")
        schema = documented.get("schema")
        if schema is None:
            if response.content:
                self.problems.append(f"{what}: a body where the document says none")
        elif response.headers.get("content-type", "").startswith(
            ("text/plain", "application/yaml")
        ):
            self._validate(schema, response.text, what)
        else:
            self._validate(schema, response.json(), what)
        if request.content and response.status_code < 300:
            params = [
                self._resolve(p, "parameters")
                for p in self.doc["paths"][template].get("parameters", [])
                + operation.get("parameters", [])
            ]
            bodies = [p for p in params if p["in"] == "body"]
            if not bodies:
                self.problems.append(f"{what}: a request body the document does not take")
            else:
                self._validate(bodies[0]["schema"], json.loads(request.content), f"{what} body")


@pytest.fixture
async def checked(server: Server) -> Iterator[Checker]:
    """A Checker fed by event hooks on the server's clients."""
    checker = Checker(await _document(server))

    async def hook(response: httpx.Response) -> None:
        await response.aread()
        checker.check(response)

    server.api.event_hooks["response"].append(hook)
    yield checker
    server.api.event_hooks["response"].remove(hook)


async def test_document_is_valid_swagger_2(server: Server) -> None:
    doc = await _document(server)
    assert doc["swagger"] == "2.0" and doc["basePath"] == BASE
    errors = [e.message for e in OpenAPIV2SpecValidator(doc).iter_errors()]
    assert errors == []


async def test_validator_catches_a_broken_document(server: Server) -> None:
    """The validation above can fail: a path parameter left undeclared is an error."""
    doc = await _document(server)
    doc["paths"]["/dev_mgr/devices/{device_id}"].pop("parameters")
    assert list(OpenAPIV2SpecValidator(doc).iter_errors())


def _routes(routes: list[Any]) -> Iterator[Route]:
    """Every endpoint route, through included routers (FastAPI ≥ 0.160 keeps them nested; the
    app includes them without a prefix, so their routes carry their full paths)."""
    for route in routes:
        if isinstance(route, Route):
            yield route
        elif hasattr(route, "original_router"):
            yield from _routes(route.original_router.routes)


def _served(server: Server) -> set[tuple[str, str]]:
    app = create_api(server.prov, extra_routers=extra_routers())
    served: set[tuple[str, str]] = set()
    for route in _routes(app.routes):
        if not route.path.startswith(BASE):
            continue
        path = route.path.removeprefix(BASE) or "/"
        for method in route.methods or ():
            if method != "HEAD":
                served.add((_shape(path.replace(":path}", "}")), method.lower()))
    return served


async def test_every_route_is_documented_and_nothing_else(server: Server) -> None:
    doc = await _document(server)
    documented = {
        (_shape(path), method)
        for path, item in doc["paths"].items()
        for method in item
        if method != "parameters"
    }
    served = _served(server)
    assert served - documented == set(), "served but not documented"
    assert documented - served == set(), "documented but not served"
    assert len(served) >= 60


async def test_every_operation_documents_auth_and_database_errors(server: Server) -> None:
    doc = await _document(server)
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if method == "parameters" or operation.get("security") == []:
                continue
            assert {"401", "503"} <= set(operation["responses"]), (path, method)
            has_body = any(p.get("in") == "body" for p in operation.get("parameters", []))
            if has_body:
                assert {"400", "413", "415"} <= set(operation["responses"]), (path, method)
            codes = {int(c) for c in operation["responses"]}
            assert 422 not in codes, (path, method)


async def test_checker_refuses_undocumented_answers(server: Server) -> None:
    """The response check can fail: a status and a body the document does not describe."""
    checker = Checker(await _document(server))
    request = httpx.Request("GET", f"{server.rest_url}{BASE}/dev_mgr/devices/x")
    checker.check(httpx.Response(418, request=request))
    checker.check(httpx.Response(200, json={"device": {"id": 5}}, request=request))
    assert len(checker.problems) == 2, checker.problems


async def test_devices_answers_match_the_document(server: Server, checked: Checker) -> None:
    api = server.api
    assert (await api.get(f"{BASE}")).status_code == 200
    assert (await api.get(f"{BASE}/")).status_code == 200
    assert (await api.get(f"{BASE}/status")).status_code == 200
    assert (await api.get(f"{BASE}/dev_mgr")).status_code == 200
    body = {"device": {"id": "sw1", "mac": "00:15:65:AA:BB:01", "ip": "10.0.0.5"}}
    r = await api.post(f"{BASE}/dev_mgr/devices", json=body)
    assert r.status_code == 201 and r.headers["location"].endswith("/sw1")
    assert (await api.post(f"{BASE}/dev_mgr/devices", json=body)).status_code == 409
    r = await api.post(f"{BASE}/dev_mgr/devices", json={"device": {"vendor": "Yealink"}})
    assert r.status_code == 201
    assert (await api.get(f"{BASE}/dev_mgr/devices/sw1")).status_code == 200
    q = json.dumps({"mac": "00:15:65:aa:bb:01"})
    r = await api.get(f"{BASE}/dev_mgr/devices", params={"q": q, "sort": "id"})
    assert r.status_code == 200 and len(r.json()["devices"]) == 1
    q64 = base64.b64encode(q.encode()).decode()
    r = await api.get(f"{BASE}/dev_mgr/devices", params={"q64": q64, "fields": "id,mac"})
    assert r.status_code == 200
    assert (await api.get(f"{BASE}/dev_mgr/devices", params={"q": "{"})).status_code == 400
    assert (await api.get(f"{BASE}/dev_mgr/devices", params={"skip": "x"})).status_code == 400
    body["device"]["description"] = "front desk"
    assert (await api.put(f"{BASE}/dev_mgr/devices/sw1", json=body)).status_code == 204
    r = await api.put(f"{BASE}/dev_mgr/devices/sw1", json={"device": {"mac": "nope"}})
    assert r.status_code == 400
    assert (await api.get(f"{BASE}/dev_mgr/devices/nope")).status_code == 404
    assert (await api.get(f"{BASE}/dev_mgr/devices/bad%20id")).status_code == 400
    token = f"{BASE}/dev_mgr/devices/sw1/provisioning_token"
    assert (await api.get(token)).status_code == 200
    assert (await api.post(token)).status_code == 200
    r = await api.post(f"{BASE}/dev_mgr/reconfigure", json={"id": "sw1"})
    assert r.status_code == 204
    r = await api.post(f"{BASE}/dev_mgr/synchronize", json={"id": "sw1"})
    assert r.status_code == 201
    op = r.headers["location"].removeprefix(server.rest_url)
    assert (await api.get(op)).status_code == 200
    assert (await api.delete(op)).status_code == 204
    assert (await api.get(op)).status_code == 404
    r = await api.post(f"{BASE}/dev_mgr/synchronize", json={"config": "base"})
    assert r.status_code == 201
    r = await api.post(
        f"{BASE}/dev_mgr/dhcpinfo",
        json={
            "dhcp_info": {
                "op": "commit",
                "ip": "10.0.0.9",
                "mac": "00:15:65:aa:bb:02",
                "options": ["060.79.65.61.6c.69.6e.6b"],
            }
        },
    )
    assert r.status_code == 204
    r = await api.post(f"{BASE}/dev_mgr/dhcpinfo", json={"dhcp_info": {"op": "renew"}})
    assert r.status_code == 400
    assert (await api.get(f"{BASE}/dev_mgr/requests", params={"limit": 5})).status_code == 200
    assert (await api.get(f"{BASE}/dev_mgr/requests", params={"limit": 0})).status_code == 400
    r = await api.post(f"{BASE}/dev_mgr/provisioning_code", json={"code": "1234"})
    assert r.status_code == 404
    r = await api.post(f"{BASE}/dev_mgr/provisioning_code", json={"code": "x"})
    assert r.status_code == 400
    # protocol errors: Accept, Content-Type, size, token
    r = await api.get(f"{BASE}/dev_mgr/devices", headers={"Accept": "text/html"})
    assert r.status_code == 406
    r = await api.post(
        f"{BASE}/dev_mgr/devices", content=b"{}", headers={"Content-Type": "text/plain"}
    )
    assert r.status_code == 415
    big = {"device": {"description": "x" * (server.prov.settings.rest_api.max_body_bytes + 1)}}
    assert (await api.post(f"{BASE}/dev_mgr/devices", json=big)).status_code == 413
    r = await api.get(f"{BASE}/dev_mgr/devices", headers={"X-Auth-Token": "nope"})
    assert r.status_code == 401
    assert (await api.delete(f"{BASE}/dev_mgr/devices/sw1")).status_code == 204
    assert (await api.delete(f"{BASE}/dev_mgr/devices/sw1")).status_code == 404
    assert checked.problems == []
    assert len(checked.seen) >= 31  # (operation, status) pairs


async def test_ports_answers_match_the_document(server: Server, checked: Checker) -> None:
    """The shared-device ports extension, as the master (owner and port tenant at once)."""
    api = server.api
    master = await server.prov.master_tenant()
    body = {"device": {"id": "gw1", "mac": "00:0b:82:5a:00:99"}}
    assert (await api.post(f"{BASE}/dev_mgr/devices", json=body)).status_code == 201
    port = f"{BASE}/dev_mgr/devices/gw1/ports/2"
    assert (await api.get(port)).status_code == 404
    assert (await api.put(port, json={"port": {"tenant_uuid": master}})).status_code == 204
    assert (await api.put(port, json={"port": {"config": "base"}})).status_code == 204
    assert (await api.put(port, json={"port": {"config": "nope"}})).status_code == 400
    assert (
        await api.put(f"{BASE}/dev_mgr/devices/gw1/ports/0", json={"port": {}})
    ).status_code == 400
    assert (await api.get(port)).status_code == 200
    assert (await api.get(f"{BASE}/dev_mgr/devices/gw1/ports")).status_code == 200
    assert (await api.get(f"{BASE}/dev_mgr/ports", params={"recurse": "true"})).status_code == 200
    assert (await api.delete(port)).status_code == 204
    assert (await api.delete(port)).status_code == 404
    assert checked.problems == []
    assert len(checked.seen) >= 8


async def test_configs_and_params_answers_match_the_document(
    server: Server, checked: Checker
) -> None:
    api = server.api
    assert (await api.get(f"{BASE}/cfg_mgr")).status_code == 200
    config = {
        "config": {
            "id": "line1",
            "parent_ids": ["base"],
            "raw_config": {"sip_lines": {"1": {"username": "u1", "password": "Secret9"}}},
        }
    }
    r = await api.post(f"{BASE}/cfg_mgr/configs", json=config)
    assert r.status_code == 201
    assert (await api.post(f"{BASE}/cfg_mgr/configs", json=config)).status_code == 409
    r = await api.post(f"{BASE}/cfg_mgr/configs", json={"config": {"parent_ids": ["nope"]}})
    assert r.status_code == 400
    assert (await api.get(f"{BASE}/cfg_mgr/configs/line1")).status_code == 200
    assert (await api.get(f"{BASE}/cfg_mgr/configs")).status_code == 200
    assert (await api.get(f"{BASE}/cfg_mgr/configs/line1/raw")).status_code == 200
    config["config"]["label"] = "Line one"
    assert (await api.put(f"{BASE}/cfg_mgr/configs/line1", json=config)).status_code == 204
    assert (await api.delete(f"{BASE}/cfg_mgr/configs/base")).status_code == 403
    assert (await api.delete(f"{BASE}/cfg_mgr/configs/line1")).status_code == 204
    assert (await api.get(f"{BASE}/cfg_mgr/configs/line1")).status_code == 404
    r = await api.post(f"{BASE}/cfg_mgr/autocreate", json={})
    assert r.status_code in (201, 404)
    sub = (await server.prov.tenants.create("sub", parent_uuid=server.master)).uuid
    async with server.client(await server.token_for(sub)) as tenant_api:
        tenant_api.event_hooks["response"] = server.api.event_hooks["response"]
        r = await tenant_api.post(
            f"{BASE}/cfg_mgr/configs", json={"config": {"id": "s1", "shared": True}}
        )
        assert r.status_code == 403
        r = await tenant_api.get(f"{BASE}/configure/plugin_server")
        assert r.status_code == 401
    assert (await api.get(f"{BASE}/configure")).status_code == 200
    assert (await api.get(f"{BASE}/configure/locale")).status_code == 200
    assert (await api.get(f"{BASE}/configure/nope")).status_code == 404
    r = await api.put(f"{BASE}/configure/locale", json={"param": {"value": "fr_FR"}})
    assert r.status_code == 204
    r = await api.put(f"{BASE}/configure/locale", json={"param": {"value": "french"}})
    assert r.status_code == 400
    r = await api.put(f"{BASE}/configure/provisioning_key", json={"param": {"value": None}})
    assert r.status_code == 204
    assert checked.problems == []
    assert len(checked.seen) >= 19


async def test_plugins_and_tenants_answers_match_the_document(
    server: Server, checked: Checker
) -> None:
    api = server.api
    pg = f"{BASE}/pg_mgr"
    for path in (
        pg,
        f"{pg}/install",
        f"{pg}/install/installable",
        f"{pg}/install/installed",
        f"{pg}/plugins",
        f"{pg}/plugins/testphone",
        f"{pg}/plugins/testphone/info",
        f"{pg}/plugins/testphone/install",
        f"{pg}/plugins/testphone/install/installable",
        f"{pg}/plugins/testphone/install/installed",
        f"{pg}/plugins/testphone/templates",
    ):
        assert (await api.get(path)).status_code == 200, path
    assert (await api.get(f"{pg}/plugins/nope")).status_code == 404
    r = await api.post(f"{pg}/install/update")
    assert r.status_code == 201
    op = r.headers["location"].removeprefix(server.rest_url)
    assert (await api.get(op)).status_code == 200
    assert (await api.delete(op)).status_code == 204
    r = await api.post(f"{pg}/install/install", json={"id": "no-such-plugin"})
    assert r.status_code in (400, 404, 409)
    r = await api.post(f"{pg}/install/uninstall", json={"id": "no-such-plugin"})
    assert r.status_code in (400, 404, 409)
    r = await api.post(f"{pg}/plugins/testphone/install/install", json={"id": "nope"})
    assert r.status_code == 400
    template = f"{pg}/plugins/testphone/templates/tenant/common.cfg"
    r = await api.put(template, json={"template": {"source": "# {{ 1 + 1 }}\n"}})
    assert r.status_code == 204
    r = await api.put(template, json={"template": {"source": "{% if %}"}})
    assert r.status_code == 400
    assert (await api.get(f"{pg}/plugins/testphone/templates")).status_code == 200
    assert (await api.delete(template)).status_code == 204
    assert (await api.delete(template)).status_code == 404
    # testphone comes from a plugin folder of the settings, not an install: nothing to reload
    assert (await api.post(f"{pg}/reload", json={"id": "testphone"})).status_code == 400
    tm = f"{BASE}/tenant_mgr/tenants"
    assert (await api.get(tm)).status_code == 200
    r = await api.post(tm, json={"tenant": {"name": "acme"}})
    assert r.status_code == 201
    uuid = r.json()["id"]
    assert (await api.get(f"{tm}/{uuid}")).status_code == 200
    assert (await api.get(f"{tm}/{server.master}")).status_code == 200
    r = await api.put(f"{tm}/{uuid}", json={"tenant": {"name": "acme2"}})
    assert r.status_code == 204
    r = await api.put(f"{tm}/{uuid}", json={"tenant": {"color": "red"}})
    assert r.status_code == 400
    assert (await api.get(f"{tm}/{uuid}/tftp")).status_code == 200
    r = await api.put(f"{tm}/{uuid}/tftp", json={"tftp": {"enabled": False}})
    assert r.status_code == 204
    assert (await api.delete(f"{tm}/{uuid}")).status_code == 204
    assert (await api.get(f"{tm}/{uuid}")).status_code == 404
    assert checked.problems == []
    assert len(checked.seen) >= 25
