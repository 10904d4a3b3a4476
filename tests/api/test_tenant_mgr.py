"""``/0.2/tenant_mgr``: tenants and their TFTP switch over the REST API, within the caller's
subtree, on a running server with real clients (httpx, the TFTP client of the test suite)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Server, make_settings, start_server
from tests.provisioning.tftp_client import TftpError, tftp_get

BASE = "/0.2/tenant_mgr/tenants"


async def _create(server: Server, token: str, name: str, parent: str | None = None) -> str:
    body: dict[str, object] = {"name": name}
    if parent:
        body["parent_uuid"] = parent
    async with server.client(token) as api:
        r = await api.post(BASE, json={"tenant": body})
    assert r.status_code == 201, r.text
    uuid = str(r.json()["id"])
    assert r.headers["location"] == f"{BASE}/{uuid}"
    return uuid


async def test_master_creates_lists_renames_and_deletes(server: Server) -> None:
    acme = await _create(server, server.token, "acme")
    r = await server.api.get(BASE)
    assert r.status_code == 200
    tenants = r.json()["tenants"]
    assert [t["name"] for t in tenants] == ["master", "acme"]
    assert tenants[1] == {
        "uuid": acme,
        "name": "acme",
        "parent_uuid": server.master,
        "is_master": False,
        "tftp_enabled": True,
        "provisioning_key_set": False,
    }
    r = await server.api.put(f"{BASE}/{acme}", json={"tenant": {**tenants[1], "name": "Acme"}})
    assert r.status_code == 204, r.text
    assert (await server.api.get(f"{BASE}/{acme}")).json()["tenant"]["name"] == "Acme"
    r = await server.api.put(f"{BASE}/{acme}", json={"tenant": {"is_master": True}})
    assert r.status_code == 400 and "is_master" in r.text
    r = await server.api.put(f"{BASE}/{acme}", json={"tenant": {"colour": "red"}})
    assert r.status_code == 400 and "colour" in r.text
    r = await server.api.put(f"{BASE}/{acme}", json={"tenant": {"name": ""}})
    assert r.status_code == 400 and "name" in r.text

    async with server.client(server.token, **{"Wazo-Tenant": acme}) as api:
        r = await api.post("/0.2/dev_mgr/devices", json={"device": {"mac": "00:11:22:33:44:55"}})
        assert r.status_code == 201, r.text
    acme_token = await server.token_for(acme)
    async with server.client(acme_token) as api:
        assert (await api.get("/0.2/dev_mgr/devices")).status_code == 200  # now cached
    r = await server.api.delete(f"{BASE}/{acme}")
    assert r.status_code == 409 and "1 device" in r.text
    assert (await server.api.get(f"{BASE}/{acme}")).status_code == 200  # still there
    assert (await server.api.delete(f"{BASE}/{acme}?force=maybe")).status_code == 400
    assert (await server.api.delete(f"{BASE}/{acme}?force=true")).status_code == 204
    assert (await server.api.get(f"{BASE}/{acme}")).status_code == 404
    assert (await server.api.get("/0.2/dev_mgr/devices?recurse=true")).json()["devices"] == []
    async with server.client(acme_token) as api:  # its tokens went with it, cache included
        assert (await api.get("/0.2/dev_mgr/devices")).status_code == 401
    assert server.prov.tenants.get(acme) is None  # and nothing brought the tenant back

    r = await server.api.delete(f"{BASE}/{server.master}")
    assert r.status_code == 400 and "cannot delete its own tenant" in r.text


async def test_a_tenant_sees_and_changes_only_its_subtree(server: Server) -> None:
    acme = await _create(server, server.token, "acme")
    other = await _create(server, server.token, "other")
    token = await server.token_for(acme)
    branch = await _create(server, token, "branch")  # under the caller's own tenant
    async with server.client(token) as api:
        listed = {t["uuid"] for t in (await api.get(BASE)).json()["tenants"]}
        assert listed == {acme, branch}
        for outside in (other, server.master):
            assert (await api.get(f"{BASE}/{outside}")).status_code == 404
            r = await api.put(f"{BASE}/{outside}", json={"tenant": {"name": "x"}})
            assert r.status_code == 404
            assert (await api.delete(f"{BASE}/{outside}")).status_code == 404
            assert (await api.get(f"{BASE}/{outside}/tftp")).status_code == 404
            r = await api.put(f"{BASE}/{outside}/tftp", json={"tftp": {"enabled": False}})
            assert r.status_code == 404
        # only master-tenant callers make top-level tenants
        r = await api.post(BASE, json={"tenant": {"name": "top", "parent_uuid": server.master}})
        assert r.status_code == 400 and "parent_uuid" in r.text
        r = await api.put(f"{BASE}/{branch}", json={"tenant": {"name": "Branch"}})
        assert r.status_code == 204
        r = await api.delete(f"{BASE}/{acme}")
        assert r.status_code == 400 and "own tenant" in r.text
        assert (await api.delete(f"{BASE}/{branch}")).status_code == 204
    assert server.prov.tenants.get(branch) is None
    assert server.prov.tenants.get(other) is not None


async def test_acls_are_checked(server: Server) -> None:
    acme = await _create(server, server.token, "acme")
    reader = await server.token_for(server.master, ["provd.tenant_mgr.tenants.#.read"])
    async with server.client(reader) as api:
        assert (await api.get(f"{BASE}/{acme}")).status_code == 200
        assert (await api.get(f"{BASE}/{acme}/tftp")).status_code == 200
        r = await api.put(f"{BASE}/{acme}/tftp", json={"tftp": {"enabled": False}})
        assert r.status_code == 401
        assert (await api.delete(f"{BASE}/{acme}")).status_code == 401
        assert (await api.post(BASE, json={"tenant": {"name": "x"}})).status_code == 401
    async with server.client("no-such-token") as api:
        assert (await api.get(BASE)).status_code == 401


async def test_bad_bodies_are_400(server: Server) -> None:
    acme = await _create(server, server.token, "acme")
    for body in ({}, {"tenant": "acme"}, {"tenant": {"name": 3}}, {"tenant": {"uuid": "x"}}):
        r = await server.api.post(BASE, json=body)
        assert r.status_code == 400, (body, r.text)
    for body in ({}, {"tftp": {"enabled": "no"}}, {"tftp": {"enabled": True, "x": 1}}):
        r = await server.api.put(f"{BASE}/{acme}/tftp", json=body)
        assert r.status_code == 400, (body, r.text)
    r = await server.api.post(BASE, json={"tenant": {"name": "x" * 256}})
    assert r.status_code == 400 and "255" in r.text


async def test_tftp_switch_through_the_api_reaches_tftp_clients(
    tmp_path: Path, database_url: str
) -> None:
    server = await start_server(
        make_settings(
            tmp_path,
            database_url,
            **{"provisioning.tftp_enabled": True, "general.http_auth_strategy": "url_key"},
        )
    )
    try:
        port = server.running.ports["tftp"]
        acme = await _create(server, server.token, "acme")
        await server.prov.tenants.set_key(acme, "tftp-key-02")
        token = await server.token_for(acme)
        path = "tftp-key-02/001122334455.cfg"
        assert b"device file" in await tftp_get("127.0.0.1", port, path)
        async with server.client(token) as api:  # the tenant switches its own TFTP off
            r = await api.put(f"{BASE}/{acme}/tftp", json={"tftp": {"enabled": False}})
            assert r.status_code == 204, r.text
            assert (await api.get(f"{BASE}/{acme}/tftp")).json() == {"tftp": {"enabled": False}}
        with pytest.raises(TftpError):
            await tftp_get("127.0.0.1", port, path)
        r = await server.api.put(f"{BASE}/{acme}/tftp", json={"tftp": {"enabled": True}})
        assert r.status_code == 204
        assert b"device file" in await tftp_get("127.0.0.1", port, path)
    finally:
        await server.close()
