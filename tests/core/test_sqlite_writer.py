"""The SQLite writer thread: grouped commits, one caller's error its own, and a clear 503 with
nothing half-written when the file cannot be written (locked, full)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from provisor.errors import Conflict
from provisor.service import Provisor
from provisor.store.writer import SqliteWriter
from tests.conftest import make_settings, start_server
from tests.support.waiting import until


def _sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'provisor.db'}"


async def test_jobs_queued_during_a_commit_share_the_next_transaction(tmp_path: Path) -> None:
    path = str(tmp_path / "w.db")
    with sqlite3.connect(path) as setup:
        setup.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    writer = SqliteWriter(path, synchronous="FULL")
    gate, running = threading.Event(), threading.Event()
    outside = sqlite3.connect(path, check_same_thread=False)

    def first(conn: sqlite3.Connection) -> int:
        conn.execute("INSERT INTO t VALUES (1)")
        running.set()
        gate.wait(10)
        return 1

    def later(n: int) -> Callable[[sqlite3.Connection], bool]:
        def job(conn: sqlite3.Connection) -> bool:
            conn.execute("INSERT INTO t VALUES (?)", (n,))
            # another connection sees the first job, committed alone, and none of this batch:
            # the queued jobs run inside one open transaction
            return bool(outside.execute("SELECT count(*) FROM t").fetchone()[0] == 1)

        return job

    try:
        lone = asyncio.ensure_future(writer.run(first))
        for _ in range(200):  # the first job is being written, alone (bounded wait)
            if running.is_set():
                break
            await asyncio.sleep(0.05)
        assert running.is_set()
        queued = [asyncio.ensure_future(writer.run(later(n))) for n in range(2, 12)]
        await asyncio.sleep(0.05)  # the tasks have queued their jobs
        gate.set()
        assert await lone == 1
        assert await asyncio.gather(*queued) == [True] * 10
        assert outside.execute("SELECT count(*) FROM t").fetchone()[0] == 11
    finally:
        gate.set()
        outside.close()
        writer.close()


async def test_a_duplicate_in_a_batch_fails_alone(tmp_path: Path) -> None:
    prov = await Provisor.open(make_settings(tmp_path, _sqlite_url(tmp_path)))
    try:
        master = prov.devices.master_uuid
        await prov.devices.create({"id": "taken", "mac": "00:11:22:33:44:55"}, master)
        bodies = [{"id": f"dev{n}"} for n in range(20)]
        bodies.insert(7, {"id": "taken"})
        results = await asyncio.gather(
            *(prov.devices.create(b, master) for b in bodies), return_exceptions=True
        )
        assert isinstance(results[7], Conflict)
        assert all(isinstance(r, dict) for i, r in enumerate(results) if i != 7)
        assert await prov.devices.store.count(tenant_uuid=master) == 21
        assert (await prov.devices.store.get("taken"))["mac"] == "00:11:22:33:44:55"  # type: ignore[index]
    finally:
        await prov.close()


async def test_an_insert_that_takes_an_ip_clears_it_on_the_holder(tmp_path: Path) -> None:
    prov = await Provisor.open(make_settings(tmp_path, _sqlite_url(tmp_path)))
    try:
        master = prov.devices.master_uuid
        await prov.devices.create({"id": "old", "ip": "10.1.1.1"}, master)
        before = await prov.devices.store.get("old")
        taken: list[str] = []
        await prov.devices.create({"id": "new", "ip": "10.1.1.1"}, master, ip_taken_from=taken)
        assert taken == ["old"]
        old = await prov.devices.store.get("old")
        assert old is not None and before is not None and "ip" not in old
        assert {k: v for k, v in before.items() if k != "ip"} == old
        assert [d["id"] for d in await prov.devices.store.find_all(ip="10.1.1.1")] == ["new"]
    finally:
        await prov.close()


@pytest.mark.parametrize(("setting", "level"), [(None, 2), ("NORMAL", 1), ("EXTRA", 3)])
async def test_the_writer_uses_the_synchronous_setting(
    tmp_path: Path, setting: str | None, level: int
) -> None:
    overrides = {} if setting is None else {"database.sqlite_synchronous": setting}
    prov = await Provisor.open(make_settings(tmp_path, _sqlite_url(tmp_path), **overrides))
    try:
        writer = prov.devices.store.writer
        assert writer is not None
        got = await writer.run(lambda conn: conn.execute("PRAGMA synchronous").fetchone()[0])
        assert got == level  # 2 = FULL, the default
    finally:
        await prov.close()


async def test_a_locked_file_is_a_503_and_writes_nothing(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, _sqlite_url(tmp_path), **{"database.sqlite_busy_timeout": 0.3}
    )
    srv = await start_server(settings)
    holder = sqlite3.connect(str(tmp_path / "provisor.db"), isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        body = {"device": {"id": "locked1", "mac": "00:11:22:33:44:66"}}
        r = await srv.api.post("/0.2/dev_mgr/devices", json=body)
        assert r.status_code == 503, r.text
        assert "database" in r.text and r.headers["Retry-After"]
        holder.execute("ROLLBACK")
        assert await srv.prov.devices.store.get("locked1") is None

        async def accepted() -> httpx.Response | None:
            r = await srv.api.post("/0.2/dev_mgr/devices", json=body)
            return r if r.status_code != 503 else None

        # the poller marks the database up again within a second or two (a bounded wait)
        r = await until(accepted, "a write accepted again")
        assert r.status_code == 201, r.text
        stored = await srv.prov.devices.store.get("locked1")
        assert stored is not None and stored["mac"] == "00:11:22:33:44:66"
    finally:
        holder.close()
        await srv.close()


async def test_a_full_disk_is_a_503_and_writes_nothing(tmp_path: Path) -> None:
    srv = await start_server(make_settings(tmp_path, _sqlite_url(tmp_path)))
    try:
        writer = srv.prov.devices.store.writer
        assert writer is not None

        def cap(conn: sqlite3.Connection) -> int:
            pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
            return int(conn.execute(f"PRAGMA max_page_count = {pages + 2}").fetchone()[0])

        await writer.run(cap)  # the file may not grow by more than two pages
        body = {"device": {"id": "big", "X_notes": "x" * 60_000}}  # within the 64 KiB bound
        r = await srv.api.post("/0.2/dev_mgr/devices", json=body)
        assert r.status_code == 503, r.text
        assert r.headers["Retry-After"]
        assert await srv.prov.devices.store.get("big") is None
        assert srv.prov.feed.health.reason.startswith("OperationalError: database or disk is full")
    finally:
        await srv.close()


async def test_two_writers_on_one_file_take_turns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes' writers (each phone worker has one): a shared writer that keeps the lock
    busy lets the other in between its transactions, instead of the other sleeping in SQLite's
    busy handler until the stream is over."""
    monkeypatch.setattr("provisor.store.writer.MAX_BATCH", 1)  # one transaction per job
    path = str(tmp_path / "w.db")
    with sqlite3.connect(path) as setup:
        setup.execute("PRAGMA journal_mode=WAL")
        setup.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, who TEXT)")
    busy = SqliteWriter(path, synchronous="NORMAL", shared=True)
    other = SqliteWriter(path, synchronous="NORMAL", shared=True)

    def held(n: int) -> Callable[[sqlite3.Connection], None]:
        def job(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO t VALUES (?, 'busy')", (n,))
            threading.Event().wait(0.005)  # the lock held a while, as a commit's fsync does

        return job

    try:
        await busy.run(held(-1))  # both threads and connections exist before the contest
        await other.run(lambda conn: conn.execute("INSERT INTO t VALUES (-2, 'other')"))
        # queued at once, written one transaction each, back to back: about 2 s of lock
        stream = [asyncio.ensure_future(busy.run(held(n))) for n in range(400)]
        await asyncio.sleep(0.1)
        await other.run(lambda conn: conn.execute("INSERT INTO t VALUES (-3, 'other')"))
        left = sum(not f.done() for f in stream)
        assert left > 0, "the other writer waited for the whole stream"
        await asyncio.gather(*stream)
    finally:
        busy.close()
        other.close()
    with sqlite3.connect(path) as check:
        assert check.execute("SELECT count(*) FROM t").fetchone()[0] == 403
