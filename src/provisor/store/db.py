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

from functools import partial
from pathlib import Path
from typing import Any, Literal

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

__all__ = ["create_engine", "migrate"]

_MIGRATIONS = Path(__file__).parent / "migrations"


Synchronous = Literal["NORMAL", "FULL", "EXTRA"]


def create_engine(
    url: str,
    *,
    echo: bool = False,
    connect_timeout: float = 5.0,
    sqlite_synchronous: Synchronous = "FULL",
) -> AsyncEngine:
    """An async engine for ``url``, tuned for the dialect."""
    # parameters are keys, tokens and config documents with passwords: never in a log line or
    # an exception message, whatever the logging level (see provisor.logs)
    kwargs: dict[str, Any] = {"echo": echo, "hide_parameters": True}
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": 30}
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
            engine.sync_engine, "connect", partial(_sqlite_pragmas, synchronous=sqlite_synchronous)
        )
    return engine


def _sqlite_pragmas(dbapi_conn: Any, _record: Any, *, synchronous: Synchronous) -> None:
    if synchronous not in ("NORMAL", "FULL", "EXTRA"):  # never interpolate anything else
        raise ValueError(f"database.sqlite_synchronous: {synchronous!r}")
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA synchronous={synchronous}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _alembic_config(connection: Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def _upgrade(connection: Connection) -> None:
    command.upgrade(_alembic_config(connection), "head")


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the latest revision (idempotent)."""
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)
    if engine.dialect.name == "sqlite":
        # fresh statistics so the planner picks the mac/ip index over the tenant one
        async with engine.begin() as conn:
            await conn.exec_driver_sql("ANALYZE")


def _revision(connection: Connection, message: str) -> None:  # pragma: no cover - dev tool
    command.revision(_alembic_config(connection), message=message, autogenerate=True)


async def make_revision(engine: AsyncEngine, message: str) -> None:  # pragma: no cover
    """Developer tool: autogenerate a migration against an up-to-date database."""
    async with engine.begin() as conn:
        await conn.run_sync(_revision, message)
