"""The built-in token backend: tokens created by ``provisor token create``, stored hashed.

It needs no other service, so a single box runs with no configuration. Tokens carry a tenant
and wazo-style ACLs; tenants and their tree live in provisor's own store.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Set as AbstractSet

from provisor.auth.acl import acl_matches
from provisor.auth.base import TokenInfo
from provisor.errors import Unauthorized
from provisor.flight import single_flight
from provisor.store.tenancy import TenantStore, TokenRow, TokenStore

__all__ = ["BuiltinAuthBackend"]


class BuiltinAuthBackend:
    """Checks tokens against the store's token table and tenant tree."""

    def __init__(self, tokens: TokenStore, tenants: TenantStore, cache_ttl: float = 5.0) -> None:
        self.tokens = tokens
        self.tenants = tenants
        self.cache_ttl = cache_ttl
        self._cache: dict[str, tuple[float, TokenRow | None]] = {}
        self._looking_up: dict[str, asyncio.Future[TokenRow | None]] = {}

    async def _lookup(self, token: str) -> TokenRow | None:
        """The token's row, cached briefly (a revocation takes effect within cache_ttl)."""
        now = time.monotonic()
        hit = self._cache.get(token)
        if hit is not None and now - hit[0] < self.cache_ttl:
            return hit[1]
        # the requests of a busy client all miss when the entry expires: one lookup for them
        row = await single_flight(self._looking_up, token, lambda: self.tokens.lookup(token))
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[token] = (now, row)
        return row

    async def authorize(
        self, token: str | None, required_acl: str, tenant_uuid: str | None = None
    ) -> TokenInfo:
        """Check the token, its ACL and its view of ``tenant_uuid``."""
        if not token:
            raise Unauthorized("Unauthorized: no X-Auth-Token")
        row = await self._lookup(token)
        if row is None:
            raise Unauthorized("Unauthorized: unknown token")
        if not acl_matches(row.acl, required_acl):
            raise Unauthorized(f"Unauthorized: missing permission {required_acl}")
        if tenant_uuid is not None and tenant_uuid not in self.tenants.subtree(row.tenant_uuid):
            # a tenant created a moment ago by the CLI or another node: reload once (bounded)
            if await self.tenants.reload_on_miss(
                tenant_uuid
            ) is None or tenant_uuid not in self.tenants.subtree(row.tenant_uuid):
                raise Unauthorized("Unauthorized: tenant not visible to this token")
        return TokenInfo(tenant_uuid=row.tenant_uuid, acl=row.acl, user=row.description or None)

    async def visible_tenants(self, token: str, tenant_uuid: str) -> AbstractSet[str]:
        """``tenant_uuid`` and its sub-tenants."""
        return self.tenants.subtree(tenant_uuid)

    async def list_tenants(self) -> set[str] | None:
        """Every tenant of the store."""
        return {t.uuid for t in self.tenants.all()}

    async def master_tenant(self) -> str:
        """The master tenant's uuid."""
        master = self.tenants.master
        if master is None:
            raise RuntimeError("no master tenant")
        return master.uuid

    def forget(self) -> None:
        """Drop cached token checks (a token was revoked elsewhere)."""
        self._cache.clear()

    async def close(self) -> None:
        """Nothing to release."""

    async def create_token(self, tenant_uuid: str, acl: list[str], description: str = "") -> str:
        """Create and store a new random token; returns it (shown once, stored hashed)."""
        token = secrets.token_urlsafe(32)
        while token.startswith("-"):  # a leading dash reads as an option in shells and CLIs
            token = secrets.token_urlsafe(32)
        await self.tokens.add(token, tenant_uuid, acl, description)
        return token
