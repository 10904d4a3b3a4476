"""A phone's state from its last request, and the Phones list filtered by it.

State is what the last request this process saw from the device says: *provisioned* (answered
below 400), *failing* (400 or more) or *never seen* (no request since the process started, or
forgotten by the bounded last-seen map of :class:`provisor.provisioning.trace.Trace`). It is
per process: another node's requests are not in it.

Filtering by state cannot be done in SQL (the state is in memory), so it walks candidates in
id order with a bounded budget per page (:data:`SCAN_BUDGET` rows); when the budget runs out
before the page is full, the page ends there and its cursor continues the walk.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncEngine

from provisor.provisioning.trace import LastSeen, Trace
from provisor.store.fleet import Cursor, FleetFilter, FleetPage, device_page

__all__ = ["SCAN_BUDGET", "STATES", "State", "page_by_state", "state_of"]

State = Literal["provisioned", "failing", "never"]
STATES: tuple[State, ...] = ("provisioned", "failing", "never")
SCAN_BUDGET = 10_000
_CHUNK = 500


def state_of(last: LastSeen | None) -> State:
    """The state a device's last request gives it."""
    if last is None:
        return "never"
    return "failing" if last.status >= 400 or last.status == 0 else "provisioned"


async def page_by_state(
    engine: AsyncEngine,
    trace: Trace | None,
    state: State,
    flt: FleetFilter,
    tenants: Collection[str] | None,
    after: Cursor | None,
    limit: int,
) -> FleetPage:
    """``limit`` devices in ``state`` after ``after`` (id order), within the scan budget."""
    seen = trace.last_seen() if trace is not None else {}
    found: list[dict[str, Any]] = []
    scanned = 0
    last_id = after.id if after is not None else None
    exhausted = False
    if state == "never":
        while True:
            cursor = Cursor(last_id, last_id) if last_id is not None else None
            page = await device_page(engine, flt, tenants, sort="id", after=cursor, limit=_CHUNK)
            for doc in page.docs:
                scanned += 1
                last_id = doc["id"]
                if doc["id"] not in seen:
                    found.append(doc)
            if page.next is None:
                exhausted = True
                break
            if scanned >= SCAN_BUDGET or len(found) > limit:
                break
    else:
        candidates = sorted(
            i for i, e in seen.items() if state_of(e) == state and (last_id is None or i > last_id)
        )
        exhausted = True
        for start in range(0, len(candidates), _CHUNK):
            if scanned >= SCAN_BUDGET or len(found) > limit:
                exhausted = False
                break
            chunk = tuple(candidates[start : start + _CHUNK])
            sub = FleetFilter(flt.search, flt.vendor, flt.model, flt.version, flt.tenant, ids=chunk)
            page = await device_page(engine, sub, tenants, sort="id", limit=_CHUNK)
            scanned += len(chunk)
            found.extend(page.docs)
            last_id = chunk[-1]
    if len(found) > limit:
        found = found[:limit]
        return FleetPage(found, Cursor(found[-1]["id"], found[-1]["id"]))
    if exhausted or last_id is None:
        return FleetPage(found, None)
    return FleetPage(found, Cursor(last_id, last_id))  # budget spent: continue from here
