"""Degraded mode: the database goes away and comes back (a private PostgreSQL cluster).

Known phones keep getting the file they were last served; what needs the database answers
503 with Retry-After; /status names the database; the log says so once, without a
traceback; and everything works again, with nothing lost, once the database is back.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Server, make_settings, start_server
from tests.security._degraded import PrivatePostgres, find_initdb
from tests.support.waiting import until

KNOWN_MAC = "00:11:22:33:44:55"
KNOWN_UA = f"TestPhone-TP100/1.2.3 ({KNOWN_MAC})"
NEW_UA = "TestPhone-TP100/1.2.3 (00:11:22:33:44:66)"
DOWN_LINE = "database unavailable"
UP_LINE = "database available again"


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


async def _provision(server: Server) -> tuple[bytes, bytes, str]:
    """A phone boots (common file, then its own file); returns both bodies and the device id."""
    common = await server.phone.get("/tp/common.cfg", headers={"User-Agent": KNOWN_UA})
    own = await server.phone.get("/001122334455.cfg", headers={"User-Agent": KNOWN_UA})
    assert common.status_code == own.status_code == 200
    r = await server.api.get("/0.2/dev_mgr/devices", params={"q": f'{{"mac": "{KNOWN_MAC}"}}'})
    [device] = r.json()["devices"]
    return common.content, own.content, str(device["id"])


def _records(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if text in r.getMessage()]


async def _assert_degraded(server: Server, common: bytes, own: bytes) -> None:
    """Every answer the degraded mode promises, requests repeated as phones and clients do."""
    for _ in range(5):
        r = await server.phone.get("/tp/common.cfg", headers={"User-Agent": KNOWN_UA})
        assert r.status_code == 200 and r.content == common
        r = await server.phone.get("/001122334455.cfg", headers={"User-Agent": KNOWN_UA})
        assert r.status_code == 200 and r.content == own
        # a new phone needs the database to be created
        r = await server.phone.get("/tp/common.cfg", headers={"User-Agent": NEW_UA})
        assert r.status_code == 503 and int(r.headers["retry-after"]) > 0
        # the known phone asking a file it was never served: nothing to fall back on
        r = await server.phone.get("/tp/logo.txt", headers={"User-Agent": KNOWN_UA})
        assert r.status_code == 503 and "retry-after" in r.headers
        r = await server.api.get("/0.2/dev_mgr/devices")
        assert r.status_code == 503 and int(r.headers["retry-after"]) > 0
        assert "database" in r.text
        r = await server.api.post(
            "/0.2/cfg_mgr/configs",
            json={"config": {"id": "during", "parent_ids": [], "raw_config": {}}},
        )
        assert r.status_code == 503 and "retry-after" in r.headers and "database" in r.text
        r = await server.api.get("/0.2/status")
        assert r.json()["database"] == {"status": "fail"}, r.text
        # a load balancer's probes: the process lives, it is not ready, and says why
        assert (await server.api.get("/health/live")).status_code == 200
        r = await server.api.get("/health/ready")
        assert r.status_code == 503 and "database" in r.text, r.text


async def test_postgresql_stopped_and_restarted(
    tmp_path: Path, private_pg: PrivatePostgres, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    server = await start_server(make_settings(tmp_path, private_pg.url))
    try:
        common, own, device_id = await _provision(server)
        r = await server.api.post(
            "/0.2/cfg_mgr/configs",
            json={"config": {"id": "before", "parent_ids": [], "raw_config": {"X_k": 1}}},
        )
        assert r.status_code == 201
        assert (await server.api.get("/0.2/status")).json()["database"] == {"status": "ok"}

        private_pg.stop()
        caplog.clear()
        await _assert_degraded(server, common, own)
        assert len(_records(caplog, DOWN_LINE)) == 1, [r.getMessage() for r in caplog.records]
        assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]

        private_pg.start()
        await _wait_until_up(server)
        assert len(_records(caplog, UP_LINE)) == 1
        assert (await server.api.get("/0.2/status")).json()["database"] == {"status": "ok"}
        # the new phone is created now, earlier data is intact, writes work again
        r = await server.phone.get("/tp/common.cfg", headers={"User-Agent": NEW_UA})
        assert r.status_code == 200
        r = await server.api.get("/0.2/dev_mgr/devices")
        macs = {d["mac"] for d in r.json()["devices"]}
        assert macs == {KNOWN_MAC, "00:11:22:33:44:66"}
        assert (await server.api.get(f"/0.2/dev_mgr/devices/{device_id}")).status_code == 200
        r = await server.api.get("/0.2/cfg_mgr/configs/before")
        assert r.json()["config"]["raw_config"] == {"X_k": 1}
        # the write refused during the outage was not made behind the client's back
        assert (await server.api.get("/0.2/cfg_mgr/configs/during")).status_code == 404
        r = await server.api.post(
            "/0.2/cfg_mgr/configs",
            json={"config": {"id": "after", "parent_ids": [], "raw_config": {}}},
        )
        assert r.status_code == 201
        r = await server.phone.get("/001122334455.cfg", headers={"User-Agent": KNOWN_UA})
        assert r.status_code == 200 and r.content == own
        assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    finally:
        await server.close()


async def _wait_until_up(server: Server) -> None:
    """Wait (bounded) for the change poller to find the database again."""
    await until(lambda: server.prov.feed.health.up, "the database seen up again")


async def test_status_without_a_checkable_token_names_the_database(
    tmp_path: Path, private_pg: PrivatePostgres
) -> None:
    """A token unseen before the outage cannot be checked: 503, and only the database named."""
    server = await start_server(make_settings(tmp_path, private_pg.url))
    try:
        private_pg.stop()
        async with httpx.AsyncClient(base_url=server.rest_url, timeout=10) as anon:
            r = await anon.get("/0.2/status", headers={"X-Auth-Token": "never-seen"})
        assert r.status_code == 503 and "retry-after" in r.headers
        assert r.json() == {"rest_api": "ok", "database": {"status": "fail"}}
    finally:
        private_pg.start()
        await server.close()


def test_only_unreachable_counts_as_down() -> None:
    """A bad statement or a plugin's file error is a bug to see, not an outage to hide."""
    import sqlite3

    from provisor.store.health import is_unavailable

    assert is_unavailable(sqlite3.OperationalError("unable to open database file"))
    assert is_unavailable(sqlite3.OperationalError("disk I/O error"))
    assert not is_unavailable(sqlite3.OperationalError('near "x": syntax error'))
    assert not is_unavailable(sqlite3.IntegrityError("UNIQUE constraint failed: devices.id"))
    assert not is_unavailable(ConnectionRefusedError(111, "refused"))  # not from the driver
    assert not is_unavailable(FileNotFoundError("plugin.py"))
