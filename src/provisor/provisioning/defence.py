"""Scan defence: failed requests counted per source address, and caps on auto-creation.

Only failures count (unknown key, wrong token, another device's file, unknown device file); a
success never does, nor does a miss the device's plugin expects from a normal boot, so a site of
500 phones behind one NAT rebooting together is never banned while a MAC scanner is.
Counters live in memory on each node; a shared store (Redis) would be the next step for a
cluster, see docs/provisioning.md.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable

__all__ = ["FailureTracker", "RateWindow"]


class RateWindow:
    """Events per key in a sliding window, with a bounded number of keys."""

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self.clock = clock
        self._events: OrderedDict[str, deque[float]] = OrderedDict()

    def count(self, key: str) -> int:
        """Events for ``key`` within the window."""
        events = self._events.get(key)
        if events is None:
            return 0
        cutoff = self.clock() - self.window
        while events and events[0] < cutoff:
            events.popleft()
        return len(events)

    def add(self, key: str) -> int:
        """Record an event; returns the count within the window, this one included."""
        now = self.clock()
        events = self._events.get(key)
        if events is None:
            events = self._events[key] = deque(maxlen=max(self.limit * 2, 16))
            while len(self._events) > self.max_keys:
                self._events.popitem(last=False)
        else:
            self._events.move_to_end(key)
        events.append(now)
        return self.count(key)

    def allowed(self, key: str) -> bool:
        """True while ``key`` is under the limit."""
        return self.count(key) < self.limit


class FailureTracker:
    """Failures per address; past the threshold the address is refused for a while."""

    def __init__(
        self,
        threshold: int,
        window: float,
        ban_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failures = RateWindow(threshold, window, clock=clock)
        self.ban_seconds = ban_seconds
        self.clock = clock
        self._banned: dict[str, float] = {}

    def is_banned(self, address: str) -> bool:
        """True while the address is refused."""
        until = self._banned.get(address)
        if until is None:
            return False
        if self.clock() >= until:
            del self._banned[address]
            return False
        return True

    def failure(self, address: str) -> bool:
        """Count a failure; True when this one gets the address banned."""
        count = self.failures.add(address)
        if count >= self.failures.limit and self.ban_seconds > 0 and address not in self._banned:
            self._banned[address] = self.clock() + self.ban_seconds
            return True
        return False

    def banned(self) -> list[str]:
        """Addresses currently refused."""
        return [a for a in list(self._banned) if self.is_banned(a)]
