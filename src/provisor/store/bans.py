"""The shared ban table: rows every node reads into its in-memory ban list.

Writes are rare (a ban is decided after ``ban_threshold`` failures) and batched by
:class:`provisor.services.bans.BanList`; reads happen when the ``bans`` change counter moves.
The table holds at most ``cap`` rows: each write deletes expired rows, then the oldest bans
beyond the cap, so a flood of distinct addresses cannot grow it without bound.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from provisor.store.tables import bans

__all__ = ["Ban", "BanStore"]


@dataclass(frozen=True, slots=True)
class Ban:
    """One refused address, until a wall-clock time (epoch seconds)."""

    address: str
    until: float
    created_at: float
    reason: str = ""

    def public(self) -> dict[str, str]:
        """What the REST API and ``provisor ban list --json`` show (the end in ISO 8601, UTC)."""
        until = datetime.fromtimestamp(self.until, UTC).isoformat()
        return {"address": self.address, "until": until, "reason": self.reason}


class BanStore:
    """Read and write the ``bans`` table."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def put(self, items: Iterable[Ban], *, now: float, cap: int) -> None:
        """Record bans (replacing an address's earlier one); drop expired and oldest past cap."""
        rows = {b.address: b for b in items}
        if not rows:
            return
        async with self.engine.begin() as conn:
            await conn.execute(delete(bans).where(bans.c.address.in_(list(rows))))
            await conn.execute(
                insert(bans),
                [
                    {
                        "address": b.address,
                        "until": b.until,
                        "created_at": b.created_at,
                        "reason": b.reason[:255],
                    }
                    for b in rows.values()
                ],
            )
            await conn.execute(delete(bans).where(bans.c.until <= now))
            count = int((await conn.execute(select(func.count()).select_from(bans))).scalar_one())
            if count > cap:
                oldest = (
                    select(bans.c.address)
                    .order_by(bans.c.created_at, bans.c.address)
                    .limit(count - cap)
                )
                await conn.execute(delete(bans).where(bans.c.address.in_(oldest)))

    async def remove(self, address: str) -> bool:
        """Lift a ban; True when there was one."""
        async with self.engine.begin() as conn:
            result = await conn.execute(delete(bans).where(bans.c.address == address))
        return bool(result.rowcount)

    async def active(self, *, now: float, limit: int) -> list[Ban]:
        """Bans still in force, newest first, at most ``limit``."""
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(bans)
                    .where(bans.c.until > now)
                    .order_by(bans.c.created_at.desc())
                    .limit(limit)
                )
            ).all()
        return [Ban(r.address, float(r.until), float(r.created_at), r.reason) for r in rows]
