"""Logging set-up, and filters that keep secrets out of third-party loggers' records.

provisor's own log lines never carry a key, token or password (phone paths go through
:func:`provisor.provisioning.security.redact_path`). Libraries log on their own terms, at levels
an operator may turn on while debugging:

- httpx logs every request's URL at INFO: a wazo-auth token check is ``/0.1/token/<token>``,
  and a repository URL may carry ``user:password@``;
- uvicorn's access log (off here, but an operator's logging config can turn it on) logs phone
  paths, which start with a tenant key or a device token;
- aiosqlite logs every statement with its parameters at DEBUG (SIP passwords in config
  documents, keys, device tokens);
- SQLAlchemy logs rows at DEBUG when its logger is enabled (parameters are hidden by the
  engine's ``hide_parameters``, see :mod:`provisor.store.db`).

The filters sit on those loggers themselves, so they apply whatever handlers the operator
configures. :func:`protect_third_party_loggers` is idempotent; the server, the wazo-auth backend
and the CLI call it.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from provisor.provisioning.security import redact_path

__all__ = [
    "AccessLog",
    "JsonLinesFormatter",
    "RedactingFilter",
    "protect_third_party_loggers",
    "redact_url",
    "setup_logging",
]

_URL_PATH = re.compile(r"(\w+://[^/\s\"']*/)([^?#\s\"']*)")
_USERINFO = re.compile(r"(://)[^/@\s\"']+@")
_QUERY_SECRET = re.compile(r"((?:token|key|password|secret)=)[^&\s\"']+", re.IGNORECASE)


def redact_url(text: str) -> str:
    """``text`` with URL credentials, path segments that could be keys or tokens (phone URLs
    start with them, wazo-auth's end with one) and secret query values hidden."""
    text = _USERINFO.sub(r"\1*@", text)
    text = _URL_PATH.sub(lambda m: m.group(1) + redact_path(m.group(2)), text)
    return _QUERY_SECRET.sub(r"\1*", text)


class RedactingFilter(logging.Filter):
    """Rewrites a record's message through ``redact``; drops records below ``min_level``."""

    def __init__(self, redact: Callable[[str], str], min_level: int = logging.NOTSET) -> None:
        super().__init__()
        self.redact = redact
        self.min_level = min_level

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep the record, with its message redacted (or drop it when below min_level)."""
        if record.levelno < self.min_level:
            return False
        message = record.getMessage()
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def _access_line(message: str) -> str:
    # uvicorn: '<client> - "<METHOD> <path?query> HTTP/<v>" <status>'
    def path(m: re.Match[str]) -> str:
        target = m.group(2).split("?", 1)[0]
        return f'"{m.group(1)} /{redact_path(target.lstrip("/"))} '

    return redact_url(re.sub(r'"([A-Z]+) (\S+) ', path, message))


def _unchanged(message: str) -> str:
    return message


_FILTERS: dict[str, RedactingFilter] = {
    "httpx": RedactingFilter(redact_url),
    "uvicorn.access": RedactingFilter(_access_line),
    # aiosqlite's DEBUG lines are the statements with their parameters: nothing to keep
    "aiosqlite": RedactingFilter(_unchanged, min_level=logging.INFO),
    # SQLAlchemy's DEBUG lines are result rows (config documents with passwords)
    "sqlalchemy.engine.Engine": RedactingFilter(redact_url, min_level=logging.INFO),
    # a failed install logs the exception, and httpx's name the URL (a repository's may carry
    # user:password@)
    "provisor.services.operations": RedactingFilter(redact_url),
}


def protect_third_party_loggers() -> None:
    """Attach the redacting filters to the libraries' loggers (once)."""
    for name, flt in _FILTERS.items():
        logger = logging.getLogger(name)
        if flt not in logger.filters:
            logger.addFilter(flt)


_HANDLER_NAME = "provisor"
_QUIET = ("alembic",)
_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonLinesFormatter(logging.Formatter):
    """One JSON object a line (``time`` in ISO 8601 UTC, ``level``, ``logger``, ``message``,
    ``exception`` when there is one): what a log pipeline reads without a grok pattern."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one JSON line."""
        out = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def setup_logging(
    verbose: bool, log_format: str = "text", log_file: Path | None = None, level: str = "info"
) -> logging.Handler:
    """Log to stderr or ``log_file`` (reopened when logrotate moves it), as text or JSON lines,
    at ``level`` (DEBUG when verbose), with the third-party filters in place; returns the
    handler."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)  # a second call replaces the first one's handler
        old.close()
    handler: logging.Handler
    if log_file is None:
        handler = logging.StreamHandler()
    else:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.WatchedFileHandler(log_file, encoding="utf-8")
    handler.setFormatter(
        JsonLinesFormatter() if log_format == "json" else logging.Formatter(_TEXT_FORMAT)
    )
    handler.set_name(_HANDLER_NAME)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.getLevelName(level.upper()))
    # alembic says a dozen lines at INFO on every start (its plugins, its context, each
    # revision); provisor says one line when a migration ran (store/db.py)
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.NOTSET if verbose else logging.WARNING)
    protect_third_party_loggers()
    return handler


class AccessLog:
    """One ``provisor.access`` line per phone request, at most ``per_second`` lines a second.

    The path goes through :func:`redact_path` (a wrong key or token left in it is hidden);
    device id, tenant uuid and file name are no secret. Lines over the rate are counted and the
    next line written says how many were left out, so a boot storm cannot fill the disk.
    """

    logger = logging.getLogger("provisor.access")

    def __init__(self, per_second: int, keys: Callable[[str], object] | None = None) -> None:
        self.per_second = per_second
        self.keys = keys
        self._second = 0
        self._written = 0
        self._skipped = 0

    def _allowed(self) -> bool:
        if not self.per_second:
            return True
        second = int(time.monotonic())
        if second != self._second:
            self._second, self._written = second, 0
        if self._written >= self.per_second:
            self._skipped += 1
            return False
        self._written += 1
        return True

    def write(
        self,
        protocol: str,
        client_ip: str,
        path: str,
        *,
        device_id: str | None,
        tenant: str | None,
        file: str | None,
        status: int,
        size: int,
        seconds: float,
        cache: str,
    ) -> None:
        """Log one answered request (or count it when over the rate)."""
        if not self._allowed():
            return
        skipped, self._skipped = self._skipped, 0
        self.logger.info(
            "%s %s %s status=%d bytes=%d ms=%.1f cache=%s device=%s tenant=%s file=%s%s",
            protocol,
            client_ip,
            redact_path(path, self.keys) or "-",
            status,
            size,
            seconds * 1000,
            cache,
            device_id or "-",
            tenant or "-",
            file or "-",
            f" (after {skipped} lines left out over the rate)" if skipped else "",
        )
