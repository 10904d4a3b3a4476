"""A phone's state from its last request, and the Phones list filtered by it.

State is what the device's last request says: *provisioned* (answered below 400), *failing*
(400 or more, or no answer) or *never seen* (no request recorded). The record is the
``device_seen`` table, written in batches by every node
(:class:`provisor.services.seen.SeenRecorder`), so it survives restarts and agrees across
nodes; a record this process has not written yet (at most ``last_seen_interval`` old) is taken
from memory when it is newer.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncEngine

from provisor.provisioning.trace import Trace
from provisor.services.seen import SeenRecorder
from provisor.store.fleet import Cursor, FleetFilter, FleetPage, device_page
from provisor.store.seen import Seen, SeenStore

__all__ = ["STATES", "State", "last_seen", "page_by_state", "state_of"]

State = Literal["provisioned", "failing", "never"]
STATES: tuple[State, ...] = ("provisioned", "failing", "never")


def state_of(last: Seen | None) -> State:
    """The state a device's last request gives it."""
    if last is None:
        return "never"
    return "failing" if last.status >= 400 or last.status == 0 else "provisioned"


async def last_seen(
    engine: AsyncEngine,
    ids: Collection[str],
    trace: Trace | None,
    recorder: SeenRecorder | None,
) -> dict[str, Seen]:
    """The newest known last request of each device: the table's, or this process's."""
    out = await SeenStore(engine).get_many(ids)
    for device_id in ids:
        for here in (
            trace.last(device_id) if trace is not None else None,
            recorder.pending(device_id) if recorder is not None else None,
        ):
            stored = out.get(device_id)
            if here is not None and (stored is None or here.time > stored.time):
                out[device_id] = here
    return out


async def page_by_state(
    engine: AsyncEngine,
    state: State,
    flt: FleetFilter,
    tenants: Collection[str] | None,
    after: Cursor | None,
    limit: int,
) -> FleetPage:
    """``limit`` devices in ``state`` after ``after`` (id order), filtered in SQL."""
    sub = FleetFilter(flt.search, flt.vendor, flt.model, flt.version, flt.tenant, state=state)
    return await device_page(engine, sub, tenants, sort="id", after=after, limit=limit)
