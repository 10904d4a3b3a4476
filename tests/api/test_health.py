"""``/health/live`` and ``/health/ready`` on the REST listener, without a token.

Readiness is checked against real failures: the SQLite database folder moved away, a listener
stopped, and a PostgreSQL cluster of the test's own stopped and started again (never the
shared test server).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from provisor.api import health
from tests.conftest import Server, make_settings, start_server
from tests.security._degraded import PrivatePostgres, find_initdb

DEADLINE = 30.0


async def _ready_until(url: str, status: int) -> httpx.Response:
    """GET /health/ready until it answers ``status`` (the result is cached about a second)."""
    end = time.monotonic() + DEADLINE
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        while True:
            r = await client.get("/health/ready")
            if r.status_code == status or time.monotonic() > end:
                return r
            await asyncio.sleep(0.1)


async def test_live_and_ready_answer_without_a_token(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.rest_url, timeout=10) as client:
        r = await client.get("/health/live")
        assert r.status_code == 200 and r.json() == {"status": "ok"}
        r = await client.get("/health/ready")
        assert r.status_code == 200, r.text
        assert r.json() == {"status": "ready", "checks": {"database": "ok", "listeners": "ok"}}
        assert (await client.get("/health/other")).status_code == 404
        assert (await client.get("/0.2/status")).status_code == 401  # the rest still needs one


async def test_a_flood_of_probes_costs_one_query_per_interval(server: Server) -> None:
    selects: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.strip().upper() == "SELECT 1":
            selects.append(statement)

    engine = server.prov.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        started = time.monotonic()
        async with httpx.AsyncClient(base_url=server.rest_url, timeout=10) as client:
            for _ in range(3):
                answers = await asyncio.gather(*(client.get("/health/ready") for _ in range(50)))
                assert {a.status_code for a in answers} == {200}
        elapsed = time.monotonic() - started
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert 1 <= len(selects) <= elapsed / health.CACHE_SECONDS + 1


async def test_ready_is_503_while_the_sqlite_folder_is_gone(tmp_path: Path) -> None:
    folder = tmp_path / "db"
    settings = make_settings(tmp_path, f"sqlite+aiosqlite:///{folder / 'provisor.db'}")
    server = await start_server(settings)
    try:
        assert (await _ready_until(server.rest_url, 200)).status_code == 200
        folder.rename(tmp_path / "db-away")
        r = await _ready_until(server.rest_url, 503)
        assert r.status_code == 503, r.text
        body = r.json()
        assert body["status"] == "not ready" and body["not_ready"] == ["database"]
        assert body["checks"]["listeners"] == "ok"
        assert "db" not in body["checks"]["database"]  # no path, no URL in an open answer
        assert r.headers["retry-after"]
        (tmp_path / "db-away").rename(folder)
        assert (await _ready_until(server.rest_url, 200)).status_code == 200
    finally:
        await server.close()


async def test_ready_is_503_when_a_listener_stopped(server: Server) -> None:
    phone_http = server.running._servers[1]  # the REST listener is the first one
    phone_http.should_exit = True  # uvicorn stops serving it
    r = await _ready_until(server.rest_url, 503)
    assert r.status_code == 503, r.text
    assert r.json()["not_ready"] == ["listeners"]
    assert r.json()["checks"]["listeners"] == "not running: http"


# -- a PostgreSQL cluster of this test's own ---------------------------------------------------


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    initdb = find_initdb()
    if initdb is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: initdb refuses root")
    if os.geteuid() == 0:
        if subprocess.run(["id", "postgres"], capture_output=True, check=False).returncode:
            pytest.skip("running as root and there is no postgres user to run initdb as")
    cluster = PrivatePostgres(initdb)  # its own folder and port, moved if the port is taken
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
async def pg_server(tmp_path: Path, private_pg: PrivatePostgres) -> AsyncIterator[Server]:
    server = await start_server(make_settings(tmp_path, private_pg.url))
    try:
        yield server
    finally:
        await server.close()


async def test_ready_is_503_while_postgresql_is_stopped(
    pg_server: Server, private_pg: PrivatePostgres
) -> None:
    assert (await _ready_until(pg_server.rest_url, 200)).status_code == 200
    await asyncio.to_thread(private_pg.stop)
    r = await _ready_until(pg_server.rest_url, 503)
    assert r.status_code == 503, r.text
    body = r.json()
    assert body["not_ready"] == ["database"]
    database = body["checks"]["database"]
    assert database.startswith(("unreachable (", "no answer within"))
    assert str(private_pg.port) not in database and "provisor@" not in r.text
    async with httpx.AsyncClient(base_url=pg_server.rest_url, timeout=10) as client:
        assert (await client.get("/health/live")).status_code == 200  # the process is still up
    await asyncio.to_thread(private_pg.start)
    assert (await _ready_until(pg_server.rest_url, 200)).status_code == 200
