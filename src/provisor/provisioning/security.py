"""The security log in wazo-provd's fail2ban line format (``[time] message``), and path redaction.

The two upstream lines are kept to the letter so existing fail2ban filters match:
``New device created automatically from <ip>: <id>`` and
``Sensitive file requested from <ip>: <file>``; provisor adds
``Provisioning request refused from <ip>: <reason>`` and ``Address banned <ip>: <reason>``.
Never a key, token or password: every path any log line carries goes through
:func:`redact_path` first.
"""

from __future__ import annotations

import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

__all__ = ["SecurityLog", "hide_secrets", "redact_path"]

KEY_MIN_LEN = 8  # the shortest tenant provisioning key; device tokens are 32 characters
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{32}")
_MAC = re.compile(r"(?<![0-9A-Fa-f])[0-9A-Fa-f]{12}(?![0-9A-Fa-f])")
_FILE_NAME = re.compile(r".*\.[A-Za-z0-9]{1,5}")
HIDDEN = "*"


def redact_path(path: str, is_key: Callable[[str], object] | None = None) -> str:
    """A phone's path with every segment that could be a key or a device token replaced by *.

    A folder segment (before the file name) of 8 characters or more could be a tenant key or a
    device token, wrong or right, so it is hidden; the file name is kept when it looks like one
    (an extension or a MAC) and is not a known key (``is_key``) or shaped like a token.
    """
    parts = path.split("/")
    out = [p if len(p) < KEY_MIN_LEN else HIDDEN for p in parts[:-1]]
    name = parts[-1]
    hide = len(name) >= KEY_MIN_LEN and (
        _TOKEN_SHAPE.fullmatch(name) is not None
        or not (_FILE_NAME.fullmatch(name) or _MAC.search(name))
        or (is_key is not None and bool(is_key(name)))
    )
    out.append(HIDDEN if hide else name)
    return "/".join(out)


def hide_secrets(path: str, is_key: Callable[[str], object]) -> str:
    """An accepted path with any segment that is a tenant key or shaped like a device token
    replaced by *, wherever it stands.

    The credentials were read from the front of the path; one further in (a phone told
    ``http://host/prov/<key>/`` behind a proxy with a prefix the server was not told about)
    is not read as a key, but is one all the same and must not reach the trace or a log.
    Lighter than :func:`redact_path`: folder names of the plugin's own (``firmware/``) stay.
    """
    if len(path) < KEY_MIN_LEN:
        return path
    parts = path.split("/")
    hidden = False
    for i, part in enumerate(parts):
        if len(part) >= KEY_MIN_LEN and (_TOKEN_SHAPE.fullmatch(part) or is_key(part)):
            parts[i] = HIDDEN
            hidden = True
    return "/".join(parts) if hidden else path


class SecurityLog:
    """Writes security events to their own file (or to the main log when there is none)."""

    BANNED_LINE_EVERY = 10.0
    """Seconds between two lines about one banned address (each says how many were refused)."""

    def __init__(self, path: Path | None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logging.getLogger("provisor.security")
        # With its own file, security lines (one per sensitive fetch) stay out of the main log.
        self.logger.propagate = path is None
        self.clock = clock
        self._handler: logging.Handler | None = None
        self._banned_refusals: OrderedDict[str, tuple[float, int]] = OrderedDict()
        self._sensitive_logged: OrderedDict[tuple[str, str], float] = OrderedDict()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            handler = logging.FileHandler(path, encoding="utf-8")
            handler.setFormatter(logging.Formatter("[%(asctime)s] %(message)s"))
            handler.setLevel(logging.INFO)
            self.logger.addHandler(handler)
            self.logger.setLevel(logging.INFO)
            self._handler = handler

    def device_created(self, ip: str, device_id: str) -> None:
        """A phone request created a device."""
        self.logger.info("New device created automatically from %s: %s", ip, device_id)

    def sensitive_file(self, ip: str, filename: str) -> None:
        """A file holding secrets was requested (``filename`` already stripped of credentials)."""
        self.logger.info("Sensitive file requested from %s: %s", ip, redact_path(filename))

    def sensitive_file_once(self, ip: str, filename: str) -> None:
        """:meth:`sensitive_file`, at most once a minute per address and file (boot storms)."""
        now = self.clock()
        last = self._sensitive_logged.get((ip, filename))
        if last is not None and now - last < 60:
            return
        self._sensitive_logged[(ip, filename)] = now
        if len(self._sensitive_logged) > 100_000:
            self._sensitive_logged.popitem(last=False)
        self.sensitive_file(ip, filename)

    def refused(self, ip: str, reason: str) -> None:
        """A request failed in a way that counts toward a ban (``reason`` names no secret)."""
        self.logger.info("Provisioning request refused from %s: %s", ip, reason)

    def refused_banned(self, ip: str) -> None:
        """A banned address was refused: one line at once, then one every few seconds with the
        count, so a banned flood cannot fill the disk."""
        now = self.clock()
        last, skipped = self._banned_refusals.get(ip, (-1e18, 0))
        if now - last < self.BANNED_LINE_EVERY:
            self._banned_refusals[ip] = (last, skipped + 1)
            return
        self._banned_refusals[ip] = (now, 0)
        self._banned_refusals.move_to_end(ip)
        while len(self._banned_refusals) > 100_000:
            self._banned_refusals.popitem(last=False)
        reason = "address banned"
        if skipped:
            reason += f" ({skipped + 1} requests refused since the last line)"
        self.refused(ip, reason)

    def banned(self, ip: str, reason: str) -> None:
        """An address crossed the failure threshold."""
        self.logger.warning("Address banned %s: %s", ip, reason)

    def close(self) -> None:
        """Close the log file."""
        if self._handler is not None:
            self.logger.removeHandler(self._handler)
            self._handler.close()
            self._handler = None
