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
import socket
import subprocess
import tempfile
from pathlib import Path

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivatePostgres:
    """initdb, start, stop (immediate) and restart on the same port."""

    def __init__(self, initdb: Path) -> None:
        self.bin = initdb.parent
        self.port = _free_port()
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
        """Start and wait until it accepts connections."""
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off"
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l",
                  str(self.dir / "server.log"), "-w", "-o", options, "start")  # fmt: skip

    def stop(self) -> None:
        """Stop at once, as a crash would (no clean shutdown of the clients)."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "stop", "-m", "immediate")

    def destroy(self) -> None:
        """Stop if running and remove the folder."""
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.CalledProcessError):
                self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
