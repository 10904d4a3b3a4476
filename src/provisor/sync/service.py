"""Telling phones to resync: one device or many, as long operations that report the truth.

The operation succeeds only on the phone's 2xx (direct SIP) or Asterisk's acceptance (AMI), and
fails with the reason otherwise. Many devices are one operation with progress, paced at
``sync.rate`` NOTIFYs per second so a PBX or a site's uplink is not flooded.

Route per device: ``options.sync.route`` on the device, else ``sync.route`` in the settings;
``auto`` uses AMI when it is configured and the phone registered a peer (learnt from its
trigger file), else a direct NOTIFY to the phone's last address.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from provisor.errors import ProvisorError
from provisor.service import Provisor
from provisor.services.operations import Operation
from provisor.sync.ami import AmiError, AmiSettings, pjsip_notify
from provisor.sync.sip import send_notify

__all__ = ["SyncError", "SyncService"]

log = logging.getLogger(__name__)


class SyncError(Exception):
    """Why a device could not be told to resync."""


def _is_autoprov_peer(name: str) -> bool:
    return name.startswith("ap") and len(name) == 10


class SyncService:
    """Sends resync events through the right route and reports them as operations."""

    def __init__(self, prov: Provisor) -> None:
        self.prov = prov
        self.cfg = prov.settings.sync

    def _ami(self) -> AmiSettings | None:
        c = self.cfg
        if not (c.ami_host and c.ami_username and c.ami_secret is not None):
            return None
        return AmiSettings(c.ami_host, c.ami_port, c.ami_username, c.ami_secret, c.timeout)

    async def sync_device(self, doc: Mapping[str, Any]) -> str:
        """Resync one device; returns what the phone (or AMI) answered, raises SyncError."""
        plugin = self.prov.plugins.get(doc.get("plugin"))
        if plugin is None:
            raise SyncError("device has no loaded plugin")
        if not doc.get("configured"):
            raise SyncError("device is not configured")
        if getattr(plugin, "remote", False):  # a wazo plugin: its synchronize runs in a worker
            try:
                event = await asyncio.to_thread(plugin.sync_event, doc)
            except ProvisorError as exc:
                raise SyncError(exc.message) from None
        else:
            event = plugin.sync_event(doc)
        if not event:
            return "synchronized by the plugin"  # a wazo plugin's own synchronize did it
        options = doc.get("options")
        options = options if isinstance(options, dict) else {}
        per_device = options.get("sync")
        per_device = per_device if isinstance(per_device, dict) else {}
        route = per_device.get("route") or self.cfg.route
        peer = doc.get("remote_state_sip_username")
        ami = self._ami()
        if route == "ami" or (
            route == "auto" and ami is not None and peer and not _is_autoprov_peer(peer)
        ):
            if ami is None:
                raise SyncError(
                    "AMI route chosen but sync.ami_host/ami_username/ami_secret are not set"
                )
            try:
                if peer and not _is_autoprov_peer(peer):
                    return await pjsip_notify(ami, endpoint=peer, event=event)
                if doc.get("ip"):
                    return await pjsip_notify(ami, uri=f"sip:anonymous@{doc['ip']}", event=event)
            except AmiError as exc:
                raise SyncError(str(exc)) from None
            raise SyncError("device has neither a registered peer nor a known IP address")
        ip = doc.get("ip")
        if not ip:
            raise SyncError("device has no known IP address")
        result = await send_notify(
            ip,
            int(per_device.get("port") or self.cfg.sip_port),
            event,
            transport=per_device.get("transport") or self.cfg.sip_transport,
            local_host=self.cfg.sip_local_host,
            timeout=self.cfg.timeout,
            verify_tls=self.cfg.tls_verify,
        )
        if not result.ok:
            raise SyncError(f"phone at {ip}: {result.reason}")
        return result.reason

    def start_one(self, doc: Mapping[str, Any]) -> Operation:
        """A long operation resyncing one device."""

        async def work(op: Operation) -> None:
            op.progress(0, 1)
            await self.sync_device(doc)
            op.progress(1, 1)

        return self.prov.operations.start("synchronize", work, tenant_uuid=doc.get("tenant_uuid"))

    def start_many(self, device_ids: Sequence[str], *, tenants: frozenset[str] | None) -> Operation:
        """One long operation resyncing many devices at ``sync.rate`` per second."""
        ids = list(device_ids)
        interval = 1.0 / self.cfg.rate

        async def work(op: Operation) -> None:
            done = failed = 0
            op.progress(0, len(ids))
            failures = op.sub("failed")
            failures.progress(0)
            for device_id in ids:
                started = asyncio.get_running_loop().time()
                doc = await self.prov.devices.store.get(device_id)
                if doc is not None and (tenants is None or doc.get("tenant_uuid") in tenants):
                    try:
                        await self.sync_device(doc)
                    except SyncError as exc:
                        failed += 1
                        failures.progress(failed)
                        log.info("resync of %s failed: %s", device_id, exc)
                done += 1
                op.progress(done, len(ids))
                pause = interval - (asyncio.get_running_loop().time() - started)
                if pause > 0:
                    await asyncio.sleep(pause)
            failures.state = "fail" if failed else "success"
            if failed:
                op.state = "fail"

        return self.prov.operations.start("synchronize", work, label="synchronize")
