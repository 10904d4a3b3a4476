"""One sequential REST client, and find by MAC on a database filled while the server runs.

Run: .venv/bin/python bench/store_bench.py [--devices 100000] [--synchronous FULL|NORMAL]
     [--database-url postgresql+asyncpg://…/postgres] [--creations-only]

Reports, for the way PBX tools call provisor (one request at a time, no concurrency):
- device creations one after another over HTTP by a single client: p50, p99 and creations/s;
- (SQLite) find by MAC after the server, started on an empty store, has seen ``--devices``
  devices written into its file by another process without a restart: the planner works from
  whatever statistics it had at start-up, which is what this measures (api_bench.py restarts
  before measuring, so it never shows a plan that drifted).
The same client first creates against a bare ASGI app on uvicorn that reads the JSON body and
answers 201 with a small JSON document (no auth, no database): the floor of the client, the
loopback and uvicorn, measured in the same run.
With ``--database-url`` the creations run on a fresh database of that PostgreSQL server (created
and dropped here); the fill phase is SQLite-only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PY, ROOT, free_port, process, wait_port  # noqa: E402

MIME = "application/vnd.proformatique.provd+json"

FLOOR_APP = """
import json, sys, uuid, uvicorn
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    json.loads(body)
    out = json.dumps({"id": uuid.uuid4().hex}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(out)).encode())]
    await send({"type": "http.response.start", "status": 201, "headers": headers})
    await send({"type": "http.response.body", "body": out})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), loop="uvloop", http="httptools",
            log_level="warning", access_log=False, lifespan="off")
"""


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def _mac(n: int, prefix: str = "00:15:65") -> str:
    return f"{prefix}:{(n >> 16) & 255:02x}:{(n >> 8) & 255:02x}:{n & 255:02x}"


async def _pg(admin: str, sql: str) -> None:
    import asyncpg  # type: ignore[import-untyped]

    conn = await asyncpg.connect(admin.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _fill(db_file: Path, count: int) -> float:
    """Write ``count`` devices into the running server's SQLite file, as another process
    would (no migration, no ANALYZE); returns the seconds it took."""
    sys.path.insert(0, str(ROOT / "src"))
    from provisor.store.db import create_engine
    from provisor.store.documents import DeviceStore

    engine = create_engine(f"sqlite+aiosqlite:///{db_file}", sqlite_synchronous="NORMAL")
    store = DeviceStore(engine)
    async with engine.connect() as conn:
        master = (
            await conn.exec_driver_sql("SELECT uuid FROM tenants WHERE is_master LIMIT 1")
        ).scalar_one()
    t0 = time.perf_counter()
    for start in range(0, count, 5000):
        await store.insert_many(
            [
                {
                    "id": f"fill{n:07d}",
                    "mac": _mac(n),
                    "ip": f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}",
                    "plugin": "yealink",
                    "tenant_uuid": master,
                }
                for n in range(start, min(start + 5000, count))
            ]
        )
    elapsed = time.perf_counter() - t0
    store.close()
    await engine.dispose()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--creations", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0, help="cap on the creation loop")
    parser.add_argument("--synchronous", choices=["FULL", "NORMAL"], default="FULL")
    parser.add_argument("--database-url", default=None, help="a PostgreSQL server (admin URL)")
    parser.add_argument(
        "--creations-only", action="store_true", help="skip the fill and find-by-MAC phase"
    )
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="bench-store-"))
    env = {
        **os.environ,
        "PROVISOR_DATA_DIR": str(data),
        "PROVISOR_PROVISIONING__TFTP_ENABLED": "false",
        "PROVISOR_GENERAL__PLUGIN_DIRS": json.dumps([str(ROOT / "plugins")]),
        "PROVISOR_GENERAL__INSTALL_BUNDLED_PLUGINS": "false",
        "PROVISOR_DATABASE__SQLITE_SYNCHRONOUS": args.synchronous,
    }
    pg_name = None
    if args.database_url:
        pg_name = f"provisor_bench_{uuid.uuid4().hex[:12]}"
        asyncio.run(_pg(args.database_url, f'CREATE DATABASE "{pg_name}"'))
        env["PROVISOR_DATABASE__URL"] = f"{args.database_url.rpartition('/')[0]}/{pg_name}"
    rows: list[tuple[str, str]] = []
    floor_port = free_port()
    with process([PY, "-c", FLOOR_APP, str(floor_port)]):
        wait_port(floor_port)
        with httpx.Client(base_url=f"http://127.0.0.1:{floor_port}") as bare:
            [(_, floor)] = _creations(bare, args)
    rows.append(("the same client against a bare ASGI app (the floor)", floor))
    try:
        cli = [PY, "-m", "provisor.cli"]
        token = subprocess.run(
            [*cli, "token", "create"], env=env, capture_output=True, text=True, check=True
        ).stdout.strip()
        rest, http = free_port(), free_port()
        with process([*cli, "serve", "--rest-port", str(rest), "--http-port", str(http)], env=env):
            wait_port(rest)
            headers = {"X-Auth-Token": token, "Accept": MIME, "Content-Type": MIME}
            with httpx.Client(base_url=f"http://127.0.0.1:{rest}", headers=headers) as api:
                rows += _creations(api, args)
                if not args.database_url and not args.creations_only:
                    rows += _find_by_mac(api, data, args.devices)
    finally:
        if pg_name is not None:
            asyncio.run(_pg(args.database_url, f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))
    backend = "PostgreSQL" if args.database_url else f"SQLite synchronous={args.synchronous}"
    print(f"| measure ({backend}) | result |\n|---|---|")
    for name, result in rows:
        print(f"| {name} | {result} |")


def _creations(api: httpx.Client, args: Any) -> list[tuple[str, str]]:
    latencies: list[float] = []
    deadline = time.perf_counter() + args.seconds
    started = time.perf_counter()
    for n in range(args.creations):
        body = {"device": {"mac": _mac(n, "02:00:00"), "description": "bench"}}
        t0 = time.perf_counter()
        api.post("/0.2/dev_mgr/devices", json=body).raise_for_status()
        latencies.append((time.perf_counter() - t0) * 1000)
        if t0 > deadline:
            break
    rate = len(latencies) / (time.perf_counter() - started)
    return [
        (
            f"device creations, one sequential client ({len(latencies)})",
            f"{rate:.0f}/s, p50 {_pct(latencies, 0.5):.2f} ms, p99 {_pct(latencies, 0.99):.2f} ms",
        )
    ]


def _find_by_mac(api: httpx.Client, data: Path, devices: int) -> list[tuple[str, str]]:
    db_file = data / "provisor.db"
    if not db_file.exists():
        found = list(data.rglob("*.db"))
        db_file = found[0]
    elapsed = asyncio.run(_fill(db_file, devices))
    latencies = []
    for n in range(0, 400):
        mac = _mac((n * 7919) % devices)
        t0 = time.perf_counter()
        got = api.get("/0.2/dev_mgr/devices", params={"q": json.dumps({"mac": mac})})
        got.raise_for_status()
        latencies.append((time.perf_counter() - t0) * 1000)
        assert len(got.json()["devices"]) == 1, got.text
    return [
        (f"fill to {devices} devices while the server runs", f"{devices / elapsed:.0f}/s"),
        (
            "find by MAC after that fill, no restart, one client",
            f"p50 {_pct(latencies, 0.5):.2f} ms, p99 {_pct(latencies, 0.99):.2f} ms",
        ),
    ]


if __name__ == "__main__":
    main()
