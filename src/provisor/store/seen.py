"""Each device's last request in the ``device_seen`` table: one upsert per batch.

Rows are written by :class:`provisor.services.seen.SeenRecorder` in batches, never one per
phone request. A batch is one ``INSERT .. ON CONFLICT DO UPDATE`` statement (SQLite and
PostgreSQL), which keeps the newer of two records (two nodes may see the same phone); a device
deleted between its request and the flush makes the statement fail on the foreign key, and
then the batch is written again without the devices that are gone.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from provisor.store.tables import device_seen, devices

__all__ = ["Seen", "SeenStore"]


@dataclass(frozen=True, slots=True)
class Seen:
    """A device's last request: when, the answer's status, the file and why, from where."""

    time: float
    status: int
    file: str
    reason: str = ""
    address: str = ""


class SeenStore:
    """Read and write the ``device_seen`` table."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.statements = 0
        """Upsert statements executed (the batching test reads it)."""

    def _upsert(self, rows: list[dict[str, Any]]) -> Any:
        insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        stmt = insert(device_seen).values(rows)
        new = stmt.excluded
        return stmt.on_conflict_do_update(
            index_elements=[device_seen.c.device_id],
            set_={
                "seen_at": new.seen_at,
                "status": new.status,
                "file": new.file,
                "reason": new.reason,
                "address": new.address,
            },
            where=device_seen.c.seen_at <= new.seen_at,
        )

    async def _write(self, conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
        self.statements += 1
        await conn.execute(self._upsert(rows))

    async def put(self, items: Mapping[str, Seen]) -> None:
        """Record a batch (device id -> its last request) in one statement."""
        rows = [
            {
                "device_id": device_id,
                "seen_at": s.time,
                "status": s.status,
                "file": s.file[:200],
                "reason": s.reason[:255],
                "address": s.address[:45],
            }
            for device_id, s in items.items()
        ]
        if not rows:
            return
        try:
            async with self.engine.begin() as conn:
                await self._write(conn, rows)
        except IntegrityError:  # a device deleted since its request: write the others
            async with self.engine.begin() as conn:
                ids = [r["device_id"] for r in rows]
                alive: set[str] = set(
                    (await conn.execute(select(devices.c.id).where(devices.c.id.in_(ids))))
                    .scalars()
                    .all()
                )
                rows = [r for r in rows if r["device_id"] in alive]
                if rows:
                    await self._write(conn, rows)

    async def get_many(self, ids: Collection[str]) -> dict[str, Seen]:
        """The recorded last requests of these devices (absent: never seen)."""
        if not ids:
            return {}
        c = device_seen.c
        async with self.engine.connect() as conn:
            result = await conn.execute(select(device_seen).where(c.device_id.in_(list(ids))))
            return {
                r.device_id: Seen(r.seen_at, r.status, r.file, r.reason, r.address) for r in result
            }
