"""Why did this phone get that answer: the last requests with the pipeline's decisions.

A bounded ring in memory of the main process, queried by device id or client address through
the REST API (``GET /0.2/dev_mgr/requests``); with several phone worker processes, each worker
sends its entries to this ring (:mod:`provisor.workers.relay`). Beside it, each device's last
request (bounded too: the least recently seen devices are forgotten first), which the console
shows as "last seen" and a phone's state, and live listeners (the console's Live page) that get
each entry as it is added, wherever it was served. The process that serves a request also hands
its device's last request to a recorder (:class:`provisor.services.seen.SeenRecorder`) that
writes it to the database in batches, so "last seen" survives restarts and is shared by nodes.
Nothing secret is recorded: paths are recorded without provisioning keys or device tokens.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any, Protocol

from provisor.store.seen import Seen

__all__ = [
    "WIRE_FIELDS", "LastSeen", "Recorder", "Trace", "TraceEntry", "from_wire", "to_wire"
]  # fmt: skip


#: the hot path's bookkeeping, and the note the pipeline has already put in the reason
_NOT_SHOWN = ("hot_stamp", "hot_sensitive", "note")


@dataclass(slots=True)
class TraceEntry:
    """One request and what the pipeline decided."""

    protocol: str
    client_ip: str
    path: str
    time: float = field(default_factory=time.time)
    user_agent: str | None = None
    identified: dict[str, str] = field(default_factory=dict)
    device_id: str | None = None
    tenant_uuid: str | None = None
    plugin: str | None = None
    file: str | None = None
    status: int = 0
    """The status sent: 304 or 206 when the front end answered a conditional or range GET."""
    reason: str = ""
    note: str = ""
    """Said after the answer's reason (a bootstrap answer without the device's token)."""
    cache: str = ""
    """Render cache outcome: hit, miss, stale or none (not a rendered file)."""
    created: bool = False
    secrets: bool | None = None
    hot_stamp: tuple[int, ...] | None = None
    hot_sensitive: bool = False
    worker: int = 0
    """The phone worker process that served it (0: the main process; docs/architecture.md)."""

    def repeated(self, path: str, status: int) -> TraceEntry:
        """The entry of the same request answered again from the hot cache: the first
        answer's decisions hold (same phone, path, User-Agent, address and TLS)."""
        return TraceEntry(
            self.protocol,
            self.client_ip,
            path,
            user_agent=self.user_agent,
            identified=self.identified,
            device_id=self.device_id,
            tenant_uuid=self.tenant_uuid,
            plugin=self.plugin,
            file=self.file,
            status=status,
            reason="served (hot)",
            cache="hit",
            secrets=self.secrets,
        )

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view; the time in ISO 8601 (UTC, milliseconds)."""
        out = asdict(self)
        for name in _NOT_SHOWN:
            out.pop(name, None)
        out["time"] = datetime.fromtimestamp(self.time, UTC).isoformat(timespec="milliseconds")
        return out


#: A device's last request, kept small (one per device, up to hundreds of thousands); ``file``
#: is the file served, or the path asked for (cut at 200 characters).
LastSeen = Seen


class Recorder(Protocol):
    """Where each device's last request goes beyond this process (the database, batched)."""

    def record(self, device_id: str, seen: Seen) -> None:
        """Note a device's request without waiting."""


#: an entry as a phone worker sends it (a tuple pickles ten times faster than the dataclass)
WIRE_FIELDS = tuple(f.name for f in fields(TraceEntry) if f.name not in _NOT_SHOWN)
to_wire: Callable[[TraceEntry], tuple[Any, ...]] = attrgetter(*WIRE_FIELDS)
_DEVICE, _IP, _TENANT, _TIME, _STATUS, _FILE, _PATH, _REASON = (
    WIRE_FIELDS.index(n)
    for n in ("device_id", "client_ip", "tenant_uuid", "time", "status", "file", "path", "reason")
)


def from_wire(values: tuple[Any, ...]) -> TraceEntry:
    """The entry a phone worker sent."""
    return TraceEntry(**dict(zip(WIRE_FIELDS, values, strict=True)))


class Trace:
    """The last ``size`` requests."""

    def __init__(self, size: int = 2000, devices: int = 200_000) -> None:
        # entries served here, and workers' entries kept as they came (made entries when read)
        self._entries: deque[TraceEntry | tuple[Any, ...]] = deque(maxlen=max(size, 1))
        self.enabled = size > 0
        self._last: OrderedDict[str, LastSeen] = OrderedDict()
        self._max_devices = devices
        self.listeners: set[Callable[[TraceEntry], None]] = set()
        self.recorder: Recorder | None = None

    def add(self, entry: TraceEntry) -> None:
        """Record a request."""
        if not self.enabled:
            return
        self._entries.append(entry)
        if entry.device_id is not None:
            seen = Seen(
                entry.time,
                entry.status,
                (entry.file or entry.path)[:200],
                entry.reason[:255],
                entry.client_ip[:45],
            )
            if self.recorder is not None:
                self.recorder.record(entry.device_id, seen)
            self._seen(entry.device_id, seen)
        for listener in tuple(self.listeners):
            listener(entry)

    def last(self, device_id: str) -> LastSeen | None:
        """The device's last recorded request (None: not seen since this process started, or
        forgotten)."""
        return self._last.get(device_id)

    def last_seen(self) -> dict[str, LastSeen]:
        """A snapshot of every device's last request."""
        return dict(self._last)

    def extend_wire(self, batch: list[tuple[Any, ...]]) -> None:
        """Record a phone worker's requests (see :data:`WIRE_FIELDS`): in the ring, in the
        devices' last requests and for live listeners, as the main process's own. (The worker
        already gave them to its own recorder: they are not written twice.)"""
        if not self.enabled:
            return
        self._entries.extend(batch)
        for item in batch:
            device = item[_DEVICE]
            if device is not None:
                seen = Seen(
                    item[_TIME],
                    item[_STATUS],
                    (item[_FILE] or item[_PATH])[:200],
                    (item[_REASON] or "")[:255],
                    (item[_IP] or "")[:45],
                )
                self._seen(device, seen)
        if self.listeners:
            for item in batch:
                entry = from_wire(item)
                for listener in tuple(self.listeners):
                    listener(entry)

    def _seen(self, device_id: str, seen: LastSeen) -> None:
        self._last[device_id] = seen
        self._last.move_to_end(device_id)
        if len(self._last) > self._max_devices:
            self._last.popitem(last=False)

    def query(
        self,
        *,
        device_id: str | None = None,
        client_ip: str | None = None,
        tenants: set[str] | frozenset[str] | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Newest first, filtered by device, address and visible tenants."""
        out: list[dict[str, Any]] = []
        for item in reversed(self._entries):
            if isinstance(item, TraceEntry):
                device, ip, tenant = item.device_id, item.client_ip, item.tenant_uuid
            else:
                device, ip, tenant = item[_DEVICE], item[_IP], item[_TENANT]
            if device_id is not None and device != device_id:
                continue
            if client_ip is not None and ip != client_ip:
                continue
            if tenants is not None and tenant not in tenants:
                continue
            entry = item if isinstance(item, TraceEntry) else from_wire(item)
            out.append(entry.as_dict())
            if len(out) >= limit:
                break
        return out
