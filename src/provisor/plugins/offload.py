"""Plugin calls that may block (a wazo plugin's worker round trip) run off the event loop.

Native plugins are pure Python and quick: they are called in place. A plugin with a true
``remote`` attribute answers through a pipe to its worker process, which can take up to the
worker's deadline: those calls go to a small thread pool so the event loop (REST API, other
phones) never waits on them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["call_plugin"]

T = TypeVar("T")

#: Threads for calls into plugin workers (each waits on a pipe, not on the CPU).
_WORKER_CALLS = ThreadPoolExecutor(max_workers=16, thread_name_prefix="plugin-worker-call")


async def call_plugin(remote: bool, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)``, in a worker thread when ``remote`` (it may wait on a plugin worker)."""
    if not remote:
        return fn(*args)
    return await asyncio.get_running_loop().run_in_executor(_WORKER_CALLS, fn, *args)
