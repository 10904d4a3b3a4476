"""What phone workers send to the main process: trace entries and metric snapshots.

Trace entries are batched and sent every ``FLUSH_INTERVAL`` over the worker's link; a worker
keeps at most ``MAX_PENDING`` unsent entries and a batch the link cannot take is dropped, both
counted (``provisor_trace_dropped_total``), so a busy main process costs trace entries, never
phone latency. Metrics: each worker sends a snapshot of its counters and histograms every
second; the main process's ``/metrics`` adds them to its own (:class:`WorkerMetrics`), and keeps
the last snapshot of a worker that died so that totals never go down.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import Metric

from provisor.metrics import REGISTRY, TRACE_DROPPED
from provisor.provisioning.trace import Trace, TraceEntry, to_wire
from provisor.workers.link import Link

__all__ = ["FLUSH_INTERVAL", "MAX_PENDING", "RelayedTrace", "WorkerMetrics", "snapshot"]

FLUSH_INTERVAL = 0.05
MAX_PENDING = 20_000
#: entries per message: a few hundred bytes each, well under the link's message size
BATCH = 64

Samples = list[tuple[str, dict[str, str], float]]
Snapshot = list[tuple[str, str, str, Samples]]


class RelayedTrace(Trace):
    """A worker's trace: entries go to the main process's ring, none is kept here."""

    def __init__(self, link: Link, worker: int, size: int) -> None:
        super().__init__(0)
        self.enabled = size > 0
        self.link = link
        self.worker = worker
        self.dropped = 0
        self._pending: list[tuple[Any, ...]] = []

    def add(self, entry: TraceEntry) -> None:
        """Queue a request for the main process (dropped and counted when the queue is full)."""
        if not self.enabled:
            return
        if len(self._pending) >= MAX_PENDING:
            self.dropped += 1
            return
        entry.worker = self.worker
        self._pending.append(to_wire(entry))

    def flush(self) -> None:
        """Send the queued entries; what the link cannot take now is dropped and counted."""
        pending, self._pending = self._pending, []
        for start in range(0, len(pending), BATCH):
            batch = pending[start : start + BATCH]
            if not self.link.send(("trace", batch, 0)):
                self.dropped += len(pending) - start
                break
        if self.dropped and self.link.send(("trace", [], self.dropped)):
            self.dropped = 0


def receive_trace(trace: Trace, entries: list[tuple[Any, ...]], dropped: int) -> None:
    """Add a worker's batch to the main process's ring."""
    trace.extend_wire(entries)
    if dropped:
        TRACE_DROPPED.inc(dropped)


def snapshot() -> Snapshot:
    """This process's counters and histograms (process and runtime metrics stay per process)."""
    out: Snapshot = []
    for family in REGISTRY.collect():
        if family.type not in ("counter", "histogram") or family.name.startswith(
            ("process_", "python_")
        ):
            continue
        samples = [(s.name, dict(s.labels), float(s.value)) for s in family.samples]
        out.append((family.name, family.type, family.documentation, samples))
    return out


def _key(name: str, labels: dict[str, str]) -> tuple[str, tuple[tuple[str, str], ...]]:
    return name, tuple(sorted(labels.items()))


class WorkerMetrics:
    """The main process's registry plus the workers' counters, as one exposition."""

    def __init__(self) -> None:
        self._live: dict[int, Snapshot] = {}
        self._retired: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}

    def update(self, worker: int, snap: Snapshot) -> None:
        """A worker's latest snapshot."""
        self._live[worker] = snap

    def retire(self, worker: int) -> None:
        """A worker died: its last counts stay in the totals (its successor starts from 0)."""
        for name, _type, _doc, samples in self._live.pop(worker, []):
            family = self._retired.setdefault(name, {})
            for sample, labels, value in samples:
                key = _key(sample, labels)
                family[key] = family.get(key, 0.0) + value

    def _extra(self) -> dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
        sums = {name: dict(values) for name, values in self._retired.items()}
        for snap in self._live.values():
            for name, _type, _doc, samples in snap:
                family = sums.setdefault(name, {})
                for sample, labels, value in samples:
                    key = _key(sample, labels)
                    family[key] = family.get(key, 0.0) + value
        return sums

    def collect(self) -> Iterator[Metric]:
        """Every family of the main registry, with the workers' samples added."""
        extra = self._extra()
        for family in REGISTRY.collect():
            added = extra.get(family.name)
            if not added:
                yield family
                continue
            values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
            for s in family.samples:
                values[_key(s.name, s.labels)] = float(s.value)
            for key, value in added.items():
                values[key] = values.get(key, 0.0) + value
            merged = Metric(family.name, family.documentation, family.type)
            for (sample, labels), value in values.items():
                merged.add_sample(sample, dict(labels), value)
            yield merged
