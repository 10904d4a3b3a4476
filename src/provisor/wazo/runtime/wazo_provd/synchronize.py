"""Resynchronisation requests: recorded here, carried out by provisor's own sync service.

A plugin's ``synchronize`` calls :func:`standard_sip_synchronize` with the SIP NOTIFY event its
phones understand; the worker hands that event back to the server, which sends it the same way
it does for native plugins (AMI or SIP, by peer or address).
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer

__all__ = ["SynchronizeException", "pop_requests", "standard_sip_synchronize"]

_requests: list[dict[str, Any]] = []


class SynchronizeException(Exception):
    """The device cannot be resynchronised."""


def standard_sip_synchronize(
    device: dict[str, Any], event: str = "check-sync", extra_vars: Any = None
) -> defer.Deferred[None]:
    """Ask for a SIP NOTIFY ``event`` to the device (by its SIP peer, else its address)."""
    if not device.get("remote_state_sip_username") and not device.get("ip"):
        return defer.fail(SynchronizeException("not enough information to synchronize device"))
    _requests.append({"event": event, "extra_vars": extra_vars})
    return defer.succeed(None)


def pop_requests() -> list[dict[str, Any]]:
    """The requests recorded since the last call (the worker reads them)."""
    out = list(_requests)
    _requests.clear()
    return out


def get_sync_service() -> None:
    """No sync service lives in the worker: provisor's server sends the NOTIFY."""
    return None
