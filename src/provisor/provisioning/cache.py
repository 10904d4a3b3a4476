"""Caches of the phone path: device documents and rendered files.

Rendered bytes are keyed by everything that reaches them — the device's write epoch, the config
generation (bumped by any config write), the tenant and parameter generations, the plugin object
and version, the path and the secrets flag — so a change anywhere makes the next fetch render
afresh and nothing is re-rendered up front. Both caches are bounded (entries and bytes).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from provisor.provisioning.request import FileResult

__all__ = ["DeviceCache", "RenderCache", "Rendered", "StaleFiles", "served"]


@dataclass(frozen=True, slots=True)
class Rendered:
    """A rendered file and its validators."""

    body: bytes
    etag: str
    last_modified: float


class RenderCache:
    """LRU of rendered files, bounded by entries and total bytes."""

    def __init__(
        self,
        max_entries: int = 50_000,
        max_bytes: int = 256 * 1024 * 1024,
        max_item_bytes: int = 4 * 1024 * 1024,
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        #: the render output limit: a larger body is never kept (it was refused anyway)
        self.max_item_bytes = min(max_item_bytes, max_bytes // 4)
        self._items: OrderedDict[Hashable, Rendered] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> Rendered | None:
        """A cached render, or None."""
        item = self._items.get(key)
        if item is None:
            self.misses += 1
            return None
        self._items.move_to_end(key)
        self.hits += 1
        return item

    def put(self, key: Hashable, item: Rendered) -> None:
        """Store a render, evicting the least recently used past the bounds."""
        if len(item.body) > self.max_item_bytes:
            return
        old = self._items.pop(key, None)
        if old is not None:
            self._bytes -= len(old.body)
        self._items[key] = item
        self._bytes += len(item.body)
        while self._items and (len(self._items) > self.max_entries or self._bytes > self.max_bytes):
            _, evicted = self._items.popitem(last=False)
            self._bytes -= len(evicted.body)

    def clear(self) -> None:
        """Drop everything."""
        self._items.clear()
        self._bytes = 0


class DeviceCache:
    """Device documents by id, mac and token, for a short time-to-live.

    Writes on this node invalidate entries at once (``forget``); the TTL bounds how long another
    node's write can go unseen when several nodes share one database.
    """

    def __init__(self, ttl: float = 2.0, max_entries: int = 50_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._by_key: OrderedDict[tuple[str, str], tuple[float, dict[str, Any] | None]] = (
            OrderedDict()
        )
        self._epochs: dict[str, int] = {}
        self._keys_of: dict[str, set[tuple[str, str]]] = {}

    def get(self, kind: str, value: str) -> tuple[bool, dict[str, Any] | None]:
        """(hit, document) for a lookup by ``kind`` (id, mac, token)."""
        entry = self._by_key.get((kind, value))
        if entry is None:
            return False, None
        stored, doc = entry
        if time.monotonic() - stored > self.ttl:
            del self._by_key[(kind, value)]
            return False, None
        return True, doc

    def put(self, kind: str, value: str, doc: dict[str, Any] | None) -> None:
        """Remember a lookup's answer (None = known absent)."""
        self._by_key[(kind, value)] = (time.monotonic(), doc)
        self._by_key.move_to_end((kind, value))
        if doc is not None:
            self._keys_of.setdefault(doc.get("id", ""), set()).add((kind, value))
        while len(self._by_key) > self.max_entries:
            (_, _), (_, old) = self._by_key.popitem(last=False)
            if old is not None:
                self._keys_of.pop(old.get("id", ""), None)

    def epoch(self, device_id: str) -> int:
        """The device's write counter on this node (part of render cache keys)."""
        return self._epochs.get(device_id, 0)

    def forget(self, doc: dict[str, Any] | None = None) -> None:
        """Invalidate entries for a device (or every entry when ``doc`` is None)."""
        if doc is None:
            self._by_key.clear()
            self._keys_of.clear()
            return
        device_id = doc.get("id", "")
        self._epochs[device_id] = self._epochs.get(device_id, 0) + 1
        stale = self._keys_of.pop(device_id, set())
        stale |= {
            ("id", device_id),
            ("mac", doc.get("mac") or ""),
            ("ip", doc.get("ip") or ""),
            # a "no such serial" read before a device was created by its serial
            ("sn", doc.get("sn") or ""),
            ("uuid", doc.get("uuid") or ""),
        }
        for key in stale:
            self._by_key.pop(key, None)


class StaleFiles:
    """The last file served for each request, to serve again while the database is down.

    Keyed by the request as the phone sent it (protocol, HTTPS or not, the path with its key or
    token, User-Agent, address): only the same phone asking the same way gets a stale copy, so
    no access check is bypassed. An entry older than ``max_age`` seconds (since it was last
    served fresh) is not used. Bounded by entries and bytes; bodies are shared with the answers
    already in memory (the render cache), not copied.
    """

    def __init__(
        self, max_age: float, max_entries: int = 50_000, max_bytes: int = 256 * 1024 * 1024
    ) -> None:
        self.max_age = max_age
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._items: OrderedDict[Hashable, tuple[float, FileResult]] = OrderedDict()
        self._bytes = 0

    def put(self, key: Hashable, result: FileResult) -> None:
        """Remember the answer just served (200 only)."""
        if self.max_age <= 0 or len(result.body) > self.max_bytes // 4:
            return
        old = self._items.pop(key, None)
        if old is not None:
            self._bytes -= len(old[1].body)
        self._items[key] = (time.monotonic(), result)
        self._bytes += len(result.body)
        while self._items and (len(self._items) > self.max_entries or self._bytes > self.max_bytes):
            _, (_, evicted) = self._items.popitem(last=False)
            self._bytes -= len(evicted.body)

    def get(self, key: Hashable) -> FileResult | None:
        """The last answer to this request, if recent enough."""
        entry = self._items.get(key)
        if entry is None or time.monotonic() - entry[0] > self.max_age:
            return None
        return entry[1]


def served(item: Rendered, content_type: str) -> FileResult:
    """The 200 answer for a rendered file."""
    from provisor.provisioning.request import FileResult

    return FileResult(
        200,
        item.body,
        content_type,
        etag=item.etag,
        last_modified=item.last_modified,
        reason="served",
    )
