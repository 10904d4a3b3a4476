"""Acknowledged writes survive ``kill -9``; SQLite runs with the ``synchronous`` level chosen.

A real ``provisor serve`` process on a SQLite file takes REST writes from concurrent clients
and is killed with SIGKILL while writes are still in flight; after a restart every write it
had answered 201 for is there. An OS crash or power cut cannot be staged in a test: what is
checked is that the connections run with ``PRAGMA synchronous=FULL`` (the level that keeps
the last commits through one, see docs/settings.md) unless the operator chose otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from provisor.api.http import MIME
from provisor.service import Provisor
from tests.conftest import make_settings
from tests.ops._serve import serve

ROUNDS = 3
WRITERS = 4
ACKED_BEFORE_KILL = 40  # kill once this many writes were answered (others still in flight)
MAX_WRITES = 400  # per round, whatever happens


def _env(data: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PROVISOR_DATA_DIR": str(data),
        "PROVISOR_PROVISIONING__TFTP_ENABLED": "false",
    }


def _cli(*args: str, data: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "provisor.cli", *args],
        env=_env(data),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


@contextlib.contextmanager
def _serving(data: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """``provisor serve`` on ports the kernel chose, and its REST port; killed (SIGKILL) on the
    way out if still running."""
    served = serve(
        [sys.executable, "-m", "provisor.cli", "serve", "--rest-port", "0", "--http-port", "0"],
        env=_env(data),
        cwd=data.parent,
        deadline=60,
    )
    try:
        yield served.proc, served.ports["rest"]
    finally:
        if served.proc.poll() is None:
            served.proc.kill()
        served.proc.wait(timeout=30)


async def _write_until_killed(
    client: httpx.AsyncClient, proc: subprocess.Popen[str], round_no: int
) -> list[str]:
    """Concurrent config creations; SIGKILL once enough were acknowledged. Returns the acked."""
    acked: list[str] = []
    counter = iter(range(MAX_WRITES))
    killed = asyncio.Event()

    async def writer() -> None:
        for n in counter:
            if killed.is_set():
                return
            config_id = f"r{round_no}-{n}"
            body = {"config": {"id": config_id, "parent_ids": ["base"], "raw_config": {"X_n": n}}}
            try:
                r = await client.post("/0.2/cfg_mgr/configs", content=json.dumps(body))
            except httpx.TransportError:
                return  # the server died under this request: not acknowledged
            if r.status_code == 201:
                acked.append(config_id)
            if len(acked) >= ACKED_BEFORE_KILL and not killed.is_set():
                killed.set()
                os.kill(proc.pid, signal.SIGKILL)  # while the other writers are mid-request

    await asyncio.wait_for(asyncio.gather(*(writer() for _ in range(WRITERS))), timeout=120)
    assert killed.is_set(), f"only {len(acked)} writes acknowledged"
    return acked


async def test_acknowledged_writes_survive_kill_9(tmp_path: Path) -> None:
    data = tmp_path / "data"
    token = _cli("token", "create", data=data)
    headers = {"X-Auth-Token": token, "Accept": MIME, "Content-Type": MIME}
    all_acked: list[str] = []
    for round_no in range(ROUNDS):
        with _serving(data) as (proc, rest):
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{rest}", headers=headers, timeout=30
            ) as client:
                all_acked += await _write_until_killed(client, proc, round_no)
            proc.wait(timeout=30)
            assert proc.returncode == -signal.SIGKILL
    with _serving(data) as (_proc, rest):
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{rest}", headers=headers, timeout=30
        ) as client:
            r = await client.get("/0.2/cfg_mgr/configs", params={"fields": "id,raw_config"})
            stored = {c["id"]: c["raw_config"] for c in r.json()["configs"]}
    missing = [c for c in all_acked if c not in stored]
    assert not missing, f"{len(missing)} acknowledged writes lost: {missing[:10]}"
    assert len(all_acked) >= ROUNDS * ACKED_BEFORE_KILL
    for config_id in all_acked:  # whole documents, not half-written ones
        assert stored[config_id] == {"X_n": int(config_id.rsplit("-", 1)[1])}


async def _synchronous_level(prov: Provisor) -> int:
    async with prov.engine.connect() as conn:
        return int((await conn.exec_driver_sql("PRAGMA synchronous")).scalar_one())


@pytest.mark.parametrize(("setting", "level"), [(None, 2), ("NORMAL", 1), ("EXTRA", 3)])
async def test_sqlite_synchronous_setting(tmp_path: Path, setting: str | None, level: int) -> None:
    overrides = {} if setting is None else {"database.sqlite_synchronous": setting}
    url = f"sqlite+aiosqlite:///{tmp_path / 'provisor.db'}"
    prov = await Provisor.open(make_settings(tmp_path, url, **overrides))
    try:
        assert await _synchronous_level(prov) == level  # 2 = FULL, the default
    finally:
        await prov.close()
