"""Rows of ``device_ports``: which tenant holds which port of a shared device, and its config.

Plain reads and writes; who may do what is decided in provisor.authz and services/ports.py.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from provisor.errors import NotFound
from provisor.store.tables import device_ports, devices

__all__ = ["Port", "PortStore"]


@dataclass(frozen=True, slots=True)
class Port:
    """One port of a device held by a tenant, with the config its line comes from."""

    device_id: str
    port: int
    tenant_uuid: str
    config: str | None


def _port(row: object) -> Port:
    return Port(row.device_id, int(row.port), row.tenant_uuid, row.config)  # type: ignore[attr-defined]


_COLUMNS = (
    device_ports.c.device_id,
    device_ports.c.port,
    device_ports.c.tenant_uuid,
    device_ports.c.config,
)


class PortStore:
    """Port assignments in the database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def of_device(self, device_id: str) -> list[Port]:
        """Every port assignment of a device, by port number."""
        stmt = (
            select(*_COLUMNS)
            .where(device_ports.c.device_id == device_id)
            .order_by(device_ports.c.port)
        )
        async with self.engine.connect() as conn:
            return [_port(r) for r in (await conn.execute(stmt)).all()]

    async def of_tenants(self, tenants: Collection[str], limit: int = 10_000) -> list[Port]:
        """The ports held by these tenants, by device and port (bounded)."""
        stmt = (
            select(*_COLUMNS)
            .where(device_ports.c.tenant_uuid.in_(list(tenants)))
            .order_by(device_ports.c.device_id, device_ports.c.port)
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            return [_port(r) for r in (await conn.execute(stmt)).all()]

    async def shared_devices(self) -> frozenset[str]:
        """Ids of the devices that have at least one port assigned."""
        stmt = select(device_ports.c.device_id).distinct()
        async with self.engine.connect() as conn:
            return frozenset(r.device_id for r in (await conn.execute(stmt)).all())

    async def names_config(self, config_id: str) -> bool:
        """Does any port name this config id?"""
        stmt = select(device_ports.c.device_id).where(device_ports.c.config == config_id).limit(1)
        async with self.engine.connect() as conn:
            return (await conn.execute(stmt)).first() is not None

    async def put(self, port: Port) -> None:
        """Create or replace one assignment; NotFound when the device is gone meanwhile."""
        values = {"tenant_uuid": port.tenant_uuid, "config": port.config}
        where = (device_ports.c.device_id == port.device_id) & (device_ports.c.port == port.port)
        async with self.engine.begin() as conn:
            result = await conn.execute(update(device_ports).where(where).values(**values))
            if result.rowcount:
                return
            try:
                async with conn.begin_nested():
                    await conn.execute(
                        insert(device_ports).values(
                            device_id=port.device_id, port=port.port, **values
                        )
                    )
            except IntegrityError as exc:
                # a concurrent PUT of the same port inserted first, or the device is gone
                result = await conn.execute(update(device_ports).where(where).values(**values))
                if not result.rowcount:
                    raise NotFound("No such resource") from exc

    async def remove(self, device_id: str, port: int) -> bool:
        """Delete one assignment; True if it existed."""
        where = (device_ports.c.device_id == device_id) & (device_ports.c.port == port)
        async with self.engine.begin() as conn:
            result = await conn.execute(delete(device_ports).where(where))
        return bool(result.rowcount)

    async def remove_device(self, device_id: str) -> int:
        """Delete a device's assignments (the foreign key does it too where it is enforced)."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                delete(device_ports).where(device_ports.c.device_id == device_id)
            )
        return int(result.rowcount or 0)

    async def remove_tenant(self, tenant_uuid: str) -> int:
        """Delete the ports a tenant holds and every port of the devices it owns."""
        owned = select(devices.c.id).where(devices.c.tenant_uuid == tenant_uuid)
        stmt = delete(device_ports).where(
            or_(device_ports.c.tenant_uuid == tenant_uuid, device_ports.c.device_id.in_(owned))
        )
        async with self.engine.begin() as conn:
            result = await conn.execute(stmt)
        return int(result.rowcount or 0)
