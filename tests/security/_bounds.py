"""Helpers of the listener-bounds tests: raw connections from chosen loopback addresses."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path

__all__ = ["RssPeak", "close_all", "closed_by_server", "open_raw", "rss_bytes", "wait_until"]


async def open_raw(
    port: int, source: str = "127.0.0.1"
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A plain TCP connection to 127.0.0.1:port from ``source`` (a loopback alias)."""
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def closed_by_server(reader: asyncio.StreamReader, within: float = 20.0) -> bytes:
    """Everything the server sends until it closes the connection (fails if it never does)."""
    out = b""
    async with asyncio.timeout(within):
        while True:
            try:
                chunk = await reader.read(65536)
            except (ConnectionResetError, BrokenPipeError):
                return out
            if not chunk:
                return out
            out += chunk


async def wait_until(check: Callable[[], bool], within: float = 20.0) -> None:
    """Poll ``check`` until it holds; fail after ``within`` seconds (a bound, not a speed)."""
    async with asyncio.timeout(within):
        while not check():
            await asyncio.sleep(0.02)


def rss_bytes(pid: int | str = "self") -> int:
    """Resident memory of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc status")


async def close_all(writers: list[asyncio.StreamWriter]) -> None:
    """Close client connections, ignoring those the server already dropped."""
    for writer in writers:
        writer.close()
    for writer in writers:
        with contextlib.suppress(OSError):
            await writer.wait_closed()


class RssPeak:
    """The highest resident memory of a process while the block runs (sampled every 20 ms)."""

    def __init__(self, pid: int | str = "self") -> None:
        self.pid = pid
        self.before = 0
        self.peak = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def grown(self) -> int:
        """Peak minus the memory at the start."""
        return self.peak - self.before

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, rss_bytes(self.pid))
            await asyncio.sleep(0.02)

    async def __aenter__(self) -> RssPeak:
        self.before = self.peak = rss_bytes(self.pid)
        self._task = asyncio.create_task(self._sample())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self.peak = max(self.peak, rss_bytes(self.pid))
