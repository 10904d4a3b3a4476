"""Why did this phone get that answer: the last requests with the pipeline's decisions.

A bounded ring in memory of the serving process, queried by device id or client address
through the REST API (``GET /0.2/dev_mgr/requests``). Nothing secret is recorded: paths are
recorded without provisioning keys or device tokens.
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
    """The status sent: 304 or 206 when the front end answered a conditional or range GET."""
    reason: str = ""
    cache: str = ""
    """Render cache outcome: hit, miss, stale or none (not a rendered file)."""
    created: bool = False
    secrets: bool | None = None
    hot_stamp: tuple[int, ...] | None = None
    hot_sensitive: bool = False

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
