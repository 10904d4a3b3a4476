"""Single flight and batched loads: concurrent callers share work.

A boot storm makes hundreds of requests ask for the same device, the same rendered file or the
same database row at once; running the work once and sharing the result keeps the database
and the renderer out of a stampede. New phones each ask for a different row: a
:class:`BatchLoader` gathers the keys asked for in the same moment into one query.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import Any, Generic, TypeVar

__all__ = ["BatchLoader", "single_flight"]

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


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


class BatchLoader(Generic[K, V]):
    """Loads keys in batches: the keys asked for within ``window`` seconds share one call.

    ``load(keys)`` returns a mapping; a key it leaves out resolves to ``default``. A failing
    load fails every caller of that batch; a cancelled caller does not cancel the batch.
    """

    def __init__(
        self,
        load: Callable[[list[K]], Awaitable[Mapping[K, V]]],
        default: V,
        *,
        window: float = 0.001,
        max_batch: int = 500,
    ) -> None:
        self._load = load
        self._default = default
        self._window = window
        self._max = max_batch
        self._waiting: dict[K, asyncio.Future[V]] = {}
        self._task: asyncio.Task[None] | None = None

    async def get(self, key: K) -> V:
        """The value for ``key``, loaded with whatever else is asked for meanwhile."""
        future = self._waiting.get(key)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._waiting[key] = future
            if self._task is None or self._task.done():
                self._task = asyncio.get_running_loop().create_task(self._run())
        return await asyncio.shield(future)

    async def _run(self) -> None:
        await asyncio.sleep(self._window)
        while self._waiting:
            keys = list(self._waiting)[: self._max]
            futures = [self._waiting.pop(k) for k in keys]
            try:
                found = await self._load(keys)
            except Exception as exc:
                for future in futures:
                    if not future.done():
                        future.set_exception(exc)
                        future.exception()  # retrieved even if every caller went away
                continue
            for key, future in zip(keys, futures, strict=True):
                if not future.done():
                    future.set_result(found.get(key, self._default))
