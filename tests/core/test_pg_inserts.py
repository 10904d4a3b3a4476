"""A lone device insert on PostgreSQL goes on the store's own asyncpg connection
(store/inserts.py): the same answers as the engine's path, a clear 503 while the server is
down, nothing written behind the client's back, and a new connection once it is back."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import make_settings, start_server
from tests.security._degraded import PrivatePostgres, find_initdb
from tests.support.waiting import until


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    """A PostgreSQL cluster of this test's own, started on a free port."""
    initdb = find_initdb()
    if initdb is None:
        pytest.skip("no initdb found (PostgreSQL server binaries are not installed)")
    pg = PrivatePostgres(initdb)
    try:
        pg.init()
        pg.start()
        yield pg
    finally:
        pg.destroy()


async def test_lone_inserts_and_postgresql_down(
    tmp_path: Path, private_pg: PrivatePostgres, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    srv = await start_server(make_settings(tmp_path, private_pg.url))
    try:
        assert srv.prov.devices.store.pg is not None  # the direct path is the one under test
        body = {"device": {"id": "first", "mac": "00:11:22:33:44:01", "ip": "10.0.0.1"}}
        r = await srv.api.post("/0.2/dev_mgr/devices", json=body)
        assert r.status_code == 201, r.text
        r = await srv.api.get("/0.2/dev_mgr/devices/first")
        device = r.json()["device"]
        assert device["mac"] == "00:11:22:33:44:01" and device["tenant_uuid"] == srv.master
        assert device["is_new"] is True and device["configured"] is False
        token = await srv.prov.devices.store.get_token("first")
        assert token is not None and len(token) >= 32  # the row's columns are filled too
        r = await srv.api.post("/0.2/dev_mgr/devices", json=body)
        assert r.status_code == 409, r.text

        private_pg.stop()
        during = {"device": {"id": "during", "mac": "00:11:22:33:44:02"}}
        r = await srv.api.post("/0.2/dev_mgr/devices", json=during)
        assert r.status_code == 503, r.text
        assert r.headers["Retry-After"]
        assert not [rec for rec in caplog.records if rec.exc_info], "a traceback was logged"

        private_pg.start()
        # the change poller finds the server again (a bounded wait)
        await until(lambda: srv.prov.feed.health.up, "the database seen up again")
        # the refused write was not made behind the client's back; writes work again
        assert (await srv.api.get("/0.2/dev_mgr/devices/during")).status_code == 404
        r = await srv.api.post(
            "/0.2/dev_mgr/devices", json={"device": {"id": "after", "mac": "00:11:22:33:44:03"}}
        )
        assert r.status_code == 201, r.text
        r = await srv.api.get("/0.2/dev_mgr/devices", params={"fields": "id"})
        assert sorted(d["id"] for d in r.json()["devices"]) == ["after", "first"]
    finally:
        await srv.close()
