"""Why did this phone get that answer: the last requests with the pipeline's decisions.

A bounded ring in memory, queried by device id or client address through the REST API
(``GET /0.2/dev_mgr/requests``) and ``provisor requests``. Nothing secret is recorded: paths
are recorded without provisioning keys or device tokens. With several phone worker processes,
each worker sends its entries to the main process's ring (:mod:`provisor.workers.relay`).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any

__all__ = ["WIRE_FIELDS", "Trace", "TraceEntry", "from_wire", "to_wire"]


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
    reason: str = ""
    created: bool = False
    secrets: bool | None = None
    hot_stamp: tuple[int, ...] | None = None
    hot_sensitive: bool = False
    worker: int = 0
    """The phone worker process that served it (0: the main process; docs/architecture.md)."""

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view; the time in ISO 8601 (UTC, milliseconds)."""
        out = asdict(self)
        out.pop("hot_stamp", None)
        out.pop("hot_sensitive", None)
        out["time"] = datetime.fromtimestamp(self.time, UTC).isoformat(timespec="milliseconds")
        return out


#: an entry as a phone worker sends it (a tuple pickles ten times faster than the dataclass)
WIRE_FIELDS = tuple(
    f.name for f in fields(TraceEntry) if f.name not in ("hot_stamp", "hot_sensitive")
)
to_wire: Callable[[TraceEntry], tuple[Any, ...]] = attrgetter(*WIRE_FIELDS)
_DEVICE, _IP, _TENANT = (WIRE_FIELDS.index(n) for n in ("device_id", "client_ip", "tenant_uuid"))


def from_wire(values: tuple[Any, ...]) -> TraceEntry:
    """The entry a phone worker sent."""
    return TraceEntry(**dict(zip(WIRE_FIELDS, values, strict=True)))


class Trace:
    """The last ``size`` requests."""

    def __init__(self, size: int = 2000) -> None:
        # entries served here, and workers' entries kept as they came (made entries when read)
        self._entries: deque[TraceEntry | tuple[Any, ...]] = deque(maxlen=max(size, 1))
        self.enabled = size > 0

    def add(self, entry: TraceEntry) -> None:
        """Record a request."""
        if self.enabled:
            self._entries.append(entry)

    def extend_wire(self, batch: list[tuple[Any, ...]]) -> None:
        """Record a phone worker's requests (see :data:`WIRE_FIELDS`)."""
        if self.enabled:
            self._entries.extend(batch)

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
