"""The database engine and its migrations.

SQLite (the embedded default) and PostgreSQL share one code path. SQLite runs in WAL mode so
phones' reads never wait on a writer, with foreign keys on, and with ``synchronous=FULL`` by
default: in WAL mode NORMAL skips the fsync at each commit, so an OS crash or a power cut can
lose the last acknowledged writes; FULL does not (the cost is measured in docs/settings.md).
PostgreSQL connections time out after ``connect_timeout`` so an unreachable server is
reported as down (store/health.py) instead of holding every request.
Migrations are Alembic's, run at start-up on provisor's own connection.
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import Connection, event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["Synchronous", "create_engine", "migrate", "sqlite_pragmas"]

log = logging.getLogger(__name__)

_MIGRATIONS = Path(__file__).parent / "migrations"


Synchronous = Literal["NORMAL", "FULL", "EXTRA"]


def create_engine(
    url: str,
    *,
    echo: bool = False,
    connect_timeout: float = 5.0,
    sqlite_synchronous: Synchronous = "FULL",
    sqlite_busy_timeout: float = 30.0,
) -> AsyncEngine:
    """An async engine for ``url``, tuned for the dialect."""
    # parameters are keys, tokens and config documents with passwords: never in a log line or
    # an exception message, whatever the logging level (see provisor.logs)
    kwargs: dict[str, Any] = {"echo": echo, "hide_parameters": True}
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": sqlite_busy_timeout}
    else:
        kwargs.update(
            pool_size=10,
            max_overflow=10,
            pool_pre_ping=True,
            # a server that drops packets must not hold requests for asyncpg's default 60 s
            connect_args={"timeout": connect_timeout},
        )
    engine = create_async_engine(url, **kwargs)
    if url.startswith("sqlite"):
        event.listen(
            engine.sync_engine, "connect", partial(sqlite_pragmas, synchronous=sqlite_synchronous)
        )
    return engine


def sqlite_pragmas(dbapi_conn: Any, _record: Any, *, synchronous: Synchronous) -> None:
    """Set WAL, the durability level and foreign keys on a new SQLite connection."""
    if synchronous not in ("NORMAL", "FULL", "EXTRA"):  # never interpolate anything else
        raise ValueError(f"database.sqlite_synchronous: {synchronous!r}")
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA synchronous={synchronous}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _alembic_config(connection: Connection) -> Config:
    from alembic.config import Config  # only when migrating: phone workers never import it

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def _upgrade(connection: Connection) -> None:
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    before = MigrationContext.configure(connection).get_current_revision()
    command.upgrade(_alembic_config(connection), "head")
    after = MigrationContext.configure(connection).get_current_revision()
    if after != before:  # one line for the operator, not alembic's one per revision
        log.info("database schema upgraded from %s to %s", before or "empty", after)


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the latest revision (idempotent)."""
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)
    if engine.dialect.name == "sqlite":
        async with engine.begin() as conn:
            await conn.run_sync(_pin_statistics)


#: Rows per value of each column that leads an index, as on a large fleet (one million
#: devices, a hundred tenants). SQLite's planner reads these instead of measuring: statistics
#: measured at start-up (``ANALYZE``) describe the database of that moment, so a server started
#: empty and filled while it runs planned find-by-MAC on the tenant index, or on a full scan
#: after one device, and scanned a whole tenant per lookup (docs/benchmarks.md). Fixed figures
#: give the same plan from the first row to the last; only their ratios matter.
_ROWS = 1_000_000
_ROWS_PER_VALUE: dict[str, dict[str, int]] = {
    "devices": {
        "id": 1,
        "mac": 1,
        "ip": 2,
        "sn": 1,
        "uuid": 1,
        "prov_token": 1,
        "config": 1_000,
        "tenant_uuid": 10_000,
        "plugin": 100_000,
    },
    "configs": {"id": 1, "tenant_uuid": 1_000, "role": 10_000},
    "config_parents": {"child_id": 1, "parent_id": 1_000},
    "device_ports": {"device_id": 4, "tenant_uuid": 1_000, "config": 4},
    "tokens": {"id": 1, "token_hash": 1, "tenant_uuid": 10},
    "tenants": {"uuid": 1, "provisioning_key": 1, "parent_uuid": 100},
}


def _pin_statistics(connection: Connection) -> None:
    """Write the fixed ``sqlite_stat1`` rows of ``_ROWS_PER_VALUE`` for every index."""
    connection.exec_driver_sql("ANALYZE sqlite_master")  # creates sqlite_stat1 if missing
    connection.exec_driver_sql("DELETE FROM sqlite_stat1")
    for table, per_value in _ROWS_PER_VALUE.items():
        for index in connection.exec_driver_sql(f"PRAGMA index_list('{table}')").all():
            columns = [
                row[2]
                for row in connection.exec_driver_sql(f"PRAGMA index_info('{index[1]}')").all()
            ]
            # the first column's figure, then one row per value once more columns are fixed
            stat = [_ROWS, per_value.get(columns[0], 10)] + [1] * (len(columns) - 1)
            connection.exec_driver_sql(
                "INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES (?, ?, ?)",
                (table, index[1], " ".join(map(str, stat))),
            )
    # connections read sqlite_stat1 when they load the schema: make this one reload now
    connection.exec_driver_sql("ANALYZE sqlite_master")


def _revision(connection: Connection, message: str) -> None:  # pragma: no cover - dev tool
    from alembic import command

    command.revision(_alembic_config(connection), message=message, autogenerate=True)


async def make_revision(engine: AsyncEngine, message: str) -> None:  # pragma: no cover
    """Developer tool: autogenerate a migration against an up-to-date database."""
    async with engine.begin() as conn:
        await conn.run_sync(_revision, message)
