"""The token backend interface, and small helpers shared by the backends.

A backend answers three questions for the REST API: is this token allowed this ACL (in this
tenant), which tenants does the token see, and who is the master tenant.
"""

from __future__ import annotations

import hashlib
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Protocol

__all__ = ["AuthBackend", "TokenInfo", "format_acl", "token_fingerprint"]


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What a valid token grants."""

    tenant_uuid: str
    acl: tuple[str, ...]
    user: str | None = None


class AuthBackend(Protocol):
    """Checks REST API tokens."""

    async def authorize(
        self, token: str | None, required_acl: str, tenant_uuid: str | None = None
    ) -> TokenInfo:
        """Raise Unauthorized unless the token has ``required_acl`` (and sees the tenant)."""
        ...

    async def visible_tenants(self, token: str, tenant_uuid: str) -> AbstractSet[str]:
        """``tenant_uuid`` and its sub-tenants as the token sees them."""
        ...

    async def list_tenants(self) -> set[str] | None:
        """Every tenant the backend knows, or None."""
        ...

    async def master_tenant(self) -> str:
        """The master tenant's uuid."""
        ...

    def forget(self) -> None:
        """Drop every cached token check (a token was revoked or a tenant deleted)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


def format_acl(template: str, **values: str) -> str:
    """Fill ``{name}`` placeholders; '.' in values becomes '_' (wazo's rule)."""
    return template.format(**{k: str(v).replace(".", "_") for k, v in values.items()})


def token_fingerprint(token: str) -> str:
    """A short, non-reversible tag for logs (tokens never appear in logs)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()[:12]
