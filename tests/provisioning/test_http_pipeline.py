"""Phones fetching files over HTTP from a running provisor (the test plugin ``testphone``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Server, make_settings, start_server

MAC = "00:11:22:33:44:55"
UA = f"TestPhone-TP100/1.2.3 ({MAC})"


async def configure(
    server: Server, device_id: str, *, password: str = "Pw-line1", tenant: str | None = None
) -> None:
    """Give a device a config with one SIP line."""
    headers = {"Wazo-Tenant": tenant} if tenant else {}
    body = {
        "config": {
            "id": f"cfg-{device_id}",
            "parent_ids": ["base"],
            "raw_config": {
                "ntp_enabled": True,
                "ntp_ip": "10.0.0.9",
                "admin_password": "Admin-pw",
                "sip_lines": {
                    "1": {"username": "alice", "password": password, "proxy_ip": "10.0.0.2"}
                },
            },
        }
    }
    r = await server.api.post("/0.2/cfg_mgr/configs", json=body, headers=headers)
    assert r.status_code == 201, r.text
    doc = (await server.api.get(f"/0.2/dev_mgr/devices/{device_id}", headers=headers)).json()[
        "device"
    ]
    doc["config"] = f"cfg-{device_id}"
    r = await server.api.put(
        f"/0.2/dev_mgr/devices/{device_id}", json={"device": doc}, headers=headers
    )
    assert r.status_code == 204, r.text


async def devices(server: Server) -> list[dict[str, Any]]:
    r = await server.api.get("/0.2/dev_mgr/devices", params={"recurse": "true"})
    return list(r.json()["devices"])


async def test_new_phone_is_created_associated_and_served(server: Server) -> None:
    r = await server.phone.get("/tp/common.cfg", headers={"User-Agent": UA})
    assert r.status_code == 200
    assert b"server = http://127.0.0.1:8667" in r.content
    [device] = await devices(server)
    assert device["mac"] == MAC and device["model"] == "TP100" and device["version"] == "1.2.3"
    assert (
        device["plugin"] == "testphone" and device["added"] == "auto" and device["is_new"] is True
    )
    assert device["ip"] == "127.0.0.1"
    assert device["config"].startswith("autoprov")  # autocreated from the autoprov template
    # the device file, with the autoprov line
    r = await server.phone.get("/001122334455.cfg", headers={"User-Agent": UA})
    assert r.status_code == 200
    assert b"line1.user = anonymous" in r.content
    log = (server.prov.settings.security_log).read_text()
    assert f"New device created automatically from 127.0.0.1: {device['id']}" in log
    assert "Sensitive file requested from 127.0.0.1: 001122334455.cfg" in log


async def test_configured_device_gets_credentials_and_fresh_bytes(server: Server) -> None:
    await server.phone.get("/tp/common.cfg", headers={"User-Agent": UA})
    [device] = await devices(server)
    await configure(server, device["id"])
    r = await server.phone.get("/001122334455.cfg", headers={"User-Agent": UA})
    assert b"line1.user = alice" in r.content and b"line1.password = Pw-line1" in r.content
    assert b"line1.registrar = 10.0.0.2" in r.content  # host defaults applied
    etag = r.headers["etag"]
    # conditional GET
    r2 = await server.phone.get(
        "/001122334455.cfg", headers={"User-Agent": UA, "If-None-Match": etag}
    )
    assert r2.status_code == 304 and r2.content == b""
    # HEAD
    r3 = await server.phone.head("/001122334455.cfg", headers={"User-Agent": UA})
    assert r3.status_code == 200 and int(r3.headers["content-length"]) == len(r.content)
    # a parent change is seen at the next fetch
    base = (await server.api.get("/0.2/cfg_mgr/configs/cfg-" + device["id"])).json()["config"]
    base["raw_config"]["ntp_ip"] = "10.0.0.77"
    assert (
        await server.api.put("/0.2/cfg_mgr/configs/cfg-" + device["id"], json={"config": base})
    ).status_code == 204
    r4 = await server.phone.get(
        "/001122334455.cfg", headers={"User-Agent": UA, "If-None-Match": etag}
    )
    assert r4.status_code == 200 and b"ntp = 10.0.0.77" in r4.content
    # remote state learnt from the trigger file
    doc = (await server.api.get(f"/0.2/dev_mgr/devices/{device['id']}")).json()["device"]
    assert doc["configured"] is True
    assert doc["remote_state_sip_username"] == "alice"


async def test_static_file_and_range(server: Server) -> None:
    r = await server.phone.get("/tp/logo.txt", headers={"User-Agent": UA, "Range": "bytes=0-3"})
    assert r.status_code == 206 and r.content == b"TEST"
    assert r.headers["content-range"].endswith("/15")
    r = await server.phone.get("/tp/logo.txt", headers={"User-Agent": UA, "Range": "bytes=99-"})
    assert r.status_code == 416


async def test_nowhere_to_route(server: Server) -> None:
    r = await server.phone.get("/unknown/file.bin", headers={"User-Agent": "curl/8"})
    assert r.status_code == 404 and r.content == b"Nowhere to route this request."
    r = await server.phone.get("/tp/nope.cfg", headers={"User-Agent": UA})
    assert r.status_code == 404
    assert (await server.phone.post("/tp/common.cfg")).status_code == 405


@pytest.mark.parametrize(
    "path",
    [
        "/../etc/passwd",
        "/%2e%2e/etc/passwd",
        "/tp/..%2f..%2fetc",
        "/tp%00/x",
        "/%252e%252e/x",
        "/..\\..\\x",
    ],
)
async def test_traversal_is_refused(server: Server, path: str) -> None:
    r = await server.phone.get(path, headers={"User-Agent": UA})
    assert r.status_code == 404


async def test_non_ascii_user_agent(server: Server) -> None:
    r = await server.phone.get(
        "/tp/common.cfg", headers={"User-Agent": b"TestPhone-\xff\xfe/1 (zz)"}
    )
    assert r.status_code == 404
    assert (await devices(server)) == []


async def test_overlong_identification_is_not_stored(server: Server) -> None:
    """A UA whose model is longer than the API would accept still boots the phone, but the
    value is not stored (the REST API refuses it with a 400 naming the bound)."""
    ua = f"TestPhone-{'M' * 300}/{'1.' * 100}2 ({MAC})"
    r = await server.phone.get("/tp/common.cfg", headers={"User-Agent": ua})
    assert r.status_code == 200
    [device] = await devices(server)
    assert device["mac"] == MAC and device["vendor"] == "TestVendor"
    assert "model" not in device and "version" not in device


async def test_other_devices_file_is_refused(server: Server) -> None:
    await server.phone.get("/tp/common.cfg", headers={"User-Agent": UA})
    other = "00:11:22:00:00:01"
    await server.phone.get(
        "/tp/common.cfg", headers={"User-Agent": f"TestPhone-TP100/1.2.3 ({other})"}
    )
    r = await server.phone.get("/001122000001.cfg", headers={"User-Agent": UA})
    assert r.status_code == 404
    entries = server.pipeline.trace.query(client_ip="127.0.0.1", limit=1)
    assert entries[0]["reason"] == "path names another device's file"


async def test_trace_endpoint_explains(server: Server) -> None:
    await server.phone.get("/tp/common.cfg", headers={"User-Agent": UA})
    [device] = await devices(server)
    r = await server.api.get("/0.2/dev_mgr/requests", params={"device": device["id"]})
    [entry] = r.json()["requests"]
    assert entry["status"] == 200 and entry["plugin"] == "testphone" and entry["created"] is True
    assert entry["identified"]["mac"] == MAC
    when = datetime.fromisoformat(entry["time"])  # ISO 8601, UTC
    assert when.tzinfo is not None and abs((datetime.now(UTC) - when).total_seconds()) < 3600
    assert (await server.api.get("/0.2/dev_mgr/requests", params={"limit": "x"})).status_code == 400


async def test_url_key_strategy(tmp_path: Path, database_url: str) -> None:
    srv = await start_server(
        make_settings(tmp_path, database_url, **{"general.http_auth_strategy": "url_key"})
    )
    try:
        sub_a = (await srv.prov.tenants.create("a")).uuid
        sub_b = (await srv.prov.tenants.create("b")).uuid
        await srv.prov.tenants.set_key(sub_a, "key-of-a-123")
        await srv.prov.tenants.set_key(sub_b, "key-of-b-456")
        # no key, wrong key, a key of the wrong length: the same 404
        for path in ("/tp/common.cfg", "/wrong-key-1/tp/common.cfg", "/k/tp/common.cfg"):
            r = await srv.phone.get(path, headers={"User-Agent": UA})
            assert r.status_code == 404 and r.content == b"Nowhere to route this request."
        assert await devices(srv) == []
        # tenant A's key creates the device in tenant A; its URLs carry the key
        r = await srv.phone.get("/key-of-a-123/tp/common.cfg", headers={"User-Agent": UA})
        assert r.status_code == 200 and b"http://127.0.0.1:8667/key-of-a-123" in r.content
        [device] = await devices(srv)
        assert device["tenant_uuid"] == sub_a
        # tenant B's key does not serve tenant A's device (upstream does)
        r = await srv.phone.get("/key-of-b-456/001122334455.cfg", headers={"User-Agent": UA})
        assert r.status_code == 404
        # the key changes: URLs follow
        await srv.prov.tenants.set_key(sub_a, "new-key-of-a")
        r = await srv.phone.get("/new-key-of-a/tp/common.cfg", headers={"User-Agent": UA})
        assert b"/new-key-of-a" in r.content
        assert (
            await srv.phone.get("/key-of-a-123/tp/common.cfg", headers={"User-Agent": UA})
        ).status_code == 404
    finally:
        await srv.close()


async def test_advertised_url_path_is_served_without_a_proxy(
    tmp_path: Path, database_url: str
) -> None:
    """Wazo's remote provisioning URL, https://host/device/provisioning/<key>/…: the phone is
    told that path and provisor's own listener answers it (no nginx in front)."""
    srv = await start_server(
        make_settings(
            tmp_path,
            database_url,
            **{
                "general.http_auth_strategy": "url_key",
                "general.advertised_http_url": "http://127.0.0.1:8667/device/provisioning/",
            },
        )
    )
    try:
        tenant = (await srv.prov.tenants.create("a")).uuid
        await srv.prov.tenants.set_key(tenant, "key-of-a-123")
        r = await srv.phone.get(
            "/device/provisioning/key-of-a-123/tp/common.cfg", headers={"User-Agent": UA}
        )
        assert r.status_code == 200, r.text
        told = b"http://127.0.0.1:8667/device/provisioning/key-of-a-123"
        assert told in r.content
        [device] = await devices(srv)
        assert device["tenant_uuid"] == tenant
        # the URL the file gives is one provisor answers; the bare form keeps working
        r = await srv.phone.get(
            "/device/provisioning/key-of-a-123/001122334455.cfg", headers={"User-Agent": UA}
        )
        assert r.status_code == 200
        r = await srv.phone.get("/key-of-a-123/tp/common.cfg", headers={"User-Agent": UA})
        assert r.status_code == 200
        # the prefix is not a key: without one the answer is the same refusal as ever
        r = await srv.phone.get("/device/provisioning/tp/common.cfg", headers={"User-Agent": UA})
        assert r.status_code == 404
    finally:
        await srv.close()


async def test_device_token_strategy(tmp_path: Path, database_url: str) -> None:
    srv = await start_server(
        make_settings(tmp_path, database_url, **{"general.http_auth_strategy": "device_token"})
    )
    try:
        tenant = (await srv.prov.tenants.create("t")).uuid
        await srv.prov.tenants.set_key(tenant, "tenant-key-1")
        r = await srv.phone.get("/tenant-key-1/001122334455.cfg", headers={"User-Agent": UA})
        assert r.status_code == 200
        [device] = await devices(srv)
        await configure(srv, device["id"], password="Very-Secret-9")
        # bootstrap: the key alone gets the file with secrets blanked, and the token URL
        r = await srv.phone.get("/tenant-key-1/001122334455.cfg", headers={"User-Agent": UA})
        assert r.status_code == 200
        assert b"Very-Secret-9" not in r.content and b"Admin-pw" not in r.content
        assert b"line1.user = alice" in r.content
        token = (
            await srv.api.get(f"/0.2/dev_mgr/devices/{device['id']}/provisioning_token")
        ).json()["provisioning_token"]
        assert f"/tenant-key-1/{token}".encode() in r.content
        # with its token: the secrets
        r = await srv.phone.get(
            f"/tenant-key-1/{token}/001122334455.cfg", headers={"User-Agent": UA}
        )
        assert r.status_code == 200 and b"Very-Secret-9" in r.content
        # another device's file with this token: nothing
        other = "00:11:22:00:00:02"
        await srv.phone.get(
            "/tenant-key-1/tp/common.cfg", headers={"User-Agent": f"TestPhone-TP100/1 ({other})"}
        )
        r = await srv.phone.get(
            f"/tenant-key-1/{token}/001122000002.cfg", headers={"User-Agent": UA}
        )
        assert r.status_code == 404
        # a wrong token: nothing, and rotation invalidates the old token
        r = await srv.phone.get(
            "/tenant-key-1/" + "x" * 32 + "/001122334455.cfg", headers={"User-Agent": UA}
        )
        assert r.status_code == 404
        new = (
            await srv.api.post(f"/0.2/dev_mgr/devices/{device['id']}/provisioning_token")
        ).json()["provisioning_token"]
        r = await srv.phone.get(
            f"/tenant-key-1/{token}/001122334455.cfg", headers={"User-Agent": UA}
        )
        assert r.status_code == 404
        r = await srv.phone.get(f"/tenant-key-1/{new}/001122334455.cfg", headers={"User-Agent": UA})
        assert r.status_code == 200 and b"Very-Secret-9" in r.content
    finally:
        await srv.close()


async def test_a_device_token_is_handed_out_until_the_phone_uses_it(
    tmp_path: Path, database_url: str
) -> None:
    """Trust on first use: once the phone has fetched with its token, a bootstrap request (the
    tenant key and the MAC, which a scanner on the phones' network may have) gets no token;
    rotating the token opens the bootstrap again for a phone that was reset."""
    srv = await start_server(
        make_settings(tmp_path, database_url, **{"general.http_auth_strategy": "device_token"})
    )
    try:
        tenant = (await srv.prov.tenants.create("t")).uuid
        await srv.prov.tenants.set_key(tenant, "tenant-key-1")
        bootstrap = "/tenant-key-1/001122334455.cfg"
        assert (await srv.phone.get(bootstrap, headers={"User-Agent": UA})).status_code == 200
        [device] = await devices(srv)
        await configure(srv, device["id"], password="Very-Secret-9")
        url = f"/0.2/dev_mgr/devices/{device['id']}/provisioning_token"
        token = (await srv.api.get(url)).json()["provisioning_token"]
        for _ in range(2):  # before the phone used it: handed out, every time
            r = await srv.phone.get(bootstrap, headers={"User-Agent": UA})
            assert r.status_code == 200 and f"/tenant-key-1/{token}".encode() in r.content
        r = await srv.phone.get(
            f"/tenant-key-1/{token}/001122334455.cfg", headers={"User-Agent": UA}
        )
        assert r.status_code == 200 and b"Very-Secret-9" in r.content
        assert (await srv.api.get(f"/0.2/dev_mgr/devices/{device['id']}")).json()["device"][
            "token_taken"
        ] is True
        for _ in range(2):  # the phone took it: a bootstrap now gets neither token nor secret
            r = await srv.phone.get(bootstrap, headers={"User-Agent": UA})
            assert r.status_code == 200 and b"line1.user = alice" in r.content
            assert token.encode() not in r.content and b"Very-Secret-9" not in r.content
        first, _ = reversed(srv.pipeline.trace.query(client_ip="127.0.0.1", limit=2))
        assert "the phone already took it" in first["reason"]  # the repeat is served hot
        # the phone keeps its secrets; a client cannot reopen the bootstrap through a PUT
        r = await srv.phone.get(
            f"/tenant-key-1/{token}/001122334455.cfg", headers={"User-Agent": UA}
        )
        assert b"Very-Secret-9" in r.content
        doc = (await srv.api.get(f"/0.2/dev_mgr/devices/{device['id']}")).json()["device"]
        doc["token_taken"] = False
        put = await srv.api.put(f"/0.2/dev_mgr/devices/{device['id']}", json={"device": doc})
        assert put.status_code == 204
        r = await srv.phone.get(bootstrap, headers={"User-Agent": UA})
        assert token.encode() not in r.content
        # an operator's rotation does: the reset phone bootstraps with the new token
        new = (await srv.api.post(url)).json()["provisioning_token"]
        r = await srv.phone.get(bootstrap, headers={"User-Agent": UA})
        assert f"/tenant-key-1/{new}".encode() in r.content and b"Very-Secret-9" not in r.content
    finally:
        await srv.close()


async def test_mac_scanner_is_banned_but_nat_site_is_not(tmp_path: Path, database_url: str) -> None:
    srv = await start_server(
        make_settings(
            tmp_path,
            database_url,
            **{
                "general.http_auth_strategy": "url_key",
                "general.http_proxied_trusted_proxies_count": 1,
                "provisioning.ban_threshold": 20,
                "provisioning.auto_create_per_source": 1000,
            },
        )
    )
    try:
        tenant = (await srv.prov.tenants.create("site")).uuid
        await srv.prov.tenants.set_key(tenant, "site-key-01")
        # 200 phones behind one NAT boot, then reboot together: common file, an optional
        # miss, device file
        nat = {"X-Forwarded-For": "203.0.113.7"}
        for n in [*range(200), *range(200)]:
            mac = f"00:11:22:00:{n // 256:02x}:{n % 256:02x}"
            ua = {"User-Agent": f"TestPhone-TP100/1.2.3 ({mac})", **nat}
            assert (
                await srv.phone.get("/site-key-01/tp/common.cfg", headers=ua)
            ).status_code == 200
            r = await srv.phone.get(f"/site-key-01/optional-{mac.replace(':', '')}.cfg", headers=ua)
            assert r.status_code == 404  # an expected miss, not a failure
            assert (
                await srv.phone.get(f"/site-key-01/{mac.replace(':', '')}.cfg", headers=ua)
            ).status_code == 200
        assert not srv.pipeline.failures.is_banned("203.0.113.7")
        # a scanner guessing keys is banned after the threshold, then refused even with the key
        scan = {"X-Forwarded-For": "198.51.100.9", "User-Agent": "scanner"}
        for n in range(25):
            await srv.phone.get(f"/guess-{n:06d}/001122334455.cfg", headers=scan)
        assert srv.pipeline.failures.is_banned("198.51.100.9")
        r = await srv.phone.get("/site-key-01/tp/common.cfg", headers={**scan, "User-Agent": UA})
        assert r.status_code == 404
        assert "Address banned 198.51.100.9" in srv.prov.settings.security_log.read_text()
    finally:
        await srv.close()


async def test_auto_create_flood_is_capped(tmp_path: Path, database_url: str) -> None:
    srv = await start_server(
        make_settings(
            tmp_path,
            database_url,
            **{"provisioning.auto_create_per_source": 10, "provisioning.ban_threshold": 10_000},
        )
    )
    try:
        async with httpx.AsyncClient(base_url=srv.http_url) as phone:
            for n in range(300):
                mac = f"00:11:22:aa:{n // 256:02x}:{n % 256:02x}"
                await phone.get(
                    "/tp/common.cfg", headers={"User-Agent": f"TestPhone-TP100/1 ({mac})"}
                )
        assert len(await devices(srv)) == 10
    finally:
        await srv.close()


async def test_auto_create_off(tmp_path: Path, database_url: str) -> None:
    srv = await start_server(
        make_settings(tmp_path, database_url, **{"provisioning.auto_create": False})
    )
    try:
        r = await srv.phone.get("/tp/common.cfg", headers={"User-Agent": UA})
        assert r.status_code == 404
        assert await devices(srv) == []
        r = await srv.api.post(
            "/0.2/dev_mgr/devices", json={"device": {"mac": MAC, "plugin": "testphone"}}
        )
        assert r.status_code == 201
        r = await srv.phone.get("/tp/common.cfg", headers={"User-Agent": UA})
        assert r.status_code == 200
    finally:
        await srv.close()


async def test_x_forwarded_for(tmp_path: Path, database_url: str) -> None:
    srv = await start_server(
        make_settings(tmp_path, database_url, **{"general.http_proxied_trusted_proxies_count": 1})
    )
    try:
        r = await srv.phone.get(
            "/tp/common.cfg", headers={"User-Agent": UA, "X-Forwarded-For": "10.9.8.7, 192.0.2.1"}
        )
        assert r.status_code == 200
        [device] = await devices(srv)
        assert device["ip"] == "192.0.2.1"
        # no header: the socket peer, not a 500
        r = await srv.phone.get("/tp/common.cfg", headers={"User-Agent": UA})
        assert r.status_code == 200
        [device] = await devices(srv)
        assert device["ip"] == "127.0.0.1"
    finally:
        await srv.close()


async def test_ip_moves_between_devices_unless_nat(server: Server) -> None:
    await server.phone.get("/tp/common.cfg", headers={"User-Agent": UA})
    await server.phone.get(
        "/tp/common.cfg", headers={"User-Agent": "TestPhone-TP100/1 (00:11:22:00:00:09)"}
    )
    ips = {d["mac"]: d.get("ip") for d in await devices(server)}
    assert ips == {MAC: None, "00:11:22:00:00:09": "127.0.0.1"}
    await server.api.put("/0.2/configure/NAT", json={"param": {"value": "1"}})
    await server.phone.get("/tp/common.cfg", headers={"User-Agent": UA})
    ips = {d["mac"]: d.get("ip") for d in await devices(server)}
    assert ips == {MAC: "127.0.0.1", "00:11:22:00:00:09": "127.0.0.1"}
    assert json.dumps(ips)


async def test_ten_thousand_fake_macs_from_one_address(tmp_path: Path, database_url: str) -> None:
    """A MAC scanner: capped creations, then banned; the table stays small, the server answers."""
    srv = await start_server(make_settings(tmp_path, database_url))
    try:
        statuses: dict[int, int] = {}
        async with httpx.AsyncClient(base_url=srv.http_url) as phone:
            for n in range(10_000):
                mac = f"00:11:22:{n // 65536:02x}:{(n // 256) % 256:02x}:{n % 256:02x}"
                r = await phone.get(
                    f"/{mac.replace(':', '')}.cfg",
                    headers={"User-Agent": f"TestPhone-TP100/1 ({mac})"},
                )
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        # each creation is a guess until the device comes back: banned at ban_threshold (30),
        # well before provisioning.auto_create_per_source (100)
        created = len(await devices(srv))
        assert created == srv.prov.settings.provisioning.ban_threshold
        assert statuses.get(500, 0) == 0 and statuses[404] == 10_000 - created
        assert srv.pipeline.failures.is_banned("127.0.0.1")
        assert (await srv.api.get("/0.2/status")).status_code == 200
    finally:
        await srv.close()


async def test_storm_of_new_phones_each_created_once(tmp_path: Path, database_url: str) -> None:
    """200 new phones at once, each asking twice concurrently, each from its own address:
    one device per MAC, each with its own IP, its plugin and its file (batched lookups and
    inserts)."""
    srv = await start_server(
        make_settings(tmp_path, database_url, **{"general.http_proxied_trusted_proxies_count": 1})
    )
    # 400 requests through 100 pooled connections: on a loaded 2-core machine the last ones
    # wait longer for a connection than the default client's 10 s, which says nothing of the
    # server (no timing is asserted here)
    phone = httpx.AsyncClient(base_url=srv.http_url, timeout=120)
    try:
        import asyncio

        async def boot(n: int) -> int:
            mac = f"00:11:22:01:{n // 256:02x}:{n % 256:02x}"
            headers = {
                "User-Agent": f"TestPhone-TP100/1.2 ({mac})",
                "X-Forwarded-For": f"10.1.{n // 256}.{n % 256}",
            }
            r = await phone.get(f"/{mac.replace(':', '')}.cfg", headers=headers)
            return r.status_code

        # each MAC twice in a row: the two requests race for its creation
        codes = await asyncio.gather(*(boot(n // 2) for n in range(400)))
        assert codes == [200] * 400
        found = await devices(srv)
        assert len(found) == 200
        assert len({d["mac"] for d in found}) == 200 and len({d["ip"] for d in found}) == 200
        assert all(d["plugin"] == "testphone" and d["config"] for d in found)
        log = srv.prov.settings.security_log.read_text()
        assert log.count("New device created automatically") == 200  # once per phone
    finally:
        await phone.aclose()
        await srv.close()


async def test_trace_of_cached_conditional_and_range_answers(server: Server) -> None:
    """The hot cache's answers keep the first answer's decisions (UA, plugin, tenant, file),
    and a 304 or 206 is recorded as sent, in the trace and in the access log's counts."""
    await server.phone.get("/tp/common.cfg", headers={"User-Agent": UA})
    first = await server.phone.get("/001122334455.cfg", headers={"User-Agent": UA})
    again = await server.phone.get("/001122334455.cfg", headers={"User-Agent": UA})
    assert first.status_code == again.status_code == 200 and first.content == again.content
    etag = again.headers["etag"]
    r = await server.phone.get(
        "/001122334455.cfg", headers={"User-Agent": UA, "If-None-Match": etag}
    )
    assert r.status_code == 304
    r = await server.phone.get("/tp/logo.txt", headers={"User-Agent": UA, "Range": "bytes=0-3"})
    assert r.status_code == 206
    ranged, not_modified, hot, rendered = server.pipeline.trace.query(
        client_ip="127.0.0.1", limit=4
    )
    [device] = await devices(server)
    assert rendered["reason"] == "rendered" and rendered["cache"] == "miss"
    for entry in (hot, not_modified):
        assert entry["reason"] == "served (hot)" and entry["cache"] == "hit"
        assert entry["user_agent"] == UA and entry["plugin"] == "testphone"
        assert entry["tenant_uuid"] == device["tenant_uuid"] and entry["device_id"] == device["id"]
        assert entry["file"] == rendered["file"] and entry["identified"]["mac"] == MAC
        datetime.fromisoformat(entry["time"])
    assert hot["status"] == 200 and not_modified["status"] == 304
    assert ranged["status"] == 206 and ranged["plugin"] == "testphone"
    assert ranged["user_agent"] == UA
