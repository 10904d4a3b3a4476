"""Device and config documents in the store.

Each write is one transaction: a device or config row and, for configs, its parent links change
together or not at all. Lookups by mac, ip, sn, uuid, tenant, plugin and config use indexes;
a q selector is pre-filtered in SQL on those columns and finished in Python on the documents.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import asyncpg  # type: ignore[import-untyped,unused-ignore]
from sqlalchemy import Select, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from provisor.domain.selector import Selector
from provisor.errors import Conflict
from provisor.store.configstore import ConfigStore
from provisor.store.db import Synchronous
from provisor.store.inserts import PgInserter, sqlite_insert_job
from provisor.store.page import Page, apply_page
from provisor.store.pointread import PointReader
from provisor.store.tables import devices
from provisor.store.writer import SqliteWriter

__all__ = ["ConfigStore", "DeviceStore", "Page"]  # ConfigStore lives in store/configstore.py

DEVICE_INDEXED = ("id", "tenant_uuid", "mac", "ip", "sn", "uuid", "plugin", "config")


#: Columns selective enough for a synchronous point read (see store/pointread.py).
_POINT_KEYS = frozenset({"id", "mac", "ip", "sn", "uuid", "prov_token"})


def _in(column: str, count: int) -> str:
    return f"{column} IN ({','.join('?' * count)})"


# Hot statements are built once with bound parameters: building a SQLAlchemy expression costs
# more than running an indexed SQLite lookup, and a reused statement also reuses its compiled
# form.
_GET_DEVICE = select(devices.c.doc).where(devices.c.id == bindparam("id"))
_QUERY_SHAPES: dict[tuple[Any, ...], Select[Any]] = {}


def _query_statement(
    tenants: bool, keys: tuple[str, ...], paged: bool, limited: bool
) -> Select[Any]:
    """``SELECT doc`` filtered on the tenants and indexed ``keys`` (expanding IN parameters
    ``tenants`` and ``k_<key>``), ordered and paged in SQL when ``paged`` (``skip``, ``limit``)."""
    shape = (tenants, keys, paged, limited)
    stmt = _QUERY_SHAPES.get(shape)
    if stmt is None:
        stmt = select(devices.c.doc)
        if tenants:
            stmt = stmt.where(devices.c.tenant_uuid.in_(bindparam("tenants", expanding=True)))
        for key in keys:
            stmt = stmt.where(devices.c[key].in_(bindparam(f"k_{key}", expanding=True)))
        if paged:
            stmt = stmt.order_by(devices.c.id).offset(bindparam("skip"))
            if limited:
                stmt = stmt.limit(bindparam("limit"))
        _QUERY_SHAPES[shape] = stmt
    return stmt


def _device_row(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": doc["id"],
        "tenant_uuid": doc["tenant_uuid"],
        "mac": doc.get("mac"),
        "ip": doc.get("ip"),
        "sn": doc.get("sn"),
        "uuid": doc.get("uuid"),
        "plugin": doc.get("plugin"),
        "config": doc.get("config"),
        "is_new": bool(doc.get("is_new")),
        "doc": dict(doc),
    }


class DeviceStore:
    """Device rows: whole document in JSON, looked-up fields in indexed columns."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        sqlite_synchronous: Synchronous = "FULL",
        sqlite_busy_timeout: float = 30.0,
        connect_timeout: float = 5.0,
        sqlite_shared: bool = False,
    ) -> None:
        self.engine = engine
        self._pending: list[tuple[dict[str, Any], bool, asyncio.Future[list[str]]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.points = PointReader.for_engine(engine)
        # inserts on a SQLite file go through one writer thread (store/writer.py)
        self.writer = (
            None
            if self.points is None
            else SqliteWriter(
                self.points.path,
                synchronous=sqlite_synchronous,
                busy_timeout=sqlite_busy_timeout,
                shared=sqlite_shared,
            )
        )
        # a lone insert on PostgreSQL goes on a connection of its own (store/inserts.py)
        self.pg = PgInserter.for_engine(engine, connect_timeout)

    def _point_docs(
        self, where: Mapping[str, Any], limit: int | None, offset: int = 0
    ) -> list[dict[str, Any]] | None:
        """``where`` (column → value or list of values) read synchronously, when selective."""
        if self.points is None or not _POINT_KEYS.intersection(where):
            return None
        clauses, params = [], []
        for key, value in where.items():
            values = list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]
            if not values or len(values) > 500 or key not in DEVICE_INDEXED + ("prov_token",):
                return None
            clauses.append(_in(key, len(values)))
            params += values
        sql = f"SELECT doc FROM devices WHERE {' AND '.join(clauses)} ORDER BY id LIMIT ? OFFSET ?"
        return self.points.docs(sql, [*params, -1 if limit is None else limit, offset])

    def close(self) -> None:
        """Release the synchronous reader and stop the writer thread."""
        if self.points is not None:
            self.points.close()
        if self.writer is not None:
            self.writer.close()
        if self.pg is not None:
            self.pg.close()

    async def get(self, device_id: str) -> dict[str, Any] | None:
        """The device document, or None."""
        found = self._point_docs({"id": device_id}, 1)
        if found is not None:
            return found[0] if found else None
        async with self.engine.connect() as conn:
            row = (await conn.execute(_GET_DEVICE, {"id": device_id})).first()
        return dict(row.doc) if row else None

    async def get_in(
        self, device_id: str, tenants: Collection[str] | None
    ) -> dict[str, Any] | None:
        """The device if its tenant is in ``tenants`` (None: any), else None: what a caller
        may not see is read as missing."""
        doc = await self.get(device_id)
        if doc is None or (tenants is not None and doc.get("tenant_uuid") not in tenants):
            return None
        return doc

    async def find_one(self, **where: Any) -> dict[str, Any] | None:
        """The first device whose indexed columns equal the given values."""
        found = self._point_docs(where, 1)
        if found is not None:
            return found[0] if found else None
        stmt = select(devices.c.doc)
        for key, value in where.items():
            stmt = stmt.where(devices.c[key] == value)
        async with self.engine.connect() as conn:
            row = (await conn.execute(stmt.limit(1))).first()
        return dict(row.doc) if row else None

    async def find_all(self, limit: int = 50, **where: Any) -> list[dict[str, Any]]:
        """Devices whose indexed columns equal the given values (bounded)."""
        found = self._point_docs(where, limit)
        if found is not None:
            return found
        stmt = select(devices.c.doc)
        for key, value in where.items():
            stmt = stmt.where(devices.c[key] == value)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt.limit(limit))).all()
        return [dict(r.doc) for r in rows]

    async def find_by_values(
        self, key: str, values: Collection[Any], *, per_value: int = 1
    ) -> dict[Any, list[dict[str, Any]]]:
        """Devices whose indexed column ``key`` is one of ``values``, at most ``per_value``
        each, in id order (one query for many lookups; a value shared by thousands of devices,
        an address behind NAT, still reads only ``per_value`` rows)."""
        out: dict[Any, list[dict[str, Any]]] = {}
        wanted = list(dict.fromkeys(values))
        if self.points is not None and key in _POINT_KEYS:
            sql = f"SELECT doc FROM devices WHERE {key} = ? ORDER BY id LIMIT {int(per_value)}"
            for value in wanted:
                docs = self.points.docs(sql, (value,))
                if docs is None:
                    out = {}
                    break
                if docs:
                    out[value] = docs
            else:
                return out
        column = devices.c[key]
        rank = func.row_number().over(partition_by=column, order_by=devices.c.id).label("rank")
        async with self.engine.connect() as conn:
            for start in range(0, len(wanted), 500):
                ranked = (
                    select(column.label("value"), devices.c.doc, rank)
                    .where(column.in_(wanted[start : start + 500]))
                    .subquery()
                )
                stmt = select(ranked.c.value, ranked.c.doc).where(ranked.c.rank <= per_value)
                for row in (await conn.execute(stmt)).all():
                    out.setdefault(row.value, []).append(dict(row.doc))
        return out

    async def find_by_token(self, token: str) -> dict[str, Any] | None:
        """The device whose per-device provisioning token is ``token``."""
        found = self._point_docs({"prov_token": token}, 1)
        if found is not None:
            return found[0] if found else None
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(devices.c.doc).where(devices.c.prov_token == token))
            ).first()
        return dict(row.doc) if row else None

    async def query(
        self,
        selector: Selector,
        *,
        tenants: Collection[str] | None = None,
        page: Page | None = None,
    ) -> list[dict[str, Any]]:
        """Devices matching the selector within the tenants, sorted and paged."""
        hints = selector.index_hints(DEVICE_INDEXED)
        params: dict[str, Any] = {f"k_{key}": list(values) for key, values in hints.items()}
        if tenants is not None:
            params["tenants"] = list(tenants)
        paged = page is not None and page.sort is None and selector.fully_indexed(DEVICE_INDEXED)
        if paged:
            # every condition is an indexed equality: SQL filters and pages, Python only decodes
            assert page is not None
            params["skip"], params["limit"] = page.skip, page.limit
            limited, page = page.limit is not None, None
        else:
            limited = False
        docs = None
        if paged and _POINT_KEYS.intersection(hints):
            where: dict[str, Any] = dict(hints)
            if tenants is not None:
                where["tenant_uuid"] = list(tenants)
            docs = self._point_docs(where, params["limit"], params["skip"])
        if docs is None:
            stmt = _query_statement(tenants is not None, tuple(sorted(hints)), paged, limited)
            async with self.engine.connect() as conn:
                rows = (await conn.execute(stmt, params)).all()
            docs = [dict(r.doc) for r in rows]
        if not selector.is_empty and not selector.fully_indexed(DEVICE_INDEXED):
            docs = [d for d in docs if selector.matches(d)]
        return apply_page(docs, page)

    async def count(self, **where: Any) -> int:
        """How many devices have the given indexed values."""
        stmt = select(func.count()).select_from(devices)
        for key, value in where.items():
            stmt = stmt.where(devices.c[key] == value)
        async with self.engine.connect() as conn:
            return int((await conn.execute(stmt)).scalar_one())

    async def insert(
        self, doc: Mapping[str, Any], *, prov_token: str | None = None, take_ip: bool = False
    ) -> list[str]:
        """Insert a new device; Conflict if the id exists.

        With ``take_ip``, every other device holding the new device's IP loses it in the same
        transaction (one address, one device, when NAT is off); their ids are returned.

        Inserts that arrive while a transaction is being written (a boot storm) are written
        together in the next one: one commit for many phones, and one query for the addresses
        they take. Nothing waits for a batch to fill: a lone writer's insert starts at once.
        A batch that fails is retried row by row so each caller gets its own answer.
        On a SQLite file the writer thread does both (store/writer.py).
        """
        row = {**_device_row(doc), "prov_token": prov_token, "rev": 1}
        if self.writer is not None:
            try:
                return await self.writer.run(sqlite_insert_job(row, take_ip))
            except sqlite3.IntegrityError:
                raise Conflict(f"device {row['id']!r} already exists") from None
        future: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()
        self._pending.append((row, take_ip, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        # no waiting window: a batch is whatever queued while the previous commit was written
        while self._pending:
            batch, self._pending = self._pending[:500], self._pending[500:]
            if self.pg is not None and len(batch) == 1 and not batch[0][1]:
                await self._insert_alone(*batch[0])
                continue
            try:
                async with self.engine.begin() as conn:
                    await conn.execute(insert(devices), [row for row, _, _ in batch])
                    taken = await self._take_ips(
                        conn, {row["ip"]: row["id"] for row, take, _ in batch if take and row["ip"]}
                    )
            except IntegrityError:
                for row, take, future in batch:
                    await self._insert_one(row, take, future)
            except Exception as exc:  # the callers see the database error
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
            else:
                for row, take, future in batch:
                    if not future.done():  # a caller may have been cancelled meanwhile
                        future.set_result(taken.get(row["ip"], []) if take else [])

    async def _insert_alone(
        self, row: dict[str, Any], _take_ip: bool, future: asyncio.Future[list[str]]
    ) -> None:
        """One row, nothing else in the transaction: one statement on the inserter's own
        connection."""
        assert self.pg is not None
        if future.done():
            return
        try:
            await self.pg.insert(row)
        except asyncpg.UniqueViolationError:
            future.set_exception(Conflict(f"device {row['id']!r} already exists"))
        except Exception as exc:  # the caller sees the database error
            future.set_exception(exc)
        else:
            future.set_result([])

    async def _insert_one(
        self, row: dict[str, Any], take_ip: bool, future: asyncio.Future[list[str]]
    ) -> None:
        if future.done():
            return
        try:
            async with self.engine.begin() as conn:
                await conn.execute(insert(devices).values(**row))
                wanted = {row["ip"]: row["id"]} if take_ip and row["ip"] else {}
                taken = await self._take_ips(conn, wanted)
        except IntegrityError:
            future.set_exception(Conflict(f"device {row['id']!r} already exists"))
        except Exception as exc:  # the caller sees the database error
            future.set_exception(exc)
        else:
            future.set_result(taken.get(row["ip"], []))

    async def _take_ips(
        self, conn: AsyncConnection, keep: Mapping[str, str]
    ) -> dict[str, list[str]]:
        """Remove each IP of ``keep`` from every device but the one it maps to."""
        taken: dict[str, list[str]] = {}
        ips = list(keep)
        for start in range(0, len(ips), 500):
            holders = (
                await conn.execute(
                    select(devices.c.id, devices.c.ip).where(
                        devices.c.ip.in_(ips[start : start + 500])
                    )
                )
            ).all()
            others = [h.id for h in holders if keep.get(h.ip) != h.id]
            if not others:
                continue
            rows = (await conn.execute(select(devices.c.doc).where(devices.c.id.in_(others)))).all()
            for row in rows:
                doc = dict(row.doc)
                ip = doc.pop("ip", None)
                if ip is None:
                    continue
                await self.replace(doc, conn=conn)
                taken.setdefault(ip, []).append(doc["id"])
        return taken

    async def insert_many(self, docs: Sequence[Mapping[str, Any]]) -> None:
        """Insert many devices in one transaction (bulk import)."""
        if not docs:
            return
        try:
            async with self.engine.begin() as conn:
                await conn.execute(insert(devices), [_device_row(d) for d in docs])
        except IntegrityError as exc:
            raise Conflict(f"bulk insert refused: {exc.orig}") from None

    async def replace(self, doc: Mapping[str, Any], *, conn: AsyncConnection | None = None) -> int:
        """Replace a device document; returns the new revision (0 if it does not exist)."""
        stmt = (
            update(devices)
            .where(devices.c.id == doc["id"])
            .values(**_device_row(doc), rev=devices.c.rev + 1)
            .returning(devices.c.rev)
        )
        if conn is not None:
            row = (await conn.execute(stmt)).first()
        else:
            async with self.engine.begin() as c:
                row = (await c.execute(stmt)).first()
        return int(row.rev) if row else 0

    async def set_token(self, device_id: str, token: str | None) -> None:
        """Set (or clear) a device's per-device provisioning token."""
        async with self.engine.begin() as conn:
            await conn.execute(
                update(devices)
                .where(devices.c.id == device_id)
                .values(prov_token=token, rev=devices.c.rev + 1)
            )

    async def get_token(self, device_id: str) -> str | None:
        """A device's per-device provisioning token."""
        async with self.engine.connect() as conn:
            return (
                await conn.execute(select(devices.c.prov_token).where(devices.c.id == device_id))
            ).scalar_one_or_none()

    async def clear_ip(self, ip: str, except_id: str) -> list[str]:
        """Remove ``ip`` from every other device holding it; returns their ids."""
        async with self.engine.begin() as conn:
            return (await self._take_ips(conn, {ip: except_id})).get(ip, [])

    async def delete(self, device_id: str) -> bool:
        """Delete a device; True if it existed."""
        async with self.engine.begin() as conn:
            result = await conn.execute(delete(devices).where(devices.c.id == device_id))
        return bool(result.rowcount)

    async def delete_tenant(self, tenant_uuid: str) -> int:
        """Delete every device of a tenant; returns how many."""
        async with self.engine.begin() as conn:
            result = await conn.execute(delete(devices).where(devices.c.tenant_uuid == tenant_uuid))
        return int(result.rowcount or 0)

    async def ids_where(self, **where: Any) -> list[str]:
        """Ids of the devices with the given indexed values."""
        stmt = select(devices.c.id)
        for key, value in where.items():
            if isinstance(value, (list, tuple, set, frozenset)):
                stmt = stmt.where(devices.c[key].in_(list(value)))
            else:
                stmt = stmt.where(devices.c[key] == value)
        async with self.engine.connect() as conn:
            return [r.id for r in (await conn.execute(stmt)).all()]
