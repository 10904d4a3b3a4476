"""Single flight: concurrent callers asking for the same thing share one execution.

A boot storm makes hundreds of requests ask for the same device, the same rendered file or the
same database row at once; running the work once and sharing the result keeps the database
and the renderer out of a stampede.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

__all__ = ["single_flight"]

T = TypeVar("T")


async def single_flight(
    table: dict[Any, asyncio.Future[T]], key: Any, work: Callable[[], Awaitable[T]]
) -> T:
    """Run ``work`` once for concurrent callers with the same key; they share its result."""
    pending = table.get(key)
    if pending is not None:
        return await asyncio.shield(pending)
    future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
    table[key] = future
    try:
        result = await work()
    except BaseException as exc:
        future.set_exception(exc)
        future.exception()  # retrieved: no "never retrieved" warning when nobody waited
        raise
    else:
        future.set_result(result)
        return result
    finally:
        table.pop(key, None)
