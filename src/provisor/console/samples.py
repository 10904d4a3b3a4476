"""The last hour of the phone counters, for the Health page's charts.

Every :data:`INTERVAL` seconds the same counters ``/metrics`` exposes (phone requests by
status class and cache outcome, devices auto-created) are read and the differences kept in a
ring of :data:`SIZE` samples (one hour): bounded memory, nothing written anywhere. The charts
are drawn on the server as SVG polylines (no script, nothing inline for the CSP to refuse).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from provisor.metrics import PHONE, REGISTRY

__all__ = ["INTERVAL", "SIZE", "Sample", "Sampler", "chart_points"]

INTERVAL = 10.0
SIZE = 360


@dataclass(frozen=True, slots=True)
class Sample:
    """Counts over one interval."""

    at: float
    requests: int
    failures: int
    hits: int
    created: int


def _totals() -> tuple[int, int, int, int]:
    requests = failures = hits = 0
    for (_protocol, klass, _plugin, cache), value in PHONE.snapshot().items():
        requests += value
        if klass >= 4:
            failures += value
        if cache == "hit":
            hits += value
    created = int(REGISTRY.get_sample_value("provisor_devices_auto_created_total") or 0)
    return requests, failures, hits, created


class Sampler:
    """Samples the counters into a bounded ring while the server runs."""

    def __init__(self, interval: float = INTERVAL, size: int = SIZE) -> None:
        self.interval = interval
        self.samples: deque[Sample] = deque(maxlen=size)
        self._last = _totals()
        self._task: asyncio.Task[None] | None = None

    def sample(self) -> Sample:
        """Record the counts since the previous sample."""
        now = _totals()
        diff = [max(0, a - b) for a, b in zip(now, self._last, strict=True)]
        self._last = now
        sample = Sample(time.time(), *diff)
        self.samples.append(sample)
        return sample

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.sample()

    async def start(self, _prov: object) -> Callable[[], Awaitable[None]]:
        """Start sampling (a server start hook); returns what stops it."""
        self._task = asyncio.create_task(self._run(), name="console-sampler")
        return self.stop

    async def stop(self) -> None:
        """Stop sampling."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


def chart_points(values: list[float], width: int, height: int) -> tuple[str, float]:
    """SVG polyline points for ``values`` scaled into width×height, and the top value."""
    top = max(values, default=0.0) or 1.0
    if len(values) < 2:
        values = [*values, *values] or [0.0, 0.0]
    step = width / (len(values) - 1)
    points = " ".join(
        f"{i * step:.1f},{height - (v / top) * (height - 4) - 2:.1f}" for i, v in enumerate(values)
    )
    return points, top
