"""Waiting for a condition instead of sleeping a fixed time: a test on a loaded machine waits
longer, a test on an idle one no longer than needed. The bound is a hang guard, never a speed
check (speed goes to bench/)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

WITHIN = 30.0


async def until(
    check: Callable[[], Awaitable[T] | T], what: str, within: float = WITHIN, every: float = 0.05
) -> T:
    """Poll ``check`` until it returns a true value (returned); fail naming ``what`` after
    ``within`` seconds."""
    end = time.monotonic() + within
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"not within {within:g} s: {what}")
        await asyncio.sleep(every)


def until_sync(check: Callable[[], T], what: str, within: float = WITHIN, every: float = 0.05) -> T:
    """``until`` for code outside an event loop."""
    end = time.monotonic() + within
    while not (value := check()):
        if time.monotonic() > end:
            raise AssertionError(f"not within {within:g} s: {what}")
        time.sleep(every)
    return value
