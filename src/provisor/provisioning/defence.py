"""Scan defence: failed requests counted per source address, and caps on auto-creation.

Only failures count (unknown key, wrong token, another device's file, a file of an unknown
device); a success never does, nor does a miss the identified device's own plugin expects from
a normal boot, so a site of 500 phones behind one NAT rebooting together is never banned while
a MAC scanner is. An auto-creation counts as a failure until the new device comes back for a
second file (every phone's boot asks for more than one): a scanner naming one MAC per request
is banned after ``ban_threshold`` MACs, whether its guesses hit unknown devices or create them.
Failure counters live in memory in each node's main process (phone workers hand their events
to it: :mod:`provisor.workers.defence`); the bans they decide are shared by every process of
every node through the database (:class:`provisor.services.bans.BanList`). An operator's unban
clears the address's counts, wherever it was lifted, so its next failure does not re-ban it.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from provisor.services.bans import BanList

if TYPE_CHECKING:
    from provisor.plugins.base import Plugin

__all__ = ["FailureTracker", "RateWindow", "excused_miss", "identifying_mac", "path_mac"]

_MAC_IN_PATH = re.compile(r"(?<![0-9A-Fa-f])[0-9A-Fa-f]{12}(?![0-9A-Fa-f])")


def path_mac(path: str) -> str | None:
    """The MAC a path names (12 hex digits on their own), as aa:bb:cc:dd:ee:ff; None if none.

    ``000000000000`` is not a MAC: phones ask for it as a site-wide file (Poly's master file).
    """
    for found in _MAC_IN_PATH.finditer(path):
        digits = found.group().lower()
        if digits != "000000000000":
            return ":".join(digits[i : i + 2] for i in range(0, 12, 2))
    return None


def excused_miss(plugins: Iterable[Plugin], path: str) -> bool:
    """True when a miss of an unknown device is no guess: the path names no device and a plugin
    of the request's vendor expects it or serves it to every phone (Poly's ``000000000000.cfg``,
    ``common.cfg``, ``sip.ld``): a phone behind NAT that cannot be told from its neighbours asks
    for those every boot. A guess of a device file (a path naming a MAC) always counts."""
    if path_mac(path) is not None:
        return False
    for plugin in plugins:
        route = plugin.route(path)
        if plugin.is_expected_miss(path) or (
            route is not None and route.mac is None and route.spec.kind != "device"
        ):
            return True
    return False


def identifying_mac(plugins: Iterable[Plugin], path: str) -> str | None:
    """The MAC in a file the vendor's phones ask for and may miss (Poly's ``<mac>.cfg``, whose
    User-Agent has no MAC): it identifies the phone, so its misses are its plugin's to judge."""
    mac = path_mac(path)
    if mac is not None and any(p.is_expected_miss(path) for p in plugins):
        return mac
    return None


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

    def add(self, key: str, at: float | None = None) -> int:
        """Record an event (now, or at ``at``); returns the count within the window."""
        now = self.clock() if at is None else at
        events = self._events.get(key)
        if events is None:
            events = self._events[key] = deque(maxlen=max(self.limit * 2, 16))
            while len(self._events) > self.max_keys:
                self._events.popitem(last=False)
        else:
            self._events.move_to_end(key)
        events.append(now)
        return self.count(key)

    def discard(self, key: str, at: float) -> None:
        """Withdraw the event recorded at ``at`` (when it is still in the window)."""
        events = self._events.get(key)
        if events is not None and at in events:
            events.remove(at)

    def discard_all(self, key: str) -> None:
        """Forget every event of ``key``."""
        self._events.pop(key, None)

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
        bans: BanList | None = None,
    ) -> None:
        self.failures = RateWindow(threshold, window, clock=clock)
        self.ban_seconds = ban_seconds
        self.clock = clock
        # shared by every process when the list has a store; local to this tracker otherwise
        self.bans = bans if bans is not None else BanList(clock=clock)
        self.bans.lifted.append(self.forget)
        # device id -> (address, time) of creations still on probation; bounded like the window
        self._probation: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def is_banned(self, address: str) -> bool:
        """True while the address is refused."""
        return self.bans.is_banned(address)

    def failure(self, address: str, reason: str = "") -> bool:
        """Count a failure; True when this one gets the address banned."""
        self.failures.add(address)
        return self._check(address, reason)

    def created(self, address: str, device_id: str) -> bool:
        """Count an auto-creation as a failure until the device comes back (:meth:`returned`).

        True when it gets the address banned.
        """
        at = self.clock()
        self.failures.add(address, at)
        self._probation[device_id] = (address, at)
        while len(self._probation) > self.failures.max_keys:
            self._probation.popitem(last=False)
        return self._check(address, "too many new devices from one address")

    def returned(self, device_id: str) -> bool:
        """A device created on probation asked for another file: it is a phone, not a guess.

        True when it was on probation here (its creation no longer counts)."""
        item = self._probation.pop(device_id, None)
        if item is None:
            return False
        self.failures.discard(*item)
        return True

    def forget(self, address: str) -> None:
        """Drop an address's failures (its ban was lifted: it starts again from nothing)."""
        self.failures.discard_all(address)

    def _check(self, address: str, reason: str) -> bool:
        count = self.failures.count(address)
        if count >= self.failures.limit and self.ban_seconds > 0 and not self.is_banned(address):
            self.bans.add(address, self.ban_seconds, reason)
            return True
        return False

    async def unban(self, address: str) -> bool:
        """Lift an address's ban on every node and forget its failures here (an operator's
        decision); False when it was not banned."""
        self.forget(address)
        return await self.bans.remove(address)

    def banned(self) -> list[str]:
        """Addresses currently refused."""
        return [b.address for b in self.bans.listed()]
