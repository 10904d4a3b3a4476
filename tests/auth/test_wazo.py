"""The wazo-auth backend against a wazo-auth API server on 127.0.0.1, and provisor using it."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from provisor.auth.wazo import WazoAuthBackend
from provisor.errors import Unauthorized
from tests.conftest import Server, make_settings, start_server
from tests.support.fake_wazo_auth import FakeWazoAuth, start_fake_wazo_auth

SUB1 = "00000000-0000-4000-8000-0000000000b1"
SUB2 = "00000000-0000-4000-8000-0000000000b2"


@pytest.fixture
async def auth(tmp_path: Path) -> AsyncIterator[tuple[FakeWazoAuth, Path]]:
    fake = await start_fake_wazo_auth()
    fake.add_tenant(SUB1, fake.master)
    fake.add_tenant(SUB2, fake.master)
    fake.add_token("main-token", fake.master, ["provd.#"])
    fake.add_token("sub1-token", SUB1, ["provd.dev_mgr.#"])
    key = tmp_path / "key.yml"
    key.write_text("service_id: provd\nservice_key: service-secret\n")
    yield fake, key
    await fake.stop()


async def test_authorize_and_tenants(auth: tuple[FakeWazoAuth, Path]) -> None:
    fake, key = auth
    backend = WazoAuthBackend(fake.url, key, cache_ttl=60)
    try:
        info = await backend.authorize("main-token", "provd.dev_mgr.devices.read")
        assert info.tenant_uuid == fake.master
        info = await backend.authorize("sub1-token", "provd.dev_mgr.devices.read", SUB1)
        assert info.tenant_uuid == SUB1
        with pytest.raises(Unauthorized, match="missing permission"):
            await backend.authorize("sub1-token", "provd.cfg_mgr.configs.read")
        with pytest.raises(Unauthorized, match="missing permission"):
            await backend.authorize("sub1-token", "provd.dev_mgr.devices.read", fake.master)
        with pytest.raises(Unauthorized, match="unknown"):
            await backend.authorize("nope", "provd.dev_mgr.devices.read")
        with pytest.raises(Unauthorized):
            await backend.authorize(None, "provd.read")
        assert await backend.visible_tenants("main-token", fake.master) == {fake.master, SUB1, SUB2}
        assert await backend.visible_tenants("sub1-token", SUB1) == {SUB1}
        assert await backend.master_tenant() == fake.master
        assert await backend.list_tenants() == {fake.master, SUB1, SUB2}
    finally:
        await backend.close()


async def test_cache_coalescing_and_expiry(auth: tuple[FakeWazoAuth, Path]) -> None:
    fake, key = auth
    # a TTL a loaded machine cannot outlast between two calls in a row (0.3 s could be missed
    # by a pause of the test process), and a sleep past it for the expiry
    ttl = 2.0
    backend = WazoAuthBackend(fake.url, key, cache_ttl=ttl)
    try:
        fake.delay = 0.1
        await asyncio.gather(*(backend.authorize("main-token", "provd.read") for _ in range(10)))
        assert fake.calls["head"] == 1 and fake.calls["get"] == 1
        await backend.authorize("main-token", "provd.read")
        assert fake.calls["head"] == 1  # cached
        await asyncio.sleep(ttl + 0.05)
        await backend.authorize("main-token", "provd.read")
        assert fake.calls["head"] == 2  # expired
        with pytest.raises(Unauthorized):
            await backend.authorize("nope", "provd.read")
        with pytest.raises(Unauthorized):
            await backend.authorize("nope", "provd.read")
        assert fake.calls["head"] == 3  # the refusal was cached too
    finally:
        await backend.close()


async def test_slow_or_down_server_is_a_prompt_401(auth: tuple[FakeWazoAuth, Path]) -> None:
    fake, key = auth
    # the refusal comes from the backend's 0.2 s timeout, long before the server's answer
    # (5 s later; the margin is for a loaded machine, not a speed check)
    fake.delay = 5.0
    backend = WazoAuthBackend(fake.url, key, timeout=0.2)
    try:
        with pytest.raises(Unauthorized, match="unavailable"):
            await asyncio.wait_for(backend.authorize("main-token", "provd.read"), 4.5)
    finally:
        await backend.close()
    down = WazoAuthBackend("http://127.0.0.1:1", key, timeout=0.5)
    try:
        with pytest.raises(Unauthorized, match="unavailable"):
            await down.authorize("main-token", "provd.read")
    finally:
        await down.close()


async def test_service_token_is_reused(auth: tuple[FakeWazoAuth, Path]) -> None:
    fake, key = auth
    backend = WazoAuthBackend(fake.url, key)
    try:
        await backend.master_tenant()
        await backend.list_tenants()
        assert fake.calls["post"] == 1
    finally:
        await backend.close()
    bad = tmp_key = key.parent / "bad.yml"
    tmp_key.write_text("service_id: provd\nservice_key: wrong\n")
    backend = WazoAuthBackend(fake.url, bad)
    try:
        with pytest.raises(Unauthorized, match="service token refused"):
            await backend.master_tenant()
    finally:
        await backend.close()


async def _wazo_server(
    tmp_path: Path, database_url: str, fake: FakeWazoAuth, key: Path, **overrides: Any
) -> Server:
    """provisor with the wazo-auth backend pointed at the fake server."""
    settings = make_settings(
        tmp_path,
        database_url,
        **{"auth.backend": "wazo-auth", "auth.url": fake.url, "auth.key_file": str(key)},
        **overrides,
    )
    return await start_server(settings)


async def test_provisor_with_wazo_auth(
    tmp_path: Path, database_url: str, auth: tuple[FakeWazoAuth, Path]
) -> None:
    fake, key = auth
    srv = await _wazo_server(tmp_path, database_url, fake, key)
    try:
        async with srv.client("main-token") as main, srv.client("sub1-token") as sub1:
            assert (await main.get("/0.2/dev_mgr/devices")).status_code == 200
            r = await main.post("/0.2/dev_mgr/devices", json={"device": {"id": "m1"}})
            assert r.status_code == 201
            doc = (await main.get("/0.2/dev_mgr/devices/m1")).json()["device"]
            assert doc["tenant_uuid"] == fake.master and doc["is_new"] is True
            r = await main.post(
                "/0.2/dev_mgr/devices", json={"device": {"id": "s1"}}, headers={"Wazo-Tenant": SUB1}
            )
            assert r.status_code == 201
            assert [
                d["id"] for d in (await sub1.get("/0.2/dev_mgr/devices")).json()["devices"]
            ] == ["s1"]
            assert (await sub1.get("/0.2/dev_mgr/devices/m1")).status_code == 404
            assert (await sub1.get("/0.2/cfg_mgr/configs")).status_code == 401  # no cfg ACL
            ids = {
                d["id"]
                for d in (
                    await main.get("/0.2/dev_mgr/devices", params={"recurse": "true"})
                ).json()["devices"]
            }
            assert ids == {"m1", "s1"}
        async with srv.client("nope") as anon:
            assert (await anon.get("/0.2/dev_mgr/devices")).status_code == 401
    finally:
        await srv.close()


async def test_tenant_sync_removes_devices_of_deleted_tenants(
    tmp_path: Path, database_url: str, auth: tuple[FakeWazoAuth, Path]
) -> None:
    from provisor.bus import TenantSync

    fake, key = auth
    srv = await _wazo_server(tmp_path, database_url, fake, key)
    try:
        async with srv.client("main-token") as main:
            for tenant, device_id in ((SUB1, "a"), (SUB2, "b")):
                r = await main.post(
                    "/0.2/dev_mgr/devices",
                    json={"device": {"id": device_id}},
                    headers={"Wazo-Tenant": tenant},
                )
                assert r.status_code == 201
            fake.remove_tenant(SUB2)
            removed = await TenantSync(srv.prov).run_once()
            # SUB2, and the store's initial local tenant, which wazo-auth does not know either
            assert SUB2 in removed and SUB1 not in removed and fake.master not in removed
            ids = {
                d["id"]
                for d in (
                    await main.get("/0.2/dev_mgr/devices", params={"recurse": "true"})
                ).json()["devices"]
            }
            assert ids == {"a"}
            assert await TenantSync(srv.prov).run_once() == []
    finally:
        await srv.close()


@contextlib.asynccontextmanager
async def _writes_blocked(srv: Server) -> AsyncIterator[None]:
    """Hold the database's write lock from another connection (reads go on): a deletion under
    way stays under way, whatever the machine's speed."""
    engine = srv.prov.engine
    if engine.dialect.name == "sqlite":
        assert engine.url.database is not None
        conn = sqlite3.connect(engine.url.database, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
    else:
        async with engine.connect() as pg:  # autobegin: the lock lasts until the rollback
            await pg.exec_driver_sql("LOCK TABLE device_ports, devices IN EXCLUSIVE MODE")
            try:
                yield
            finally:
                await pg.rollback()


async def test_no_request_sees_a_tenant_whose_deletion_has_begun(
    tmp_path: Path, database_url: str, auth: tuple[FakeWazoAuth, Path]
) -> None:
    """A request authorised once a tenant deletion (bus event, tenant sync) has begun waits
    for its end: it never reads the devices those writes have not removed yet. wazo-provd's
    suite publishes ``auth_tenant_deleted`` and reads the device in the same instant."""
    fake, key = auth
    srv = await _wazo_server(tmp_path, database_url, fake, key)
    try:
        async with srv.client("main-token") as main, srv.client("sub1-token") as sub1:
            r = await main.post(
                "/0.2/dev_mgr/devices", json={"device": {"id": "s1"}}, headers={"Wazo-Tenant": SUB1}
            )
            assert r.status_code == 201
            assert (await sub1.get("/0.2/dev_mgr/devices/s1")).status_code == 200  # cached
            async with _writes_blocked(srv):
                deletion = asyncio.create_task(srv.prov.delete_tenant(SUB1))
                await asyncio.sleep(0)  # begun: fenced, then stuck on its first write
                own = asyncio.create_task(sub1.get("/0.2/dev_mgr/devices/s1"))
                every = asyncio.create_task(
                    main.get("/0.2/dev_mgr/devices", params={"recurse": "true"})
                )
                # without the fence both reads are answered here, from the rows still there
                await asyncio.sleep(0.5)
            assert (await own).status_code == 404
            assert "s1" not in {d["id"] for d in (await every).json()["devices"]}
            assert await deletion == {"devices": 1, "configs": 0}
            assert not srv.prov.fence.fenced({SUB1})
    finally:
        await srv.close()


async def test_tenant_sync_interval_zero_catches_a_tenant_missing_from_one_listing(
    tmp_path: Path, database_url: str, auth: tuple[FakeWazoAuth, Path]
) -> None:
    """``syncdb.interval_sec: 0`` (what wazo-provd makes of 0.1): passes run back to back, so
    a tenant that wazo-auth leaves out of a single listing is caught; wazo-provd's suite deletes
    a tenant in its auth mock and puts it back a few milliseconds later."""
    fake, key = auth
    srv = await _wazo_server(
        tmp_path, database_url, fake, key, **{"syncdb.start_sec": 0, "syncdb.interval_sec": 0}
    )
    try:
        async with srv.client("main-token") as main:
            for tenant, device_id in ((SUB1, "a"), (SUB2, "b")):
                r = await main.post(
                    "/0.2/dev_mgr/devices",
                    json={"device": {"id": device_id}},
                    headers={"Wazo-Tenant": tenant},
                )
                assert r.status_code == 201
        listed = fake.calls["tenants"]
        fake.hidden_once = {SUB2}  # only the next listing, which no request of ours makes
        for _ in range(400):  # bounded: 20 s on a crowded machine
            if await srv.prov.devices.store.get("b") is None:
                break
            await asyncio.sleep(0.05)
        assert await srv.prov.devices.store.get("b") is None
        assert await srv.prov.devices.store.get("a") is not None
        for _ in range(400):  # and the passes go on after the one that caught it
            if fake.calls["tenants"] > listed + 1:
                break
            await asyncio.sleep(0.05)
        assert fake.calls["tenants"] > listed + 1
    finally:
        await srv.close()


async def test_tenant_sync_interval_zero_waits_after_a_failed_pass(
    tmp_path: Path, database_url: str, auth: tuple[FakeWazoAuth, Path]
) -> None:
    """A failing wazo-auth with ``interval_sec: 0`` is asked once a second, not in a tight
    loop."""
    fake, key = auth
    fake.tenants_error = 503
    srv = await _wazo_server(
        tmp_path, database_url, fake, key, **{"syncdb.start_sec": 0, "syncdb.interval_sec": 0}
    )
    try:
        for _ in range(200):  # the first pass (bounded wait)
            if fake.calls["tenants"]:
                break
            await asyncio.sleep(0.05)
        first = fake.calls["tenants"]
        assert first >= 1
        await asyncio.sleep(1.5)
        # at most the pass due after one second, and one more if this test was descheduled
        assert fake.calls["tenants"] - first <= 2
        fake.tenants_error = None
        assert await srv.prov.auth.list_tenants() == {fake.master, SUB1, SUB2}
    finally:
        await srv.close()


async def test_deleting_a_tenant_drops_cached_authorizations_first(
    tmp_path: Path, database_url: str, auth: tuple[FakeWazoAuth, Path]
) -> None:
    """The bus's auth_tenant_deleted (Provisor.delete_tenant): the next request with a token
    of that tenant is asked of wazo-auth again, not answered from the cache."""
    fake, key = auth
    srv = await _wazo_server(tmp_path, database_url, fake, key)
    try:
        async with srv.client("main-token") as main, srv.client("sub1-token") as sub1:
            r = await main.post(
                "/0.2/dev_mgr/devices", json={"device": {"id": "s1"}}, headers={"Wazo-Tenant": SUB1}
            )
            assert r.status_code == 201
            assert (await sub1.get("/0.2/dev_mgr/devices/s1")).status_code == 200  # cached now
            checks = fake.calls.copy()
            fake.remove_tenant(SUB1)
            fake.tokens.pop("sub1-token")
            await srv.prov.delete_tenant(SUB1)
            assert (await sub1.get("/0.2/dev_mgr/devices/s1")).status_code == 401
            assert fake.calls != checks  # asked again
            r = await main.get("/0.2/dev_mgr/devices/s1", params={"recurse": "true"})
            assert r.status_code == 404
    finally:
        await srv.close()
