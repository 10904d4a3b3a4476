"""The node's folder lock: one process of a node at a time changes its plugin and firmware
folders (the reconciler's pass, an operator's firmware install or uninstall)."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import AsyncIterator
from pathlib import Path

__all__ = ["FolderLock", "folder_lock_path", "waiting_for"]

#: How often a waiting operator's change looks again (a reconciler's pass may hold the lock
#: for a long download).
_POLL = 0.25


def folder_lock_path(data_dir: Path) -> Path:
    """The lock file of a node's data directory (beside the plugins folder, not in it)."""
    return data_dir / ".plugins.lock"


class FolderLock:
    """An exclusive, non-blocking ``flock`` on a file: one process of a node at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def __enter__(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    def __exit__(self, *_exc: object) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


@contextlib.asynccontextmanager
async def waiting_for(path: Path, within: float | None = None) -> AsyncIterator[None]:
    """Hold the lock, waiting (without blocking the event loop) while another pass holds it;
    TimeoutError when it is still held after ``within`` seconds (None: wait on)."""
    lock = FolderLock(path)
    async with asyncio.timeout(within):
        while not lock.__enter__():
            await asyncio.sleep(_POLL)
    try:
        yield
    finally:
        lock.__exit__()
