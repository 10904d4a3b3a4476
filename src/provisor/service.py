"""Build and start/stop provisor's parts; nothing else knows how they are wired.

:class:`Provisor` holds the store, the services, the plugins and the auth backend. The REST
API, the phone listeners and the CLI all receive one and call its services.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncEngine

from provisor.auth.base import AuthBackend
from provisor.auth.builtin import BuiltinAuthBackend
from provisor.errors import Unauthorized
from provisor.logs import protect_third_party_loggers
from provisor.plugins.loader import PluginSet
from provisor.plugins.resync import resync_plugins
from provisor.services.bans import BanList
from provisor.services.configs import ConfigService
from provisor.services.devices import DeviceService
from provisor.services.operations import OperationRegistry
from provisor.services.params import ParamService
from provisor.services.quotas import TenantQuota
from provisor.services.seen import SeenRecorder
from provisor.settings import Settings
from provisor.store.bans import BanStore
from provisor.store.changes import ChangeFeed
from provisor.store.db import create_engine, migrate
from provisor.store.documents import ConfigStore, DeviceStore
from provisor.store.seen import SeenStore
from provisor.store.tenancy import ParamStore, TenantStore, TokenStore
from provisor.tenant_fence import TenantFence
from provisor.wazo.lifecycle import deconfigure_listener

__all__ = ["Provisor", "base_raw_config", "system_configs"]

log = logging.getLogger(__name__)


def base_raw_config(settings: Settings) -> dict[str, Any]:
    """The raw config under every config: where phones reach provisor."""
    url = settings.advertised_http_url
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    raw: dict[str, Any] = dict(settings.general.base_raw_config)
    raw.update(
        http_base_url=url,
        ip=parts.hostname or "127.0.0.1",
        http_port=port,
        tftp_port=settings.tftp_port,
    )
    return raw


def system_configs(settings: Settings) -> dict[str, dict[str, Any]]:
    """The configs every installation starts with (created once, never deletable)."""
    base = {k: v for k, v in base_raw_config(settings).items()}
    base["X_comment"] = "Where phones reach provisor; rewritten from the settings at start-up"
    return {
        "base": {
            "parent_ids": [],
            "raw_config": base,
            "deletable": False,
            "X_type": "internal",
            "label": "base",
        },
        "default": {
            "parent_ids": ["base"],
            "raw_config": {},
            "deletable": False,
            "X_type": "registrar",
            "label": "local",
        },
        "defaultconfigdevice": {
            "parent_ids": [],
            "raw_config": {
                "admin_username": "admin",
                "admin_password": secrets.token_urlsafe(12),
                "user_username": "user",
                "user_password": secrets.token_urlsafe(12),
                "sip_dtmf_mode": "SIP-INFO",
            },
            "deletable": False,
            "X_type": "device",
            "label": "Default config device",
        },
        "autoprov": {
            "parent_ids": ["base", "defaultconfigdevice"],
            "role": "autocreate",
            "raw_config": {
                "sip_lines": {
                    "1": {
                        "display_name": "Autoprov",
                        "number": "autoprov",
                        "username": "anonymous",
                        "password": "",
                    }
                }
            },
            "deletable": False,
            "X_type": "internal",
            "label": "Autoprov",
        },
    }


@dataclass
class Provisor:
    """Every part of a running provisor."""

    settings: Settings
    engine: AsyncEngine
    tenants: TenantStore
    tokens: TokenStore
    param_store: ParamStore
    devices: DeviceService
    configs: ConfigService
    params: ParamService
    operations: OperationRegistry
    plugins: PluginSet
    auth: AuthBackend
    feed: ChangeFeed
    bans: BanList
    extra: dict[str, Any] = field(default_factory=dict)
    seen: SeenRecorder | None = None
    fence: TenantFence = field(default_factory=TenantFence)

    @classmethod
    async def open(
        cls, settings: Settings, *, plugins: PluginSet | None = None, migrate_schema: bool = True
    ) -> Provisor:
        """Open the store (migrating it), seed it on first start, load plugins.

        ``migrate_schema=False`` for a phone worker: the main process migrated the store (and
        pinned SQLite's statistics) before starting it.
        """
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        protect_third_party_loggers()
        db = settings.database
        engine = create_engine(
            settings.database_url,
            echo=db.echo,
            connect_timeout=db.connect_timeout,
            sqlite_synchronous=db.sqlite_synchronous,
            sqlite_busy_timeout=db.sqlite_busy_timeout,
        )
        if migrate_schema:
            await migrate(engine)
        tenants = TenantStore(engine)
        await tenants.load()
        if tenants.master is None:
            await tenants.create("master", is_master=True)
        base = base_raw_config(settings)
        configs = ConfigService(ConfigStore(engine), lambda: base)
        await configs.ensure_system(system_configs(settings))
        await _refresh_base(configs, base)
        if plugins is None:
            plugins = PluginSet.from_folders(plugin_folders(settings), wazo=settings.wazo)
        devices = DeviceService(
            DeviceStore(
                engine,
                sqlite_synchronous=db.sqlite_synchronous,
                sqlite_busy_timeout=db.sqlite_busy_timeout,
                connect_timeout=db.connect_timeout,
                # phone workers each write the file: their writers take turns (store/writer.py)
                sqlite_shared=settings.phone_workers > 1,
            ),
            configs,
            plugins,
            tenants,
        )
        devices.listeners.append(deconfigure_listener(plugins))  # wazo plugins' deconfigure
        limits = settings.rest_api
        devices.quota = TenantQuota(
            "devices",
            "rest_api.tenant_max_devices",
            limits.tenant_max_devices,
            lambda tenant: devices.store.count(tenant_uuid=tenant),
        )
        configs.quota = TenantQuota(
            "configs", "rest_api.tenant_max_configs", limits.tenant_max_configs, configs.store.count
        )
        tokens = TokenStore(engine)
        param_store = ParamStore(engine)
        defaults: dict[str, Any] = {"plugin_server": settings.general.plugin_server, "NAT": 0}
        defaults.update({f"{k}_proxy": v for k, v in settings.proxy.items() if v})
        params = ParamService(param_store, tenants, defaults)
        auth: AuthBackend
        if settings.auth.backend == "wazo-auth":
            from provisor.auth.wazo import WazoAuthBackend

            auth = WazoAuthBackend(
                settings.auth.server_url(),
                settings.auth.key_file,
                cache_ttl=settings.auth.cache_ttl,
                timeout=settings.auth.timeout,
            )
        else:
            auth = BuiltinAuthBackend(tokens, tenants)
        feed = ChangeFeed(engine)
        configs.feed = tenants.feed = param_store.feed = tokens.feed = feed
        await feed.poll_once(_nothing)  # what this node has loaded is current
        bans = BanList(BanStore(engine), feed, cap=settings.provisioning.ban_max_addresses)
        await bans.reload()
        prov = cls(
            settings=settings,
            engine=engine,
            tenants=tenants,
            tokens=tokens,
            param_store=param_store,
            devices=devices,
            configs=configs,
            params=params,
            operations=OperationRegistry(),
            plugins=plugins,
            auth=auth,
            feed=feed,
            bans=bans,
            seen=SeenRecorder(
                SeenStore(engine),
                interval=settings.provisioning.last_seen_interval,
                batch=settings.provisioning.last_seen_batch,
                pending_max=settings.provisioning.last_seen_pending_max,
            ),
        )
        if settings.auth.backend == "wazo-auth":
            try:
                await prov.master_tenant()
            except Unauthorized as exc:  # wazo-auth down: retried on the first API call
                log.warning("master tenant not known yet: %s", exc.message)
        return prov

    async def reload_changed(self, names: set[str]) -> None:
        """Drop what another node changed (called by the change poller)."""
        if "tokens" in names:  # a revocation elsewhere (the CLI): drop cached token checks,
            # before the tenant reload below, so no cached token outlives its deleted tenant
            forget = getattr(self.auth, "forget", None)
            if forget is not None:
                forget()
        if "configs" in names:
            self.configs.invalidate()
        if "tenants" in names:
            await self.tenants.load()
        if "params" in names:
            self.param_store.forget()
        if "bans" in names:  # banned or lifted by another process or node
            await self.bans.reload()
        if "plugins" in names:  # installed or removed elsewhere (the CLI): match the folders
            resync_plugins(self.plugins, plugin_folders(self.settings))
            reconciler = self.extra.get("plugin_reconciler")
            if reconciler is not None:  # another node: match what the database records
                reconciler.poke()

    async def close(self) -> None:
        """Stop background work and release the database."""
        await self.feed.stop()
        await self.bans.close()
        if self.seen is not None:
            await self.seen.close()
        await self.operations.close()
        await self.auth.close()
        self.plugins.close()  # wazo plugin workers
        self.devices.store.close()
        await self.engine.dispose()

    async def master_tenant(self) -> str:
        """The master tenant (the store's, or wazo-auth's service-token tenant)."""
        uuid = await self.auth.master_tenant()
        master = self.tenants.master
        if master is None or master.uuid != uuid:
            await self.tenants.set_master(uuid)
        return uuid

    async def delete_tenant(self, tenant_uuid: str) -> Mapping[str, int]:
        """Delete a tenant's devices, configs and key (bus event or tenant sync).

        Cached authorizations go first: once the event is acknowledged, no request may still be
        allowed in that tenant from a cached answer. A request authorised after the deletion
        began waits for its end (``fence``), so it never sees the tenant half deleted."""
        async with self.fence.deleting(tenant_uuid):
            self.auth.forget()
            count = await self.devices.delete_tenant(tenant_uuid)
            cfgs = await self.configs.store.delete_tenant(tenant_uuid)
            await self.configs.changed()
            tenant = self.tenants.get(tenant_uuid)
            if tenant is not None and not tenant.is_master:
                await self.tenants.delete(tenant_uuid)
        return {"devices": count, "configs": cfgs}


async def _nothing(_names: set[str]) -> None:
    return None


def plugin_folders(settings: Settings) -> list[Path]:
    """Where installed plugins live: ``<data_dir>/plugins``."""
    return [settings.data_dir / "plugins", *settings.general.plugin_dirs]


async def _refresh_base(configs: ConfigService, base: Mapping[str, Any]) -> None:
    """Keep the ``base`` system config's URL keys in line with the settings."""
    doc = await configs.store.get("base")
    if doc is None:
        return
    raw = dict(doc.get("raw_config", {}))
    wanted = {k: base[k] for k in ("http_base_url", "ip", "http_port", "tftp_port")}
    if all(raw.get(k) == v for k, v in wanted.items()):
        return
    raw.update(wanted)
    await configs.store.replace(dict(doc, raw_config=raw), None)
    configs.invalidate()
