"""The authorization model's rules, one by one (docs/api.md, "Authorization model").

Global state is the master's; ``is_new`` devices are claimed by wazo's rule and nothing more;
operations have random ids and an owner; the provisioning-key oracle is bounded; configs the
master creates without ``Wazo-Tenant`` stay the master's; references (config parents, a
device's config, template override targets) respect ownership, even through an id deleted and
re-created by another tenant; DHCP lease information is the master's.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Server, make_settings, start_server
from tests.security.conftest import UA, World, build_world, close_world, line_config

# -- 1. global state is the master's ----------------------------------------------------------

GLOBAL_WRITES = [
    ("PUT", "/0.2/configure/plugin_server", {"param": {"value": "http://127.0.0.1:9/evil"}}),
    ("PUT", "/0.2/configure/NAT", {"param": {"value": "1"}}),
    ("PUT", "/0.2/configure/http_proxy", {"param": {"value": "http://127.0.0.1:3128"}}),
    ("PUT", "/0.2/configure/locale", {"param": {"value": "de_DE"}}),
    ("POST", "/0.2/pg_mgr/install/update", None),
    ("POST", "/0.2/pg_mgr/install/install", {"id": "testphone"}),
    ("POST", "/0.2/pg_mgr/install/upgrade", {"id": "testphone"}),
    ("POST", "/0.2/pg_mgr/install/uninstall", {"id": "testphone"}),
    ("POST", "/0.2/pg_mgr/reload", {"id": "testphone"}),
    ("POST", "/0.2/pg_mgr/plugins/testphone/install/install", {"id": "fw"}),
    ("POST", "/0.2/pg_mgr/plugins/testphone/install/uninstall", {"id": "fw"}),
    ("POST", "/0.2/dev_mgr/dhcpinfo", {"dhcp_info": {"op": "release"}}),
    ("GET", "/0.2/configure/http_proxy", None),
    ("GET", "/0.2/configure/plugin_server", None),
]


@pytest.mark.parametrize(
    ("method", "path", "body"), GLOBAL_WRITES, ids=[p for _, p, _ in GLOBAL_WRITES]
)
async def test_global_state_is_the_masters(
    fresh_world: World, method: str, path: str, body: Any
) -> None:
    w = fresh_world
    await w.master.api.put("/0.2/configure/http_proxy", json={"param": {"value": None}})
    before_params = (await w.master.api.get("/0.2/configure")).json()
    before_ops = dict(w.server.prov.operations._ops)
    for t in (w.a, w.b):
        r = await t.api.request(method, path, json=body)
        assert r.status_code == 401, (t.name, r.status_code, r.text)
        assert "master tenant" in r.text
        # a sub-tenant acting with the master's uuid is not the master either
        r = await t.api.request(method, path, json=body, headers={"Wazo-Tenant": w.master.uuid})
        assert r.status_code == 401
    assert (await w.master.api.get("/0.2/configure")).json() == before_params
    assert w.server.prov.operations._ops.keys() == before_ops.keys()
    assert "testphone" in (await w.master.api.get("/0.2/pg_mgr/plugins")).json()["plugins"]


async def test_master_keeps_global_rights_and_sub_tenants_read_harmless_lists(
    fresh_world: World,
) -> None:
    w = fresh_world
    r = await w.master.api.put("/0.2/configure/NAT", json={"param": {"value": "1"}})
    assert r.status_code == 204
    # a master token acting in a sub-tenant still holds the global rights (they follow the token)
    r = await w.master.api.put(
        "/0.2/configure/locale",
        json={"param": {"value": "fr_FR"}},
        headers={"Wazo-Tenant": w.a.uuid},
    )
    assert r.status_code == 204
    # past the gate: the built-in test plugin is not an installed one, which reload says
    r = await w.master.api.post("/0.2/pg_mgr/reload", json={"id": "testphone"})
    assert r.status_code == 400 and "not installed" in r.text
    for t in (w.a, w.b):
        names = {p["id"] for p in (await t.api.get("/0.2/configure")).json()["params"]}
        assert names == {"provisioning_key"}
        for path in ("/0.2/pg_mgr/plugins", "/0.2/pg_mgr/install/installed"):
            assert (await t.api.get(path)).status_code == 200
        info = await t.api.get("/0.2/pg_mgr/plugins/testphone/info")
        assert info.status_code == 200


# -- 2. who claims an is_new device -----------------------------------------------------------


async def _dhcp_device(w: World, mac: str) -> dict[str, Any]:
    lease = {"op": "commit", "ip": "10.30.0.9", "mac": mac, "options": []}
    r = await w.master.api.post("/0.2/dev_mgr/dhcpinfo", json={"dhcp_info": lease})
    assert r.status_code == 204, r.text
    r = await w.master.api.get("/0.2/dev_mgr/devices", params={"q": f'{{"mac": "{mac}"}}'})
    [device] = r.json()["devices"]
    return dict(device)


async def test_auto_created_master_device_is_claimed_once(fresh_world: World) -> None:
    w = fresh_world
    device = await _dhcp_device(w, "00:11:22:33:66:01")
    assert device["is_new"] is True and device["added"] == "auto"
    assert device["tenant_uuid"] == w.master.uuid
    # invisible to a sub-tenant until it claims it (wazo's rule)
    assert (await w.a.api.get(f"/0.2/dev_mgr/devices/{device['id']}")).status_code == 404
    r = await w.a.api.put(
        f"/0.2/dev_mgr/devices/{device['id']}",
        json={"device": {"mac": device["mac"], "config": w.a.config, "tenant_uuid": w.b.uuid}},
    )
    assert r.status_code == 204, r.text
    doc = (await w.a.api.get(f"/0.2/dev_mgr/devices/{device['id']}")).json()["device"]
    assert doc["tenant_uuid"] == w.a.uuid and doc["is_new"] is False and doc["added"] == "auto"
    # now A's: B cannot take, change or delete it
    for method in ("PUT", "DELETE", "GET"):
        r = await w.b.api.request(
            method,
            f"/0.2/dev_mgr/devices/{device['id']}",
            json={"device": {}} if method == "PUT" else None,
        )
        assert r.status_code == 404
    doc2 = (await w.a.api.get(f"/0.2/dev_mgr/devices/{device['id']}")).json()["device"]
    assert doc2 == doc


async def test_device_the_master_creates_is_not_up_for_grabs(fresh_world: World) -> None:
    w = fresh_world
    # "added" is the server's: a body saying "auto" does not make the device claimable
    r = await w.master.api.post(
        "/0.2/dev_mgr/devices", json={"device": {"id": "stock-1", "added": "auto"}}
    )
    assert r.status_code == 201
    doc = (await w.master.api.get("/0.2/dev_mgr/devices/stock-1")).json()["device"]
    assert doc["is_new"] is True and "added" not in doc
    for t in (w.a, w.b):
        put = await t.api.put("/0.2/dev_mgr/devices/stock-1", json={"device": {}})
        missing = await t.api.put("/0.2/dev_mgr/devices/stock-none", json={"device": {}})
        assert (
            (put.status_code, put.text)
            == (missing.status_code, missing.text)
            == (
                404,
                "No such resource",
            )
        )
        assert (await t.api.delete("/0.2/dev_mgr/devices/stock-1")).status_code == 404
    assert (await w.master.api.get("/0.2/dev_mgr/devices/stock-1")).json()["device"] == doc
    # the master hands it to a tenant by acting in it (wazo-confd's way)
    r = await w.master.api.put(
        "/0.2/dev_mgr/devices/stock-1", json={"device": {}}, headers={"Wazo-Tenant": w.a.uuid}
    )
    assert r.status_code == 204
    doc = (await w.a.api.get("/0.2/dev_mgr/devices/stock-1")).json()["device"]
    assert doc["tenant_uuid"] == w.a.uuid and doc["is_new"] is False


async def test_device_auto_created_under_a_key_stays_in_that_tenant(
    tmp_path: Path, database_url: str
) -> None:
    server = await start_server(
        make_settings(tmp_path, database_url, **{"general.http_auth_strategy": "url_key"})
    )
    w = await build_world(server)
    try:
        mac = "00:11:22:33:66:02"
        r = await server.phone.get(
            f"/{w.a.key}/tp/common.cfg", headers={"User-Agent": UA.format(mac=mac)}
        )
        assert r.status_code == 200
        q = {"q": f'{{"mac": "{mac}"}}', "recurse": "true"}
        [device] = (await w.master.api.get("/0.2/dev_mgr/devices", params=q)).json()["devices"]
        assert device["tenant_uuid"] == w.a.uuid and device["is_new"] is True
        path = f"/0.2/dev_mgr/devices/{device['id']}"
        # B cannot take it (the same answer as for a missing device), nor delete it
        put = await w.b.api.put(path, json={"device": {"mac": mac}})
        assert (put.status_code, put.text) == (404, "No such resource")
        assert (await w.b.api.delete(path)).status_code == 404
        # the master acting in B cannot move it to B either: it already belongs to A
        r = await w.master.api.put(
            path, json={"device": {"mac": mac}}, headers={"Wazo-Tenant": w.b.uuid}
        )
        assert r.status_code == 404
        # A's administrator keeps it in A
        r = await w.a.api.put(path, json={"device": {"mac": mac, "config": w.a.config}})
        assert r.status_code == 204
        doc = (await w.a.api.get(path)).json()["device"]
        assert doc["tenant_uuid"] == w.a.uuid and doc["is_new"] is False
    finally:
        await close_world(w)


# -- 3. operations: random ids, an owner ------------------------------------------------------


async def test_operation_ids_are_random_and_owned(fresh_world: World) -> None:
    w = fresh_world
    ids = []
    for _ in range(3):
        r = await w.a.api.post("/0.2/dev_mgr/synchronize", json={"id": w.a.device})
        assert r.status_code == 201
        ids.append(r.headers["location"].rsplit("/", 1)[1])
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids) and len(set(ids)) == 3
    # the owner and its ancestors see it; the sibling does not, and cannot forget it
    assert (await w.a.api.get(f"/0.2/dev_mgr/synchronize/{ids[0]}")).status_code == 200
    assert (await w.master.api.get(f"/0.2/dev_mgr/synchronize/{ids[0]}")).status_code == 200
    assert (await w.b.api.delete(f"/0.2/dev_mgr/synchronize/{ids[0]}")).status_code == 404
    assert (await w.b.api.get(f"/0.2/dev_mgr/synchronize/{ids[0]}")).status_code == 404
    assert (await w.a.api.delete(f"/0.2/dev_mgr/synchronize/{ids[0]}")).status_code == 204
    assert (await w.a.api.get(f"/0.2/dev_mgr/synchronize/{ids[0]}")).status_code == 404
    # a numeric guess is simply missing
    assert (await w.a.api.get("/0.2/dev_mgr/synchronize/1")).status_code == 404
    # the master's repository operation is invisible to sub-tenants
    for t in (w.a, w.b):
        assert (await t.api.get(f"/0.2/pg_mgr/install/update/{w.master.pg_op}")).status_code == 404
    assert (
        await w.master.api.get(f"/0.2/pg_mgr/install/update/{w.master.pg_op}")
    ).status_code == 200


# -- 4. the provisioning-key oracle is bounded ------------------------------------------------


async def test_provisioning_key_conflicts_are_bounded_and_logged_without_the_key(
    fresh_world: World, caplog: pytest.LogCaptureFixture
) -> None:
    w = fresh_world
    url = "/0.2/configure/provisioning_key"
    caplog.set_level(logging.INFO)
    guesses = [f"guess-{n}-xxxx" for n in range(3)]
    for n in range(5):
        # B's real key, and keys nobody has: only B's gets "another tenant", five times at most
        r = await w.a.api.put(url, json={"param": {"value": w.b.key}})
        assert r.status_code == 400 and "another tenant" in r.text
        if n < len(guesses):
            r = await w.a.api.put(url, json={"param": {"value": guesses[n]}})
            assert r.status_code == 204
    r = await w.a.api.put(url, json={"param": {"value": w.b.key}})
    assert r.status_code == 429
    r = await w.a.api.put(url, json={"param": {"value": "a-free-key-123"}})
    assert r.status_code == 429  # spent: the tenant waits for the window to end
    # B's key is untouched; A's is its last good one; another tenant still has its budget
    assert (await w.b.api.get(url)).json()["param"]["value"] == w.b.key
    assert (await w.a.api.get(url)).json()["param"]["value"] == guesses[-1]
    assert (await w.b.api.put(url, json={"param": {"value": w.master.key}})).status_code == 400
    # the master sees every key anyway: not counted
    for _ in range(7):
        r = await w.master.api.put(url, json={"param": {"value": w.b.key}})
        assert r.status_code == 400
    logged = [rec.getMessage() for rec in caplog.records if rec.name == "provisor.authz"]
    assert sum(w.a.uuid in m and "provisioning key" in m for m in logged) == 5
    for rec in caplog.records:
        for key in (w.a.key, w.b.key, w.master.key, *guesses):
            assert key not in rec.getMessage()


async def test_taken_ids_of_other_tenants_are_bounded_too(fresh_world: World) -> None:
    w = fresh_world
    # an id the caller holds itself: 409 as always, not counted
    for _ in range(6):
        r = await w.a.api.post("/0.2/dev_mgr/devices", json={"device": {"id": w.a.device}})
        assert r.status_code == 409
    # ids other tenants hold: the same 409 text, counted, then 429
    answers = []
    for victim in (w.b, w.master, w.b, w.master, w.b):
        r = await w.a.api.post("/0.2/dev_mgr/devices", json={"device": {"id": victim.device}})
        answers.append((r.status_code, r.text.replace(victim.device, "<id>")))
    own = await w.a.api.post("/0.2/dev_mgr/devices", json={"device": {"id": w.a.device}})
    assert own.status_code == 429
    assert set(answers) == {(409, "device '<id>' already exists")}
    r = await w.a.api.post("/0.2/cfg_mgr/configs", json=line_config(w.b.config, "x", "y"))
    assert r.status_code == 429  # config and device ids share one budget
    assert (await w.b.api.get(f"/0.2/dev_mgr/devices/{w.b.device}")).json()[
        "device"
    ] == w.b.snapshot


# -- 5. configs the master creates without Wazo-Tenant stay the master's -----------------------


async def test_master_configs_without_header_are_the_masters(fresh_world: World) -> None:
    w = fresh_world
    secret = "LinePw-from-confd-1"
    # wazo-confd's way: master token, no Wazo-Tenant, a line config with its password
    r = await w.master.api.post(
        "/0.2/cfg_mgr/configs", json=line_config("line-42", secret, "Admin-line-42")
    )
    assert r.status_code == 201
    for t in (w.a, w.b):
        for path in ("/0.2/cfg_mgr/configs/line-42", "/0.2/cfg_mgr/configs/line-42/raw"):
            r = await t.api.get(path)
            assert r.status_code == 404 and secret not in r.text
        r = await t.api.get("/0.2/cfg_mgr/configs", params={"recurse": "true"})
        assert "line-42" not in r.text and secret not in r.text
        # system configs stay shared
        assert (await t.api.get("/0.2/cfg_mgr/configs/defaultconfigdevice")).status_code == 200
    # the master associates the line with a phone of tenant A (Wazo-Tenant A): allowed, since
    # what flows down the tree was put there from above; the phone gets the password
    device = await _dhcp_device(w, "00:11:22:33:66:03")
    r = await w.master.api.put(
        f"/0.2/dev_mgr/devices/{device['id']}",
        json={"device": {"mac": device["mac"], "plugin": "testphone", "config": "line-42"}},
        headers={"Wazo-Tenant": w.a.uuid},
    )
    assert r.status_code == 204, r.text
    r = await w.server.phone.get(
        "/001122336603.cfg", headers={"User-Agent": UA.format(mac="00:11:22:33:66:03")}
    )
    assert r.status_code == 200 and secret.encode() in r.content
    # A still cannot read the config itself, nor point another of its devices at it
    assert (await w.a.api.get("/0.2/cfg_mgr/configs/line-42")).status_code == 404
    r = await w.a.api.post("/0.2/dev_mgr/devices", json={"device": {"config": "line-42"}})
    assert r.status_code == 400 and "device.config" in r.text


async def test_shared_configs_are_explicit_and_only_inherit_shared(fresh_world: World) -> None:
    w = fresh_world
    body = line_config("shared-1", "SharedPw-1", "SharedAdmin-1", shared=True)
    body["config"]["raw_config"] = {"ntp_enabled": True, "ntp_ip": "10.0.0.5"}
    assert (await w.master.api.post("/0.2/cfg_mgr/configs", json=body)).status_code == 201
    for t in (w.a, w.b):
        assert (await t.api.get("/0.2/cfg_mgr/configs/shared-1")).status_code == 200
        # a sub-tenant may inherit from it, not change it nor create shared configs
        child = {"config": {"id": f"child-{t.name}", "parent_ids": ["shared-1"], "raw_config": {}}}
        assert (await t.api.post("/0.2/cfg_mgr/configs", json=child)).status_code == 201
        r = await t.api.put("/0.2/cfg_mgr/configs/shared-1", json=body)
        assert r.status_code == 403
        mine = line_config(f"shared-by-{t.name}", "x", "y", shared=True)
        assert (await t.api.post("/0.2/cfg_mgr/configs", json=mine)).status_code == 403
    # a shared config never inherits a tenant's: A's, the master's own, or a missing one alike
    answers = set()
    for parent in (w.a.config, w.master.config, "cfg-nowhere"):
        bad = {"config": {"parent_ids": ["base", parent], "raw_config": {}, "shared": True}}
        r = await w.master.api.post("/0.2/cfg_mgr/configs", json=bad)
        answers.add((r.status_code, r.text.replace(parent, "<id>")))
    assert answers == {(400, "unknown parent config '<id>'")}
    r = await w.master.api.post(
        "/0.2/cfg_mgr/configs", json={"config": {"parent_ids": [], "raw_config": {}, "shared": 1}}
    )
    assert r.status_code == 400 and "config.shared" in r.text


# -- 6. references: parents, a device's config, ids re-created elsewhere ------------------------


async def test_a_config_re_created_by_another_tenant_never_flows_in(fresh_world: World) -> None:
    w = fresh_world
    a, b = w.a, w.b
    # A: a parent P and a child C inheriting it; A's device uses P directly
    parent = {"config": {"id": "p-shared-id", "parent_ids": ["base"], "raw_config": {}}}
    assert (await a.api.post("/0.2/cfg_mgr/configs", json=parent)).status_code == 201
    child = {"config": {"id": "c-of-a", "parent_ids": ["p-shared-id"], "raw_config": {}}}
    assert (await a.api.post("/0.2/cfg_mgr/configs", json=child)).status_code == 201
    doc = dict(a.snapshot, config="p-shared-id")
    for key in ("configured", "is_new", "tenant_uuid", "added"):
        doc.pop(key, None)
    assert (
        await a.api.put(f"/0.2/dev_mgr/devices/{a.device}", json={"device": doc})
    ).status_code == 204
    # A deletes P (the references dangle, as upstream allows)
    assert (await a.api.delete("/0.2/cfg_mgr/configs/p-shared-id")).status_code == 204
    # B cannot take the id while A's device still names it: answered like a taken id
    stolen = line_config("p-shared-id", "B-secret-pw-9", "B-admin-9")
    r = await b.api.post("/0.2/cfg_mgr/configs", json=stolen)
    assert (r.status_code, r.text) == (409, "config 'p-shared-id' already exists")
    # once nothing of A's device names it, B may use the id; A's child still never inherits it
    doc["config"] = a.config
    assert (
        await a.api.put(f"/0.2/dev_mgr/devices/{a.device}", json={"device": doc})
    ).status_code == 204
    assert (await b.api.post("/0.2/cfg_mgr/configs", json=stolen)).status_code == 201
    r = await a.api.get("/0.2/cfg_mgr/configs/c-of-a/raw")
    assert r.status_code == 200 and "B-secret-pw-9" not in r.text and "B-admin-9" not in r.text


async def test_template_override_targets_only_own_devices(fresh_world: World) -> None:
    w = fresh_world
    url = "/0.2/pg_mgr/plugins/testphone/templates/device/device.cfg"
    r = await w.a.api.put(url, json={"template": {"target": w.a.device, "source": "# mine\n"}})
    assert r.status_code == 204
    answers = set()
    for target in (w.b.device, w.master.device, "dev-nowhere"):
        r = await w.a.api.put(url, json={"template": {"target": target, "source": "# x\n"}})
        answers.add((r.status_code, r.text.replace(target, "<id>")))
    assert answers == {(400, "template.target: no device '<id>' in this tenant")}
    r = await w.a.api.put(url, json={"template": {"target": "../x", "source": "# x\n"}})
    assert r.status_code == 400 and "template.target" in r.text
    rows = (await w.b.api.get("/0.2/pg_mgr/plugins/testphone/templates")).json()["templates"]
    assert all(row["scope"] == "tenant" for row in rows)


# -- 7. ids are validated where they enter -----------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "field"),
    [
        ("GET", "/0.2/dev_mgr/devices/a..b", "device_id"),
        ("PUT", "/0.2/dev_mgr/devices/a..b", "device_id"),
        ("DELETE", "/0.2/dev_mgr/devices/-x", "device_id"),
        ("GET", "/0.2/dev_mgr/devices/a%20b/provisioning_token", "device_id"),
        ("GET", "/0.2/cfg_mgr/configs/a..b", "config_id"),
        ("GET", "/0.2/cfg_mgr/configs/a%24b/raw", "config_id"),
        ("PUT", "/0.2/cfg_mgr/configs/.hidden", "config_id"),
        ("DELETE", "/0.2/cfg_mgr/configs/a..b", "config_id"),
    ],
)
async def test_ids_in_paths_are_validated(
    server: Server, method: str, path: str, field: str
) -> None:
    r = await server.api.request(method, path, json={"device": {}, "config": {}})
    assert r.status_code == 400 and r.text.startswith(f"{field}:"), r.text


async def test_reconfigure_and_synchronize_validate_their_id(fresh_world: World) -> None:
    w = fresh_world
    for path in ("/0.2/dev_mgr/reconfigure", "/0.2/dev_mgr/synchronize"):
        r = await w.a.api.post(path, json={"id": "../etc"})
        assert r.status_code == 400 and r.text.startswith("id:")


# -- 8. the phone file of a tenant's device carries that tenant's secrets only ------------------


async def test_phone_files_carry_their_own_tenants_secrets(fresh_world: World) -> None:
    w = fresh_world
    for t in (w.master, w.a, w.b):
        r = await w.server.phone.get(
            f"/{t.mac.replace(':', '')}.cfg", headers={"User-Agent": UA.format(mac=t.mac)}
        )
        assert r.status_code == 200
        others = [o for o in (w.master, w.a, w.b) if o is not t]
        assert t.secrets[0].encode() in r.content
        for o in others:
            for s in o.secrets:
                assert s.encode() not in r.content


async def test_phone_file_never_uses_a_config_its_tenant_may_not(fresh_world: World) -> None:
    """A device whose config id now belongs to another tenant (the API refuses to create it,
    but a second node's race or a direct import can) renders without that config."""
    w = fresh_world
    a, b = w.a, w.b
    dangling = "dangling-id"
    doc = dict(a.snapshot, config=dangling)
    await w.server.prov.devices.store.replace(doc)
    stolen = line_config(dangling, "B-secret-pw-7", "B-admin-7")["config"]
    await w.server.prov.configs.store.insert(stolen, b.uuid)
    w.server.prov.configs.invalidate()
    w.server.pipeline.renders.clear()
    keyed = w.server.prov.settings.general.http_auth_strategy == "url_key"
    r = await w.server.phone.get(
        f"{'/' + a.key if keyed else ''}/{a.mac.replace(':', '')}.cfg",
        headers={"User-Agent": f"TestPhone-TP100/1.2.3 ({a.mac})"},
    )
    assert b"B-secret-pw-7" not in r.content and b"B-admin-7" not in r.content
    assert r.status_code == 404  # the device has no config it may use
