"""What the leading segments of a phone's path prove: a tenant's provisioning key, a device token.

``/<tenant key>/<device token>/<file>``: each segment is optional unless the ``url_key``
strategy requires the key. The key is compared in constant time; a token must belong to the
key's tenant.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from provisor.store.tenancy import Tenant

__all__ = ["TOKEN_LEN", "Credentials", "read_credentials"]

TOKEN_LEN = 32  # secrets.token_urlsafe(24)


@dataclass(frozen=True, slots=True)
class Credentials:
    """What the path's leading segments proved: a tenant key, a device token."""

    path: str
    tenant: Tenant | None = None
    token_device: dict[str, Any] | None = None
    refused: str | None = None


async def read_credentials(
    path: str,
    by_key: Callable[[str], Tenant | None],
    strategy: str | None,
    device_by_token: Callable[[str], Awaitable[dict[str, Any] | None]],
) -> Credentials:
    """Strip a tenant key and a device token from the front of ``path``."""
    parts = path.split("/")
    tenant = None
    if len(parts) > 1:
        candidate = by_key(parts[0])
        if candidate is not None and hmac.compare_digest(
            candidate.provisioning_key or "", parts[0]
        ):
            tenant = candidate
            parts = parts[1:]
    if tenant is None and strategy == "url_key":
        return Credentials(path, refused="missing or unknown provisioning key")
    token_device = None
    if len(parts) > 1 and len(parts[0]) == TOKEN_LEN:
        token_device = await device_by_token(parts[0])
        if token_device is None:
            return Credentials("/".join(parts[1:]), tenant, refused="unknown device token")
        if tenant is not None and token_device["tenant_uuid"] != tenant.uuid:
            return Credentials("/".join(parts[1:]), tenant, refused="token of another tenant")
        parts = parts[1:]
    return Credentials("/".join(parts), tenant, token_device)
