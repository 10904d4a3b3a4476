"""Every per-tenant endpoint of the /0.2 API × attacker tenant × victim tenant.

For each endpoint that names an object (a device, a config, an operation, a tenant, a MAC, a
provisioning code), the attacker's request on the victim's object must get exactly the answer
it gets for an object that does not exist (status and body, the id aside), and no secret of
the victim (SIP and admin passwords, device token, provisioning key, template override) may
appear in any answer. List endpoints must show none of the victim's objects. The attacker is
a sub-tenant; the victim is the other sub-tenant or the master.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.security.conftest import Tenant, World

pytestmark = pytest.mark.asyncio(loop_scope="module")

PAIRS = [("a", "b"), ("b", "a"), ("a", "master"), ("b", "master")]

Obj = dict[str, str]  # the placeholders of one side: dev, cfg, op, pg_op, mac, tenant, code, ip


@dataclass(frozen=True)
class Case:
    """One request naming another tenant's object."""

    name: str
    method: str
    path: str
    body: Callable[[Obj, Tenant], Any] | None = None
    headers: Callable[[Obj], dict[str, str]] | None = None
    params: Callable[[Obj], dict[str, str]] | None = None


def _q(key: str) -> Callable[[Obj], dict[str, str]]:
    return lambda o: {"q": json.dumps({key: o[key if key != "id" else "dev"]}), "recurse": "true"}


CASES = [
    # -- dev_mgr
    Case("device get", "GET", "/0.2/dev_mgr/devices/{dev}"),
    Case("device put", "PUT", "/0.2/dev_mgr/devices/{dev}", lambda o, me: {"device": {}}),
    Case(
        "device put moving it to me",
        "PUT",
        "/0.2/dev_mgr/devices/{dev}",
        lambda o, me: {"device": {"tenant_uuid": me.uuid, "config": me.config}},
    ),
    Case("device delete", "DELETE", "/0.2/dev_mgr/devices/{dev}"),
    Case("device token read", "GET", "/0.2/dev_mgr/devices/{dev}/provisioning_token"),
    Case("device token rotate", "POST", "/0.2/dev_mgr/devices/{dev}/provisioning_token"),
    Case("reconfigure", "POST", "/0.2/dev_mgr/reconfigure", lambda o, me: {"id": o["dev"]}),
    Case("synchronize device", "POST", "/0.2/dev_mgr/synchronize", lambda o, me: {"id": o["dev"]}),
    Case(
        "synchronize tenant",
        "POST",
        "/0.2/dev_mgr/synchronize",
        lambda o, me: {"tenant_uuid": o["tenant"]},
    ),
    Case(
        "synchronize devices of their config",
        "POST",
        "/0.2/dev_mgr/synchronize",
        lambda o, me: {"config": o["cfg"]},
    ),
    Case("synchronize status", "GET", "/0.2/dev_mgr/synchronize/{op}"),
    Case("synchronize forget", "DELETE", "/0.2/dev_mgr/synchronize/{op}"),
    Case(
        "dhcpinfo on their MAC",
        "POST",
        "/0.2/dev_mgr/dhcpinfo",
        lambda o, me: {
            "dhcp_info": {"op": "commit", "ip": "10.66.0.1", "mac": o["mac"], "options": []}
        },
    ),
    Case("device list by id", "GET", "/0.2/dev_mgr/devices", params=_q("id")),
    Case("device list by mac", "GET", "/0.2/dev_mgr/devices", params=_q("mac")),
    Case(
        "device list in their tenant",
        "GET",
        "/0.2/dev_mgr/devices",
        headers=lambda o: {"Wazo-Tenant": o["tenant"]},
    ),
    Case(
        "device create using their config",
        "POST",
        "/0.2/dev_mgr/devices",
        lambda o, me: {"device": {"config": o["cfg"]}},
    ),
    Case(
        "my device put using their config",
        "PUT",
        "/0.2/dev_mgr/devices/{my_dev}",
        lambda o, me: {"device": {"mac": me.mac, "ip": me.ip, "config": o["cfg"]}},
    ),
    Case(
        "requests of their device",
        "GET",
        "/0.2/dev_mgr/requests",
        params=lambda o: {"device": o["dev"]},
    ),
    # bans hold every tenant's phone addresses: master only, whatever the address
    Case("lift the ban of their phone's address", "DELETE", "/0.2/dev_mgr/bans/{ip}"),
    Case(
        "provisioning code of theirs",
        "POST",
        "/0.2/dev_mgr/provisioning_code",
        lambda o, me: {"code": o["code"], "ip": me.ip},
    ),
    # -- dev_mgr: ports of shared devices (docs/api.md, "Devices shared by tenants")
    Case("device ports", "GET", "/0.2/dev_mgr/devices/{dev}/ports"),
    Case("device port get", "GET", "/0.2/dev_mgr/devices/{dev}/ports/1"),
    Case(
        "device port assigned to me",
        "PUT",
        "/0.2/dev_mgr/devices/{dev}/ports/1",
        lambda o, me: {"port": {"tenant_uuid": me.uuid}},
    ),
    Case(
        "device port given my line",
        "PUT",
        "/0.2/dev_mgr/devices/{dev}/ports/1",
        lambda o, me: {"port": {"config": me.config}},
    ),
    Case("device port revoke", "DELETE", "/0.2/dev_mgr/devices/{dev}/ports/1"),
    Case(
        "ports held in their tenant",
        "GET",
        "/0.2/dev_mgr/ports",
        headers=lambda o: {"Wazo-Tenant": o["tenant"]},
    ),
    # -- cfg_mgr
    Case("config get", "GET", "/0.2/cfg_mgr/configs/{cfg}"),
    Case("config raw", "GET", "/0.2/cfg_mgr/configs/{cfg}/raw"),
    Case(
        "config put",
        "PUT",
        "/0.2/cfg_mgr/configs/{cfg}",
        lambda o, me: {"config": {"parent_ids": ["base"], "raw_config": {}}},
    ),
    Case("config delete", "DELETE", "/0.2/cfg_mgr/configs/{cfg}"),
    Case(
        "config list by id",
        "GET",
        "/0.2/cfg_mgr/configs",
        params=lambda o: {"q": json.dumps({"id": o["cfg"]}), "recurse": "true"},
    ),
    Case(
        "config create inheriting theirs",
        "POST",
        "/0.2/cfg_mgr/configs",
        lambda o, me: {"config": {"parent_ids": ["base", o["cfg"]], "raw_config": {}}},
    ),
    Case(
        "my config put inheriting theirs",
        "PUT",
        "/0.2/cfg_mgr/configs/{my_cfg}",
        lambda o, me: {"config": {"parent_ids": [o["cfg"]], "raw_config": {}}},
    ),
    Case(
        "config list in their tenant",
        "GET",
        "/0.2/cfg_mgr/configs",
        headers=lambda o: {"Wazo-Tenant": o["tenant"]},
    ),
    # -- configure
    Case(
        "their provisioning key",
        "GET",
        "/0.2/configure/provisioning_key",
        headers=lambda o: {"Wazo-Tenant": o["tenant"]},
    ),
    Case(
        "set their provisioning key",
        "PUT",
        "/0.2/configure/provisioning_key",
        lambda o, me: {"param": {"value": f"taken-{secrets.token_hex(6)}"}},
        headers=lambda o: {"Wazo-Tenant": o["tenant"]},
    ),
    # -- pg_mgr
    Case("repository operation status", "GET", "/0.2/pg_mgr/install/update/{pg_op}"),
    Case("repository operation forget", "DELETE", "/0.2/pg_mgr/install/update/{pg_op}"),
    Case("package operation status", "GET", "/0.2/pg_mgr/plugins/testphone/install/install/{op}"),
    Case(
        "device override on their device",
        "PUT",
        "/0.2/pg_mgr/plugins/testphone/templates/device/device.cfg",
        lambda o, me: {"template": {"target": o["dev"], "source": "x"}},
    ),
    Case(
        "delete their tenant override",
        "DELETE",
        "/0.2/pg_mgr/plugins/testphone/templates/tenant/common.cfg",
        headers=lambda o: {"Wazo-Tenant": o["tenant"]},
    ),
    Case(
        "delete an override of their device",
        "DELETE",
        "/0.2/pg_mgr/plugins/testphone/templates/device/device.cfg",
        params=lambda o: {"target": o["dev"]},
    ),
    Case(
        "templates in their tenant",
        "GET",
        "/0.2/pg_mgr/plugins/testphone/templates",
        headers=lambda o: {"Wazo-Tenant": o["tenant"]},
    ),
]


def _victim(t: Tenant) -> Obj:
    return {
        "dev": t.device,
        "cfg": t.config,
        "op": t.op,
        "pg_op": t.pg_op or t.op,
        "mac": t.mac,
        "tenant": t.uuid,
        "code": t.code,
        "ip": t.ip,
    }


def _missing() -> Obj:
    n = secrets.randbelow(90) + 10
    return {
        "dev": f"dev-none-{n}",
        "cfg": f"cfg-none-{n}",
        "op": secrets.token_hex(16),
        "pg_op": secrets.token_hex(16),
        "mac": f"00:11:22:33:55:{n}",
        "tenant": f"00000000-0000-4000-8000-0000000000{n}",
        "code": f"99{n}",
        "ip": f"198.51.100.{n}",
    }


async def _send(case: Case, me: Tenant, obj: Obj) -> tuple[int, str]:
    path = case.path.format(**obj, my_dev=me.device, my_cfg=me.config)
    r = await me.api.request(
        case.method,
        path,
        json=case.body(obj, me) if case.body else None,
        headers=case.headers(obj) if case.headers else None,
        params=case.params(obj) if case.params else None,
    )
    text = r.text
    for value in sorted(obj.values(), key=len, reverse=True):
        text = text.replace(value, "<id>")
    return r.status_code, text


@pytest.mark.parametrize(("attacker", "victim"), PAIRS, ids=[f"{a}-on-{v}" for a, v in PAIRS])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_victim_object_looks_missing(
    world: World, case: Case, attacker: str, victim: str
) -> None:
    me, them = world.tenant(attacker), world.tenant(victim)
    got = await _send(case, me, _victim(them))
    missing = await _send(case, me, _missing())
    assert got == missing, f"{case.name}: {got} differs from the answer for a missing object"
    assert got[0] >= 400 or got[0] in (200, 201), got
    for secret in them.secrets:
        assert secret not in got[1]
    if got[0] == 200:
        for ident in (them.device, them.config, them.mac):
            assert ident not in got[1]
    # and the victim's objects are untouched
    r = await them.api.get(f"/0.2/dev_mgr/devices/{them.device}")
    assert r.status_code == 200
    assert r.json()["device"] == them.snapshot
    assert (await them.api.get(f"/0.2/cfg_mgr/configs/{them.config}")).status_code == 200
    r = await them.api.get(f"/0.2/dev_mgr/synchronize/{them.op}")
    assert r.status_code == 200
    r = await them.api.get("/0.2/configure/provisioning_key")
    assert r.json()["param"]["value"] == them.key
    r = await them.api.get("/0.2/pg_mgr/plugins/testphone/templates")
    assert them.override in r.text


LISTS = [
    ("/0.2/dev_mgr/devices", {"recurse": "true"}),
    ("/0.2/cfg_mgr/configs", {"recurse": "true"}),
    ("/0.2/configure", {}),
    ("/0.2/dev_mgr/requests", {}),
    ("/0.2/pg_mgr/plugins/testphone/templates", {}),
    ("/0.2/pg_mgr/install/installed", {}),
    ("/0.2/pg_mgr/plugins", {}),
]


@pytest.mark.parametrize("attacker", ["a", "b"])
@pytest.mark.parametrize(("path", "params"), LISTS, ids=[p for p, _ in LISTS])
async def test_lists_show_nothing_of_others(
    world: World, attacker: str, path: str, params: dict[str, str]
) -> None:
    me = world.tenant(attacker)
    r = await me.api.get(path, params=params)
    assert r.status_code == 200, r.text
    for other in (world.master, world.a, world.b):
        if other is me:
            continue
        for value in [*other.secrets, other.device, other.config, other.mac, other.uuid]:
            assert value not in r.text, f"{path} shows {other.name}'s {value!r}"
