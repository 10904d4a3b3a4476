"""The console's view of the fleet: pages of devices by keyset, fast at any size.

A page is "the next ``limit`` rows after this one" in ``(column, id)`` order, never an
OFFSET: the database walks an index from the cursor, so page 2 000 costs what page 1 costs.
Rows whose sort column is NULL come after all others (in id order), the same on SQLite and
PostgreSQL (whose NULL orders differ). Filters on the document's vendor, model and version are
exact matches on the JSON document (a scan when one is given; the unfiltered first page uses
the ``(mac, id)`` index, see tests/console/test_phones_query.py for the plans). The state
filter is an EXISTS (or NOT EXISTS) on ``device_seen`` by its primary key.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, and_, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from provisor.store.tables import device_seen, devices

__all__ = [
    "SORTS",
    "Cursor",
    "Sort",
    "count_devices",
    "FleetFilter",
    "FleetPage",
    "device_page",
    "page_statement",
]

SORTS = ("mac", "ip", "id")
Sort = Literal["mac", "ip", "id"]


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where the previous page ended: its last row's sort value (None: in the NULL tail)."""

    value: str | None
    id: str


@dataclass(frozen=True, slots=True)
class FleetFilter:
    """What the operator narrowed the list to (empty strings: no filter)."""

    search: str = ""  # prefix of the MAC, the IP address or the id
    vendor: str = ""
    model: str = ""
    version: str = ""
    tenant: str = ""
    ids: tuple[str, ...] | None = None  # only these ids
    state: str = ""  # provisioned | failing | never (from the device_seen table)


@dataclass(frozen=True, slots=True)
class FleetPage:
    """One page of device documents and the cursor of the next (None: last page)."""

    docs: list[dict[str, Any]]
    next: Cursor | None


def _conditions(flt: FleetFilter, tenants: Collection[str] | None) -> list[ColumnElement[bool]]:
    c = devices.c
    out: list[ColumnElement[bool]] = []
    if tenants is not None:
        out.append(c.tenant_uuid.in_(list(tenants)))
    if flt.tenant:
        out.append(c.tenant_uuid == flt.tenant)
    if flt.ids is not None:
        out.append(c.id.in_(list(flt.ids)))
    for key, value in (("vendor", flt.vendor), ("model", flt.model), ("version", flt.version)):
        if value:
            out.append(c.doc[key].as_string() == value)
    if flt.state:
        seen = device_seen.c
        row = exists().where(seen.device_id == c.id)
        if flt.state == "never":
            out.append(~row)
        elif flt.state == "failing":
            out.append(row.where(or_(seen.status >= 400, seen.status == 0)))
        else:
            out.append(row.where(seen.status > 0, seen.status < 400))
    if flt.search:
        like = flt.search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        out.append(
            or_(
                c.mac.like(like.lower(), escape="\\"),
                c.ip.like(like, escape="\\"),
                c.id.like(like, escape="\\"),
            )
        )
    return out


def page_statement(
    flt: FleetFilter,
    tenants: Collection[str] | None,
    sort: Sort,
    desc: bool,
    after: Cursor | None,
    limit: int,
    null_tail: bool,
) -> Any:
    """The SELECT of one segment: rows with a sort value, or (``null_tail``) those without."""
    c = devices.c
    col = c[sort]
    where = _conditions(flt, tenants)
    if sort == "id":
        null_tail = False
    if null_tail:
        where.append(col.is_(None))
        if after is not None and after.value is None:
            where.append(c.id < after.id if desc else c.id > after.id)
        order = [c.id.desc() if desc else c.id]
    else:
        if sort != "id":
            where.append(col.is_not(None))
        if after is not None:
            if sort == "id":
                where.append(c.id < after.id if desc else c.id > after.id)
            else:
                beyond = col < after.value if desc else col > after.value
                same = and_(col == after.value, c.id < after.id if desc else c.id > after.id)
                where.append(or_(beyond, same))
        order = (
            [c.id.desc() if desc else c.id]
            if sort == "id"
            else [col.desc(), c.id.desc()]
            if desc
            else [col, c.id]
        )
    return (
        select(c.id, c[sort].label("sort_value"), c.tenant_uuid, c.doc)
        .where(*where)
        .order_by(*order)
        .limit(limit)
    )


async def device_page(
    engine: AsyncEngine,
    flt: FleetFilter,
    tenants: Collection[str] | None,
    *,
    sort: Sort = "mac",
    desc: bool = False,
    after: Cursor | None = None,
    limit: int = 50,
) -> FleetPage:
    """``limit`` devices after ``after`` in (sort, id) order, NULL sort values last."""
    rows: list[Any] = []
    in_tail = after is not None and after.value is None and sort != "id"
    async with engine.connect() as conn:
        if not in_tail:
            stmt = page_statement(flt, tenants, sort, desc, after, limit + 1, False)
            rows = list((await conn.execute(stmt)).all())
        if len(rows) <= limit and sort != "id":
            tail_after = after if in_tail else None
            stmt = page_statement(flt, tenants, sort, desc, tail_after, limit + 1 - len(rows), True)
            rows += list((await conn.execute(stmt)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    docs = []
    for row in rows:
        doc = dict(row.doc)
        doc["tenant_uuid"] = row.tenant_uuid
        docs.append(doc)
    nxt = Cursor(rows[-1].sort_value, rows[-1].id) if more and rows else None
    return FleetPage(docs, nxt)


async def count_devices(engine: AsyncEngine, tenants: Collection[str] | None) -> int:
    """How many devices the tenants hold."""
    stmt = select(func.count()).select_from(devices)
    if tenants is not None:
        stmt = stmt.where(devices.c.tenant_uuid.in_(list(tenants)))
    async with engine.connect() as conn:
        return int((await conn.execute(stmt)).scalar_one())
