"""Indexed point lookups on the SQLite file, run on the event loop's own thread.

Why hand-written and synchronous: an indexed SQLite lookup costs about 15 µs, while the same
query through SQLAlchemy's async layer and aiosqlite's worker thread costs about a millisecond,
most of it hand-offs between threads (measured in docs/benchmarks.md). For lookups by a
unique-ish key (id, MAC, IP, serial, UUID, device token) bounded by a LIMIT, blocking the loop
for microseconds is cheaper than the hops. In WAL mode this reader sees every committed write
and never waits for a writer. Anything else (scans, writes, PostgreSQL) goes through the async
engine. A failing read (the file being replaced, a lock during a migration) returns None and
the caller takes the async path.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["PointReader"]

log = logging.getLogger(__name__)


class PointReader:
    """A read-only SQLite connection for small indexed lookups (see the module doc)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None

    @classmethod
    def for_engine(cls, engine: AsyncEngine) -> PointReader | None:
        """A reader on the engine's SQLite file; None for PostgreSQL or an in-memory database."""
        url = engine.url
        database = url.database
        if url.get_backend_name() != "sqlite" or database is None or database in ("", ":memory:"):
            return None
        return cls(database)

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=1.0, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA query_only = ON")
        self._conn = conn
        return conn

    def rows(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]] | None:
        """The rows of a read, or None when it could not run here."""
        try:
            return (self._conn or self._open()).execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            log.debug("point read fell back to the async path: %s", exc)
            self.close()
            return None

    def docs(self, sql: str, params: Sequence[Any]) -> list[dict[str, Any]] | None:
        """Like :meth:`rows` for ``SELECT doc …``: the decoded documents."""
        rows = self.rows(sql, params)
        return None if rows is None else [json.loads(r[0]) for r in rows]

    def close(self) -> None:
        """Close the connection (reopened on the next read)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
