"""A lone device insert with the fewest hand-offs: SQLite's writer thread, PostgreSQL's own
connection.

Why: a sequential client (a PBX tool creating devices one at a time) waits for every hop of
its insert. Through SQLAlchemy's async pool, one PostgreSQL insert was six round trips: the
pool's pre-ping (BEGIN, a ping, ROLLBACK), then BEGIN, INSERT, COMMIT. :class:`PgInserter`
sends one prepared INSERT on a connection of its own, in autocommit (one statement is atomic
by itself): one round trip. On SQLite, :func:`sqlite_insert_job` is the insert as a plain
function for the writer thread (store/writer.py). Batches and inserts that take an address
from other devices keep the engine's transaction on PostgreSQL.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Mapping
from typing import Any

import asyncpg  # type: ignore[import-untyped,unused-ignore]
from sqlalchemy.ext.asyncio import AsyncEngine

from provisor.metrics import DATABASE_SECONDS

__all__ = ["PgInserter", "sqlite_insert_job"]

_ROW_COLUMNS = (
    "id",
    "tenant_uuid",
    "mac",
    "ip",
    "sn",
    "uuid",
    "plugin",
    "config",
    "is_new",
    "prov_token",
    "doc",
    "rev",
)
_COLUMN_LIST = ", ".join(_ROW_COLUMNS)
_SQLITE_INSERT = (
    f"INSERT INTO devices ({_COLUMN_LIST}) VALUES ({', '.join('?' * len(_ROW_COLUMNS))})"
)
_PG_INSERT = (
    f"INSERT INTO devices ({_COLUMN_LIST}) "
    f"VALUES ({', '.join(f'${n}' for n in range(1, len(_ROW_COLUMNS) + 1))})"
)
# SQLAlchemy's own connect arguments, which asyncpg.connect does not take
_SQLALCHEMY_ONLY = ("prepared_statement_cache_size", "prepared_statement_name_func")


def _values(row: Mapping[str, Any]) -> list[Any]:
    return [json.dumps(row[c]) if c == "doc" else row[c] for c in _ROW_COLUMNS]


def sqlite_insert_job(
    row: Mapping[str, Any], take_ip: bool
) -> Callable[[sqlite3.Connection], list[str]]:
    """The insert (and the IP it takes from other devices) as a writer-thread job; the job
    returns the ids of the devices that lost the address."""
    values = _values(row)

    def job(conn: sqlite3.Connection) -> list[str]:
        conn.execute(_SQLITE_INSERT, values)
        if not (take_ip and row["ip"]):
            return []
        taken = []
        holders = conn.execute(
            "SELECT id, doc FROM devices WHERE ip = ? AND id != ?", (row["ip"], row["id"])
        ).fetchall()
        for holder_id, text in holders:
            doc = json.loads(text)
            doc.pop("ip", None)
            conn.execute(
                "UPDATE devices SET ip = NULL, doc = ?, rev = rev + 1 WHERE id = ?",
                (json.dumps(doc), holder_id),
            )
            taken.append(holder_id)
        return taken

    return job


class PgInserter:
    """One asyncpg connection for lone inserts, opened on first use and after a failure.

    Used by one task at a time (the device store's flusher), so it needs no lock."""

    def __init__(self, engine: AsyncEngine, connect_timeout: float) -> None:
        _, params = engine.dialect.create_connect_args(engine.url)
        for key in _SQLALCHEMY_ONLY:
            params.pop(key, None)
        self._params: dict[str, Any] = {**params, "timeout": connect_timeout}
        self._conn: Any = None

    @classmethod
    def for_engine(cls, engine: AsyncEngine, connect_timeout: float) -> PgInserter | None:
        """An inserter for a PostgreSQL (asyncpg) engine; None for anything else."""
        if engine.dialect.name != "postgresql" or engine.dialect.driver != "asyncpg":
            return None
        return cls(engine, connect_timeout)

    async def insert(self, row: Mapping[str, Any]) -> None:
        """Insert one device row; asyncpg's UniqueViolationError on a duplicate.

        Any other failure drops the connection (a new one next time) and is raised as is:
        the API answers 503 when it means the server is unreachable (store/health.py)."""
        try:
            if self._conn is None or self._conn.is_closed():
                self._conn = await asyncpg.connect(**self._params)
            started = time.perf_counter()
            await self._conn.execute(_PG_INSERT, *_values(row))
            DATABASE_SECONDS.observe(time.perf_counter() - started)
        except asyncpg.UniqueViolationError:
            raise
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Drop the connection at once (reopened on the next insert)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.terminate()
