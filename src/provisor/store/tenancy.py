"""Tenants, API tokens, parameters and template overrides in the store.

Tenants are few (hundreds), read on every request and changed rarely, so the whole tree and the
provisioning-key index are loaded into memory and refreshed after each write: key → tenant is a
dict lookup, not a scan.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid as uuidlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from provisor.errors import Conflict, InvalidInput, NotFound
from provisor.store.tables import params, template_overrides, tenants, tokens

__all__ = [
    "ParamStore",
    "Tenant",
    "TenantStore",
    "TokenListing",
    "TokenRow",
    "TokenStore",
    "hash_token",
]

log = logging.getLogger(__name__)

#: Seconds between two reloads of the tenant tree caused by unknown tenants (see reload_on_miss).
MISS_RELOAD_INTERVAL = 0.2


def hash_token(token: str) -> str:
    """The stored form of an API token (sha256 hex)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Tenant:
    """A tenant and its provisioning settings."""

    uuid: str
    name: str
    parent_uuid: str | None
    is_master: bool
    provisioning_key: str | None
    tftp_enabled: bool


class TenantStore:
    """The tenant tree, cached in memory."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._by_uuid: dict[str, Tenant] = {}
        self._by_key: dict[str, Tenant] = {}
        self._children: dict[str, list[str]] = {}
        self._subtrees: dict[str, frozenset[str]] = {}
        self._lineages: dict[str, frozenset[str]] = {}
        self.generation = 0
        self.feed: Any = None  # a ChangeFeed, set by the service when it starts
        self._miss_reload: asyncio.Task[None] | None = None
        self._last_miss_reload = float("-inf")

    async def _written(self) -> None:
        """Reload after a write, and tell the other nodes."""
        await self.load()
        if self.feed is not None:
            await self.feed.bump("tenants")

    async def load(self) -> None:
        """(Re)load the tree and the key index from the database."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(tenants))).all()
        by_uuid = {
            r.uuid: Tenant(
                r.uuid, r.name, r.parent_uuid, r.is_master, r.provisioning_key, r.tftp_enabled
            )
            for r in rows
        }
        children: dict[str, list[str]] = {}
        for t in by_uuid.values():
            if t.parent_uuid:
                children.setdefault(t.parent_uuid, []).append(t.uuid)
        self._by_uuid = by_uuid
        self._by_key = {t.provisioning_key: t for t in by_uuid.values() if t.provisioning_key}
        self._children = children
        self._subtrees = {}
        self._lineages = {}
        self.generation += 1

    def get(self, tenant_uuid: str | None) -> Tenant | None:
        """A tenant by uuid."""
        return self._by_uuid.get(tenant_uuid) if tenant_uuid else None

    async def reload_on_miss(self, tenant_uuid: str) -> Tenant | None:
        """The tenant, reloading the tree once if it is unknown here.

        Another process (the CLI, another node) may have created it a moment ago: the change
        poll would see it within a second, a request naming it should not wait for that.
        Unknown values cost little: every miss joins the next reload, and reloads start at most
        every MISS_RELOAD_INTERVAL seconds, so a flood of made-up uuids cannot make the server
        reload in a loop. A miss joins only a reload that has not queried yet, so a tenant
        committed before the request is always seen.
        """
        found = self.get(tenant_uuid)
        if found is not None:
            return found
        task = self._miss_reload
        if task is None:
            task = self._miss_reload = asyncio.get_running_loop().create_task(self._reload_once())
        await asyncio.shield(task)
        return self.get(tenant_uuid)

    async def _reload_once(self) -> None:
        wait = self._last_miss_reload + MISS_RELOAD_INTERVAL - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        self._miss_reload = None  # later misses may postdate this query: they wait for the next
        self._last_miss_reload = time.monotonic()
        try:
            await self.load()
        except Exception:  # the database is away: the callers refuse, the poller retries
            log.warning("tenant reload failed", exc_info=True)

    def by_key(self, key: str) -> Tenant | None:
        """The tenant whose provisioning key is ``key`` (O(1))."""
        return self._by_key.get(key)

    def all(self) -> list[Tenant]:
        """Every tenant."""
        return list(self._by_uuid.values())

    @property
    def master(self) -> Tenant | None:
        """The master (root) tenant."""
        return next((t for t in self._by_uuid.values() if t.is_master), None)

    def subtree(self, tenant_uuid: str) -> frozenset[str]:
        """``tenant_uuid`` and every tenant below it (cached until the tree is reloaded: every
        API call asks, and a service provider's master tenant has thousands below it)."""
        found = self._subtrees.get(tenant_uuid)
        if found is None:
            found = self._subtrees[tenant_uuid] = frozenset(self._walk(tenant_uuid))
        return found

    def lineage(self, tenant_uuid: str | None) -> frozenset[str]:
        """``tenant_uuid`` and its ancestors up to the master (empty for None): whose configs
        an object of this tenant may inherit from (cached until the tree is reloaded). The
        master is everyone's ancestor even when wazo-auth's tree is only partly mirrored."""
        if not tenant_uuid:
            return frozenset()
        found = self._lineages.get(tenant_uuid)
        if found is None:
            chain: set[str] = set()
            cur: str | None = tenant_uuid
            while cur and cur not in chain:
                chain.add(cur)
                tenant = self._by_uuid.get(cur)
                cur = tenant.parent_uuid if tenant else None
            master = self.master
            if master is not None:
                chain.add(master.uuid)
            found = self._lineages[tenant_uuid] = frozenset(chain)
        return found

    def _walk(self, tenant_uuid: str) -> set[str]:
        out: set[str] = set()
        stack = [tenant_uuid]
        while stack:
            cur = stack.pop()
            if cur in out:
                continue
            out.add(cur)
            stack.extend(self._children.get(cur, ()))
        return out

    async def create(
        self,
        name: str,
        *,
        parent_uuid: str | None = None,
        is_master: bool = False,
        tenant_uuid: str | None = None,
    ) -> Tenant:
        """Create a tenant (under ``parent_uuid``, default the master)."""
        if not is_master:
            if parent_uuid is None:
                master = self.master
                parent_uuid = master.uuid if master else None
            elif parent_uuid not in self._by_uuid:
                raise NotFound(f"parent tenant {parent_uuid!r} does not exist")
        new_uuid = tenant_uuid or str(uuidlib.uuid4())
        try:
            async with self.engine.begin() as conn:
                await conn.execute(
                    insert(tenants).values(
                        uuid=new_uuid,
                        name=name,
                        parent_uuid=parent_uuid,
                        is_master=is_master,
                        tftp_enabled=True,
                    )
                )
        except IntegrityError:
            raise Conflict(f"tenant {new_uuid!r} already exists") from None
        await self._written()
        tenant = self.get(new_uuid)
        assert tenant is not None
        return tenant

    async def ensure(self, tenant_uuid: str, parent_uuid: str | None = None) -> Tenant:
        """The tenant, created on first sight (tenants known only to wazo-auth)."""
        tenant = self.get(tenant_uuid)
        if tenant is not None:
            return tenant
        try:
            return await self.create(tenant_uuid, parent_uuid=parent_uuid, tenant_uuid=tenant_uuid)
        except Conflict:
            await self.load()
            found = self.get(tenant_uuid)
            assert found is not None
            return found

    async def set_key(self, tenant_uuid: str, key: str | None) -> None:
        """Set or clear a tenant's provisioning key; unique across tenants."""
        owner = self._by_key.get(key) if key else None
        if owner is not None and owner.uuid != tenant_uuid:
            raise InvalidInput("another tenant already uses this provisioning key.")
        try:
            async with self.engine.begin() as conn:
                result = await conn.execute(
                    update(tenants)
                    .where(tenants.c.uuid == tenant_uuid)
                    .values(provisioning_key=key)
                )
        except IntegrityError:
            raise InvalidInput("another tenant already uses this provisioning key.") from None
        if not result.rowcount:
            await self.ensure(tenant_uuid)
            await self.set_key(tenant_uuid, key)
            return
        await self._written()

    async def set_master(self, tenant_uuid: str) -> None:
        """Make ``tenant_uuid`` the master tenant (wazo-auth's service tenant)."""
        await self.ensure(tenant_uuid)
        async with self.engine.begin() as conn:
            await conn.execute(update(tenants).values(is_master=False))
            await conn.execute(
                update(tenants)
                .where(tenants.c.uuid == tenant_uuid)
                .values(is_master=True, parent_uuid=None)
            )
        await self._written()

    async def set_tftp(self, tenant_uuid: str, enabled: bool) -> None:
        """Allow or refuse TFTP provisioning for a tenant's devices."""
        async with self.engine.begin() as conn:
            await conn.execute(
                update(tenants).where(tenants.c.uuid == tenant_uuid).values(tftp_enabled=enabled)
            )
        await self._written()

    async def rename(self, tenant_uuid: str, name: str) -> bool:
        """Give a tenant a new name; False if it does not exist."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(tenants).where(tenants.c.uuid == tenant_uuid).values(name=name)
            )
        await self._written()
        return bool(result.rowcount)

    async def delete(self, tenant_uuid: str) -> bool:
        """Delete a tenant row (its devices and configs are the caller's to delete)."""
        async with self.engine.begin() as conn:
            result = await conn.execute(delete(tenants).where(tenants.c.uuid == tenant_uuid))
        await self._written()
        return bool(result.rowcount)


@dataclass(frozen=True, slots=True)
class TokenRow:
    """A built-in API token (its hash only)."""

    id: int
    tenant_uuid: str
    acl: tuple[str, ...]
    description: str


@dataclass(frozen=True, slots=True)
class TokenListing:
    """What ``token list`` shows of a token: never the token nor its hash."""

    id: int
    tenant_uuid: str
    acl: tuple[str, ...]
    description: str
    created_at: datetime | None


class TokenStore:
    """Built-in API tokens, stored hashed."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.feed: Any = None  # a ChangeFeed: a revocation tells the servers to drop caches

    async def _revoked(self) -> None:
        if self.feed is not None:
            await self.feed.bump("tokens")

    async def add(
        self, token: str, tenant_uuid: str, acl: list[str], description: str = ""
    ) -> None:
        """Store a new token (hashed)."""
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(tokens).values(
                    token_hash=hash_token(token),
                    tenant_uuid=tenant_uuid,
                    acl=list(acl),
                    description=description,
                )
            )

    async def lookup(self, token: str) -> TokenRow | None:
        """The token's row, by its hash."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(tokens).where(tokens.c.token_hash == hash_token(token)))
            ).first()
        if row is None:
            return None
        return TokenRow(row.id, row.tenant_uuid, tuple(row.acl), row.description)

    async def revoke(self, token: str) -> bool:
        """Delete a token; True if it existed."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                delete(tokens).where(tokens.c.token_hash == hash_token(token))
            )
        await self._revoked()
        return bool(result.rowcount)

    async def listing(self, tenant_uuids: set[str] | None = None) -> list[TokenListing]:
        """Every token (of these tenants), oldest first, without its hash."""
        stmt = select(
            tokens.c.id,
            tokens.c.tenant_uuid,
            tokens.c.acl,
            tokens.c.description,
            tokens.c.created_at,
        ).order_by(tokens.c.id)
        if tenant_uuids is not None:
            stmt = stmt.where(tokens.c.tenant_uuid.in_(sorted(tenant_uuids)))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [
            TokenListing(r.id, r.tenant_uuid, tuple(r.acl), r.description, r.created_at)
            for r in rows
        ]

    async def revoke_id(self, token_id: int) -> bool:
        """Delete a token by its id (from ``token list``); True if it existed."""
        async with self.engine.begin() as conn:
            result = await conn.execute(delete(tokens).where(tokens.c.id == token_id))
        await self._revoked()
        return bool(result.rowcount)

    async def delete_tenant(self, tenant_uuid: str) -> int:
        """Delete every token of a tenant (the tenant is going away)."""
        async with self.engine.begin() as conn:
            result = await conn.execute(delete(tokens).where(tokens.c.tenant_uuid == tenant_uuid))
        await self._revoked()
        return int(result.rowcount or 0)


class ParamStore:
    """Parameters (global under tenant "", or per tenant) and template overrides."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._cache: dict[tuple[str, str], Any] | None = None
        self._override_rows: dict[tuple[str, str], tuple[int, list[dict[str, Any]]]] = {}
        self.generation = 0
        self.feed: Any = None  # a ChangeFeed, set by the service when it starts

    def forget(self) -> None:
        """Drop cached values (another node changed them)."""
        self._cache = None
        self.generation += 1

    async def _written(self) -> None:
        self.forget()
        if self.feed is not None:
            await self.feed.bump("params")

    async def delete_tenant(self, tenant_uuid: str) -> None:
        """Delete a tenant's parameters and template overrides (the tenant is going away)."""
        async with self.engine.begin() as conn:
            await conn.execute(delete(params).where(params.c.tenant_uuid == tenant_uuid))
            await conn.execute(
                delete(template_overrides).where(template_overrides.c.tenant_uuid == tenant_uuid)
            )
        await self._written()

    async def _load(self) -> dict[tuple[str, str], Any]:
        if self._cache is None:
            async with self.engine.connect() as conn:
                rows = (await conn.execute(select(params))).all()
            self._cache = {(r.tenant_uuid, r.name): r.value for r in rows}
        return self._cache

    async def get(self, name: str, tenant_uuid: str = "") -> Any:
        """A parameter's value, or None."""
        return (await self._load()).get((tenant_uuid, name))

    async def set(self, name: str, value: Any, tenant_uuid: str = "") -> None:
        """Set (None deletes) a parameter."""
        async with self.engine.begin() as conn:
            await conn.execute(
                delete(params).where(params.c.tenant_uuid == tenant_uuid, params.c.name == name)
            )
            if value is not None:
                await conn.execute(
                    insert(params).values(tenant_uuid=tenant_uuid, name=name, value=value)
                )
        await self._written()

    async def overrides_for(
        self, tenant_uuid: str, plugin_id: str, model: str | None, device_id: str
    ) -> dict[str, str]:
        """Overrides for one device: tenant, then model, then device (most specific wins).

        Rows are cached per (tenant, plugin) until the next override write: renders of a boot
        storm do not query them.
        """
        key = (tenant_uuid, plugin_id)
        cached = self._override_rows.get(key)
        if cached is None or cached[0] != self.generation:
            cached = (self.generation, await self.list_overrides(tenant_uuid, plugin_id))
            self._override_rows[key] = cached
        order = {"tenant": 0, "model": 1, "device": 2}
        out: dict[str, str] = {}
        for row in sorted(cached[1], key=lambda r: order.get(r["scope"], 9)):
            scope, target = row["scope"], row["target"]
            if (
                scope == "tenant"
                or (scope == "model" and target == model)
                or (scope == "device" and target == device_id)
            ):
                out[row["name"]] = row["source"]
        return out

    async def list_overrides(self, tenant_uuid: str, plugin_id: str) -> list[dict[str, Any]]:
        """Every override of a plugin in a tenant."""
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(template_overrides).where(
                        template_overrides.c.tenant_uuid == tenant_uuid,
                        template_overrides.c.plugin_id == plugin_id,
                    )
                )
            ).all()
        return [
            {"scope": r.scope, "target": r.target, "name": r.name, "source": r.source} for r in rows
        ]

    async def put_override(self, row: Mapping[str, str]) -> None:
        """Create or replace one template override."""
        key = {k: row[k] for k in ("tenant_uuid", "plugin_id", "scope", "target", "name")}
        async with self.engine.begin() as conn:
            stmt = delete(template_overrides)
            for k, v in key.items():
                stmt = stmt.where(template_overrides.c[k] == v)
            await conn.execute(stmt)
            await conn.execute(insert(template_overrides).values(**key, source=row["source"]))
        await self._written()

    async def delete_override(self, key: Mapping[str, str]) -> bool:
        """Delete one template override; True if it existed."""
        stmt = delete(template_overrides)
        for k, v in key.items():
            stmt = stmt.where(template_overrides.c[k] == v)
        async with self.engine.begin() as conn:
            result = await conn.execute(stmt)
        await self._written()
        return bool(result.rowcount)
