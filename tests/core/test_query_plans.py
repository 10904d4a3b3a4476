"""The hot device lookups use their own index however the database grew since start-up.

A server is started (empty, or with a couple of devices: what start-up statistics would have
seen), then filled through the real store while it runs, without a restart. Every statement the
store then sends for the hot lookups (by id, MAC, IP, token; a tenant-scoped list filtered on a
MAC, paged or sorted) is captured as it is executed and replayed under ``EXPLAIN`` on the same
connections: each must search the index of its key, never the tenant index nor a scan.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from provisor.domain.selector import parse_selector
from provisor.service import Provisor
from provisor.store.documents import DeviceStore, Page
from tests.conftest import make_settings

TENANTS = [f"tenant-{n}" for n in range(4)]
FILL = 3000


def _doc(n: int) -> dict[str, Any]:
    return {
        "id": f"dev{n:05d}",
        "tenant_uuid": TENANTS[n % len(TENANTS)],
        "mac": f"00:15:65:00:{(n >> 8) & 255:02x}:{n & 255:02x}",
        "ip": f"10.1.{(n >> 8) & 255}.{n & 255}",
        "plugin": "yealink",
        "config": "shared",
    }


async def _fill(store: DeviceStore, start: int, stop: int) -> None:
    # concurrent inserts, as a boot storm writes them (batched by the store)
    for chunk in range(start, stop, 100):
        await asyncio.gather(
            *(
                store.insert(_doc(n), prov_token=f"tok{n:05d}")
                for n in range(chunk, min(chunk + 100, stop))
            )
        )


def _expected(sql: str) -> str:
    """The index a hot statement must search, from the key it filters on."""
    where = sql.split("WHERE", 1)[1]
    for column, index in (
        ("prov_token", "sqlite_autoindex_devices_2"),
        ("mac", "ix_devices_mac"),
        ("ip", "ix_devices_ip"),
        ("id", "sqlite_autoindex_devices_1"),
    ):
        if f"{column} " in where.replace("devices.", " ").replace("(", " "):
            return index
    raise AssertionError(f"not a hot statement: {sql}")


@pytest.mark.parametrize("at_start", [0, 2], ids=["started-empty", "started-with-two"])
async def test_hot_lookups_keep_their_index_as_the_store_grows(
    tmp_path: Path, database_url: str, at_start: int
) -> None:
    settings = make_settings(tmp_path, database_url)
    if at_start:  # a first run leaves a tiny store behind: start-up sees only that
        prov = await Provisor.open(settings)
        await _fill(prov.devices.store, FILL, FILL + at_start)
        await prov.close()
    prov = await Provisor.open(settings)
    store = prov.devices.store
    try:
        await _fill(store, 0, FILL)  # grows while the server runs
        pg = store.engine.dialect.name == "postgresql"
        if pg:
            # PostgreSQL keeps its own statistics: autovacuum re-analyzes a table once 10 % of
            # it changed (within autovacuum_naptime, 1 min by default). Until then the tenant
            # index can be picked for a tenant + MAC filter, as measured in docs/benchmarks.md;
            # here the statistics are what autovacuum would have made of the fill
            async with store.engine.connect() as conn:
                await conn.exec_driver_sql("ANALYZE devices")
        sent: list[tuple[str, Any]] = []

        def capture(_c: Any, _cur: Any, sql: str, params: Any, _ctx: Any, many: bool) -> None:
            if sql.lstrip().upper().startswith("SELECT") and "FROM devices" in sql and not many:
                sent.append((sql, params))

        event.listen(store.engine.sync_engine, "before_cursor_execute", capture)
        point_sql: list[str] = []
        if store.points is not None:
            assert await store.get("dev00001") is not None  # opens the reader
            reader = store.points._conn
            assert reader is not None
            reader.set_trace_callback(point_sql.append)
        lookups: list[Callable[[], Awaitable[Any]]] = [
            lambda: store.get("dev00042"),
            lambda: store.find_one(mac=_doc(43)["mac"]),
            lambda: store.find_all(limit=5, ip=_doc(44)["ip"]),
            lambda: store.find_by_values("mac", [_doc(45)["mac"], _doc(46)["mac"]]),
            lambda: store.find_by_token("tok00047"),
            lambda: store.query(
                parse_selector(f'{{"mac": "{_doc(48)["mac"]}"}}', None),
                tenants=TENANTS[:2],
                page=Page(skip=0, limit=10),
            ),
            lambda: store.query(  # sorted: filtered in SQL, sorted in Python
                parse_selector(f'{{"mac": "{_doc(49)["mac"]}"}}', None),
                tenants=TENANTS[1:2],
                page=Page(sort=("id", False)),
            ),
        ]
        points, answers = store.points, []
        try:
            for through_points in (True, False):  # the synchronous reader, then the engine
                store.points = points if through_points else None
                answers += [await lookup() for lookup in lookups]
        finally:
            store.points = points
            event.remove(store.engine.sync_engine, "before_cursor_execute", capture)
        assert answers[0]["id"] == "dev00042"  # the lookups found what they looked for
        assert [d["id"] for d in answers[5]] == ["dev00048"]
        assert [d["id"] for d in answers[6]] == ["dev00049"]
        assert answers[len(lookups) :] == answers[: len(lookups)]  # both paths agree

        plans: list[tuple[str, str]] = []
        async with store.engine.connect() as conn:
            for sql, params in sent:
                explain = "EXPLAIN " if pg else "EXPLAIN QUERY PLAN "
                rows = (await conn.exec_driver_sql(explain + sql, params)).all()
                plans.append((sql, " / ".join(str(r[-1] if not pg else r[0]) for r in rows)))
        if points is not None:
            assert points._conn is not None
            points._conn.set_trace_callback(None)
            for sql in point_sql:
                rows = points._conn.execute("EXPLAIN QUERY PLAN " + sql).fetchall()
                plans.append((sql, " / ".join(r[-1] for r in rows)))
        assert len(sent) >= len(lookups)  # every lookup reached the engine once
        assert not pg or not point_sql
        for sql, plan in plans:
            index = _expected(sql)
            if pg:
                index = {
                    "sqlite_autoindex_devices_1": "pk_devices",
                    "sqlite_autoindex_devices_2": "uq_devices_prov_token",
                }.get(index, index)
                assert index in plan and "Seq Scan" not in plan, (sql, plan)
            else:
                assert f"SEARCH devices USING INDEX {index} " in plan, (sql, plan)
                assert "SCAN devices" not in plan and "tenant_uuid" not in plan, (sql, plan)
    finally:
        await prov.close()


def test_a_new_connection_reads_the_pinned_statistics(tmp_path: Path) -> None:
    """The figures are in the file, so a fresh connection (another process) plans alike."""
    db = tmp_path / "p.db"

    async def create() -> None:
        prov = await Provisor.open(make_settings(tmp_path, f"sqlite+aiosqlite:///{db}"))
        await prov.close()

    asyncio.run(create())
    conn = sqlite3.connect(db)
    try:
        stats = dict(
            conn.execute("SELECT idx, stat FROM sqlite_stat1 WHERE tbl = 'devices'").fetchall()
        )
        plan = conn.execute(
            "EXPLAIN QUERY PLAN SELECT doc FROM devices WHERE tenant_uuid IN ('a') AND mac IN ('m')"
        ).fetchall()
    finally:
        conn.close()
    assert stats["ix_devices_mac"] == "1000000 1"
    assert stats["ix_devices_tenant_uuid"] == "1000000 10000"
    assert "ix_devices_mac" in plan[0][-1]
