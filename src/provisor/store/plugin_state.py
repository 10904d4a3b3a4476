"""The ``plugin_state`` table: the plugins every node should have installed, and from where.

An installed row names its version and where any node gets the archive: a repository URL
(``http(s)://…``, checked against the recorded size and digest) or the archive itself, kept in
the row for plugins installed from a local repository (a folder, such as the bundled one)
whose path other nodes cannot read. A removed row is a tombstone: a node that was away removes
the plugin instead of bringing it back. Archives are read only when a node installs.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from provisor.store.tables import plugin_state

__all__ = ["PluginRecord", "PluginStateStore"]


@dataclass(frozen=True, slots=True)
class PluginRecord:
    """One plugin's wanted state (without its archive bytes)."""

    id: str
    installed: bool
    version: str = ""
    url: str | None = None
    size: int = 0
    algorithm: str = "sha256"
    digest: str = ""


_META = (
    plugin_state.c.id,
    plugin_state.c.installed,
    plugin_state.c.version,
    plugin_state.c.url,
    plugin_state.c.size,
    plugin_state.c.algorithm,
    plugin_state.c.digest,
)


class PluginStateStore:
    """Read and write the ``plugin_state`` table."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def put(self, record: PluginRecord, archive: bytes | None, now: float) -> None:
        """Record a plugin's wanted state (the last writer wins)."""
        values = {
            "id": record.id,
            "installed": record.installed,
            "version": record.version,
            "url": record.url,
            "archive": archive,
            "size": record.size,
            "algorithm": record.algorithm,
            "digest": record.digest,
            "updated_at": now,
        }
        for attempt in range(2):  # two nodes writing one id at once: the second retries
            try:
                async with self.engine.begin() as conn:
                    await conn.execute(delete(plugin_state).where(plugin_state.c.id == record.id))
                    await conn.execute(insert(plugin_state).values(**values))
                return
            except IntegrityError:
                if attempt:
                    raise

    async def records(self) -> dict[str, PluginRecord]:
        """Every plugin's wanted state."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(*_META))).all()
        return {
            r.id: PluginRecord(
                r.id, bool(r.installed), r.version, r.url, int(r.size), r.algorithm, r.digest
            )
            for r in rows
        }

    async def archive(self, plugin_id: str, version: str) -> bytes | None:
        """The archive kept for a plugin at a version (None if none is kept)."""
        async with self.engine.connect() as conn:
            data = (
                await conn.execute(
                    select(plugin_state.c.archive).where(
                        plugin_state.c.id == plugin_id, plugin_state.c.version == version
                    )
                )
            ).scalar()
        return bytes(data) if data is not None else None
