"""Three tenants on one running provisor: the master and two sub-tenants, A and B.

Each tenant gets a token (``provd.#``, the default ACL of ``provisor token create``), a REST
client, a config holding a SIP password and an admin password nobody else may read, a device
using it (which has fetched its phone file once, so the request trace knows it), a provisioning
key, a config carrying a provisioning code and a synchronize operation. The master also owns a
config created without ``Wazo-Tenant`` (as wazo-confd creates line configs) and a repository
update operation. Every secret value is unique per tenant and listed in ``Tenant.secrets``, so
a test can assert that none of them reaches another tenant's answer.

``world`` is built once per test module (the isolation matrix only reads, and every refused
request changes nothing); ``fresh_world`` once per test, for tests that change state.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.conftest import PG_URL, Server, _pg_database, _pg_drop, make_settings, start_server

UA = "TestPhone-TP100/1.2.3 ({mac})"


@dataclass
class Tenant:
    """One tenant of the world, its client and the objects it owns."""

    name: str
    uuid: str
    token: str
    api: httpx.AsyncClient
    index: int
    config: str = ""
    device: str = ""
    mac: str = ""
    ip: str = ""
    op: str = ""  # a synchronize operation id
    pg_op: str = ""  # a plugin repository operation id (master only)
    code: str = ""  # a provisioning code carried by one of its configs
    key: str = ""
    override: str = ""  # a marker in its tenant-scope template override
    snapshot: dict[str, Any] = field(default_factory=dict)  # its device as seeded
    secrets: list[str] = field(default_factory=list)


@dataclass
class World:
    """The running server and its three tenants."""

    server: Server
    master: Tenant
    a: Tenant
    b: Tenant

    def tenant(self, name: str) -> Tenant:
        """A tenant by name (master, a, b)."""
        return {"master": self.master, "a": self.a, "b": self.b}[name]


def line_config(config_id: str, password: str, admin: str, **extra: Any) -> dict[str, Any]:
    """A config body with one SIP line and an admin password."""
    return {
        "config": {
            "id": config_id,
            "parent_ids": ["base"],
            "raw_config": {
                "admin_password": admin,
                "sip_lines": {"1": {"username": f"user-{config_id}", "password": password}},
            },
            **extra,
        }
    }


async def _seed(server: Server, t: Tenant) -> None:
    pw, admin = f"SipPw-{t.name}-{secrets.token_hex(6)}", f"Admin-{t.name}-{secrets.token_hex(6)}"
    t.secrets += [pw, admin]
    t.config, t.device = f"cfg-{t.name}", f"dev-{t.name}"
    t.mac, t.ip = f"00:11:22:33:44:0{t.index}", f"10.20.{t.index}.1"
    r = await t.api.post("/0.2/cfg_mgr/configs", json=line_config(t.config, pw, admin))
    assert r.status_code == 201, r.text
    t.code = f"77{t.index}1"
    code_pw = f"CodePw-{t.name}-{secrets.token_hex(6)}"
    t.secrets.append(code_pw)
    body = line_config(f"code-{t.name}", code_pw, admin, provisioning_code=t.code)
    assert (await t.api.post("/0.2/cfg_mgr/configs", json=body)).status_code == 201
    device = {"id": t.device, "mac": t.mac, "ip": t.ip, "config": t.config, "plugin": "testphone"}
    r = await t.api.post("/0.2/dev_mgr/devices", json={"device": device})
    assert r.status_code == 201, r.text
    r = await t.api.get(f"/0.2/dev_mgr/devices/{t.device}/provisioning_token")
    t.secrets.append(r.json()["provisioning_token"])
    t.key = f"key-{t.name}-{secrets.token_hex(8)}"
    t.secrets.append(t.key)
    r = await t.api.put("/0.2/configure/provisioning_key", json={"param": {"value": t.key}})
    assert r.status_code == 204, r.text
    marker = t.override = f"Override-{t.name}-{secrets.token_hex(6)}"
    t.secrets.append(marker)
    r = await t.api.put(
        "/0.2/pg_mgr/plugins/testphone/templates/tenant/common.cfg",
        json={"template": {"source": f"# {marker}\n"}},
    )
    assert r.status_code == 204, r.text
    r = await t.api.post("/0.2/dev_mgr/synchronize", json={"id": t.device})
    assert r.status_code == 201, r.text
    t.op = r.headers["location"].rsplit("/", 1)[1]
    # the phone fetches its file once (null mode: identified by its MAC), so the trace knows it
    keyed = server.prov.settings.general.http_auth_strategy == "url_key"
    r = await server.phone.get(
        f"{'/' + t.key if keyed else ''}/{t.mac.replace(':', '')}.cfg",
        headers={"User-Agent": UA.format(mac=t.mac)},
    )
    assert r.status_code == 200 and pw.encode() in r.content, r.text
    # the fetch moved the device to 127.0.0.1 (taken from the others): give it its own again
    r = await t.api.put(f"/0.2/dev_mgr/devices/{t.device}", json={"device": device})
    assert r.status_code == 204, r.text


async def build_world(server: Server) -> World:
    """Create tenants A and B under the master, their tokens and their objects."""
    prov = server.prov
    a_uuid = (await prov.tenants.create("tenant-a")).uuid
    b_uuid = (await prov.tenants.create("tenant-b")).uuid
    made = []
    for index, (name, uuid) in enumerate(
        (("master", server.master), ("a", a_uuid), ("b", b_uuid)), start=1
    ):
        token = server.token if name == "master" else await server.token_for(uuid)
        made.append(Tenant(name, uuid, token, server.client(token), index))
    world = World(server, *made)
    for t in made:
        await _seed(server, t)
    for t in made:
        r = await t.api.get(f"/0.2/dev_mgr/devices/{t.device}")
        t.snapshot = r.json()["device"]
    r = await world.master.api.post("/0.2/pg_mgr/install/update")
    assert r.status_code == 201, r.text
    world.master.pg_op = r.headers["location"].rsplit("/", 1)[1]
    return world


async def close_world(world: World) -> None:
    """Close the clients and stop the server."""
    for t in (world.master, world.a, world.b):
        await t.api.aclose()
    await world.server.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    """A three-tenant server shared by the tests of one module (read-only tests)."""
    tmp: Path = tmp_path_factory.mktemp("world")
    name = None
    if PG_URL:
        url, name = await _pg_database()
    else:
        url = f"sqlite+aiosqlite:///{tmp / 'provisor.db'}"
    server = await start_server(make_settings(tmp, url))
    built = await build_world(server)
    try:
        yield built
    finally:
        await close_world(built)
        if name is not None:
            await _pg_drop(name)


@pytest.fixture
async def fresh_world(server: Server) -> AsyncIterator[World]:
    """A three-tenant server of its own, for a test that changes state."""
    built = await build_world(server)
    try:
        yield built
    finally:
        for t in (built.master, built.a, built.b):
            await t.api.aclose()
