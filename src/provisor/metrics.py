"""Prometheus metrics of the process (served at ``/metrics`` on the REST listener).

One registry per process (several servers in one process, as in the tests, share it; counters
only grow, so a scrape's deltas stay right). Every label is a bounded set: protocol, status
class, plugin id (installed plugins only), cache outcome, REST route template, method. Never a
path, MAC, IP address, device id, tenant uuid or key: an exposition can be read by whoever
reaches the REST port without a token (docs/operations.md "Monitoring").

The phone hot path counts through :class:`PhoneCounters` (plain ints, a metric family built at
scrape time); TFTP transfers use label children bound once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, Final

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = [
    "BANS",
    "DATABASE_UP",
    "DEVICES_CREATED",
    "PHONE",
    "REFUSALS",
    "REGISTRY",
    "RENDER_SECONDS",
    "REST_REQUESTS",
    "TFTP_BYTES",
    "TFTP_TRANSFERS",
    "TRACE_DROPPED",
    "DEFENCE_EVENTS",
    "DEFENCE_DROPPED",
    "DATABASE_SECONDS",
    "AUTH_SECONDS",
    "OPERATIONS",
    "LAST_SEEN_DROPPED",
    "PhoneCounters",
    "observe_database",
    "status_class",
]

# no ``*_created`` series (one per label set, a timestamp nobody alerts on): half the exposition
disable_created_metrics()  # type: ignore[no-untyped-call,unused-ignore]
REGISTRY: Final = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

RENDER_SECONDS: Final = Histogram(
    "provisor_render_seconds",
    "Time to render one file that was not in the render cache, by plugin.",
    ("plugin",),
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=REGISTRY,
)
DEVICES_CREATED: Final = Counter(
    "provisor_devices_auto_created",
    "Devices created automatically when an unknown phone asked for a file.",
    registry=REGISTRY,
)
REFUSALS: Final = Counter(
    "provisor_phone_refusals",
    "Phone requests refused in a way that counts toward a ban (wrong key, token, file...).",
    registry=REGISTRY,
)
BANS: Final = Counter(
    "provisor_phone_bans",
    "Addresses banned after repeated refusals or too many new devices.",
    registry=REGISTRY,
)
TFTP_TRANSFERS: Final = Counter(
    "provisor_tftp_transfers",
    "TFTP transfers ended, by outcome (complete, aborted by the client, timeout).",
    ("outcome",),
    registry=REGISTRY,
)
TFTP_BYTES: Final = Counter(
    "provisor_tftp_bytes",
    "File bytes of the TFTP transfers that completed.",
    registry=REGISTRY,
)
REST_REQUESTS: Final = Counter(
    "provisor_rest_requests",
    "REST API requests, by route template, method and status class.",
    ("route", "method", "status"),
    registry=REGISTRY,
)
TRACE_DROPPED: Final = Counter(
    "provisor_trace_dropped",
    "Request trace entries a phone worker could not hand to the main process (queue full).",
    registry=REGISTRY,
)
DEFENCE_EVENTS: Final = Counter(
    "provisor_defence_events",
    "Scan-defence events (failures, creations, returns) phone workers sent the main process.",
    registry=REGISTRY,
)
DEFENCE_DROPPED: Final = Counter(
    "provisor_defence_dropped",
    "Scan-defence events a phone worker could not hand to the main process (counted there).",
    registry=REGISTRY,
)
DATABASE_UP: Final = Gauge(
    "provisor_database_up",
    "1 while the database answers, 0 while it is known to be unreachable.",
    registry=REGISTRY,
)

DATABASE_SECONDS: Final = Histogram(
    "provisor_database_query_seconds",
    "Time of one database statement (driver round trip), failed ones excluded.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    registry=REGISTRY,
)

AUTH_SECONDS: Final = Histogram(
    "provisor_auth_seconds",
    "Time to check one REST request's token with the auth backend (its cache included).",
    ("backend",),
    buckets=(0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0),
    registry=REGISTRY,
)
OPERATIONS: Final = Counter(
    "provisor_operations",
    "Long operations ended (plugin install/upgrade, repository update, synchronize...).",
    ("kind", "outcome"),
    registry=REGISTRY,
)

LAST_SEEN_DROPPED: Final = Counter(
    "provisor_last_seen_dropped",
    "Last-request records dropped before being written (provisioning.last_seen_pending_max).",
    registry=REGISTRY,
)

_CLASSES: Final = ("0xx", "1xx", "2xx", "3xx", "4xx", "5xx")


def status_class(status: int) -> str:
    """``2xx`` for 200: classes keep the label set small."""
    index = status // 100
    return _CLASSES[index] if 0 <= index < len(_CLASSES) else "0xx"


class PhoneCounters(Collector):
    """``provisor_phone_requests_total``, counted in plain ints and turned into a metric family
    at scrape time: the hot path pays one tuple, one dict lookup and one addition, no lock
    (phone requests and scrapes all run on the event loop's thread)."""

    name = "provisor_phone_requests"
    documentation = (
        "Phone file requests answered, by protocol, status class, plugin and cache outcome."
    )

    def __init__(self) -> None:
        self._counts: dict[tuple[str, int, str | None, str], int] = {}

    def count(self, protocol: str, status: int, plugin: str | None, cache: str) -> None:
        """Count one answered phone request."""
        key = (protocol, status // 100, plugin, cache)
        self._counts[key] = self._counts.get(key, 0) + 1

    def snapshot(self) -> dict[tuple[str, int, str | None, str], int]:
        """A copy of the counts by (protocol, status class digit, plugin, cache outcome)."""
        return dict(self._counts)

    def collect(self) -> Iterator[Metric]:
        """The counts as one counter family (bounded labels: see the module docstring)."""
        family = CounterMetricFamily(
            self.name, self.documentation, labels=("protocol", "status", "plugin", "cache")
        )
        for (protocol, klass, plugin, cache), value in list(self._counts.items()):
            status = _CLASSES[klass] if 0 <= klass < len(_CLASSES) else "0xx"
            family.add_metric((protocol, status, plugin or "none", cache), value)
        yield family


PHONE: Final = PhoneCounters()
REGISTRY.register(PHONE)


_STARTED = "provisor_metrics_started"


def observe_database(engine: AsyncEngine) -> None:
    """Time every statement of ``engine`` into DATABASE_SECONDS (a connection runs one
    statement at a time, so one start time per connection is enough)."""
    sync = engine.sync_engine
    if event.contains(sync, "before_cursor_execute", _before):
        return

    event.listen(sync, "before_cursor_execute", _before)
    event.listen(sync, "after_cursor_execute", _after)


def _before(conn: Any, *_args: Any) -> None:
    conn.info[_STARTED] = time.perf_counter()


def _after(conn: Any, *_args: Any) -> None:
    started = conn.info.pop(_STARTED, None)
    if started is not None:
        DATABASE_SECONDS.observe(time.perf_counter() - started)
