"""A gateway shared by tenants: each tenant manages and reads only its own ports.

One running provisor (real HTTP, real database) with three tenants of tests.security.conftest
(master, A, B) and a Grandstream HT814 (three analog ports, a shipped plugin) owned by A:
port 1 is A's own line (A's device config), the master (A's and B's common ancestor) assigns
port 2 to B and port 3 to itself, and each port tenant gives its port a line from a config it
owns. Every endpoint that could show or change another tenant's port is tried by each tenant:
an object it may not see gets exactly the answer of a missing one, no answer carries another
tenant's line, and the gateway's file carries every port.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.conftest import (
    PG_URL,
    REPO_PLUGINS,
    TEST_PLUGINS,
    Server,
    _pg_database,
    _pg_drop,
    make_settings,
    start_server,
)
from tests.security.conftest import Tenant, World, build_world, close_world

pytestmark = pytest.mark.asyncio(loop_scope="module")

GW = "gw-ht814"
GW_MAC = "00:0b:82:5a:00:14"
GW_FILE = f"/cfg{GW_MAC.replace(':', '')}.xml"
MISSING_DEV = "gw-none"


@dataclass
class Gateway:
    """The world, the gateway and each tenant's secret on it."""

    world: World
    secret: dict[str, list[str]] = field(default_factory=dict)  # tenant name -> its values
    config: dict[str, str] = field(default_factory=dict)  # tenant name -> its gateway config

    def others(self, name: str) -> list[str]:
        """Every gateway secret that is not ``name``'s."""
        return [s for n, values in self.secret.items() if n != name for s in values]


def _line_config(config_id: str, port: int, password: str, **top: Any) -> dict[str, Any]:
    return {
        "config": {
            "id": config_id,
            "parent_ids": ["base"],
            "raw_config": {
                "sip_lines": {
                    str(port): {
                        "username": f"{config_id}-user",
                        "password": password,
                        "display_name": f"{config_id} port {port}",
                    }
                },
                **top,
            },
        }
    }


async def build_gateway(server: Server) -> Gateway:
    """The three-tenant world plus the gateway: A owns it, B and the master hold ports."""
    world = await build_world(server)
    gw = Gateway(world)
    a, b, master = world.a, world.b, world.master
    for t, port in ((a, 1), (b, 2), (master, 3)):
        pw = f"GwPw-{t.name}-{secrets.token_hex(6)}"
        gw.secret[t.name] = [pw]
        gw.config[t.name] = f"gwcfg-{t.name}"
        top = {"admin_password": f"GwAdmin-{secrets.token_hex(6)}"} if t is a else {}
        gw.secret[t.name] += list(top.values())
        if t is b:  # B's line registers on B's own PBX
            top = {"sip_proxy_ip": "192.0.2.22"}
        r = await t.api.post(
            "/0.2/cfg_mgr/configs", json=_line_config(gw.config[t.name], port, pw, **top)
        )
        assert r.status_code == 201, r.text
    device = {
        "id": GW,
        "mac": GW_MAC,
        "vendor": "Grandstream",
        "model": "HT814",
        "plugin": "grandstream",
        "config": gw.config["a"],
    }
    r = await a.api.post("/0.2/dev_mgr/devices", json={"device": device})
    assert r.status_code == 201, r.text
    # the common ancestor assigns the ports; each port tenant gives its port a line
    for port, t in ((2, b), (3, master)):
        r = await master.api.put(
            f"/0.2/dev_mgr/devices/{GW}/ports/{port}", json={"port": {"tenant_uuid": t.uuid}}
        )
        assert r.status_code == 204, r.text
        r = await t.api.put(
            f"/0.2/dev_mgr/devices/{GW}/ports/{port}", json={"port": {"config": gw.config[t.name]}}
        )
        assert r.status_code == 204, r.text
    return gw


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Gateway]:
    """A server with the shipped plugins, three tenants and the shared gateway (read-only)."""
    tmp: Path = tmp_path_factory.mktemp("gateway")
    name = None
    if PG_URL:
        url, name = await _pg_database()
    else:
        url = f"sqlite+aiosqlite:///{tmp / 'provisor.db'}"
    plugins = [str(TEST_PLUGINS), str(REPO_PLUGINS)]
    server = await start_server(make_settings(tmp, url, **{"general.plugin_dirs": plugins}))
    built = await build_gateway(server)
    try:
        yield built
    finally:
        await close_world(built.world)
        if name is not None:
            await _pg_drop(name)


async def _fetch_file(server: Server) -> str:
    r = await server.phone.get(GW_FILE)
    assert r.status_code == 200, r.text
    return r.text


# -- the file -------------------------------------------------------------------------------------


async def test_the_gateways_file_carries_every_port(gateway: Gateway) -> None:
    body = await _fetch_file(gateway.world.server)
    for name in ("a", "b", "master"):
        for secret in gateway.secret[name]:
            assert secret in body, name
    for name in ("a", "b", "master"):
        assert f"gwcfg-{name}-user" in body
    # the HT814 has one SIP profile for every port: the owner's server, never B's own
    assert "192.0.2.22" not in body


async def test_the_owners_preview_leaves_other_tenants_ports_empty(gateway: Gateway) -> None:
    """The console's file preview is read by the owner: it shows the owner's part only."""
    from provisor.console.phone import device_files

    server = gateway.world.server
    prov = server.prov
    doc = await prov.devices.store.get(GW)
    assert doc is not None
    plugin = prov.plugins.get(doc["plugin"])
    files = device_files(plugin, doc)
    assert files
    for _name, route in files:
        body = (await server.pipeline.preview(plugin, route, doc)).body.decode()
        assert "gwcfg-a-user" in body
        for other in ("b", "master"):
            assert f"gwcfg-{other}-user" not in body
            assert not any(s in body for s in gateway.secret[other])


# -- what each tenant sees --------------------------------------------------------------------------


async def test_owner_sees_who_holds_its_ports_but_not_their_lines(gateway: Gateway) -> None:
    w = gateway.world
    r = await w.a.api.get(f"/0.2/dev_mgr/devices/{GW}/ports")
    assert r.status_code == 200, r.text
    ports = r.json()["ports"]
    assert [(p["port"], p["tenant_uuid"], p["config"]) for p in ports] == [
        (2, w.b.uuid, None),
        (3, w.master.uuid, None),
    ]
    r = await w.a.api.get(f"/0.2/dev_mgr/devices/{GW}/ports/2")
    assert r.json()["port"] == {"device_id": GW, "port": 2, "tenant_uuid": w.b.uuid, "config": None}


async def test_a_port_tenant_sees_only_its_port(gateway: Gateway) -> None:
    w = gateway.world
    mine = {"device_id": GW, "port": 2, "tenant_uuid": w.b.uuid, "config": gateway.config["b"]}
    r = await w.b.api.get(f"/0.2/dev_mgr/devices/{GW}/ports")
    assert r.json() == {"ports": [mine]}
    assert (await w.b.api.get(f"/0.2/dev_mgr/devices/{GW}/ports/2")).json() == {"port": mine}
    for params in ({}, {"recurse": "true"}):
        r = await w.b.api.get("/0.2/dev_mgr/ports", params=params)
        assert r.json() == {"ports": [mine]}
    r = await w.a.api.get("/0.2/dev_mgr/ports", params={"recurse": "true"})
    assert r.json() == {"ports": []}  # the owner holds no port: its line is the device's
    r = await w.master.api.get("/0.2/dev_mgr/ports", params={"recurse": "true"})
    assert [p["port"] for p in r.json()["ports"]] == [2, 3]  # an ancestor sees its subtree's


# -- what nobody may see or change ----------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """A request on the gateway (or a config of it) by a tenant who may not see that part."""

    name: str
    method: str
    path: str  # {dev} and {cfg} are the gateway's (or a missing one's)
    body: Any = None
    params: dict[str, str] | None = None


def _probes(gw: Gateway, me: str) -> list[tuple[Probe, str]]:
    """(probe, the tenant whose object it names) for every part of the gateway ``me`` may
    not see: other tenants' ports and configs; for a port tenant, the device itself."""
    owned = {"a": 1, "b": 2, "master": 3}
    out: list[tuple[Probe, str]] = []
    for them, port in owned.items():
        if them == me:
            continue
        cfg = gw.config[them]
        out += [
            (Probe("their config", "GET", f"/0.2/cfg_mgr/configs/{cfg}"), them),
            (Probe("their raw config", "GET", f"/0.2/cfg_mgr/configs/{cfg}/raw"), them),
            (
                Probe(
                    "their config in a list",
                    "GET",
                    "/0.2/cfg_mgr/configs",
                    params={"q": json.dumps({"id": cfg}), "recurse": "true"},
                ),
                them,
            ),
            (
                Probe(
                    "their config on a port of mine",
                    "PUT",
                    f"/0.2/dev_mgr/devices/{GW}/ports/{owned[me]}",
                    {"port": {"config": cfg}},
                )
                if me != "a"
                else Probe(
                    "their config on my gateway",
                    "PUT",
                    f"/0.2/dev_mgr/devices/{GW}",
                    {"device": {"id": GW, "mac": GW_MAC, "plugin": "grandstream", "config": cfg}},
                ),
                them,
            ),
            (
                Probe(
                    "inherit their config",
                    "POST",
                    "/0.2/cfg_mgr/configs",
                    {"config": {"parent_ids": ["base", cfg], "raw_config": {}}},
                ),
                them,
            ),
        ]
        if me == "b":  # a port tenant sees nothing of the device beyond its port
            out += [
                (Probe("their port", "GET", f"/0.2/dev_mgr/devices/{{dev}}/ports/{port}"), them),
                (
                    Probe(
                        "their port's line",
                        "PUT",
                        f"/0.2/dev_mgr/devices/{{dev}}/ports/{port}",
                        {"port": {"config": gw.config["b"]}},
                    ),
                    them,
                ),
                (
                    Probe(
                        "revoke their port", "DELETE", f"/0.2/dev_mgr/devices/{{dev}}/ports/{port}"
                    ),
                    them,
                ),
            ]
    if me == "b":
        dev_probes = [
            Probe("the device", "GET", "/0.2/dev_mgr/devices/{dev}"),
            Probe("the device put", "PUT", "/0.2/dev_mgr/devices/{dev}", {"device": {}}),
            Probe("the device delete", "DELETE", "/0.2/dev_mgr/devices/{dev}"),
            Probe("the device token", "GET", "/0.2/dev_mgr/devices/{dev}/provisioning_token"),
            Probe("a free port", "GET", "/0.2/dev_mgr/devices/{dev}/ports/4"),
            Probe(
                "take a free port",
                "PUT",
                "/0.2/dev_mgr/devices/{dev}/ports/4",
                {"port": {"tenant_uuid": gateway_tenant_placeholder()}},
            ),
            Probe("reconfigure", "POST", "/0.2/dev_mgr/reconfigure", {"id": "{dev}"}),
            Probe("synchronize", "POST", "/0.2/dev_mgr/synchronize", {"id": "{dev}"}),
            Probe("requests", "GET", "/0.2/dev_mgr/requests", params={"device": "{dev}"}),
            Probe(
                "device in a list",
                "GET",
                "/0.2/dev_mgr/devices",
                params={"q": json.dumps({"id": "{dev}"}), "recurse": "true"},
            ),
            Probe(
                "device by its MAC",
                "GET",
                "/0.2/dev_mgr/devices",
                params={"q": json.dumps({"mac": GW_MAC}), "recurse": "true"},
            ),
            Probe(
                "override on the device",
                "PUT",
                "/0.2/pg_mgr/plugins/grandstream/templates/device/device.xml",
                {"template": {"target": "{dev}", "source": "{{ sip_lines }}"}},
            ),
        ]
        out += [(p, "a") for p in dev_probes]
    return out


def gateway_tenant_placeholder() -> str:
    """Stands for the caller's own tenant uuid in a body (filled in by _send)."""
    return "{me}"


def _fill(value: Any, dev: str, cfg: str, me: Tenant) -> Any:
    if isinstance(value, str):
        return value.replace("{dev}", dev).replace("{me}", me.uuid)
    if isinstance(value, dict):
        return {k: _fill(v, dev, cfg, me) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, dev, cfg, me) for v in value]
    return value


async def _send(probe: Probe, me: Tenant, dev: str, cfg_of_them: str, cfg: str) -> tuple[int, str]:
    """Send a probe naming ``dev`` and ``cfg`` (in place of the gateway and ``cfg_of_them``);
    the answer with both names blanked."""
    swap = lambda s: s.replace(cfg_of_them, cfg)  # noqa: E731
    path = swap(probe.path).replace("{dev}", dev)
    body = _fill(json.loads(swap(json.dumps(probe.body))), dev, cfg, me) if probe.body else None
    params = {k: swap(v).replace("{dev}", dev) for k, v in (probe.params or {}).items()}
    r = await me.api.request(probe.method, path, json=body, params=params or None)
    return r.status_code, r.text.replace(dev, "<dev>").replace(cfg, "<cfg>")


@pytest.mark.parametrize("me", ["a", "b"])
async def test_every_other_tenants_part_looks_missing(gateway: Gateway, me: str) -> None:
    w = gateway.world
    caller = w.tenant(me)
    probes = _probes(gateway, me)
    assert len(probes) >= (10 if me == "a" else 25)
    for probe, them in probes:
        their_cfg = gateway.config[them]
        missing_cfg = f"gwcfg-none-{secrets.token_hex(3)}"
        got = await _send(probe, caller, GW, their_cfg, their_cfg)
        missing = await _send(probe, caller, MISSING_DEV, their_cfg, missing_cfg)
        assert got == missing, f"{me}: {probe.name} on {them}: {got} != {missing}"
        assert got[0] >= 400 or probe.method == "GET", (probe.name, got)
        for secret in gateway.others(me):
            assert secret not in got[1], (probe.name, them)
    # nothing changed: the file still carries every port, each tenant still has its port
    body = await _fetch_file(w.server)
    for name in ("a", "b", "master"):
        assert all(s in body for s in gateway.secret[name])
    r = await w.a.api.get(f"/0.2/dev_mgr/devices/{GW}/ports")
    assert [p["port"] for p in r.json()["ports"]] == [2, 3]


@pytest.mark.parametrize("me", ["a", "b"])
async def test_no_answer_carries_another_tenants_line(gateway: Gateway, me: str) -> None:
    """Everything a tenant can read about the gateway and its configs, in one sweep."""
    w = gateway.world
    caller = w.tenant(me)
    paths = [
        "/0.2/dev_mgr/devices?recurse=true",
        "/0.2/cfg_mgr/configs?recurse=true",
        "/0.2/dev_mgr/ports?recurse=true",
        f"/0.2/dev_mgr/devices/{GW}",
        f"/0.2/dev_mgr/devices/{GW}/ports",
        f"/0.2/dev_mgr/devices/{GW}/ports/2",
        f"/0.2/dev_mgr/devices/{GW}/ports/3",
        f"/0.2/dev_mgr/requests?device={GW}",
        f"/0.2/cfg_mgr/configs/{gateway.config[me]}",
        f"/0.2/cfg_mgr/configs/{gateway.config[me]}/raw",
        "/0.2/pg_mgr/plugins/grandstream/templates",
    ]
    seen = []
    for path in paths:
        r = await caller.api.get(path)
        assert r.status_code in (200, 404), (path, r.status_code)
        seen.append(r.text)
    r = await caller.api.post("/0.2/dev_mgr/synchronize", json={"id": GW})
    if r.status_code == 201:  # the owner may resync its gateway; the status says no line
        seen.append((await caller.api.get(r.headers["location"])).text)
    seen.append(r.text)
    everything = "\n".join(seen)
    for secret in gateway.others(me):
        assert secret not in everything
    for name, values in gateway.secret.items():  # its own line it reads in its own config
        if name == me:
            assert any(v in everything for v in values)


async def test_port_rules_for_the_owner_and_the_port_tenant(gateway: Gateway) -> None:
    """The owner assigns; the port tenant sets its line; neither does the other's part."""
    w = gateway.world
    r = await w.a.api.put(
        f"/0.2/dev_mgr/devices/{GW}/ports/2", json={"port": {"config": gateway.config["a"]}}
    )
    assert r.status_code == 403 and "port's tenant" in r.text
    r = await w.a.api.put(
        f"/0.2/dev_mgr/devices/{GW}/ports/4", json={"port": {"tenant_uuid": w.b.uuid}}
    )
    assert r.status_code == 400 and "is not yours" in r.text  # B is not in A's subtree
    r = await w.b.api.put(
        f"/0.2/dev_mgr/devices/{GW}/ports/2", json={"port": {"tenant_uuid": w.a.uuid}}
    )
    assert r.status_code == 403 and "owner" in r.text
    r = await w.b.api.delete(f"/0.2/dev_mgr/devices/{GW}/ports/2")
    assert r.status_code == 403
    # the owner's GET, edited and sent back (config null), changes nothing
    r = await w.a.api.get(f"/0.2/dev_mgr/devices/{GW}/ports/2")
    r = await w.a.api.put(f"/0.2/dev_mgr/devices/{GW}/ports/2", json=r.json())
    assert r.status_code == 204
    r = await w.b.api.get(f"/0.2/dev_mgr/devices/{GW}/ports/2")
    assert r.json()["port"]["config"] == gateway.config["b"]
    for bad in ("0", "1000", "x", "-1"):
        r = await w.b.api.get(f"/0.2/dev_mgr/devices/{GW}/ports/{bad}")
        assert r.status_code == 400 and "port" in r.text


# -- changes reach the file -------------------------------------------------------------------------


@pytest_asyncio.fixture(loop_scope="module")
async def own_gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    """A gateway world of its own, for a test that changes it."""
    name = None
    if PG_URL:
        url, name = await _pg_database()
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'provisor.db'}"
    plugins = [str(TEST_PLUGINS), str(REPO_PLUGINS)]
    server = await start_server(make_settings(tmp_path, url, **{"general.plugin_dirs": plugins}))
    built = await build_gateway(server)
    try:
        yield built
    finally:
        await close_world(built.world)
        if name is not None:
            await _pg_drop(name)


async def test_revoked_released_and_deleted_ports_leave_the_file(own_gateway: Gateway) -> None:
    gw, w = own_gateway, own_gateway.world
    b_pw, m_pw = gw.secret["b"][0], gw.secret["master"][0]
    # the port tenant releases its line
    r = await w.b.api.put(f"/0.2/dev_mgr/devices/{GW}/ports/2", json={"port": {"config": None}})
    assert r.status_code == 204
    body = await _fetch_file(w.server)
    assert b_pw not in body and m_pw in body
    # the owner's own config naming port 2 does not reach a port it gave away
    r = await w.a.api.get(f"/0.2/cfg_mgr/configs/{gw.config['a']}")
    cfg = r.json()["config"]
    owner_pw = f"OwnerOnPort2-{secrets.token_hex(4)}"
    cfg["raw_config"]["sip_lines"]["2"] = {"username": "owner2", "password": owner_pw}
    r = await w.a.api.put(f"/0.2/cfg_mgr/configs/{gw.config['a']}", json={"config": cfg})
    assert r.status_code == 204, r.text
    assert owner_pw not in await _fetch_file(w.server)
    # the owner revokes the master's port: its line leaves, the port is the owner's again
    r = await w.a.api.delete(f"/0.2/dev_mgr/devices/{GW}/ports/3")
    assert r.status_code == 204
    r = await w.master.api.get(f"/0.2/dev_mgr/devices/{GW}/ports/3")
    assert r.status_code == 404
    assert m_pw not in await _fetch_file(w.server)
    # a deleted tenant's ports go with it
    r = await w.b.api.put(
        f"/0.2/dev_mgr/devices/{GW}/ports/2", json={"port": {"config": gw.config["b"]}}
    )
    assert r.status_code == 204
    assert b_pw in await _fetch_file(w.server)
    r = await w.master.api.delete(f"/0.2/tenant_mgr/tenants/{w.b.uuid}", params={"force": "true"})
    assert r.status_code == 204, r.text
    r = await w.a.api.get(f"/0.2/dev_mgr/devices/{GW}/ports")
    assert r.json() == {"ports": []}
    body = await _fetch_file(w.server)
    assert b_pw not in body and owner_pw in body  # port 2 is the owner's again
    # a deleted device's ports go with it; a device re-created under its id has none
    r = await w.master.api.put(
        f"/0.2/dev_mgr/devices/{GW}/ports/3", json={"port": {"tenant_uuid": w.master.uuid}}
    )
    assert r.status_code == 204
    assert (await w.a.api.delete(f"/0.2/dev_mgr/devices/{GW}")).status_code == 204
    device = {"id": GW, "mac": GW_MAC, "model": "HT814", "plugin": "grandstream"}
    device["config"] = gw.config["a"]
    assert (await w.a.api.post("/0.2/dev_mgr/devices", json={"device": device})).status_code == 201
    r = await w.a.api.get(f"/0.2/dev_mgr/devices/{GW}/ports")
    assert r.json() == {"ports": []}


async def test_a_deleted_port_config_id_is_not_free_for_another_tenant(
    own_gateway: Gateway,
) -> None:
    """A port tenant deletes the config its port names: the line leaves the file, and no other
    tenant may create a config under that id (its data would become the port's line)."""
    gw, w = own_gateway, own_gateway.world
    cfg, b_pw = gw.config["b"], gw.secret["b"][0]
    assert (await w.b.api.delete(f"/0.2/cfg_mgr/configs/{cfg}")).status_code == 204
    assert b_pw not in await _fetch_file(w.server)
    a_pw = f"ANotB-{secrets.token_hex(4)}"
    r = await w.a.api.post("/0.2/cfg_mgr/configs", json=_line_config(cfg, 2, a_pw))
    assert r.status_code == 409, r.text
    assert a_pw not in await _fetch_file(w.server)
    r = await w.b.api.post("/0.2/cfg_mgr/configs", json=_line_config(cfg, 2, b_pw))
    assert r.status_code == 201, r.text  # its own tenant takes it back, and the line returns
    assert b_pw in await _fetch_file(w.server)


async def test_a_port_tenants_line_one_is_not_learnt_into_the_owners_device(
    own_gateway: Gateway,
) -> None:
    """The device's first line is what resync-by-peer remembers on the device document (which
    the owner reads): a port tenant's line 1 never lands there."""
    w = own_gateway.world
    pw = f"PortOne-{secrets.token_hex(4)}"
    body = _line_config("gwcfg-master-1", 1, pw)
    assert (await w.master.api.post("/0.2/cfg_mgr/configs", json=body)).status_code == 201
    r = await w.master.api.put(
        f"/0.2/dev_mgr/devices/{GW}/ports/1",
        json={"port": {"tenant_uuid": w.master.uuid, "config": "gwcfg-master-1"}},
    )
    assert r.status_code == 204, r.text
    assert pw in await _fetch_file(w.server)  # the device file is the trigger file
    r = await w.a.api.get(f"/0.2/dev_mgr/devices/{GW}")
    assert r.status_code == 200
    assert "gwcfg-master-1-user" not in r.text and pw not in r.text


async def test_a_port_tenant_never_sets_a_one_profile_gateways_server(own_gateway: Gateway) -> None:
    """A port tenant holding port 1 of an HT814 (one SIP profile for all ports) does not choose
    where the owner's lines register: the profile stays the owner's server."""
    gw, w = own_gateway, own_gateway.world
    pw = f"B-on-1-{secrets.token_hex(4)}"
    r = await w.b.api.post(
        "/0.2/cfg_mgr/configs", json=_line_config("gwcfg-b1", 1, pw, sip_proxy_ip="192.0.2.66")
    )
    assert r.status_code == 201, r.text
    r = await w.master.api.put(
        f"/0.2/dev_mgr/devices/{GW}/ports/1", json={"port": {"tenant_uuid": w.b.uuid}}
    )
    assert r.status_code == 204, r.text
    r = await w.b.api.put(
        f"/0.2/dev_mgr/devices/{GW}/ports/1", json={"port": {"config": "gwcfg-b1"}}
    )
    assert r.status_code == 204, r.text
    body = await _fetch_file(w.server)
    assert pw in body and gw.secret["a"][0] not in body  # port 1 is B's now
    assert "192.0.2.66" not in body
    # the owner's server, from its config, is the profile's
    cfg = (await w.a.api.get(f"/0.2/cfg_mgr/configs/{gw.config['a']}")).json()["config"]
    cfg["raw_config"]["sip_proxy_ip"] = "198.51.100.9"
    r = await w.a.api.put(f"/0.2/cfg_mgr/configs/{gw.config['a']}", json={"config": cfg})
    assert r.status_code == 204, r.text
    body = await _fetch_file(w.server)
    profile = body.split("<P47>", 1)[1].split("</P47>", 1)[0]
    assert profile.startswith("198.51.100.9") and pw in body
