"""Real ``provisor serve`` processes on one database, for the cluster tests.

Each node has its own data directory, its own ports (chosen by the node: port 0, read back from
its "listening" line) and its own log file (``node-<name>.log``, searched for secrets with the
suite's other logs); all point at the same database URL. X-Forwarded-For is trusted from
loopback, so a test speaks for phones and scanners of distinct addresses from 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import yaml

from provisor.api.http import MIME

PROVISOR = str(Path(sys.executable).parent / "provisor")
_LISTENING = re.compile(r"provisor listening on (.*)")

#: Bound on every wait of these tests (a loaded CI machine is slow; nothing asserts speed).
DEADLINE = 60.0


def node_config(folder: Path, database_url: str, plugin_dirs: list[str]) -> Path:
    """Write a node's settings file; returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    settings: dict[str, Any] = {
        "general": {
            "data_dir": str(folder / "data"),
            "plugin_dirs": plugin_dirs,
            "advertised_http_url": "http://127.0.0.1:8667",
            "install_bundled_plugins": False,
            "http_proxied_trusted_proxies_count": 1,
        },
        "database": {"url": database_url},
        "rest_api": {"ip": "127.0.0.1", "port": 0},
        # one process a node: these tests are about nodes (a node's workers share one failure
        # count: tests/provisioning/test_worker_bans.py)
        "provisioning": {"host": "127.0.0.1", "http_port": 0, "tftp_enabled": False, "workers": 1},
    }
    path = folder / "config.yml"
    path.write_text(yaml.safe_dump(settings))
    return path


class Node:
    """One ``provisor serve`` subprocess."""

    def __init__(self, name: str, folder: Path, config: Path) -> None:
        self.name = name
        self.folder = folder
        self.config = config
        self.proc: subprocess.Popen[str] | None = None
        self.rest = ""
        self.http = ""

    def start(self) -> None:
        """Start the process and wait for its listening line (logged on stderr, which a thread
        keeps copying to the node's log file so the server never blocks on a full pipe)."""
        self.proc = subprocess.Popen(
            [PROVISOR, "serve", "--config", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        proc = self.proc
        found: list[str] = []
        ready = threading.Event()

        def copy() -> None:
            assert proc.stderr is not None
            with (self.folder / f"node-{self.name}.log").open("a") as log:
                for line in proc.stderr:
                    log.write(line)
                    log.flush()
                    m = _LISTENING.search(line)
                    if m and not found:
                        found.append(m.group(1))
                        ready.set()
            ready.set()

        threading.Thread(target=copy, daemon=True).start()
        ready.wait(DEADLINE)
        if not found:
            self.stop()
            raise AssertionError(f"node {self.name} did not start (see its log)")
        ports = dict(part.strip().split(" ", 1) for part in found[0].split(","))
        self.rest = f"http://{ports['rest']}"
        self.http = f"http://{ports['http']}"

    def stop(self) -> None:
        """SIGTERM, then wait (killed if it does not stop within the deadline)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=DEADLINE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def api(self, token: str) -> httpx.AsyncClient:
        """A REST client on this node."""
        return httpx.AsyncClient(
            base_url=self.rest,
            headers={"X-Auth-Token": token, "Accept": MIME, "Content-Type": MIME},
            timeout=10,
        )

    def phone(self) -> httpx.AsyncClient:
        """A phone-side HTTP client on this node."""
        return httpx.AsyncClient(base_url=self.http, timeout=10)


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll ``check`` until it holds; fail naming ``what`` after :data:`DEADLINE` seconds."""
    end = time.monotonic() + DEADLINE
    while True:
        if await check():
            return
        if time.monotonic() > end:
            raise AssertionError(f"not within {DEADLINE:g} s: {what}")
        await asyncio.sleep(0.1)


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a ``provisor`` CLI command with a node's settings file."""
    return subprocess.run(
        [PROVISOR, *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )
