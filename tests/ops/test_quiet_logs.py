"""No duplicate or library noise at INFO: a real ``provisor serve`` start-up says each thing
once, and an unexpected REST error's traceback is logged once."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter

from provisor.api.app import create_api
from tests.conftest import Server

PROVISOR = str(Path(sys.executable).parent / "provisor")
LINE = re.compile(r"^\S+ \S+ (DEBUG|INFO|WARNING|ERROR|CRITICAL) ([\w.]+): (.*)$")


def _start_up(data: Path) -> tuple[list[str], str]:
    """The log lines of one start-up until the server listens, then its exit; and stdout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISOR_")}
    cmd = [PROVISOR, "serve", "--data-dir", str(data)]
    cmd += ["--rest-port", "0", "--http-port", "0", "--tftp-port", "0"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    try:
        for line in proc.stderr:
            lines.append(line.rstrip("\n"))
            if "provisor listening on" in line or time.monotonic() > deadline:
                break
    finally:
        proc.send_signal(signal.SIGINT)
        out, rest = proc.communicate(timeout=30)
    lines += rest.splitlines()
    assert proc.returncode == 0, lines
    return lines, out


def test_start_up_says_each_thing_once(tmp_path: Path) -> None:
    for first in (True, False):
        lines, out = _start_up(tmp_path / "data")
        assert out == ""  # everything goes to the log, once
        parsed = [LINE.match(line) for line in lines]
        assert all(parsed), lines  # no stray print, no traceback
        loggers = {m.group(2) for m in parsed if m}
        assert all(name.startswith("provisor.") for name in loggers), lines  # no library noise
        listening = [line for line in lines if "listening" in line]
        assert len(listening) == 1, lines
        for name in ("rest", "http", "tftp"):  # each listener named once, with its port
            assert len(re.findall(rf"\b{name} 127\.0\.0\.1:\d+", listening[0])) == 1
        migrated = [line for line in lines if "schema" in line]
        assert migrated == ([migrated[0]] if first else []) and (
            not first or "from empty to" in migrated[0]
        ), lines
        assert len(lines) == len(set(m.group(3) for m in parsed if m)), lines  # no repeats


async def test_unexpected_rest_error_logged_once(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    router = APIRouter()

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom-7761")

    app = create_api(server.prov, extra_routers=(router,))
    # raise_app_exceptions: an exception escaping the app (which uvicorn would log a second
    # time) fails this request instead of becoming a 500
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
    caplog.set_level(logging.INFO)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        r = await client.get("/boom")
    assert r.status_code == 500 and r.text == "Internal error"
    logged = [rec for rec in caplog.records if rec.exc_info and "boom-7761" in str(rec.exc_info[1])]
    assert len(logged) == 1 and "/boom" in logged[0].getMessage()
