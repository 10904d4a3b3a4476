"""Devices shared by tenants: a gateway's ports held by tenants other than its owner.

A device belongs to one tenant, its owner (``tenant_uuid``), who controls the device: its
config, plugin, token, resync, deletion. The owner (or an ancestor) may assign port ``n`` to a
tenant of its own subtree; that port tenant then gives the port its line by naming a config it
may use, whose ``raw_config.sip_lines.<n>`` becomes the device's line ``n``. The file served to
the device carries every port; no REST answer carries a line to anyone outside the port
tenant's subtree (the owner sees who holds a port, never its line or its config). Rules in
provisor.authz (rule 7) and docs/api.md ("Devices shared by tenants").
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Collection, Mapping
from typing import Any

from provisor.authz import Scope, device_visible, port_visible
from provisor.domain.ids import shown
from provisor.domain.values import validate_id
from provisor.errors import Forbidden, InvalidInput, NotFound
from provisor.services.configs import ConfigService
from provisor.store.documents import DeviceStore
from provisor.store.ports import Port, PortStore

__all__ = ["PortService", "port_line", "validate_port"]

_PORT = re.compile(r"[1-9][0-9]{0,2}")

#: A port's line is self-contained: what its tenant's config sets for all its lines (the
#: proxy, the registrar...) is written into the line, so the owner's values never apply to it.
_LINE_FROM_TOP = (
    ("proxy_ip", "sip_proxy_ip"),
    ("proxy_port", "sip_proxy_port"),
    ("backup_proxy_ip", "sip_backup_proxy_ip"),
    ("backup_proxy_port", "sip_backup_proxy_port"),
    ("registrar_ip", "sip_registrar_ip"),
    ("registrar_port", "sip_registrar_port"),
    ("backup_registrar_ip", "sip_backup_registrar_ip"),
    ("backup_registrar_port", "sip_backup_registrar_port"),
    ("outbound_proxy_ip", "sip_outbound_proxy_ip"),
    ("outbound_proxy_port", "sip_outbound_proxy_port"),
    ("dtmf_mode", "sip_dtmf_mode"),
    ("srtp_mode", "sip_srtp_mode"),
)

_NOT_FOUND = "No such resource"


def validate_port(value: str) -> int:
    """A port number from a URL (1 to 999); InvalidInput names it otherwise."""
    if not _PORT.fullmatch(value):
        raise InvalidInput("port: must be a line number from 1 to 999")
    return int(value)


def port_line(raw: Mapping[str, Any], line: Mapping[str, Any]) -> dict[str, Any]:
    """The port tenant's line with its config's SIP servers filled in."""
    out = dict(line)
    # marked, so a device with one SIP profile for every port never takes its server from a
    # port tenant's line (a tenant must not choose where the owner's lines register)
    out["XX_port_tenant"] = True
    for key, top in _LINE_FROM_TOP:
        if out.get(key) is None and raw.get(top) is not None:
            out[key] = raw[top]
    return out


class PortService:
    """Port assignments with their rules, and the lines they add to a device's file."""

    def __init__(self, store: PortStore, devices: DeviceStore, configs: ConfigService) -> None:
        self.store = store
        self.devices = devices
        self.configs = configs
        # for rendering, dropped whenever a config (or a port) changes: which devices have
        # ports (one query, so the devices that have none cost nothing), and their ports
        self._shared: frozenset[str] | None = None
        self._cache: OrderedDict[str, list[Port]] = OrderedDict()
        self._generation = -1
        configs.listeners.append(self._on_config_event)

    async def _on_config_event(self, event: str, doc: Mapping[str, Any]) -> None:
        # a new config changes nothing already inherited (ConfigService drops only its id),
        # but a port may name the id before it exists: its device's files must follow
        if event == "config_created" and await self.store.names_config(str(doc.get("id"))):
            self.configs.invalidate()

    # -- REST ---------------------------------------------------------------------------------

    @staticmethod
    def view(scope: Scope | None, port: Port) -> dict[str, Any]:
        """A port as a caller sees it: its line's config only for the port tenant's subtree."""
        return {
            "device_id": port.device_id,
            "port": port.port,
            "tenant_uuid": port.tenant_uuid,
            "config": port.config if port_visible(scope, port.tenant_uuid) else None,
        }

    async def _sides(self, device_id: str, scope: Scope | None) -> tuple[bool, list[Port]]:
        """(the caller sees the device, the device's ports); no device: (False, [])."""
        device = await self.devices.get(device_id)
        if device is None:
            return False, []
        return device_visible(scope, device.get("tenant_uuid")), await self.store.of_device(
            device_id
        )

    async def list_device(self, device_id: str, scope: Scope | None) -> list[dict[str, Any]]:
        """The device's ports the caller may see: all for the owner, its own for a port tenant;
        NotFound (as for a missing device) when it may see none."""
        owner_side, ports = await self._sides(device_id, scope)
        shown = [p for p in ports if owner_side or port_visible(scope, p.tenant_uuid)]
        if not owner_side and not shown:
            raise NotFound(_NOT_FOUND)
        return [self.view(scope, p) for p in shown]

    async def get(self, device_id: str, number: int, scope: Scope | None) -> dict[str, Any]:
        """One port, for the device's owner or the port's tenant; NotFound otherwise."""
        owner_side, ports = await self._sides(device_id, scope)
        port = next((p for p in ports if p.port == number), None)
        if port is None or not (owner_side or port_visible(scope, port.tenant_uuid)):
            raise NotFound(_NOT_FOUND)
        return self.view(scope, port)

    async def list_held(self, tenants: Collection[str]) -> list[dict[str, Any]]:
        """The ports these tenants hold, on any device (a port tenant's own listing)."""
        return [self.view(None, p) for p in await self.store.of_tenants(tenants)]

    async def put(self, device_id: str, number: int, body: object, scope: Scope | None) -> None:
        """Assign a port (owner side: ``tenant_uuid``) or give it a line (port side: ``config``)."""
        if not isinstance(body, dict):
            raise InvalidInput("port: must be a JSON object")
        owner_side, ports = await self._sides(device_id, scope)
        current = next((p for p in ports if p.port == number), None)
        port_side = current is not None and port_visible(scope, current.tenant_uuid)
        if not (owner_side or port_side):
            raise NotFound(_NOT_FOUND)
        tenant = current.tenant_uuid if current is not None else None
        config = current.config if current is not None else None
        wanted = body.get("tenant_uuid", tenant)
        if wanted != tenant:
            if not owner_side:
                raise Forbidden("port.tenant_uuid: only the device's owner assigns its ports")
            if not isinstance(wanted, str):
                raise InvalidInput("port.tenant_uuid: must be a tenant uuid")
            if scope is not None and wanted not in scope.subtree:
                raise InvalidInput(f"port.tenant_uuid: tenant {shown(wanted)} is not yours")
            tenant, config = wanted, None  # a new holder starts without a line
        if tenant is None:
            raise InvalidInput("port.tenant_uuid: required to assign a port")
        if "config" in body:
            asked = body["config"]
            if port_visible(scope, tenant):
                config = await self._usable_config(asked, tenant, scope)
            elif asked is not None:  # the owner's GET shows null here: sending it back is fine
                raise Forbidden("port.config: only the port's tenant gives the port its line")
        await self.store.put(Port(device_id, number, tenant, config))
        await self.configs.changed()  # every node re-renders the device's files

    async def _usable_config(self, asked: object, tenant: str, scope: Scope | None) -> str | None:
        if asked is None:
            return None
        if not isinstance(asked, str):
            raise InvalidInput("port.config: must be a config id or null")
        validate_id(asked, "port.config")
        if not await self.configs.referable(scope, tenant, asked):
            raise InvalidInput(f"port.config: unknown config {shown(asked)}")
        return asked

    async def delete(self, device_id: str, number: int, scope: Scope | None) -> None:
        """Revoke a port (the device's owner); its tenant's line leaves the device's file."""
        owner_side, ports = await self._sides(device_id, scope)
        current = next((p for p in ports if p.port == number), None)
        if not owner_side:
            if current is not None and port_visible(scope, current.tenant_uuid):
                raise Forbidden("port: only the device's owner revokes a port (set config null)")
            raise NotFound(_NOT_FOUND)
        if current is None or not await self.store.remove(device_id, number):
            raise NotFound(_NOT_FOUND)
        await self.configs.changed()

    # -- rendering ----------------------------------------------------------------------------

    async def of_device(self, device_id: str) -> list[Port]:
        """A device's ports (cached until the next config or port write)."""
        if self._generation != self.configs.generation:
            self._cache.clear()
            self._shared = None
            self._generation = self.configs.generation
        if self._shared is None:
            self._shared = await self.store.shared_devices()
        if device_id not in self._shared:
            return []
        ports = self._cache.get(device_id)
        if ports is None:
            ports = await self.store.of_device(device_id)
            self._cache[device_id] = ports
            if len(self._cache) > 100_000:
                self._cache.popitem(last=False)
        return ports

    async def overlay(
        self, device_id: str, raw: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """(the raw config with every port tenant's line, the owner's part alone).

        A port held by a tenant never carries the owner's line; it carries its tenant's line
        from a config that tenant may still use (an id deleted and re-created elsewhere reads
        as no line), or none."""
        ports = await self.of_device(device_id)
        if not ports:
            return dict(raw), dict(raw)
        held = {str(p.port) for p in ports}
        own = {n: line for n, line in (raw.get("sip_lines") or {}).items() if n not in held}
        lines = dict(own)
        for port in ports:
            if port.config is None:
                continue
            if not await self.configs.referable(None, port.tenant_uuid, port.config):
                continue
            theirs = await self.configs.effective(port.config) or {}
            line = (theirs.get("sip_lines") or {}).get(str(port.port))
            if isinstance(line, Mapping):
                lines[str(port.port)] = port_line(theirs, line)
        ordered = dict(sorted(lines.items(), key=lambda item: int(item[0])))
        return dict(raw, sip_lines=ordered), dict(raw, sip_lines=own)
