"""Helpers of the ops tests: build the wheel, run a real ``provisor serve`` on ports the
kernel chose (port 0: no probe-then-bind race) and read them from its one "listening" line."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_LISTENING = re.compile(r"provisor listening on (.*)$")


def build_wheel(dest: Path) -> Path:
    """``pip wheel`` of the checkout (no build isolation: offline), the one wheel built."""
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
        + ["-w", str(dest), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    [wheel] = list(dest.glob("provisor-*.whl"))
    return wheel


class Served:
    """A running ``provisor serve`` and the ports it listens on, by listener name."""

    def __init__(self, proc: subprocess.Popen[str], ports: dict[str, int], log: list[str]):
        self.proc = proc
        self.ports = ports
        self.log = log

    def stop(self) -> int:
        """SIGINT, then wait for the exit (its status)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=30)


def serve(cmd: Sequence[str], *, env: dict[str, str], cwd: Path, deadline: float = 90) -> Served:
    """Start ``cmd`` (a ``provisor serve`` with ports 0) and wait for its listening line."""
    proc = subprocess.Popen(
        list(cmd), env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    log: list[str] = []
    found: dict[str, int] = {}
    ready = threading.Event()

    def read() -> None:  # keeps draining stderr so the server never blocks on a full pipe
        assert proc.stderr is not None
        for line in proc.stderr:
            log.append(line.rstrip("\n"))
            m = _LISTENING.search(line)
            if m and not found:
                found.update(
                    {k: int(v) for k, v in re.findall(r"(\w+) [\d.:\[\]a-f]+:(\d+)", m.group(1))}
                )
                ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    end = time.monotonic() + deadline
    while not ready.wait(0.2) and time.monotonic() < end:
        pass
    if not found:
        proc.kill()
        proc.wait(timeout=30)
        raise AssertionError("provisor serve did not start:\n" + "\n".join(log[-40:]))
    return Served(proc, found, log)
