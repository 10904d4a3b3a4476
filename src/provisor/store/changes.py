"""Change counters shared through the database, so several nodes drop their caches.

Each node caches configs' inheritance, the tenant tree and keys, parameters and template
overrides in memory. A write bumps a counter row (``configs``, ``tenants``, ``params``,
``tokens``, ``plugins``, ``bans``) in the shared database; every node polls the counters (one tiny query
a second) and reloads what changed elsewhere. Device lookups are cached for 2 s and need no
counter.

The poll is also the database's heartbeat: its failures and successes drive
:class:`~provisor.store.health.DatabaseHealth` (logged once per change, no traceback), so
the poller neither stops nor floods the log while the database is away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from provisor.store.health import DatabaseHealth, is_unavailable
from provisor.store.tables import changes

__all__ = ["ChangeFeed"]

log = logging.getLogger(__name__)


class ChangeFeed:
    """Bump and poll the shared change counters."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.seen: dict[str, int] = {}
        self.health = DatabaseHealth()
        self._task: asyncio.Task[None] | None = None
        #: told each name this process bumped (phone workers then look at once, not in 1 s)
        self.on_bump: list[Callable[[str], None]] = []

    async def bump(self, name: str) -> None:
        """Record a change of ``name`` for the other nodes (and remember it as seen here)."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(changes).where(changes.c.name == name).values(value=changes.c.value + 1)
            )
            if not result.rowcount:
                with contextlib.suppress(IntegrityError):
                    await conn.execute(insert(changes).values(name=name, value=1))
            value: int = (
                await conn.execute(select(changes.c.value).where(changes.c.name == name))
            ).scalar_one()
        # seen only when nothing else bumped it since our last look: another node's bump just
        # before ours must still be reloaded here (reloading our own change is harmless)
        if int(value) == self.seen.get(name, 0) + 1:
            self.seen[name] = int(value)
        for notify in self.on_bump:
            notify(name)

    async def read(self) -> dict[str, int]:
        """Every counter."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(changes))).all()
        return {r.name: int(r.value) for r in rows}

    async def poll_once(self, reload: Callable[[set[str]], Awaitable[None]]) -> set[str]:
        """Reload what changed since the last look; returns the names that changed."""
        current = await self.read()
        changed = {name for name, value in current.items() if self.seen.get(name, 0) != value}
        self.seen.update(current)
        if changed:
            await reload(changed)
        return changed

    def start(self, reload: Callable[[set[str]], Awaitable[None]], interval: float = 1.0) -> None:
        """Poll in the background until stop()."""

        async def loop() -> None:
            while True:
                await self._poll_guarded(reload)
                await asyncio.sleep(interval)

        self._task = asyncio.get_running_loop().create_task(loop())

    async def _poll_guarded(self, reload: Callable[[set[str]], Awaitable[None]]) -> None:
        """One poll that never raises: a database outage is recorded, not logged each time."""
        try:
            await self.poll_once(reload)
        except Exception as exc:  # a database hiccup must not stop the poller
            if is_unavailable(exc):
                self.health.failed(exc)
            else:
                log.warning("change poll failed", exc_info=True)
        else:
            self.health.succeeded()

    async def stop(self) -> None:
        """Stop polling."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
