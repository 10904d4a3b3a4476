"""Why did this phone get that answer: the last requests with the pipeline's decisions.

A bounded ring in memory, queried by device id or client address through the REST API
(``GET /0.2/dev_mgr/requests``) and ``provisor requests``. Nothing secret is recorded: paths
are recorded without provisioning keys or device tokens. With several phone worker processes,
each worker sends its entries to the main process's ring (:mod:`provisor.workers.relay`).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = ["Trace", "TraceEntry"]


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


class Trace:
    """The last ``size`` requests."""

    def __init__(self, size: int = 2000) -> None:
        self._entries: deque[TraceEntry] = deque(maxlen=max(size, 1))
        self.enabled = size > 0

    def add(self, entry: TraceEntry) -> None:
        """Record a request."""
        if self.enabled:
            self._entries.append(entry)

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
        for entry in reversed(self._entries):
            if device_id is not None and entry.device_id != device_id:
                continue
            if client_ip is not None and entry.client_ip != client_ip:
                continue
            if tenants is not None and entry.tenant_uuid not in tenants:
                continue
            out.append(entry.as_dict())
            if len(out) >= limit:
                break
        return out
