"""docs/operations.md "Backup and restore" and "Upgrade", run as written against a real
``provisor serve``: an SQLite online backup taken while phones are being created restores to a
working server; a PostgreSQL ``pg_dump``/``pg_restore`` does too; a database of the previous
schema revision is migrated at start, with one log line, its data kept."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Connection

import provisor
from provisor.store.db import _alembic_config, create_engine
from tests.conftest import PG_URL, _pg_database, _pg_drop, make_settings, register_secret
from tests.ops._serve import Served, serve

PROVISOR = [sys.executable, "-m", "provisor.cli"]
#: Yealink MACs (the bundled yealink plugin claims the OUI and the UA)
MACS = [f"00:15:65:10:{i // 256:02x}:{i % 256:02x}" for i in range(60)]


def _env(data: Path, database_url: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISOR_")}
    env["PROVISOR_DATA_DIR"] = str(data)
    if database_url:
        env["PROVISOR_DATABASE__URL"] = database_url
    return env


def _serve(data: Path, database_url: str | None = None) -> Served:
    cmd = [*PROVISOR, "serve", "--rest-port", "0", "--http-port", "0", "--tftp-port", "0"]
    return serve(cmd, env=_env(data, database_url), cwd=data.parent)


def _token(data: Path, database_url: str | None = None) -> str:
    done = subprocess.run(
        [*PROVISOR, "token", "create"],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(data, database_url),
    )
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    register_secret(token)
    return token


def _boot(served: Served, mac: str) -> httpx.Response:
    """A Yealink phone asking for its file: created on first sight."""
    return httpx.get(
        f"http://127.0.0.1:{served.ports['http']}/{mac.replace(':', '')}.cfg",
        headers={"User-Agent": f"Yealink SIP-T46S 66.86.0.15 {mac}"},
        timeout=30,
    )


def _macs(served: Served, token: str) -> set[str]:
    r = httpx.get(
        f"http://127.0.0.1:{served.ports['rest']}/0.2/dev_mgr/devices",
        params={"recurse": "true"},
        headers={"X-Auth-Token": token},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return {d["mac"] for d in r.json()["devices"]}


def test_sqlite_online_backup_taken_while_serving_restores(tmp_path: Path) -> None:
    if shutil.which("sqlite3") is None:
        pytest.skip("sqlite3 not installed (scripts/test.sh installs Debian's sqlite3)")
    data = tmp_path / "data"
    token = _token(data)
    backup = tmp_path / "backup" / "provisor.db"
    backup.parent.mkdir()
    served = _serve(data)
    try:
        for mac in MACS[:10]:
            assert _boot(served, mac).status_code == 200
        # phones keep booting while the backup runs
        stop = threading.Event()
        during: list[str] = []

        def boot_more() -> None:
            for mac in MACS[10:50]:
                if stop.is_set():
                    return
                assert _boot(served, mac).status_code == 200
                during.append(mac)

        booting = threading.Thread(target=boot_more)
        booting.start()
        try:
            done = subprocess.run(  # the command docs/operations.md gives
                ["sqlite3", str(data / "provisor.db"), f".backup {backup}"],
                capture_output=True,
                text=True,
                timeout=120,
            )
        finally:
            stop.set()
            booting.join(timeout=120)
        assert done.returncode == 0, done.stderr
        after = MACS[59]  # created once the backup is taken: must not come back
        assert _boot(served, after).status_code == 200
    finally:
        assert served.stop() == 0
    with sqlite3.connect(backup) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    # restore as the docs say: server stopped, the copy back as provisor.db, no -wal/-shm
    for suffix in ("-wal", "-shm"):
        (data / f"provisor.db{suffix}").unlink(missing_ok=True)
    shutil.copyfile(backup, data / "provisor.db")
    served = _serve(data)
    try:
        restored = _macs(served, token)
        assert set(MACS[:10]) <= restored  # everything acknowledged before the backup
        assert after not in restored  # the backup, not the live file
        assert restored <= set(MACS[:50])
        r = _boot(served, MACS[0])  # a restored phone is served again
        assert r.status_code == 200 and b"account.1" in r.content
        assert MACS[0] in _macs(served, token)
    finally:
        assert served.stop() == 0


@pytest.mark.skipif(PG_URL is None, reason="PostgreSQL only (PROVISOR_TEST_DATABASE_URL)")
async def test_postgresql_dump_and_restore(tmp_path: Path, database_url: str) -> None:
    libpq = database_url.replace("postgresql+asyncpg://", "postgresql://")
    data = tmp_path / "data"
    token = _token(data, database_url)
    served = _serve(data, database_url)
    try:
        for mac in MACS[:5]:
            assert _boot(served, mac).status_code == 200
        dump = tmp_path / "provisor.dump"
        done = subprocess.run(
            ["pg_dump", "-Fc", "-f", str(dump), "-d", libpq],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
    finally:
        assert served.stop() == 0
    target, name = await _pg_database()
    try:
        done = subprocess.run(
            ["pg_restore", "--no-owner", "-d", target.replace("+asyncpg", ""), str(dump)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        served = _serve(tmp_path / "restored", target)
        try:
            assert _macs(served, token) == set(MACS[:5])  # tokens came with the dump
            # a new data folder: its plugins come from the database (docs/operations.md,
            # "Adding a node"), installed in the background right after start
            deadline = time.monotonic() + 90
            while (r := _boot(served, MACS[0])).status_code != 200 and time.monotonic() < deadline:
                time.sleep(0.5)
            assert r.status_code == 200 and b"account.1" in r.content, served.log[-30:]
        finally:
            assert served.stop() == 0
    finally:
        await _pg_drop(name)


def _upgrade_to(revision: str) -> Callable[[Connection], None]:
    def run(connection: Connection) -> None:
        command.upgrade(_alembic_config(connection), revision)

    return run


async def test_upgrade_migrates_the_previous_revision_at_start(
    tmp_path: Path, database_url: str
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    url = database_url if PG_URL else f"sqlite+aiosqlite:///{data / 'provisor.db'}"
    engine = create_engine(make_settings(tmp_path, url).database_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade_to("0002"))
            await conn.execute(
                text(
                    "INSERT INTO configs (id, tenant_uuid, role, provisioning_code, doc, rev)"
                    " VALUES ('kept', NULL, NULL, NULL, :doc, 1)"
                ),
                {"doc": '{"id": "kept", "parent_ids": [], "raw_config": {}}'},
            )
    finally:
        await engine.dispose()
    served = _serve(data, url if PG_URL else None)
    try:
        token = _token(data, url if PG_URL else None)
        r = httpx.get(
            f"http://127.0.0.1:{served.ports['rest']}/0.2/cfg_mgr/configs/kept",
            headers={"X-Auth-Token": token},
            timeout=30,
        )
        assert r.status_code == 200, r.text
    finally:
        assert served.stop() == 0
    migrated = [line for line in served.log if "schema" in line]
    versions = Path(provisor.__file__).parent / "store" / "migrations" / "versions"
    head = max(p.name[:4] for p in versions.glob("[0-9][0-9][0-9][0-9]_*.py"))
    assert len(migrated) == 1 and f"from 0002 to {head}" in migrated[0], served.log
