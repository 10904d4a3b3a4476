"""A private PostgreSQL cluster a test may stop and restart (never the shared test server).

The cluster lives in its own folder on its own free port; as root, its commands run as the
``postgres`` user (PostgreSQL refuses to run as root). The folder is made with ``mkdtemp``
under /tmp rather than in pytest's ``tmp_path``, whose parents are private to root and so
not reachable by ``postgres``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.ports import free_port, port_taken

__all__ = ["PrivatePostgres", "find_initdb"]


def find_initdb() -> Path | None:
    """The initdb binary (PATH, else Debian's versioned folders), or None."""
    found = shutil.which("initdb")
    if found:
        return Path(found)
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0,
    )
    return Path(candidates[-1]) if candidates else None


class PrivatePostgres:
    """initdb, start, stop (immediate) and restart on the same port."""

    def __init__(self, initdb: Path) -> None:
        self.bin = initdb.parent
        self.port = free_port()
        self._started = False
        self.dir = Path(tempfile.mkdtemp(prefix="provisor-degraded-pg-"))
        self.data = self.dir / "data"
        self._runas: list[str] = []
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                subprocess.run(["useradd", "--system", "--no-create-home", "postgres"], check=True)
            shutil.chown(self.dir, "postgres")
            self._runas = ["runuser", "-u", "postgres", "--"]

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the cluster's ``postgres`` database."""
        return f"postgresql+asyncpg://provisor@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        subprocess.run([*self._runas, *args], check=True, capture_output=True, timeout=60)

    def init(self) -> None:
        """Create the cluster (trust auth for the ``provisor`` superuser)."""
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "provisor",
                  "--auth=trust", "-E", "UTF8")  # fmt: skip

    def start(self) -> None:
        """Start and wait until it accepts connections.

        The port is only free when it was chosen: if another process took it, the first start
        moves to a new port; a restart keeps its port (the server under test knows it) and
        tries again while the holder, most often a passing probe, lets it go.
        """
        for attempt in range(20):
            try:
                self._start()
                self._started = True
                return
            except RuntimeError as exc:
                if attempt == 19 or not port_taken(exc):
                    raise
                if not self._started:
                    self.port = free_port()
                else:
                    time.sleep(0.5)

    def _start(self) -> None:
        log = self.dir / "server.log"
        seen = log.stat().st_size if log.exists() else 0  # this attempt's lines only
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off"
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(log), "-w",
                      "-o", options, "start")  # fmt: skip
        except subprocess.CalledProcessError as exc:
            text = log.read_bytes()[seen:][-2000:].decode(errors="replace") if log.exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {exc.stderr!r}\n{text}") from None

    def stop(self) -> None:
        """Stop at once, as a crash would (no clean shutdown of the clients)."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "stop", "-m", "immediate")

    def destroy(self) -> None:
        """Stop if running and remove the folder."""
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.CalledProcessError):
                self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
