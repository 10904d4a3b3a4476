"""Whether the database can be reached, told once per change and shared by every caller.

When the database goes away (PostgreSQL stopped or unreachable, the SQLite file unreadable),
every request would otherwise fail on its own and log its own traceback. Instead, a failure
that means "unreachable" (:func:`is_unavailable`) marks the database down here, logged once;
the REST API answers 503 with ``Retry-After``, phones get their last served file
(stale-if-error) or 503, and ``/status`` names the database. The change poller reaches the
database every second, so the first poll that succeeds marks it up again (logged once).
While down, callers skip the database for ``probe_interval`` seconds after each failure, so a
black-holed server does not make every request wait for its connect timeout.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from types import TracebackType

import sqlalchemy.exc

__all__ = ["DatabaseHealth", "is_unavailable"]

log = logging.getLogger(__name__)

# modules whose frames show that an OS-level error (refused, reset, timed out) came from the
# database driver, not from a plugin file or an outgoing HTTP call
_DB_MODULES = ("sqlalchemy.", "asyncpg.", "aiosqlite.", "provisor.store.")
# sqlite3 messages that mean "cannot use the file now", not "this statement is wrong"
_SQLITE_DOWN = (
    "unable to open database file",
    "disk i/o error",
    "database is locked",
    "file is not a database",
    "database disk image is malformed",
    "attempt to write a readonly database",
    "database or disk is full",  # nothing can be written until space is freed
    "no such table",  # the file was replaced by an empty one
)


def _asyncpg_unavailable(exc: BaseException) -> bool:
    try:
        import asyncpg  # type: ignore[import-untyped,unused-ignore]
    except ImportError:  # pragma: no cover - asyncpg is a dependency
        return False
    # connection lost or refused; server shutting down, starting up or in recovery; a
    # connection of provisor's own (store/inserts.py) closed under a statement
    return isinstance(
        exc,
        asyncpg.PostgresConnectionError
        | asyncpg.OperatorInterventionError
        | asyncpg.ConnectionDoesNotExistError,
    )


def _from_db_code(tb: TracebackType | None) -> bool:
    while tb is not None:
        name = tb.tb_frame.f_globals.get("__name__", "")
        if isinstance(name, str) and name.startswith(_DB_MODULES):
            return True
        tb = tb.tb_next
    return False


def is_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` means the database cannot be reached now (not a bad statement)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sqlalchemy.exc.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, sqlalchemy.exc.TimeoutError):  # pool exhausted while waiting
            return True
        if isinstance(current, sqlite3.Error) and str(current).lower().startswith(_SQLITE_DOWN):
            return True
        if _asyncpg_unavailable(current):
            return True
        if isinstance(current, OSError) and _from_db_code(current.__traceback__):
            return True
        orig = getattr(current, "orig", None)
        current = (
            orig if isinstance(orig, BaseException) else current.__cause__ or current.__context__
        )
    return False


def _describe(exc: BaseException) -> str:
    """A one-line reason (no traceback; connection URLs never reach this text)."""
    inner: BaseException = exc
    orig = getattr(exc, "orig", None)
    if isinstance(orig, BaseException):
        inner = orig
    elif exc.__cause__ is not None:
        inner = exc.__cause__
    text = str(inner).splitlines()[0] if str(inner) else ""
    return f"{type(inner).__name__}: {text}"[:200]


class DatabaseHealth:
    """Up or down, since when, and why; logs each change of state once."""

    def __init__(self, probe_interval: float = 1.0) -> None:
        self.probe_interval = probe_interval
        self.up = True
        self.since = time.monotonic()
        self.reason = ""
        self._last_failure = 0.0

    def failed(self, exc: BaseException) -> None:
        """Record a failure that :func:`is_unavailable` classified; logs the first one."""
        self._last_failure = time.monotonic()
        if self.up:
            self.up = False
            self.since = self._last_failure
            self.reason = _describe(exc)
            log.warning("database unavailable: %s", self.reason)

    def succeeded(self) -> None:
        """Record a successful round trip; logs the recovery once."""
        if not self.up:
            down_for = time.monotonic() - self.since
            self.up = True
            self.since = time.monotonic()
            self.reason = ""
            log.warning("database available again after %.1f s", down_for)

    def skip(self) -> bool:
        """True while down and within ``probe_interval`` of the last failure: do not try."""
        return not self.up and time.monotonic() - self._last_failure < self.probe_interval
