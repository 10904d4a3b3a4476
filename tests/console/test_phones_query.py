"""The Phones list's keyset paging: every device once, in order, NULLs last, on SQLite and
PostgreSQL; the first page reads the MAC index; the state filter pages on device_seen."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from provisor.console.fleet_state import page_by_state, state_of
from provisor.provisioning.trace import Trace, TraceEntry
from provisor.services.seen import SeenRecorder
from provisor.store.fleet import Cursor, FleetFilter, device_page, page_statement
from provisor.store.seen import SeenStore
from tests.conftest import Server


def _doc(n: int, tenant: str) -> dict[str, Any]:
    return {
        "id": f"k{n:04d}",
        "tenant_uuid": tenant,
        # every 7th device has no MAC, every 5th no IP; MACs repeat (duplicates must page)
        "mac": None if n % 7 == 0 else f"02:00:00:00:{(n % 40) >> 8:02x}:{n % 40:02x}",
        "ip": None if n % 5 == 0 else f"10.0.{n >> 8}.{n & 255}",
        "vendor": "Yealink" if n % 3 else "Snom",
        "is_new": False,
    }


async def _walk(server: Server, sort: str, desc: bool, flt: FleetFilter) -> list[str]:
    seen: list[str] = []
    after: Cursor | None = None
    for _ in range(100):
        page = await device_page(
            server.prov.engine,
            flt,
            None,
            sort=sort,
            desc=desc,
            after=after,
            limit=13,  # type: ignore[arg-type]
        )
        seen += [d["id"] for d in page.docs]
        if page.next is None:
            return seen
        after = page.next
    raise AssertionError("paging did not end")


async def test_keyset_pages_cover_everything_in_order(server: Server) -> None:
    docs = [_doc(n, server.master) for n in range(300)]
    await server.prov.devices.store.insert_many(docs)
    for sort in ("mac", "ip", "id"):
        for desc in (False, True):
            got = await _walk(server, sort, desc, FleetFilter())
            with_value = [d for d in docs if d[sort] is not None]
            without = [d for d in docs if d[sort] is None]
            expected = [
                d["id"] for d in sorted(with_value, key=lambda d: (d[sort], d["id"]), reverse=desc)
            ] + [d["id"] for d in sorted(without, key=lambda d: d["id"], reverse=desc)]
            assert got == expected, (sort, desc)
    snom = await _walk(server, "mac", False, FleetFilter(vendor="Snom"))
    assert sorted(snom) == sorted(d["id"] for d in docs if d["vendor"] == "Snom")
    # a search with LIKE wildcards is taken literally
    assert await _walk(server, "id", False, FleetFilter(search="k00_%")) == []
    assert await _walk(server, "id", False, FleetFilter(search="k029")) == [
        f"k029{n}" for n in range(10)
    ]


async def test_state_filter_pages_and_first_page_uses_the_mac_index(server: Server) -> None:
    docs = [_doc(n, server.master) for n in range(300)]
    await server.prov.devices.store.insert_many(docs)
    trace = Trace(100)
    recorder = SeenRecorder(SeenStore(server.prov.engine))
    trace.recorder = recorder
    for n in range(0, 300, 10):  # 30 seen: every other one failing
        trace.add(
            TraceEntry(
                "http", "10.0.0.1", "x.cfg", device_id=f"k{n:04d}", status=404 if n % 20 else 200
            )
        )
    await recorder.close()  # the state filter reads the device_seen table
    engine = server.prov.engine
    for state, expected in (
        ("failing", [f"k{n:04d}" for n in range(10, 300, 20)]),
        ("provisioned", [f"k{n:04d}" for n in range(0, 300, 20)]),
        ("never", [f"k{n:04d}" for n in range(300) if n % 10]),
    ):
        got: list[str] = []
        after = None
        for _ in range(100):
            page = await page_by_state(engine, state, FleetFilter(), None, after, 7)  # type: ignore[arg-type]
            got += [d["id"] for d in page.docs]
            if page.next is None:
                break
            after = page.next
        assert got == expected, state
    if engine.dialect.name == "sqlite":
        stmt = page_statement(FleetFilter(), None, "mac", False, None, 51, False)
        sql = str(stmt.compile(engine, compile_kwargs={"literal_binds": True}))
        async with engine.connect() as conn:
            plan = " ".join(
                str(r) for r in (await conn.execute(text("EXPLAIN QUERY PLAN " + sql))).all()
            )
        assert "ix_devices_mac" in plan and "SCAN devices" not in plan, plan


def test_last_seen_is_bounded_and_small() -> None:
    trace = Trace(10, devices=3)
    for n in range(5):
        trace.add(TraceEntry("http", "10.0.0.1", "p" * 5000, device_id=f"d{n}", status=200))
    trace.add(TraceEntry("http", "10.0.0.1", "x.cfg", device_id="d3", status=404, file=None))
    assert list(trace.last_seen()) == ["d2", "d4", "d3"]  # the least recently seen forgotten
    assert trace.last("d0") is None
    last = trace.last("d4")
    assert last is not None and len(last.file) == 200  # an attacker's long path is cut
    assert state_of(trace.last("d3")) == "failing" and state_of(last) == "provisioned"
    assert state_of(None) == "never"


def test_sampler_counts_differences_in_a_bounded_ring() -> None:
    from provisor.console.samples import Sampler, chart_points
    from provisor.metrics import PHONE

    sampler = Sampler(size=3)
    PHONE.count("http", 200, None, "hit")
    PHONE.count("http", 404, None, "none")
    first = sampler.sample()
    assert (first.requests, first.failures, first.hits) == (2, 1, 1)
    assert sampler.sample().requests == 0
    for _ in range(5):
        sampler.sample()
    assert len(sampler.samples) == 3
    points, top = chart_points([0.0, 2.0, 1.0], 100, 50)
    assert top == 2.0 and points.split()[1] == "50.0,2.0"
