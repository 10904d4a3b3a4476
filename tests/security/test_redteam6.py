"""Red team, session 6: what an outsider or a hostile tenant found, each held by a test.

Every test drives a real provisor (real database, real sockets on 127.0.0.1) with real clients.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO_PLUGINS, make_settings, start_server
from tests.provisioning.tftp_client import TftpStats, tftp_get

pytestmark = pytest.mark.asyncio

YEALINK_UA = "Yealink SIP-T46S 66.86.0.15 {mac}"


def _yealink_mac(n: int) -> str:
    return f"80:5e:c0:6e:{n // 256:02x}:{n % 256:02x}"


# -- X-Forwarded-For from a client that is not a trusted proxy ---------------------------------
# A phone chose the address it was counted under: uvicorn's own proxy-header middleware (on by
# default) took X-Forwarded-For from any loopback client even with no proxy trusted (a local
# TLS terminator passing requests through, stunnel or haproxy in TCP mode), and with
# ``http_proxied_trusted_proxies_count: 1`` provisor read it on every connection, not only the
# proxy's (``limits.proxy_addresses``). A MAC scanner sending a new address with each guess was
# never banned and auto-created a device per guess (71 of 71 under `provisor serve`).

NOT_THE_PROXY = [
    {},  # no proxy trusted (the default)
    {  # a proxy trusted, elsewhere: not this client
        "general.http_proxied_trusted_proxies_count": 1,
        "limits.proxy_addresses": ["192.0.2.0/24"],
    },
]


@pytest.mark.parametrize("proxy", NOT_THE_PROXY, ids=["no-proxy", "proxy-elsewhere"])
async def test_forwarded_for_from_a_non_proxy_is_ignored(
    tmp_path: Path, database_url: str, proxy: dict[str, object]
) -> None:
    threshold = 30
    srv = await start_server(
        make_settings(
            tmp_path,
            database_url,
            **{
                "general.plugin_dirs": [str(REPO_PLUGINS)],
                "provisioning.ban_threshold": threshold,
                **proxy,
            },
        )
    )
    try:
        statuses = []
        for n in range(threshold + 10):
            mac = _yealink_mac(n)
            r = await srv.phone.get(
                f"/{mac.replace(':', '')}.cfg",
                headers={
                    "User-Agent": YEALINK_UA.format(mac=mac),
                    "X-Forwarded-For": f"198.51.100.{n + 1}",
                },
            )
            statuses.append(r.status_code)
        # counted under its own address: banned within the threshold like any scanner
        assert srv.pipeline.failures.is_banned("127.0.0.1"), statuses
        assert statuses[threshold:] == [404] * 10, statuses
        r = await srv.api.get("/0.2/dev_mgr/devices", params={"recurse": "true"})
        devices = r.json()["devices"]
        assert len(devices) <= threshold
        # (an address names one device: each new one took it from the previous)
        assert {d.get("ip") for d in devices} <= {"127.0.0.1", None}, devices
        r = await srv.api.get("/0.2/dev_mgr/requests", params={"limit": 100})
        assert {e["client_ip"] for e in r.json()["requests"]} == {"127.0.0.1"}
    finally:
        await srv.close()


async def test_forwarded_for_from_the_proxy_still_names_the_phone(
    tmp_path: Path, database_url: str
) -> None:
    """The same header on the proxy's connection (loopback, the default) is the phone's address,
    on the ASGI path and on the listener's quick path (a repeated request)."""
    srv = await start_server(
        make_settings(
            tmp_path,
            database_url,
            **{
                "general.plugin_dirs": [str(REPO_PLUGINS)],
                "general.http_proxied_trusted_proxies_count": 1,
            },
        )
    )
    try:
        mac = _yealink_mac(1)
        headers = {"User-Agent": YEALINK_UA.format(mac=mac), "X-Forwarded-For": "198.51.100.7"}
        async with httpx.AsyncClient(base_url=srv.http_url, timeout=10) as phone:
            for _ in range(3):  # the third is answered from the parser callback
                r = await phone.get(f"/{mac.replace(':', '')}.cfg", headers=headers)
                assert r.status_code == 200, r.text
        assert srv.running.guards["http"].quick_answers >= 1
        r = await srv.api.get("/0.2/dev_mgr/requests", params={"limit": 10})
        assert {e["client_ip"] for e in r.json()["requests"]} == {"198.51.100.7"}
    finally:
        await srv.close()


async def test_the_console_behind_a_local_tls_proxy_still_gets_a_secure_cookie(
    tmp_path: Path, database_url: str
) -> None:
    """The REST listener keeps reading a loopback proxy's X-Forwarded-Proto (docs/operations.md):
    the fix above leaves the console's `Secure` cookie alone."""
    srv = await start_server(make_settings(tmp_path, database_url))
    try:
        proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
        async with httpx.AsyncClient(base_url=srv.rest_url, timeout=10) as web:
            form = await web.get("/console/signin", headers=proxied)
            assert form.status_code == 200
            assert "secure" in form.headers["set-cookie"].lower()  # the sign-in nonce's cookie
            plain = await web.get("/console/signin")
            assert "secure" not in plain.headers["set-cookie"].lower()
    finally:
        await srv.close()


# -- configs sharing parents --------------------------------------------------------------------
# Loading a config's ancestors walked one level at a time without merging repeats: levels of 32
# configs each naming the same 32 parents multiplied the list by 32 a level. A tenant's 129
# configs (4 levels) made its next config write after any cache flush take 9.3 s and a million
# list entries under `provisor serve`; 5 levels, 33 million.


async def test_shared_parents_are_loaded_once_each(tmp_path: Path, database_url: str) -> None:
    srv = await start_server(make_settings(tmp_path, database_url))
    try:
        tenant = str((await srv.prov.tenants.create("fan")).uuid)
        api = srv.client(await srv.token_for(tenant))
        width, levels = 32, 3
        parents = ["base"]
        for level in range(levels, 0, -1):
            ids = [f"fan{level}x{i}" for i in range(width)]
            for cid in ids:
                body = {"config": {"id": cid, "parent_ids": parents, "raw_config": {}}}
                r = await api.post("/0.2/cfg_mgr/configs", json=body)
                assert r.status_code == 201, r.text
            parents = ids
        body = {"config": {"id": "fantop", "parent_ids": parents, "raw_config": {}}}
        assert (await api.post("/0.2/cfg_mgr/configs", json=body)).status_code == 201
        # any config write flushes the cache; then the whole graph is loaded again
        body = {"config": {"id": "fan1x0", "parent_ids": [f"fan2x{i}" for i in range(width)]}}
        body["config"]["raw_config"] = {"X_changed": "1"}
        assert (await api.put("/0.2/cfg_mgr/configs/fan1x0", json=body)).status_code == 204
        store = srv.prov.configs.store
        asked: list[int] = []
        real_get_many = store.get_many

        async def counting(ids: list[str]) -> dict[str, dict[str, object]]:
            asked.append(len(ids))  # observed only: the real query runs
            return await real_get_many(ids)

        store.get_many = counting
        body = {"config": {"id": "fanprobe", "parent_ids": ["fantop"], "raw_config": {}}}
        r = await api.post("/0.2/cfg_mgr/configs", json=body)
        assert r.status_code == 201, r.text
        configs = width * levels + 3  # every config of the graph, base and the probe
        assert 0 < sum(asked) <= 2 * configs, asked  # was 33 825 ids (1 + 32 + 32² + 32³)
        r = await api.get("/0.2/cfg_mgr/configs/fanprobe")
        assert r.status_code == 200 and r.json()["config"]["parent_ids"] == ["fantop"]
        await api.aclose()
    finally:
        await srv.close()


# -- the TFTP timeout option -------------------------------------------------------------------
# RFC 2349's ``timeout`` (1-255 s) was acknowledged as asked and fixed the transfer's resend
# interval: after one ACK, a client that goes silent held its transfer slot 255 s per resend,
# 6 tries, about 25 minutes (a resend seen 255 s after the last ACK under `provisor serve`),
# where the server's own back-off (1 s doubling to 8 s) gives it up after 31 s. 64 slots per
# address, 2 000 in all: a few dozen addresses sending one packet per slot every 25 minutes kept
# every phone on "server busy".


@pytest.mark.parametrize("asked", ["255", "9", "60"])
async def test_a_long_tftp_timeout_is_not_acknowledged(
    tmp_path: Path, database_url: str, asked: str
) -> None:
    srv = await start_server(
        make_settings(tmp_path, database_url, **{"provisioning.tftp_enabled": True})
    )
    try:
        port = srv.running.ports["tftp"]
        stats = TftpStats()
        data = await tftp_get(
            "127.0.0.1",
            port,
            "001122334455.cfg",
            blksize=512,
            stats=stats,
            extra_options={"timeout": asked},
        )
        assert data  # served, on the server's own timers
        assert stats.oack == {"blksize": "512"}
        # a timeout within the server's own back-off is still taken as asked
        stats = TftpStats()
        await tftp_get(
            "127.0.0.1", port, "001122334455.cfg", stats=stats, extra_options={"timeout": "5"}
        )
        assert stats.oack == {"timeout": "5"}
    finally:
        await srv.close()


# -- a config write landing between two round trips of another tenant's read --------------------
# A device's config and its ancestors are read one level per round trip into the shared cache;
# any config write (any tenant's, on any node) clears that cache. A write landing between two
# round trips left the first levels gone, so the device read as having no config: its phone got
# 404 "device has no config", and that answer was kept until the next config write. Under
# `provisor serve` a tenant rewriting one of its own configs in a loop made another tenant's
# phone get that 404 2 to 3 times in 1 000 fetches; here the write is put exactly there.

VICTIM_UA = "TestPhone-TP100/1.2.3 ({mac})"


async def test_a_write_between_round_trips_never_loses_another_tenants_config(
    tmp_path: Path, database_url: str
) -> None:
    srv = await start_server(make_settings(tmp_path, database_url))
    try:
        victim = str((await srv.prov.tenants.create("victim")).uuid)
        other = str((await srv.prov.tenants.create("other")).uuid)
        a = srv.client(await srv.token_for(victim))
        b = srv.client(await srv.token_for(other))
        line = {"sip_lines": {"1": {"username": "victim", "password": "Victim-Pw-6"}}}
        for cid, parent, raw in (
            ("rt6line", "base", line),
            ("rt6mid", "rt6line", {}),
            ("rt6dev", "rt6mid", {}),
        ):
            body = {"config": {"id": cid, "parent_ids": [parent], "raw_config": raw}}
            assert (await a.post("/0.2/cfg_mgr/configs", json=body)).status_code == 201
        mac = "00:11:22:33:66:01"
        device = {"id": "rt6d", "mac": mac, "config": "rt6dev", "plugin": "testphone"}
        assert (await a.post("/0.2/dev_mgr/devices", json={"device": device})).status_code == 201
        own = {"config": {"id": "rt6other", "parent_ids": ["base"], "raw_config": {}}}
        assert (await b.post("/0.2/cfg_mgr/configs", json=own)).status_code == 201

        store = srv.prov.configs.store
        real_get_many = store.get_many
        writes: list[int] = []

        async def other_tenant_writes_meanwhile(ids: list[str]) -> dict[str, dict[str, object]]:
            found = await real_get_many(ids)  # the real query
            if "rt6mid" in ids and not writes:  # between the 2nd and 3rd level of the walk
                own["config"]["raw_config"] = {"X_n": "1"}
                r = await b.put("/0.2/cfg_mgr/configs/rt6other", json=own)
                writes.append(r.status_code)
            return found

        own["config"]["raw_config"] = {"X_n": "0"}
        r = await b.put("/0.2/cfg_mgr/configs/rt6other", json=own)  # start from a cold cache
        assert r.status_code == 204
        store.get_many = other_tenant_writes_meanwhile
        path, headers = f"/{mac.replace(':', '')}.cfg", {"User-Agent": VICTIM_UA.format(mac=mac)}
        first = await srv.phone.get(path, headers=headers)
        store.get_many = real_get_many
        assert writes == [204]  # the other tenant's write did land in the middle
        assert first.status_code == 200 and b"Victim-Pw-6" in first.content, first.text
        again = await srv.phone.get(path, headers=headers)  # nothing wrong was kept either
        assert again.status_code == 200 and b"Victim-Pw-6" in again.content, again.text
        r = await a.get("/0.2/cfg_mgr/configs/rt6dev/raw")
        assert r.json()["raw_config"]["sip_lines"]["1"]["password"] == "Victim-Pw-6"
        await a.aclose()
        await b.aclose()
    finally:
        await srv.close()


# -- inheritance depth ------------------------------------------------------------------------
# Nothing bounded how deep ``parent_ids`` chains go: each level is one database round trip when
# the cache is cold (and any tenant's config write empties it), and the checks walk the chain
# recursively. Under `provisor serve` a tenant's chain of 953 configs made every further
# creation under it a 500 (RecursionError), after ~950 round trips each.


MAX_DEPTH = 32  # docs/api.md


async def test_inheritance_depth_is_bounded(tmp_path: Path, database_url: str) -> None:
    srv = await start_server(make_settings(tmp_path, database_url))
    try:
        tenant = str((await srv.prov.tenants.create("deep")).uuid)
        api = srv.client(await srv.token_for(tenant))

        async def post(cid: str, parent: str) -> httpx.Response:
            body = {"config": {"id": cid, "parent_ids": [parent], "raw_config": {}}}
            return await api.post("/0.2/cfg_mgr/configs", json=body)

        parent = "base"  # base is the first level
        for level in range(2, MAX_DEPTH + 1):
            r = await post(f"deep{level}", parent)
            assert r.status_code == 201, (level, r.text)
            parent = f"deep{level}"
        r = await post("deep-too-far", parent)
        assert r.status_code == 400, r.text
        assert "parent_ids" in r.text and f"deeper than {MAX_DEPTH}" in r.text
        assert (await api.get("/0.2/cfg_mgr/configs/deep-too-far")).status_code == 404
        # nor by moving a config that has children under the deepest one
        assert (await post("moved", "base")).status_code == 201
        assert (await post("moved-child", "moved")).status_code == 201
        body = {"config": {"id": "moved", "parent_ids": [f"deep{MAX_DEPTH - 1}"]}}
        body["config"]["raw_config"] = {}
        r = await api.put("/0.2/cfg_mgr/configs/moved", json=body)
        assert r.status_code == 400 and f"deeper than {MAX_DEPTH}" in r.text, r.text
        r = await api.get("/0.2/cfg_mgr/configs/moved")
        assert r.json()["config"]["parent_ids"] == ["base"]
        body["config"]["parent_ids"] = [f"deep{MAX_DEPTH - 2}"]  # exactly the limit: fine
        assert (await api.put("/0.2/cfg_mgr/configs/moved", json=body)).status_code == 204
        r = await api.get("/0.2/cfg_mgr/configs/moved-child/raw")
        assert r.status_code == 200, r.text
        await api.aclose()
    finally:
        await srv.close()


# -- device_token: the bootstrap answer hands out the token ------------------------------------
# Under ``device_token`` a request with the tenant key alone (which every phone of the tenant
# carries, so not a secret from a scanner on that network) got the device's file with its
# secrets blanked but with the URL carrying the device's token, however long ago the phone
# itself took it: anyone holding the key who named a MAC read the token there and fetched the
# secrets with it. Fixed by trust on first use (``token_taken``, docs/provisioning.md).


async def test_a_key_holder_cannot_take_the_token_of_a_phone_that_already_has_it(
    tmp_path: Path, database_url: str
) -> None:
    srv = await start_server(
        make_settings(tmp_path, database_url, **{"general.http_auth_strategy": "device_token"})
    )
    try:
        tenant = str((await srv.prov.tenants.create("t")).uuid)
        await srv.prov.tenants.set_key(tenant, "tenant-key-6")
        api = srv.client(await srv.token_for(tenant))
        body = {"config": {"id": "line6", "parent_ids": ["base"], "raw_config": {}}}
        body["config"]["raw_config"] = {"sip_lines": {"1": {"username": "u", "password": "Pw-66"}}}
        assert (await api.post("/0.2/cfg_mgr/configs", json=body)).status_code == 201
        mac = "00:11:22:33:66:06"
        device = {"id": "tok6", "mac": mac, "config": "line6", "plugin": "testphone"}
        assert (await api.post("/0.2/dev_mgr/devices", json={"device": device})).status_code == 201
        token = (await api.get("/0.2/dev_mgr/devices/tok6/provisioning_token")).json()[
            "provisioning_token"
        ]
        headers = {"User-Agent": VICTIM_UA.format(mac=mac)}
        path = f"{mac.replace(':', '')}.cfg"
        # the phone is in steady state: it fetches with its token
        r = await srv.phone.get(f"/tenant-key-6/{token}/{path}", headers=headers)
        assert r.status_code == 200 and b"Pw-66" in r.content
        # a key holder naming its MAC (from another address, the attacker's own)
        r = await srv.phone.get(f"/tenant-key-6/{path}", headers=headers)
        assert r.status_code == 200 and b"Pw-66" not in r.content
        assert token.encode() not in r.content  # fails today: the URL carries it
        await api.aclose()
    finally:
        await srv.close()
