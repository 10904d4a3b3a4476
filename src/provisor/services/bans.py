"""The ban list every process of every node shares, checked in memory on the hot path.

A ban decided anywhere (a pipeline after ``ban_threshold`` failures, in any process of any
node) is held at once in the deciding process's memory and written to the ``bans`` table
shortly after, in the background, followed by a bump of the ``bans`` change counter; every
other process reloads the table when its change poller sees the counter move (about a second).
A phone request never waits on the database to learn whether its address is banned.

A phone worker also holds at once the bans its main process decides and sends over the worker's
link (:meth:`BanList.hold`), without writing them again; a reload that finds an address gone
from the table while its ban was still in force (an operator's ``provisor ban remove`` in
another process) tells the ``lifted`` listeners, so the failure counts behind it are forgotten.

Times are wall-clock (epoch seconds) so that expiry is the same on every node. The list is
bounded: at most ``cap`` addresses in memory and in the table, the oldest ban evicted first.
Without a store (unit tests, a tracker on its own) the list is local to the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from provisor.store.bans import Ban, BanStore
from provisor.store.changes import ChangeFeed

__all__ = ["BanList"]

log = logging.getLogger(__name__)

#: Seconds between two attempts to write pending bans while the database fails.
_RETRY = 2.0
#: Seconds a ban another process announced is held without its row: past it the table decides
#: (so an unban that came before this process saw the row is not missed for the whole ban)
HOLD_SECONDS = 30.0


class BanList:
    """Banned addresses: in memory here, shared through the database when a store is given."""

    def __init__(
        self,
        store: BanStore | None = None,
        feed: ChangeFeed | None = None,
        *,
        cap: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.feed = feed
        self.cap = cap
        self.clock = clock
        # address -> Ban, oldest first (insertion order): eviction takes the first
        self._bans: dict[str, Ban] = {}
        self._pending: dict[str, Ban] = {}
        # bans another process decided and announced, until the table shows them (see hold)
        self._held: dict[str, Ban] = {}
        #: called with each ban this process decides (the main process tells its workers)
        self.on_ban: list[Callable[[Ban], None]] = []
        #: called with each address whose ban was lifted elsewhere (seen by a reload)
        self.lifted: list[Callable[[str], None]] = []
        self._flusher: asyncio.Task[None] | None = None
        # a flush in flight must not write back a ban that remove() lifts meanwhile
        self._writing = asyncio.Lock()

    def is_banned(self, address: str) -> bool:
        """True while the address is refused (a dict lookup: the hot path)."""
        ban = self._bans.get(address)
        if ban is None:
            return False
        if self.clock() >= ban.until:
            self._bans.pop(address, None)
            return False
        return True

    def add(self, address: str, seconds: float, reason: str = "") -> None:
        """Ban an address here at once, and on every node once written (in the background)."""
        now = self.clock()
        ban = Ban(address, now + seconds, now, reason)
        self._keep(ban)
        for listener in self.on_ban:
            listener(ban)
        if self.store is None:
            return
        self._pending.pop(address, None)
        self._pending[address] = ban
        while len(self._pending) > self.cap:
            self._pending.pop(next(iter(self._pending)))
        if self._flusher is None or self._flusher.done():
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop (a synchronous caller): written by the next flush()
                return
            self._flusher = loop.create_task(self._flush_loop())

    def _keep(self, ban: Ban) -> None:
        self._bans.pop(ban.address, None)
        self._bans[ban.address] = ban
        while len(self._bans) > self.cap:
            self._bans.pop(next(iter(self._bans)))

    def hold(self, ban: Ban) -> None:
        """Refuse an address another process banned and writes itself, until its row arrives."""
        self._keep(ban)
        self._held.pop(ban.address, None)
        self._held[ban.address] = ban
        while len(self._held) > self.cap:
            self._held.pop(next(iter(self._held)))

    def listed(self) -> list[Ban]:
        """Bans in force, oldest first."""
        return [b for a, b in list(self._bans.items()) if self.is_banned(a)]

    async def flush(self) -> None:
        """Write pending bans to the table and tell the other processes."""
        if self.store is None:
            return
        async with self._writing:
            if not self._pending:
                return
            batch = list(self._pending.values())
            await self.store.put(batch, now=self.clock(), cap=self.cap)
            for ban in batch:
                if self._pending.get(ban.address) is ban:
                    del self._pending[ban.address]
            if self.feed is not None:
                await self.feed.bump("bans")

    async def _flush_loop(self) -> None:
        """Flush until nothing is pending; a database outage delays, never drops, a ban."""
        while self._pending:
            try:
                await self.flush()
            except Exception as exc:  # the database is away: keep the bans, try again
                log.warning("bans not shared yet (%s); retrying", type(exc).__name__)
                await asyncio.sleep(_RETRY)

    async def remove(self, address: str) -> bool:
        """Lift a ban everywhere; True when the address was banned here or in the table."""
        here = self._bans.pop(address, None) is not None
        self._pending.pop(address, None)
        self._held.pop(address, None)
        if self.store is None:
            return here
        async with self._writing:
            stored = await self.store.remove(address)
            if self.feed is not None:
                await self.feed.bump("bans")
        return here or stored

    async def reload(self) -> None:
        """Take the table's bans (another process banned or lifted some); keep unwritten ones."""
        if self.store is None:
            return
        now = self.clock()
        rows = await self.store.active(now=now, limit=self.cap)
        fresh = {b.address: b for b in reversed(rows)}  # oldest first
        for address in [
            a for a, b in self._held.items() if a in fresh or b.created_at < now - HOLD_SECONDS
        ]:
            del self._held[address]  # written (or long enough): the table speaks for it now
        for address, ban in (*self._held.items(), *self._pending.items()):
            fresh.pop(address, None)
            fresh[address] = ban
        gone = [a for a, b in self._bans.items() if a not in fresh and b.until > now]
        self._bans = fresh
        for address in gone:  # lifted (or evicted past the cap) by another process
            for listener in self.lifted:
                listener(address)

    async def close(self) -> None:
        """Write what is pending (best effort) and stop the background writer."""
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._flusher
        with contextlib.suppress(Exception):
            await self.flush()
