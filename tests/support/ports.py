"""Ports for servers that cannot be told to bind port 0 (PostgreSQL, nginx, RabbitMQ, an HTTPS
listener whose port must be known before it starts), and retrying their start when the port
was taken meanwhile.

A port number is only a guess until the server binds it: between the check and the bind any
other process may take it. The guess is made outside the kernel's ephemeral range, which every
``bind(0)`` and every outgoing connection draws from (on a machine running several test suites,
thousands a minute), so only a process that names this very port can take it; a start that
still fails on "address already in use" is tried again with a new port.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

ATTEMPTS = 5
_TAKEN_WORDS = ("Address already in use", "could not bind", "eaddrinuse")


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port() -> int:
    """A TCP port on 127.0.0.1 free right now, outside the ephemeral range when possible."""
    low, high = _ephemeral_range()
    candidates = range(20000, low) if low > 21000 else range(high + 1, 65536)
    for port in random.sample(candidates, min(200, len(candidates))):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:  # the range is crowded: let the kernel choose
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_taken(error: BaseException | str) -> bool:
    """Whether a start failed because its port was taken (the error, its causes, or a log)."""
    if isinstance(error, str):
        return any(word.lower() in error.lower() for word in _TAKEN_WORDS)
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno == errno.EADDRINUSE:
            return True
        if port_taken(str(seen)):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def start_on_free_port(start: Callable[[int], T], attempts: int = ATTEMPTS) -> T:
    """``start(port)`` on a new free port until it does not fail on a taken port."""
    for attempt in range(attempts):
        try:
            return start(free_port())
        except Exception as exc:
            if attempt == attempts - 1 or not port_taken(exc):
                raise
    raise AssertionError("unreachable")


async def start_on_free_port_async(
    start: Callable[[int], Awaitable[T]], attempts: int = ATTEMPTS
) -> T:
    """``await start(port)`` on a new free port until it does not fail on a taken port."""
    for attempt in range(attempts):
        try:
            return await start(free_port())
        except Exception as exc:
            if attempt == attempts - 1 or not port_taken(exc):
                raise
    raise AssertionError("unreachable")


def listens(pid: int, port: int) -> bool:
    """Whether process ``pid`` itself holds a TCP socket listening on 127.0.0.1:``port`` (a
    connection that succeeds may reach another process that took the port first)."""
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    want = f"0100007F:{port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == want and fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
            return True
    return False
