"""Each device's last request, written to the database in batches off the phone's path.

The phone pipeline's trace hands every identified request to :meth:`SeenRecorder.record`, a
dict assignment: a device requested again before the flush replaces its pending record, so a
phone fetching five files costs one row. A background task writes the pending records every
``interval`` seconds, or at once when ``batch`` devices wait, as one upsert statement per
batch (:class:`provisor.store.seen.SeenStore`). The buffer is bounded (``pending_max``):
past it the oldest pending record is dropped and counted (:attr:`SeenRecorder.dropped`, and
``provisor_last_seen_dropped_total`` in /metrics, workers' included); a
database outage keeps the records and retries, within the same bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from provisor.metrics import LAST_SEEN_DROPPED
from provisor.store.seen import Seen, SeenStore

__all__ = ["SeenRecorder"]

log = logging.getLogger(__name__)

#: Seconds between two attempts to write while the database fails.
_RETRY = 2.0


class SeenRecorder:
    """Pending last-request records and the task that writes them."""

    def __init__(
        self,
        store: SeenStore,
        *,
        interval: float = 1.0,
        batch: int = 500,
        pending_max: int = 50_000,
    ) -> None:
        self.store = store
        self.interval = interval
        self.batch = max(batch, 1)
        self.pending_max = max(pending_max, 1)
        self.dropped = 0
        """Records dropped because the buffer was full (oldest first)."""
        self.batches = 0
        """Batches written."""
        self._pending: dict[str, Seen] = {}
        self._flusher: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._writing = asyncio.Lock()

    def record(self, device_id: str, seen: Seen) -> None:
        """Note a device's request (the hot path: no I/O, no wait)."""
        self._pending.pop(device_id, None)
        self._pending[device_id] = seen
        while len(self._pending) > self.pending_max:
            self._pending.pop(next(iter(self._pending)))
            self.dropped += 1
            LAST_SEEN_DROPPED.inc()
        if len(self._pending) >= self.batch:
            self._wake.set()
        if self._flusher is None or self._flusher.done():
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop (a synchronous caller): written by the next flush()
                return
            self._flusher = loop.create_task(self._flush_loop())

    def pending(self, device_id: str) -> Seen | None:
        """A record not written yet (newer than the table's)."""
        return self._pending.get(device_id)

    async def flush(self) -> None:
        """Write what is pending, ``batch`` records per statement."""
        async with self._writing:
            while self._pending:
                ids = list(self._pending)[: self.batch]
                chunk = {i: self._pending[i] for i in ids}
                await self.store.put(chunk)
                self.batches += 1
                for device_id, seen in chunk.items():
                    if self._pending.get(device_id) is seen:
                        del self._pending[device_id]

    async def _flush_loop(self) -> None:
        """Every ``interval`` (or when a batch is full), write; stop when nothing is pending."""
        while self._pending:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            try:
                await self.flush()
            except Exception as exc:  # the database is away: keep the records, try again
                log.warning("last-seen records not written (%s); retrying", type(exc).__name__)
                await asyncio.sleep(_RETRY)

    async def close(self) -> None:
        """Write what is pending (best effort) and stop the writer."""
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._flusher
        try:
            await self.flush()
        except Exception as exc:
            log.warning("last-seen records lost at close (%s)", type(exc).__name__)
