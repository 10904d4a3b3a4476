"""``/0.2/cfg_mgr`` through real HTTP: CRUD, raw, inheritance, autocreate, tenant scoping."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Server


def config(cid: str, parents: list[str] | None = None, **raw: Any) -> dict[str, Any]:
    return {
        "config": {"id": cid, "parent_ids": parents or [], "raw_config": raw, "deletable": True}
    }


async def test_system_configs_exist(server: Server) -> None:
    ids = {c["id"] for c in (await server.api.get("/0.2/cfg_mgr/configs")).json()["configs"]}
    assert {"base", "default", "defaultconfigdevice", "autoprov"} <= ids
    base = (await server.api.get("/0.2/cfg_mgr/configs/base")).json()["config"]
    assert base["raw_config"]["http_base_url"] == "http://127.0.0.1:8667"
    assert base["deletable"] is False


async def test_create_get_raw_update_delete(server: Server) -> None:
    r = await server.api.post(
        "/0.2/cfg_mgr/configs",
        json=config("parent", ["base"], ntp_enabled=True, ntp_ip="10.0.0.1", X_a="p"),
    )
    assert r.status_code == 201 and r.json() == {"id": "parent"}
    assert r.headers["location"] == "/0.2/cfg_mgr/configs/parent"
    r = await server.api.post(
        "/0.2/cfg_mgr/configs", json=config("child", ["parent"], X_a="c", X_b="c")
    )
    assert r.status_code == 201
    raw = (await server.api.get("/0.2/cfg_mgr/configs/child/raw")).json()["raw_config"]
    assert raw["X_a"] == "c" and raw["X_b"] == "c" and raw["ntp_ip"] == "10.0.0.1"
    assert raw["ip"] == "127.0.0.1"  # base raw config injected
    got = (await server.api.get("/0.2/cfg_mgr/configs/child")).json()["config"]
    assert got["parent_ids"] == ["parent"] and got["raw_config"] == {"X_a": "c", "X_b": "c"}

    # changing the parent is seen by the child at once
    r = await server.api.put(
        "/0.2/cfg_mgr/configs/parent",
        json=config("parent", ["base"], ntp_enabled=True, ntp_ip="10.9.9.9"),
    )
    assert r.status_code == 204
    raw = (await server.api.get("/0.2/cfg_mgr/configs/child/raw")).json()["raw_config"]
    assert raw["ntp_ip"] == "10.9.9.9"

    assert (await server.api.delete("/0.2/cfg_mgr/configs/child")).status_code == 204
    for path in ("/0.2/cfg_mgr/configs/child", "/0.2/cfg_mgr/configs/child/raw"):
        assert (await server.api.get(path)).status_code == 404
    assert (await server.api.delete("/0.2/cfg_mgr/configs/child")).status_code == 404
    assert (
        await server.api.put("/0.2/cfg_mgr/configs/None", json=config("None"))
    ).status_code == 404


async def test_diamond_inheritance_later_parent_wins(server: Server) -> None:
    await server.api.post("/0.2/cfg_mgr/configs", json=config("a", ["base"], X_k="a", X_a="a"))
    await server.api.post("/0.2/cfg_mgr/configs", json=config("b", ["base"], X_k="b"))
    await server.api.post("/0.2/cfg_mgr/configs", json=config("c", ["a", "b"]))
    raw = (await server.api.get("/0.2/cfg_mgr/configs/c/raw")).json()["raw_config"]
    assert raw["X_k"] == "b" and raw["X_a"] == "a"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"config": {"id": "x", "raw_config": {}}}, "parent_ids"),
        ({"config": {"id": "x", "parent_ids": ["nope"], "raw_config": {}}}, "nope"),
        ({"config": {"id": "x/../y", "parent_ids": [], "raw_config": {}}}, "config.id"),
        ({"config": {"id": "x", "parent_ids": [], "raw_config": {"vlan_id": 5000}}}, "vlan_id"),
        (
            {"config": {"id": "x", "parent_ids": [], "raw_config": {"unknown_key": 1}}},
            "unknown_key",
        ),
        ({"config": {"id": "x", "parent_ids": [], "raw_config": {"XX_plugin": 1}}}, "XX_"),
        ({"config": {"id": "x", "parent_ids": [], "raw_config": []}}, "raw_config"),
        ({"nope": {}}, "config"),
    ],
)
async def test_create_bad_input(server: Server, body: dict[str, Any], fragment: str) -> None:
    r = await server.api.post("/0.2/cfg_mgr/configs", json=body)
    assert r.status_code == 400, r.text
    assert fragment in r.text
    assert (await server.api.get("/0.2/cfg_mgr/configs/x")).status_code == 404


async def test_cycle_is_refused_and_nothing_changes(server: Server) -> None:
    await server.api.post("/0.2/cfg_mgr/configs", json=config("c1", ["base"]))
    await server.api.post("/0.2/cfg_mgr/configs", json=config("c2", ["c1"]))
    r = await server.api.put("/0.2/cfg_mgr/configs/c1", json=config("c1", ["c2"]))
    assert r.status_code == 400
    got = (await server.api.get("/0.2/cfg_mgr/configs/c1")).json()["config"]
    assert got["parent_ids"] == ["base"]


async def test_put_validation_error_is_400_not_500(server: Server) -> None:
    await server.api.post("/0.2/cfg_mgr/configs", json=config("v", ["base"]))
    r = await server.api.put(
        "/0.2/cfg_mgr/configs/v", json=config("v", ["base"], sip_lines={"1": {"username": 3}})
    )
    assert r.status_code == 400
    assert "sip_lines.1.username" in r.text


async def test_1024_sip_lines(server: Server) -> None:
    lines = {
        str(n): {"username": f"u{n}", "password": f"p{n}", "display_name": f"L{n}"}
        for n in range(1, 1025)
    }
    r = await server.api.post("/0.2/cfg_mgr/configs", json=config("big", ["base"], sip_lines=lines))
    assert r.status_code == 201
    raw = (await server.api.get("/0.2/cfg_mgr/configs/big/raw")).json()["raw_config"]
    assert len(raw["sip_lines"]) == 1024


async def test_non_deletable_then_deletable(server: Server) -> None:
    body = config("nd", ["base"])
    body["config"]["deletable"] = False
    await server.api.post("/0.2/cfg_mgr/configs", json=body)
    assert (await server.api.delete("/0.2/cfg_mgr/configs/nd")).status_code == 403
    body["config"]["deletable"] = True
    assert (await server.api.put("/0.2/cfg_mgr/configs/nd", json=body)).status_code == 204
    assert (await server.api.delete("/0.2/cfg_mgr/configs/nd")).status_code == 204


async def test_autocreate(server: Server) -> None:
    r = await server.api.post("/0.2/cfg_mgr/autocreate", json={})
    assert r.status_code == 201
    cid = r.json()["id"]
    got = (await server.api.get(f"/0.2/cfg_mgr/configs/{cid}")).json()["config"]
    assert got["parent_ids"] == ["autoprov"] and got["transient"] is True


async def test_configs_are_tenant_scoped(server: Server) -> None:
    sub1 = (await server.prov.tenants.create("sub1")).uuid
    sub2 = (await server.prov.tenants.create("sub2")).uuid
    secret = {"1": {"username": "alice", "password": "S3cret-alice"}}
    r = await server.api.post(
        "/0.2/cfg_mgr/configs",
        json=config("alice", ["base"], sip_lines=secret),
        headers={"Wazo-Tenant": sub1},
    )
    assert r.status_code == 201
    token2 = await server.token_for(sub2)
    async with server.client(token2) as c2:
        ids = {c["id"] for c in (await c2.get("/0.2/cfg_mgr/configs")).json()["configs"]}
        assert "alice" not in ids and "base" in ids
        for path in ("/0.2/cfg_mgr/configs/alice", "/0.2/cfg_mgr/configs/alice/raw"):
            r = await c2.get(path)
            assert r.status_code == 404 and "S3cret" not in r.text
        assert (await c2.delete("/0.2/cfg_mgr/configs/alice")).status_code == 404
        # a sub-tenant may not change shared system configs
        r = await c2.put("/0.2/cfg_mgr/configs/default", json=config("default", ["base"]))
        assert r.status_code == 403
    token1 = await server.token_for(sub1)
    async with server.client(token1) as c1:
        assert (await c1.get("/0.2/cfg_mgr/configs/alice")).status_code == 200
