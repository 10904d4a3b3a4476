"""Connection caps per listener and per source address, the file-descriptor budget they share,
and a refusal log that cannot be flooded.

Every anonymous client can open connections, and each one costs a file descriptor: without a
cap per listener, idle connections on the phone port used every descriptor of the process and
the REST API stopped answering with it. At start the soft ``RLIMIT_NOFILE`` is raised to the
hard limit, and each listener whose cap is not set gets a share of it (:func:`listener_caps`),
so that one flooded listener leaves descriptors for the others, the database and outgoing
connections. Counting happens where connections arrive, before any byte is parsed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import resource
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = [
    "ConnectionLimiter",
    "FdBudget",
    "IPNetwork",
    "RefusalLog",
    "fd_budget",
    "in_networks",
    "proxy_networks",
    "raise_fd_limit",
]

log = logging.getLogger(__name__)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Shares of the descriptor limit for listeners whose cap is not set; what remains (at least
# 20 %) is for the database, TFTP transfers, plugin files and outgoing connections.
_SHARE_REST = 0.10
_SHARE_PHONE = 0.30
_SHARE_TFTP = 0.10


def raise_fd_limit() -> int:
    """Raise the soft file-descriptor limit to the hard one; return the limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = max(soft, 1 << 20) if soft != resource.RLIM_INFINITY else 1 << 20
    if soft == resource.RLIM_INFINITY or soft >= hard:
        return hard if soft == resource.RLIM_INFINITY else soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):  # pragma: no cover - some containers refuse it
        return soft
    return hard


@dataclass(frozen=True, slots=True)
class FdBudget:
    """Connection caps derived from the descriptor limit, for listeners left unset."""

    nofile: int
    rest: int
    phone: int
    tftp: int


def fd_budget(nofile: int) -> FdBudget:
    """The default caps for a process allowed ``nofile`` descriptors."""
    return FdBudget(
        nofile=nofile,
        rest=max(16, int(nofile * _SHARE_REST)),
        phone=max(16, int(nofile * _SHARE_PHONE)),
        tftp=max(16, int(nofile * _SHARE_TFTP)),
    )


class RefusalLog:
    """Counts refusals and logs them at most once per interval per reason, with no path.

    Refusals held back by the interval are logged when it ends (a timer on the running loop),
    so the last refusals of a burst are reported even when nothing follows them."""

    def __init__(self, logger: logging.Logger, listener: str, interval: float = 10.0) -> None:
        self.logger = logger
        self.listener = listener
        self.interval = interval
        self.counts: Counter[str] = Counter()
        self._pending: Counter[str] = Counter()
        self._last: dict[str, float] = {}
        self._last_address: dict[str, str] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def note(self, reason: str, address: str) -> None:
        """Count one refusal; log the refusals of this reason if the interval has passed."""
        self.counts[reason] += 1
        self._pending[reason] += 1
        self._last_address[reason] = address
        now = time.monotonic()
        due = self._last.get(reason, -self.interval) + self.interval
        if now >= due:
            self._write(reason, now)
        elif reason not in self._timers:
            with contextlib.suppress(RuntimeError):  # no loop (a unit test): logged on the next
                loop = asyncio.get_running_loop()
                self._timers[reason] = loop.call_later(due - now, self._flush, reason)

    def _flush(self, reason: str) -> None:
        self._timers.pop(reason, None)
        if self._pending.get(reason):
            self._write(reason, time.monotonic())

    def _write(self, reason: str, now: float) -> None:
        self._last[reason] = now
        n = self._pending.pop(reason)
        # addresses only: a path may carry a tenant key or a device token
        self.logger.warning(
            "%s: refused %d connection(s)/request(s) (%s) in the last %.0f s, latest from %s",
            self.listener,
            n,
            reason,
            self.interval,
            self._last_address[reason],
        )

    def close(self) -> None:
        """Log what is still held back and stop the timers (the listener is closing)."""
        for reason in list(self._timers):
            self._timers.pop(reason).cancel()
            if self._pending.get(reason):
                self._write(reason, time.monotonic())


@dataclass
class ConnectionLimiter:
    """Open connections of one listener, in total and per source address.

    Addresses in ``exempt`` (trusted reverse proxies, which carry many clients on their
    connections) are held only to the listener's total.
    """

    name: str
    max_total: int
    max_per_address: int
    exempt: tuple[IPNetwork, ...] = ()
    total: int = 0
    per_address: Counter[str] = field(default_factory=Counter)
    _exempt_cache: dict[str, bool] = field(default_factory=dict)

    def acquire(self, address: str) -> str | None:
        """Take a slot for a new connection; the reason it is refused, or None."""
        if self.total >= self.max_total:
            return "listener connection cap"
        n = self.per_address[address]
        if n >= self.max_per_address and not self._is_exempt(address):
            return "per-address connection cap"
        self.per_address[address] = n + 1
        self.total += 1
        return None

    def release(self, address: str) -> None:
        """Give back the slot of a closed connection."""
        self.total -= 1
        n = self.per_address[address] - 1
        if n > 0:
            self.per_address[address] = n
        else:
            del self.per_address[address]

    def _is_exempt(self, address: str) -> bool:
        # only asked once an address is at its cap, so the hot path never parses addresses
        cached = self._exempt_cache.get(address)
        if cached is None:
            cached = in_networks(address, self.exempt)
            if len(self._exempt_cache) > 4096:
                self._exempt_cache.clear()
            self._exempt_cache[address] = cached
        return cached


def proxy_networks(
    configured: Iterable[IPNetwork] | None, trusted_count: int
) -> tuple[IPNetwork, ...]:
    """The reverse proxies' networks: the configured ones, or loopback when X-Forwarded-For is
    trusted (a reverse proxy on the same host, wazo's layout), else none."""
    if configured is not None:
        return tuple(configured)
    if trusted_count > 0:
        return (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
    return ()


def in_networks(address: str, networks: Iterable[IPNetwork]) -> bool:
    """Whether an address (IPv4-mapped IPv6 taken as IPv4) is in one of these networks."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == net.version and ip in net for net in networks)
