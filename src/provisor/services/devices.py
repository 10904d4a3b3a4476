"""Devices: validation, tenant rules, plugin and config association.

Tenant rules (wazo-provd's, with its holes closed; the decisions live in provisor.authz):

- a device created through the API lands in the caller's tenant (Wazo-Tenant or the token's);
  ``is_new`` is true only in the master tenant;
- a device auto-created by a phone request lands in the master tenant, or in the tenant whose
  provisioning key the request carried, with ``is_new`` true either way (``added: auto``, which
  only the server sets);
- a PUT on an ``is_new`` device follows :func:`provisor.authz.claim_tenant`;
- a PUT on another device needs its tenant in the caller's subtree (else 404); a body
  ``tenant_uuid`` may move it only within that subtree (upstream lets an ancestor set anything,
  and answers 500 when it is missing);
- a device's ``config`` must be a config its tenant may use (:func:`provisor.authz.may_reference`);
  one that is missing or not usable gets the same 400.
"""

from __future__ import annotations

import builtins
import json
import secrets
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any

from provisor.authz import Scope, claim_tenant, device_visible, tenants_of
from provisor.domain.raw_config import validate_raw_config
from provisor.domain.selector import Selector
from provisor.domain.values import (
    DEVICE_DOC_MAX_BYTES,
    device_text_problem,
    new_id,
    normalize_ip,
    normalize_mac,
    validate_id,
)
from provisor.errors import Conflict, InvalidInput, NotFound
from provisor.plugins.loader import PluginSet
from provisor.services.configs import ConfigService
from provisor.services.ports import PortService
from provisor.services.quotas import TenantQuota
from provisor.store.documents import DeviceStore, Page
from provisor.store.ports import PortStore
from provisor.store.tenancy import TenantStore

__all__ = ["DeviceService", "Listener", "validate_device"]

Listener = Callable[[str, Mapping[str, Any]], Awaitable[None] | None]

_STR_FIELDS = ("vendor", "model", "version", "sn", "uuid", "plugin", "config", "description")
_COMPUTED = ("configured", "is_new", "tenant_uuid", "added", "token_taken")


def validate_device(body: object, *, device_id: str | None = None) -> dict[str, Any]:
    """A normalised device document from a request body; InvalidInput names the bad field."""
    if not isinstance(body, dict):
        raise InvalidInput("device: must be a JSON object")
    doc = dict(body)
    if device_id is not None:
        doc["id"] = device_id
    doc["id"] = validate_id(doc.get("id") or new_id(), "device.id")
    if doc.get("mac") is not None:
        doc["mac"] = normalize_mac(doc["mac"])
    if doc.get("ip") is not None:
        doc["ip"] = normalize_ip(doc["ip"])
    for key in _STR_FIELDS:
        value = doc.get(key)
        if value is not None and not isinstance(value, str):
            raise InvalidInput(f"device.{key}: must be a string")
        problem = None if value is None else device_text_problem(key, value)
        if problem is not None:
            raise InvalidInput(f"device.{key}: {problem}")
    for key in ("plugin", "config"):
        if doc.get(key):
            validate_id(doc[key], f"device.{key}")
    if doc.get("options") is not None and not isinstance(doc["options"], dict):
        raise InvalidInput("device.options: must be a JSON object")
    if len(json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()) > (
        DEVICE_DOC_MAX_BYTES
    ):
        raise InvalidInput(f"device: larger than {DEVICE_DOC_MAX_BYTES} bytes once encoded")
    return doc


class DeviceService:
    """The device rules; the phone pipeline and the REST API both go through here."""

    def __init__(
        self,
        store: DeviceStore,
        configs: ConfigService,
        plugins: PluginSet,
        tenants: TenantStore,
    ) -> None:
        self.store = store
        self.configs = configs
        self.plugins = plugins
        self.tenants = tenants
        self.listeners: list[Listener] = []
        #: devices per tenant created through the API (``rest_api.tenant_max_devices``); phones'
        #: own creations are bounded by ``provisioning.auto_create_max_total``
        self.quota: TenantQuota | None = None
        #: ports of this tenant's devices held by other tenants (shared gateways)
        self.ports = PortService(PortStore(store.engine), store, configs)
        # inheritance checks owners against the tenant tree (authz rule 4)
        configs.lineage = tenants.lineage
        configs.subtree = tenants.subtree

    @property
    def master_uuid(self) -> str:
        """The master tenant's uuid."""
        master = self.tenants.master
        if master is None:
            raise RuntimeError("no master tenant: the store was not initialised")
        return master.uuid

    async def _emit(self, event: str, doc: Mapping[str, Any]) -> None:
        for listener in self.listeners:
            result = listener(event, doc)
            if result is not None:
                await result

    async def is_configured(self, doc: Mapping[str, Any]) -> bool:
        """A device is configured when its plugin is loaded and its config is complete."""
        if self.plugins.get(doc.get("plugin")) is None or not doc.get("config"):
            return False
        raw = await self.configs.effective(doc["config"])
        if raw is None or not await self.configs.referable(
            None, doc.get("tenant_uuid"), doc["config"]
        ):
            return False  # a config the device's tenant may not use configures nothing
        try:
            validate_raw_config(raw, complete=True)
        except InvalidInput:
            return False
        return True

    # -- reads --------------------------------------------------------------------------------

    async def get(self, device_id: str, scope: Scope | None = None) -> dict[str, Any]:
        """A device in the caller's subtree; NotFound otherwise (the same for one not yours)."""
        doc = await self.store.get_in(device_id, tenants_of(scope))
        if doc is None or not device_visible(scope, doc.get("tenant_uuid")):
            raise NotFound("No such resource")
        return doc

    async def list(
        self, selector: Selector, tenants: Collection[str] | None, page: Page | None
    ) -> list[dict[str, Any]]:
        """Devices in the caller's tenants matching the selector."""
        return await self.store.query(selector, tenants=tenants, page=page)

    # -- writes -------------------------------------------------------------------------------

    async def _check_config(self, doc: Mapping[str, Any], tenant: str, scope: Scope | None) -> None:
        config_id = doc.get("config")
        if config_id and not await self.configs.referable(scope, tenant, config_id):
            raise InvalidInput(f"device.config: unknown config {config_id!r}")

    async def create(
        self,
        body: object,
        tenant_uuid: str,
        *,
        scope: Scope | None = None,
        added: str | None = None,
        is_new: bool | None = None,
        ip_taken_from: builtins.list[str] | None = None,
    ) -> dict[str, Any]:
        """Create a device in ``tenant_uuid``; returns the stored document.

        With ``ip_taken_from`` (a list), other devices holding the new device's IP lose it in
        the same transaction and their ids are appended to the list.
        """
        doc = validate_device(body)
        for key in _COMPUTED:
            doc.pop(key, None)
        doc["tenant_uuid"] = tenant_uuid
        doc["is_new"] = tenant_uuid == self.master_uuid if is_new is None else is_new
        if added:
            doc["added"] = added
        await self._check_config(doc, tenant_uuid, scope)
        doc["configured"] = await self.is_configured(doc)
        self.configs.conflicts.check(scope)  # one budget for config and device ids
        if self.quota is not None and added != "auto":
            await self.quota.check(tenant_uuid)
        try:
            taken = await self.store.insert(
                doc, prov_token=secrets.token_urlsafe(24), take_ip=ip_taken_from is not None
            )
        except Conflict:
            # the same answer whoever holds the id; holders the caller cannot see are counted
            holder = await self.store.get(doc["id"])
            if holder is not None and not device_visible(scope, holder.get("tenant_uuid")):
                self.configs.conflicts.spend(scope, "a device id")
            raise
        if ip_taken_from is not None:
            ip_taken_from.extend(taken)
        await self._emit("device_created", doc)
        return doc

    async def replace(
        self,
        device_id: str,
        body: object,
        *,
        scope: Scope | None,
        tenant: str | None = None,
    ) -> dict[str, Any]:
        """PUT: full replace with the tenant rules of the module docstring.

        ``scope`` None is the server itself (``tenant`` then says where the device goes)."""
        current = await self.store.get(device_id)  # unscoped: a new device may be claimable
        if current is None:
            raise NotFound("No such resource")
        claimed = None if scope is None else claim_tenant(scope, current, self.master_uuid)
        doc = validate_device(body, device_id=device_id)
        if scope is None:
            tenant = tenant or current["tenant_uuid"]
        elif claimed is not None:
            tenant = claimed  # body tenant_uuid ignored on a new device, as upstream
        else:
            if not device_visible(scope, current["tenant_uuid"]):
                raise NotFound("No such resource")
            tenant = doc.get("tenant_uuid") or current["tenant_uuid"]
            if not isinstance(tenant, str):
                raise InvalidInput("device.tenant_uuid: must be a string")
            if tenant not in scope.subtree:
                raise InvalidInput(f"device.tenant_uuid: tenant {tenant!r} is not yours")
        assert tenant is not None
        for key in _COMPUTED:
            doc.pop(key, None)
        if doc.get("config") and (
            doc["config"] != current.get("config") or tenant != current["tenant_uuid"]
        ):
            await self._check_config(doc, tenant, scope)
        doc["tenant_uuid"] = tenant
        doc["is_new"] = tenant == self.master_uuid
        for kept in ("added", "token_taken"):  # the server's, whatever the body says
            if kept in current:
                doc[kept] = current[kept]
        doc["configured"] = await self.is_configured(doc)
        await self.store.replace(doc)
        await self._emit("device_updated", doc)
        return doc

    async def save(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Store a device changed by the pipeline (configured recomputed)."""
        doc["configured"] = await self.is_configured(doc)
        await self.store.replace(doc)
        await self._emit("device_updated", doc)
        return doc

    async def delete(self, device_id: str, scope: Scope | None) -> None:
        """Delete a device, and its transient config when nothing else uses it."""
        doc = await self.get(device_id, scope)
        shared = await self.ports.store.remove_device(device_id)
        await self.store.delete(device_id)
        if shared:  # a device re-created under this id must not inherit cached ports
            await self.configs.changed()
        config_id = doc.get("config")
        if config_id:
            cfg = await self.configs.store.get(config_id)
            if cfg and cfg.get("transient") and not await self.store.count(config=config_id):
                await self.configs.store.delete(config_id)
                await self.configs.changed()
        await self._emit("device_deleted", doc)

    async def reconfigure(self, device_id: str, scope: Scope | None) -> None:
        """Recompute a device's state; unknown or foreign ids are InvalidInput (upstream: 400)."""
        doc = await self.store.get_in(device_id, tenants_of(scope))
        if doc is None:
            raise InvalidInput(f"invalid device ID {device_id!r}")
        await self.save(doc)

    async def unconfigure_plugin(self, plugin_id: str) -> int:
        """Mark every device of an uninstalled plugin unconfigured."""
        count = 0
        for device_id in await self.store.ids_where(plugin=plugin_id):
            doc = await self.store.get(device_id)
            if doc and doc.get("configured"):
                doc["configured"] = False
                await self.store.replace(doc)
                count += 1
        return count

    async def delete_tenant(self, tenant_uuid: str) -> int:
        """Delete every device of a tenant, and the ports it holds on other tenants' devices."""
        if await self.ports.store.remove_tenant(tenant_uuid):
            await self.configs.changed()
        return await self.store.delete_tenant(tenant_uuid)

    async def rotate_token(self, device_id: str, scope: Scope | None) -> str:
        """Give a device a new provisioning token (the old one stops working)."""
        doc = await self.get(device_id, scope)
        token = secrets.token_urlsafe(24)
        await self.store.set_token(device_id, token)
        if doc.pop("token_taken", None):  # the next bootstrap hands the new token out
            await self.store.replace(doc)
        await self._emit("device_token_rotated", doc)  # caches drop the old token at once
        return token

    async def token(self, device_id: str, scope: Scope | None) -> str:
        """A device's current provisioning token (created if it has none)."""
        await self.get(device_id, scope)
        token = await self.store.get_token(device_id)
        if token is None:
            token = secrets.token_urlsafe(24)
            await self.store.set_token(device_id, token)
        return token
