"""Config documents in the store: a config row and its ordered parent links change together.

Each write is one transaction; lookups by id, tenant and role use indexes.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from provisor.domain.selector import Selector
from provisor.errors import Conflict
from provisor.store.page import Page, apply_page
from provisor.store.tables import config_parents, configs, device_ports, devices

__all__ = ["CONFIG_INDEXED", "ConfigStore"]

CONFIG_INDEXED = ("id", "tenant_uuid", "role")


def _config_doc(row: Any) -> dict[str, Any]:
    doc = dict(row.doc)
    doc["tenant_uuid"] = row.tenant_uuid
    return doc


class ConfigStore:
    """Config rows and their ordered parent links."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def get(self, config_id: str) -> dict[str, Any] | None:
        """The config document, or None."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(configs.c.doc, configs.c.tenant_uuid).where(configs.c.id == config_id)
                )
            ).first()
        return _config_doc(row) if row else None

    async def get_in(
        self, config_id: str, tenants: Collection[str] | None
    ) -> dict[str, Any] | None:
        """The config if shared or owned by one of ``tenants`` (None: any), else None."""
        doc = await self.get(config_id)
        if doc is None or not (
            tenants is None or doc["tenant_uuid"] is None or doc["tenant_uuid"] in tenants
        ):
            return None
        return doc

    async def count(self, tenant_uuid: str) -> int:
        """How many configs a tenant owns (shared ones belong to none)."""
        stmt = select(func.count()).select_from(configs).where(configs.c.tenant_uuid == tenant_uuid)
        async with self.engine.connect() as conn:
            return int((await conn.execute(stmt)).scalar_one())

    async def used_outside(self, config_id: str, tenants: Collection[str]) -> bool:
        """Does a device (or a port of a shared device) held outside ``tenants`` still name
        ``config_id`` (a dangling reference left by a deletion)? Such an id is not free for a
        config of these tenants."""
        outside = list(tenants)
        stmt = (
            select(devices.c.id)
            .where(devices.c.config == config_id, devices.c.tenant_uuid.not_in(outside))
            .limit(1)
        )
        ports = (
            select(device_ports.c.device_id)
            .where(device_ports.c.config == config_id, device_ports.c.tenant_uuid.not_in(outside))
            .limit(1)
        )
        async with self.engine.connect() as conn:
            if (await conn.execute(stmt)).first() is not None:
                return True
            return (await conn.execute(ports)).first() is not None

    async def get_many(self, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Config documents by id, for the ids that exist, each with its ``tenant_uuid``."""
        wanted = list(set(ids))
        if not wanted:
            return {}
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(configs.c.doc, configs.c.tenant_uuid).where(configs.c.id.in_(wanted))
                )
            ).all()
        return {r.doc["id"]: _config_doc(r) for r in rows}

    async def query(
        self,
        selector: Selector,
        *,
        tenants: Collection[str] | None = None,
        include_system: bool = True,
        page: Page | None = None,
    ) -> list[dict[str, Any]]:
        """Configs matching the selector, within the tenants (plus system configs)."""
        stmt = select(configs.c.doc, configs.c.tenant_uuid)
        if tenants is not None:
            owned = configs.c.tenant_uuid.in_(list(tenants))
            stmt = stmt.where(owned | configs.c.tenant_uuid.is_(None) if include_system else owned)
        for key, values in selector.index_hints(CONFIG_INDEXED).items():
            stmt = stmt.where(configs.c[key].in_(values))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        docs = [_config_doc(r) for r in rows]
        if not selector.is_empty:
            docs = [d for d in docs if selector.matches(d)]
        return apply_page(docs, page)

    async def children(self, ids: Collection[str]) -> set[str]:
        """The configs naming any of these as a parent."""
        if not ids:
            return set()
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(config_parents.c.child_id).where(config_parents.c.parent_id.in_(list(ids)))
            )
            return {str(r[0]) for r in rows}

    async def find_by_code(self, tenant_uuid: str | None, code: str) -> dict[str, Any] | None:
        """The config carrying a provisioning code in a tenant."""
        stmt = select(configs.c.doc, configs.c.tenant_uuid).where(
            configs.c.provisioning_code == code
        )
        stmt = stmt.where(
            configs.c.tenant_uuid.is_(None)
            if tenant_uuid is None
            else configs.c.tenant_uuid == tenant_uuid
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(stmt)).first()
        return _config_doc(row) if row else None

    async def find_by_role(self, role: str) -> list[dict[str, Any]]:
        """Shared configs with the given role (e.g. ``autocreate``): a tenant's own config
        never becomes the template every new phone gets."""
        stmt = select(configs.c.doc).where(configs.c.role == role, configs.c.tenant_uuid.is_(None))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [dict(r.doc) for r in rows]

    @staticmethod
    def _row(doc: Mapping[str, Any], tenant_uuid: str | None) -> dict[str, Any]:
        return {
            "id": doc["id"],
            "tenant_uuid": tenant_uuid,
            "role": doc.get("role"),
            "provisioning_code": doc.get("provisioning_code") or None,
            "doc": {k: v for k, v in doc.items() if k != "tenant_uuid"},
        }

    async def _write_parents(self, conn: AsyncConnection, doc: Mapping[str, Any]) -> None:
        await conn.execute(delete(config_parents).where(config_parents.c.child_id == doc["id"]))
        links = [
            {"child_id": doc["id"], "position": i, "parent_id": p}
            for i, p in enumerate(doc.get("parent_ids", ()))
        ]
        if links:
            await conn.execute(insert(config_parents), links)

    async def insert(self, doc: Mapping[str, Any], tenant_uuid: str | None) -> None:
        """Insert a config and its parent links atomically; Conflict on a duplicate."""
        try:
            async with self.engine.begin() as conn:
                await conn.execute(insert(configs).values(**self._row(doc, tenant_uuid)))
                await self._write_parents(conn, doc)
        except IntegrityError as exc:
            if "provisioning_code" in str(exc.orig) or "uq_configs_tenant_code" in str(exc.orig):
                raise Conflict("provisioning_code is already used in this tenant") from None
            raise Conflict(f"config {doc['id']!r} already exists") from None

    async def replace(self, doc: Mapping[str, Any], tenant_uuid: str | None) -> bool:
        """Replace a config and its parent links atomically; False if it does not exist."""
        try:
            async with self.engine.begin() as conn:
                result = await conn.execute(
                    update(configs)
                    .where(configs.c.id == doc["id"])
                    .values(**self._row(doc, tenant_uuid), rev=configs.c.rev + 1)
                )
                if not result.rowcount:
                    return False
                await self._write_parents(conn, doc)
        except IntegrityError:
            raise Conflict("provisioning_code is already used in this tenant") from None
        return True

    async def delete(self, config_id: str) -> bool:
        """Delete a config (its parent links go with it); True if it existed."""
        async with self.engine.begin() as conn:
            await conn.execute(delete(config_parents).where(config_parents.c.child_id == config_id))
            result = await conn.execute(delete(configs).where(configs.c.id == config_id))
        return bool(result.rowcount)

    async def delete_tenant(self, tenant_uuid: str) -> int:
        """Delete every config of a tenant."""
        async with self.engine.begin() as conn:
            ids = [
                r.id
                for r in (
                    await conn.execute(
                        select(configs.c.id).where(configs.c.tenant_uuid == tenant_uuid)
                    )
                ).all()
            ]
            if ids:
                await conn.execute(delete(config_parents).where(config_parents.c.child_id.in_(ids)))
                await conn.execute(delete(configs).where(configs.c.id.in_(ids)))
        return len(ids)
