"""Scan defence across phone workers: one failure count per address, kept by the main process.

Each worker's pipeline counts through a :class:`WorkerTracker`: every counted event (a failure,
an auto-creation on probation, a device's return) is queued and sent to the main process at the
end of the event loop's turn (one message for everything that turn counted, so a burst costs one
send, and an event waits no longer than the request that caused it). The main process counts
them in its own :class:`~provisor.provisioning.defence.FailureTracker`, whose ban list is the
shared one (:class:`DefenceHub`): a ban comes after ``ban_threshold`` failures from one address
whichever workers saw them. The ban is written to the database as any other, and the main
process sends it to every worker at once (``BanList.on_ban``): each holds it in memory
(:meth:`~provisor.services.bans.BanList.hold`) without writing it again, before the change
feed's reload would have told it.

The worker does **not** also count every event itself: the main process sees each event within
a loop turn of the worker, so a local count would only decide the same ban a few hundred
microseconds earlier, at the price of a second database write of it. The worker counts locally
only what the link lost: events that did not fit in ``MAX_PENDING`` while the main process was
stalled are counted in ``provisor_defence_dropped_total`` and by the worker's own tracker, which
bans (and writes the ban) as before workers shared counts, so a stalled main process can raise
the bound to at most about N × ``ban_threshold`` (what it was), never remove it.

Probation across workers: a device created on one worker may come back on another, which does
not know it was created. So a worker forwards the first return of each device it serves (then
remembers it, bounded); the main process withdraws the creation's count if the device is on
probation there, and otherwise keeps the return for ``EARLY_SECONDS`` in case the creation's
message (from another worker's link) is still on its way: a creation that arrives after its
return never counts.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from provisor.metrics import DEFENCE_DROPPED, DEFENCE_EVENTS
from provisor.provisioning.defence import FailureTracker
from provisor.store.bans import Ban
from provisor.workers.link import Link

__all__ = ["DefenceHub", "WorkerTracker", "ban_message", "held_ban"]

#: events waiting for the link; past this, events are counted by the worker itself (see above)
MAX_PENDING = 10_000
#: events per message (a few dozen bytes each: well under the link's message size)
BATCH = 512
#: seconds before a send the link refused (its buffer full) is tried again
RETRY = 0.05
#: devices whose return a worker already forwarded (each is forwarded once per worker)
SEEN_MAX = 100_000
#: how long the main process keeps a return whose creation it has not seen yet
EARLY_SECONDS = 10.0
EARLY_MAX = 100_000

NEW_DEVICES = "too many new devices from one address"

#: ("f", address, reason) | ("c", address, device id) | ("r", device id, "")
Event = tuple[str, str, str]


class WorkerTracker(FailureTracker):
    """A worker's tracker: hands counted events to the main process, which decides bans."""

    def __init__(self, base: FailureTracker, link: Link) -> None:
        super().__init__(
            base.failures.limit,
            base.failures.window,
            base.ban_seconds,
            clock=base.clock,
            bans=base.bans,
        )
        base.bans.lifted.remove(base.forget)  # replaced by this one
        self.link = link
        self._queue: list[Event] = []
        self._scheduled = False
        self._seen: OrderedDict[str, None] = OrderedDict()

    def failure(self, address: str, reason: str = "") -> bool:
        """Count a failure in the main process (here only if the link cannot take it)."""
        if self._queued(("f", address, reason)):
            return False
        return super().failure(address, reason)

    def created(self, address: str, device_id: str) -> bool:
        """Count an auto-creation in the main process (here only if the link cannot take it)."""
        self._seen.pop(device_id, None)  # its return must be forwarded, whichever worker had it
        if self._queued(("c", address, device_id)):
            return False
        return super().created(address, device_id)

    def returned(self, device_id: str) -> bool:
        """Tell the main process of a device's first return here (it may have been created by
        another worker); every later request of the device costs one dict lookup."""
        local = super().returned(device_id)
        if device_id in self._seen:
            return local
        self._seen[device_id] = None
        if len(self._seen) > SEEN_MAX:
            self._seen.popitem(last=False)
        self._queued(("r", device_id, ""))
        return local

    def _queued(self, event: Event) -> bool:
        """Queue an event for the main process; False when the queue is full (dropped)."""
        if len(self._queue) >= MAX_PENDING:
            DEFENCE_DROPPED.inc()
            return False
        self._queue.append(event)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)
        return True

    def flush(self) -> None:
        """Send what is queued; what the link cannot take now waits for the next try."""
        self._scheduled = False
        queue = self._queue
        sent = 0
        while sent < len(queue):
            if not self.link.send(("defence", queue[sent : sent + BATCH])):
                break
            sent += BATCH
        sent = min(sent, len(queue))
        DEFENCE_EVENTS.inc(sent)
        del queue[:sent]
        if queue and not self.link.closed and not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_later(RETRY, self.flush)

    def hold(self, message: tuple[Any, ...]) -> None:
        """A ban the main process decided: refused here at once (it writes the ban itself)."""
        self.bans.hold(held_ban(message))


def ban_message(ban: Ban) -> tuple[str, str, float, float, str]:
    """What the main process sends every worker about a ban it decided."""
    return ("ban", ban.address, ban.until, ban.created_at, ban.reason)


def held_ban(message: tuple[Any, ...]) -> Ban:
    """The ban a ``ban`` message carries."""
    _kind, address, until, created_at, reason = message
    return Ban(str(address), float(until), float(created_at), str(reason))


class DefenceHub:
    """The main process's side: every worker's events in one tracker with the shared bans."""

    def __init__(
        self,
        tracker: FailureTracker,
        banned: Callable[[str, str], None],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.tracker = tracker
        self.banned = banned
        self.clock = clock
        # device id -> when its return arrived before its creation (another worker's link)
        self._early: OrderedDict[str, float] = OrderedDict()

    def receive(self, events: list[Event]) -> None:
        """Count one worker's batch; ``banned`` is told of each ban it decides."""
        tracker = self.tracker
        for kind, first, second in events:
            if kind == "f":
                if tracker.failure(first, second):
                    self.banned(first, second)
            elif kind == "c":
                if self._early.pop(second, None) is not None:
                    continue  # it came back already: a phone, not a guess
                if tracker.created(first, second):
                    self.banned(first, NEW_DEVICES)
            elif kind == "r" and not tracker.returned(first):
                self._remember(first)

    def _remember(self, device_id: str) -> None:
        now = self.clock()
        early = self._early
        early.pop(device_id, None)
        early[device_id] = now
        while early and (
            len(early) > EARLY_MAX or next(iter(early.values())) < now - EARLY_SECONDS
        ):
            early.popitem(last=False)
