"""Why did this phone get that answer: the last requests with the pipeline's decisions.

A bounded ring in memory of the serving process, queried by device id or client address
through the REST API (``GET /0.2/dev_mgr/requests``); beside it, each device's last request
(bounded too: the least recently seen devices are forgotten first), which the console shows as
"last seen" and a phone's state, and live listeners (the console's Live page) that get each
entry as it is added. Each device's last request also goes to a recorder
(:class:`provisor.services.seen.SeenRecorder`) that writes it to the database in batches, so
"last seen" survives restarts and is shared by nodes. Nothing secret is recorded: paths are recorded without provisioning keys
or device tokens.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from provisor.store.seen import Seen

__all__ = ["LastSeen", "Recorder", "Trace", "TraceEntry"]


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


#: A device's last request, kept small (one per device, up to hundreds of thousands); ``file``
#: is the file served, or the path asked for (cut at 200 characters).
LastSeen = Seen


class Recorder(Protocol):
    """Where each device's last request goes beyond this process (the database, batched)."""

    def record(self, device_id: str, seen: Seen) -> None:
        """Note a device's request without waiting."""


class Trace:
    """The last ``size`` requests."""

    def __init__(self, size: int = 2000, devices: int = 200_000) -> None:
        self._entries: deque[TraceEntry] = deque(maxlen=max(size, 1))
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
            self._last[entry.device_id] = seen
            self._last.move_to_end(entry.device_id)
            if len(self._last) > self._max_devices:
                self._last.popitem(last=False)
        for listener in tuple(self.listeners):
            listener(entry)

    def last(self, device_id: str) -> LastSeen | None:
        """The device's last recorded request (None: not seen since this process started, or
        forgotten)."""
        return self._last.get(device_id)

    def last_seen(self) -> dict[str, LastSeen]:
        """A snapshot of every device's last request."""
        return dict(self._last)

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
