"""One supervised process per wazo plugin: start, call with a deadline, kill, restart.

The server talks to ``runtime/wazo_worker.py`` over pipes, one JSON document per line. Every
call has a deadline; a worker that misses it, dies or answers garbage is killed, and calls fail
fast for a back-off period before it is started again. Only that plugin's devices notice.
"""

from __future__ import annotations

import json
import logging
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["RUNTIME", "WorkerError", "WazoWorker"]

log = logging.getLogger(__name__)

RUNTIME = Path(__file__).resolve().parent / "runtime"
_MAX_ANSWER = 8 * 1024 * 1024
_PR_SET_PDEATHSIG = 1


#: The only environment a worker gets: the server's may hold secrets (database URL, AMI
#: secret, PROVISOR_* keys) that third-party plugin code has no business reading.
_ENV_KEEP = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR")


def _worker_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in _ENV_KEEP}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


class WorkerError(Exception):
    """The worker failed, timed out, or is backing off after a failure."""

    def __init__(self, message: str, *, plugin_raised: bool = False) -> None:
        super().__init__(message)
        self.plugin_raised = plugin_raised
        """True when the plugin's code raised (the worker is fine and keeps running)."""


def _child_setup(memory_bytes: int) -> None:
    """In the child before exec: die with the server, and cap the address space."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass
    if memory_bytes > 0:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))


class WazoWorker:
    """A worker process for the plugin in ``plugin_dir``; calls are serialised."""

    def __init__(
        self,
        plugin_dir: Path,
        *,
        timeout: float,
        start_timeout: float,
        memory_mb: int,
        gen_cfg: dict[str, Any] | None = None,
    ) -> None:
        self.plugin_dir = plugin_dir
        self.timeout = timeout
        self.start_timeout = start_timeout
        self.memory_bytes = memory_mb * 1024 * 1024
        self.gen_cfg = gen_cfg or {}
        self.info: dict[str, Any] = {}
        self.services: dict[str, Any] = {}
        """Protocol → folder of the plugin it serves (None: nothing), as the plugin set them."""
        self.failures = 0
        """Times the worker was killed or found dead (it is started again on the next call)."""
        self._proc: subprocess.Popen[bytes] | None = None
        self._buffer = b""
        self._lock = threading.Lock()
        self._backoff = 0.0
        self._broken_until = 0.0

    @property
    def pid(self) -> int | None:
        """The worker's process id while it runs."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def start(self) -> dict[str, Any]:
        """Start the worker and return the plugin's ``plugin-info``; WorkerError if it fails."""
        with self._lock:
            self._ensure()
            return self.info

    def call(self, op: str, **args: Any) -> Any:
        """Run one operation in the worker within the deadline."""
        # a caller queued behind a hung call gives up after one deadline too
        if not self._lock.acquire(timeout=self.timeout):
            raise WorkerError(f"{op}: worker for {self.plugin_dir.name} is busy")
        try:
            self._ensure()
            assert self._proc is not None and self._proc.stdin is not None
            try:
                self._proc.stdin.write(json.dumps({"op": op, **args}).encode() + b"\n")
                self._proc.stdin.flush()
            except OSError as exc:
                self._fail(f"{op}: cannot write to the worker: {exc}")
            answer = self._read(self.timeout, op)
            self._backoff = 0.0
            if not answer.get("ok"):
                raise WorkerError(f"{op}: {answer.get('error', 'failed')}", plugin_raised=True)
            return answer.get("result")
        finally:
            self._lock.release()

    def close(self) -> None:
        """Stop the worker (end of input, then a kill if it lingers)."""
        with self._lock:
            self._stop()

    # -- internals (called with the lock held) ------------------------------------------------

    def _ensure(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        if self._proc is not None:
            self._stop()  # it exited on its own between calls
            self.failures += 1
        if time.monotonic() < self._broken_until:
            raise WorkerError(f"worker for {self.plugin_dir.name} is backing off after a failure")
        memory = self.memory_bytes
        self._proc = subprocess.Popen(
            [
                sys.executable,
                str(RUNTIME / "wazo_worker.py"),
                str(self.plugin_dir),
                json.dumps(self.gen_cfg),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,
            cwd=str(self.plugin_dir),
            env=_worker_env(),
            preexec_fn=lambda: _child_setup(memory),  # noqa: PLW1509 - no threads touch it
        )
        self._buffer = b""
        answer = self._read(self.start_timeout, "start")
        if not answer.get("ok"):
            self._fail(f"plugin {self.plugin_dir.name} does not load: {answer.get('error')}")
        self.info = dict(answer.get("result", {}).get("info") or {})
        services = answer.get("result", {}).get("services")
        self.services = dict(services) if isinstance(services, dict) else {}

    def _read(self, deadline: float, op: str) -> dict[str, Any]:
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        end = time.monotonic() + deadline
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                left = end - time.monotonic()
                if left <= 0 or not sel.select(left):
                    self._fail(f"{op}: no answer within {deadline:g} s, worker killed")
                chunk = os.read(fd, 65536)
                if not chunk:
                    self._fail(f"{op}: the worker died (exit code {self._proc.poll()})")
                self._buffer += chunk
                if len(self._buffer) > _MAX_ANSWER:
                    self._fail(f"{op}: answer larger than {_MAX_ANSWER} bytes, worker killed")
        line, _, self._buffer = self._buffer.partition(b"\n")
        try:
            doc: Any = json.loads(line)
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            self._fail(f"{op}: the worker answered garbage, worker killed")
        return dict(doc)

    def _fail(self, message: str) -> Any:
        self._stop()
        self.failures += 1
        self._backoff = min(max(self._backoff * 2, 1.0), 60.0)
        self._broken_until = time.monotonic() + self._backoff
        log.warning("wazo plugin %s: %s", self.plugin_dir.name, message)
        raise WorkerError(message)

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            log.error("wazo plugin %s: worker %s did not exit", self.plugin_dir.name, proc.pid)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()
