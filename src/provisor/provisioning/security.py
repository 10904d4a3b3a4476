"""The security log in wazo-provd's fail2ban line format (``[time] message``).

The two upstream lines are kept to the letter so existing fail2ban filters match:
``New device created automatically from <ip>: <id>`` and
``Sensitive file requested from <ip>: <file>``; provisor adds
``Provisioning request refused from <ip>: <reason>`` and ``Address banned <ip>: <reason>``.
Never a key, token or password: paths are logged after they were stripped.
"""

from __future__ import annotations

import logging
from pathlib import Path

__all__ = ["SecurityLog"]


class SecurityLog:
    """Writes security events to their own file (or to the main log when there is none)."""

    def __init__(self, path: Path | None) -> None:
        self.logger = logging.getLogger("provisor.security")
        # With its own file, security lines (one per sensitive fetch) stay out of the main log.
        self.logger.propagate = path is None
        self._handler: logging.Handler | None = None
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
        """A file holding secrets was requested."""
        self.logger.info("Sensitive file requested from %s: %s", ip, filename)

    def refused(self, ip: str, reason: str) -> None:
        """A request failed in a way that counts toward a ban."""
        self.logger.info("Provisioning request refused from %s: %s", ip, reason)

    def banned(self, ip: str, reason: str) -> None:
        """An address crossed the failure threshold."""
        self.logger.warning("Address banned %s: %s", ip, reason)

    def close(self) -> None:
        """Close the log file."""
        if self._handler is not None:
            self.logger.removeHandler(self._handler)
            self._handler.close()
            self._handler = None
