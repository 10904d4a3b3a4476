"""``/0.2``, ``/0.2/status`` and ``/0.2/configure`` through real HTTP (§2, §9 params)."""

from __future__ import annotations

import pytest
import yaml

from tests.conftest import Server


async def test_index_and_status(server: Server) -> None:
    r = await server.api.get("/0.2")
    rels = [link["rel"] for link in r.json()["links"]]
    assert rels == ["dev", "cfg", "pg", "status", "srv.configure"]
    r = await server.api.get("/0.2/status")
    assert r.json() == {
        "rest_api": "ok",
        "bus_consumer": {"status": "ok"},
        "database": {"status": "ok"},
    }


async def test_api_spec_is_swagger_2(server: Server) -> None:
    async with server.client("no-token") as anon:
        r = await anon.get("/0.2/api/api.yml")
    spec = yaml.safe_load(r.text)
    assert spec["swagger"] == "2.0"
    assert "/dev_mgr/devices" in spec["paths"]


async def test_params_list_and_unknown(server: Server) -> None:
    params = (await server.api.get("/0.2/configure")).json()["params"]
    ids = {p["id"] for p in params}
    assert {
        "plugin_server",
        "http_proxy",
        "https_proxy",
        "ftp_proxy",
        "locale",
        "NAT",
        "provisioning_key",
    } <= ids
    assert all(p["links"][0]["rel"] == "srv.configure.param" for p in params)
    assert (await server.api.get("/0.2/configure/nope")).status_code == 404


@pytest.mark.parametrize(
    ("name", "good", "bad"),
    [
        ("locale", "fr_FR", "french"),
        ("http_proxy", "http://u:p@proxy:3128", "proxy:3128"),
        ("https_proxy", "proxy:3128", ""),
        ("plugin_server", "http://127.0.0.1:9/repo/", "not a url"),
    ],
)
async def test_param_validation(server: Server, name: str, good: str, bad: str) -> None:
    url = f"/0.2/configure/{name}"
    assert (await server.api.put(url, json={"param": {"value": good}})).status_code == 204
    assert (await server.api.get(url)).json() == {"param": {"value": good}}
    r = await server.api.put(url, json={"param": {"value": bad}})
    assert r.status_code == 400 and name in r.text
    assert (await server.api.get(url)).json() == {"param": {"value": good}}
    assert (await server.api.put(url, json={"param": {"value": None}})).status_code == 204
    assert (await server.api.get(url)).json()["param"]["value"] is None


async def test_nat_values(server: Server) -> None:
    url = "/0.2/configure/NAT"
    for value, expected in (("1", 1), ("0", 0), (None, 0), (1, 1), (0, 0)):
        assert (await server.api.put(url, json={"param": {"value": value}})).status_code == 204
        assert (await server.api.get(url)).json()["param"]["value"] == expected
    for bad in ("2", "yes", [1]):
        assert (await server.api.put(url, json={"param": {"value": bad}})).status_code == 400


async def test_bad_token_put_leaves_value(server: Server) -> None:
    await server.api.put("/0.2/configure/locale", json={"param": {"value": "fr_FR"}})
    r = await server.api.put(
        "/0.2/configure/locale", json={"param": {"value": "en_US"}}, headers={"X-Auth-Token": "bad"}
    )
    assert r.status_code == 401
    assert (await server.api.get("/0.2/configure/locale")).json()["param"]["value"] == "fr_FR"


async def test_provisioning_key_rules(server: Server) -> None:
    sub1 = (await server.prov.tenants.create("sub1")).uuid
    sub2 = (await server.prov.tenants.create("sub2")).uuid
    url = "/0.2/configure/provisioning_key"
    h1, h2 = {"Wazo-Tenant": sub1}, {"Wazo-Tenant": sub2}
    assert (await server.api.get(url, headers=h1)).json()["param"]["value"] is None
    assert (
        await server.api.put(url, json={"param": {"value": "key-one-1"}}, headers=h1)
    ).status_code == 204
    assert (await server.api.get(url, headers=h1)).json()["param"]["value"] == "key-one-1"
    assert (
        await server.api.put(url, json={"param": {"value": "key-one-1"}}, headers=h1)
    ).status_code == 204
    r = await server.api.put(url, json={"param": {"value": "key-one-1"}}, headers=h2)
    assert r.status_code == 400 and "another tenant" in r.text
    for bad in ("a" * 7, "a" * 257, "bad%key-1", 12345678):
        assert (
            await server.api.put(url, json={"param": {"value": bad}}, headers=h2)
        ).status_code == 400
    assert (
        await server.api.put(url, json={"param": {"value": "a" * 256}}, headers=h2)
    ).status_code == 204
    assert (
        await server.api.put(url, json={"param": {"value": None}}, headers=h1)
    ).status_code == 204
    assert (await server.api.put(url, json={"param": {"value": ""}}, headers=h2)).status_code == 204
    assert (await server.api.get(url, headers=h2)).json()["param"]["value"] is None
    # a tenant the token may not see
    token1 = await server.token_for(sub1)
    async with server.client(token1) as c1:
        assert (await c1.get(url, headers=h2)).status_code == 401
        assert (await c1.get(url)).json()["param"]["value"] is None
