"""Tenant administration shared by the CLI and the REST API: rename, TFTP, delete.

Deleting a tenant is refused while it still owns devices, configs or sub-tenants, unless the
caller forces it; a forced delete removes the whole subtree with everything it owns (devices,
configs, parameters, template overrides, API tokens), deepest tenants first. The master
tenant is never deleted: everything shared hangs from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from provisor.domain.selector import Selector
from provisor.errors import Conflict, InvalidInput, NotFound
from provisor.store.tenancy import Tenant

if TYPE_CHECKING:
    from provisor.service import Provisor

__all__ = ["TenantAdmin", "TenantContents", "check_name", "tenant_json"]

MAX_NAME = 255


def tenant_json(tenant: Tenant) -> dict[str, Any]:
    """A tenant's stable JSON form (the provisioning key is a secret: only whether it is set)."""
    return {
        "uuid": tenant.uuid,
        "name": tenant.name,
        "parent_uuid": tenant.parent_uuid,
        "is_master": tenant.is_master,
        "tftp_enabled": tenant.tftp_enabled,
        "provisioning_key_set": bool(tenant.provisioning_key),
    }


def check_name(name: object) -> str:
    """A tenant name: 1 to 255 printable characters."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("name: expected a non-empty string")
    if len(name) > MAX_NAME:
        raise InvalidInput(f"name: longer than {MAX_NAME} characters")
    if not name.isprintable():
        raise InvalidInput("name: control characters are not allowed")
    return name


@dataclass(frozen=True, slots=True)
class TenantContents:
    """What a tenant still owns."""

    devices: int
    configs: int
    subtenants: int

    @property
    def empty(self) -> bool:
        """Nothing would be lost by deleting the tenant."""
        return not (self.devices or self.configs or self.subtenants)

    def describe(self) -> str:
        """``3 devices, 1 config, 0 sub-tenants``."""
        return (
            f"{self.devices} device{'s' * (self.devices != 1)}, "
            f"{self.configs} config{'s' * (self.configs != 1)}, "
            f"{self.subtenants} sub-tenant{'s' * (self.subtenants != 1)}"
        )


class TenantAdmin:
    """Tenant changes made by administrators (the CLI, the tenant extension of the API)."""

    def __init__(self, prov: Provisor) -> None:
        self.prov = prov

    def get(self, tenant_uuid: str) -> Tenant:
        """The tenant; NotFound naming it otherwise."""
        tenant = self.prov.tenants.get(tenant_uuid)
        if tenant is None:
            raise NotFound(f"tenant {tenant_uuid!r} does not exist")
        return tenant

    async def contents(self, tenant_uuid: str) -> TenantContents:
        """How many devices, configs and sub-tenants the tenant owns (its own, not below)."""
        devices = await self.prov.devices.store.count(tenant_uuid=tenant_uuid)
        configs = await self.prov.configs.store.query(
            Selector.eq(), tenants=[tenant_uuid], include_system=False
        )
        subtenants = len(self.prov.tenants.subtree(tenant_uuid)) - 1
        return TenantContents(devices, len(configs), subtenants)

    async def rename(self, tenant_uuid: str, name: object) -> Tenant:
        """Rename a tenant."""
        self.get(tenant_uuid)
        await self.prov.tenants.rename(tenant_uuid, check_name(name))
        return self.get(tenant_uuid)

    async def set_tftp(self, tenant_uuid: str, enabled: bool) -> Tenant:
        """Allow or refuse TFTP for the tenant's phones."""
        self.get(tenant_uuid)
        await self.prov.tenants.set_tftp(tenant_uuid, enabled)
        return self.get(tenant_uuid)

    async def delete(self, tenant_uuid: str, *, force: bool = False) -> dict[str, int]:
        """Delete a tenant; with ``force`` its whole subtree and everything it owns."""
        tenant = self.get(tenant_uuid)
        if tenant.is_master:
            raise InvalidInput("the master tenant cannot be deleted")
        if not force:
            contents = await self.contents(tenant_uuid)
            if not contents.empty:
                raise Conflict(
                    f"tenant {tenant_uuid!r} still owns {contents.describe()}: "
                    "delete them first, or force the deletion to remove them too"
                )
        subtree = self.prov.tenants.subtree(tenant_uuid)
        order = sorted(subtree, key=self._depth, reverse=True)  # children before parents
        totals = {"tenants": 0, "devices": 0, "configs": 0, "tokens": 0}
        for uuid in order:
            totals["devices"] += await self.prov.devices.delete_tenant(uuid)
            totals["configs"] += await self.prov.configs.store.delete_tenant(uuid)
            await self.prov.param_store.delete_tenant(uuid)
            totals["tokens"] += await self.prov.tokens.delete_tenant(uuid)
            totals["tenants"] += int(await self.prov.tenants.delete(uuid))
        await self.prov.configs.changed()
        forget = getattr(self.prov.auth, "forget", None)
        if forget is not None:  # this process's cached checks of the tokens just deleted
            forget()
        return totals

    def _depth(self, tenant_uuid: str) -> int:
        depth, seen = 0, {tenant_uuid}
        current = self.prov.tenants.get(tenant_uuid)
        while current is not None and current.parent_uuid and current.parent_uuid not in seen:
            seen.add(current.parent_uuid)
            depth += 1
            current = self.prov.tenants.get(current.parent_uuid)
        return depth
