"""The console's first Phones page at 100 000 devices: server time, SQLite or PostgreSQL.

Starts provisor in this process on 127.0.0.1 with a fresh database, writes ``--devices``
devices through the store (bulk), signs in to the console and times ``GET /console/phones``
(the first page, a page deep in the keyset, a vendor filter) from a loopback client, and
prints the plan of the first page's query. Usage:

    .venv/bin/python bench/console_bench.py --devices 100000
    .venv/bin/python bench/console_bench.py --database-url postgresql+asyncpg://USER@HOST/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from provisor.settings import load_settings  # noqa: E402
from provisor.store.fleet import FleetFilter, page_statement  # noqa: E402


async def _pg_database(admin_url: str) -> tuple[str, str]:
    import asyncpg

    name = f"provisor_bench_{uuid.uuid4().hex[:10]}"
    admin = admin_url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return admin_url.rpartition("/")[0] + "/" + name, name


async def _pg_drop(admin_url: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def _device(n: int, tenant: str) -> dict[str, Any]:
    return {
        "id": f"dev{n:07d}",
        "tenant_uuid": tenant,
        "mac": f"02:{n >> 24 & 255:02x}:{n >> 16 & 255:02x}:{n >> 8 & 255:02x}:{n & 255:02x}:01",
        "ip": f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}",
        "vendor": ("Yealink", "Snom", "Polycom", "Cisco")[n % 4],
        "model": "T46S",
        "version": "66.86.0.15",
        "is_new": False,
        "configured": False,
    }


async def _timed(client: httpx.AsyncClient, url: str, rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        started = time.perf_counter()
        r = await client.get(url)
        out.append((time.perf_counter() - started) * 1000)
        assert r.status_code == 200, r.text[:300]
    return out


async def run(devices: int, database_url: str | None, rounds: int) -> None:
    from provisor.auth.builtin import BuiltinAuthBackend
    from provisor.server import Running

    tmp = Path(tempfile.mkdtemp(prefix="console-bench-"))
    pg_name = None
    url = f"sqlite+aiosqlite:///{tmp / 'provisor.db'}"
    if database_url:
        url, pg_name = await _pg_database(database_url)
    settings = load_settings(
        None,
        environ={},
        overrides={
            "general.data_dir": str(tmp / "data"),
            "database.url": url,
            "rest_api.port": 0,
            "provisioning.http_port": 0,
            "provisioning.tftp_enabled": False,
            "general.install_bundled_plugins": False,
            "general.advertised_http_url": "http://127.0.0.1:8667",
        },
    )
    running = await Running.start(settings)
    try:
        prov = running.prov
        master = prov.tenants.master.uuid
        started = time.perf_counter()
        for start in range(0, devices, 5000):
            batch = [_device(n, master) for n in range(start, min(devices, start + 5000))]
            await prov.devices.store.insert_many(batch)
        print(f"{devices} devices written in {time.perf_counter() - started:.1f} s")
        # 9 devices in 10 have a last request on record (one in 3 of those failing), written
        # through the same batched upsert the phone pipeline uses
        from provisor.store.seen import Seen, SeenStore

        seen = SeenStore(prov.engine)
        for start in range(0, devices, 1000):
            await seen.put(
                {
                    _device(n, master)["id"]: Seen(1e9 + n, 404 if n % 3 == 0 else 200, "x.cfg")
                    for n in range(start, min(devices, start + 1000))
                    if n % 10
                }
            )
        if pg_name:
            async with prov.engine.begin() as conn:
                from sqlalchemy import text

                await conn.execute(text("ANALYZE devices"))
                await conn.execute(text("ANALYZE device_seen"))
        token = await BuiltinAuthBackend(prov.tokens, prov.tenants).create_token(
            master, ["provd.#"], "bench"
        )
        base = f"http://127.0.0.1:{running.ports['rest']}"
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            form = await client.get("/console/signin")
            nonce = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
            r = await client.post("/console/signin", data={"csrf": nonce, "token": token})
            assert r.status_code == 303, r.text
            first = await _timed(client, "/console/phones", rounds)
            page = await client.get("/console/phones")
            deep_link = re.search(r'href="(/console/phones\?[^"]*after=[^"]+)"', page.text)
            deep = await _timed(client, deep_link.group(1).replace("&amp;", "&"), rounds)  # type: ignore[union-attr]
            vendor = await _timed(client, "/console/phones?vendor=Snom", rounds)
            by_ip = await _timed(client, "/console/phones?sort=ip&order=desc", rounds)
            failing = await _timed(client, "/console/phones?state=failing", rounds)
            never = await _timed(client, "/console/phones?state=never", rounds)
        stmt = page_statement(FleetFilter(), None, "mac", False, None, 51, False)
        async with prov.engine.connect() as conn:
            compiled = stmt.compile(conn.engine, compile_kwargs={"literal_binds": True})
            from sqlalchemy import text

            explain = "EXPLAIN QUERY PLAN " if conn.dialect.name == "sqlite" else "EXPLAIN "
            plan = (await conn.execute(text(explain + str(compiled)))).all()
        print(f"database: {conn.dialect.name}, {devices} devices, {rounds} rounds (ms)")
        print("| page | median | p95 |")
        print("|---|---|---|")
        for name, times in (
            ("first page (by MAC)", first),
            ("second page (keyset cursor)", deep),
            ("vendor filter (JSON, scan)", vendor),
            ("by IP, descending", by_ip),
            ("state failing (device_seen)", failing),
            ("state never seen (NOT EXISTS)", never),
        ):
            times.sort()
            p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
            print(f"| {name} | {statistics.median(times):.1f} | {p95:.1f} |")
        print("plan of the first page's query:")
        for row in plan:
            print("   ", " ".join(str(c) for c in row))
    finally:
        await running.stop()
        if pg_name and database_url:
            await _pg_drop(database_url, pg_name)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--database-url", default=None, help="a PostgreSQL server's admin URL")
    args = parser.parse_args()
    asyncio.run(run(args.devices, args.database_url, args.rounds))


if __name__ == "__main__":
    main()
