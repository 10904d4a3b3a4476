"""Step 7 of the pipeline: render a routed file for a device, cached and single-flight.

A mixin of :class:`~provisor.provisioning.pipeline.Pipeline`, kept in its own module so the
pipeline's module stays one concept (the request's path through the steps): it names the
pipeline attributes it uses, and the pipeline sets them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

from provisor.domain.raw_config import apply_defaults, validate_raw_config
from provisor.errors import InvalidInput, NotFound, PluginError
from provisor.flight import single_flight
from provisor.metrics import RENDER_SECONDS
from provisor.plugins.base import Plugin
from provisor.plugins.contract import FileRoute, RenderContext
from provisor.plugins.offload import call_plugin
from provisor.provisioning.cache import DeviceCache, RenderCache, Rendered, served
from provisor.provisioning.credentials import Credentials
from provisor.provisioning.renderer import Renderer, RenderRefused
from provisor.provisioning.request import FileResult
from provisor.service import Provisor

__all__ = ["Rendering"]

log = logging.getLogger("provisor.provisioning.pipeline")


def prov_generations(prov: Provisor) -> tuple[int, ...]:
    """What a rendered file depends on beyond the device: configs, tenants, parameters."""
    return (prov.configs.generation, prov.tenants.generation, prov.param_store.generation)


class Rendering:
    """Rendering a device's file: URL base, cache key, render, remote-state learning."""

    prov: Provisor
    strategy: str | None
    devices: DeviceCache
    renders: RenderCache
    renderer: Renderer
    _rendering: dict[tuple[Any, ...], asyncio.Future[FileResult]]
    _learnt: dict[str, str]
    _template: tuple[float, str | None]

    async def base_url(
        self, device: Mapping[str, Any], secure: bool = False, with_token: bool = True
    ) -> str:
        """The URL base this device must use: advertised URL, tenant key, device token.

        A file fetched over HTTPS names the HTTPS URL, so the key and token it carries never
        travel back over plain HTTP. ``with_token`` False leaves the token out (a bootstrap
        answer once the phone has taken its token).
        """
        settings = self.prov.settings
        url = settings.advertised_https_url if secure else settings.advertised_http_url
        tenant = self.prov.tenants.get(device.get("tenant_uuid"))
        if self.strategy in ("url_key", "device_token") and tenant and tenant.provisioning_key:
            url = f"{url}/{tenant.provisioning_key}"
        if self.strategy == "device_token" and with_token:
            token = await self.prov.devices.store.get_token(device["id"])
            if token:
                url = f"{url}/{token}"
        return url

    async def preview(self, plugin: Plugin, route: FileRoute, device: dict[str, Any]) -> FileResult:
        """The file ``route`` as the device would get it without its credentials (every
        password and key blanked): the console's preview, through the same render path."""
        key: tuple[Any, ...] = (
            "preview",
            json.dumps(device, sort_keys=True, default=str),
            route.path,
            prov_generations(self.prov),
            id(plugin),
            plugin.version,
        )
        return await self._render_miss(plugin, route, dict(device), False, key, learn=False)

    async def _render(
        self,
        plugin: Plugin,
        route: FileRoute,
        device: dict[str, Any],
        creds: Credentials,
        with_secrets: bool,
        secure: bool = False,
    ) -> FileResult:
        prov = self.prov
        key = (
            device["id"],
            self.devices.epoch(device["id"]),
            # the document itself: another node may have changed it (this node's epoch did not)
            json.dumps(device, sort_keys=True, default=str),
            device.get("config"),
            prov.configs.generation,
            prov.tenants.generation,
            prov.param_store.generation,
            id(plugin),
            plugin.version,
            route.path,
            with_secrets,
            secure,
        )
        cached = self.renders.get(key)
        if cached is None:  # concurrent misses of one file share one render
            return await single_flight(
                self._rendering,
                key,
                lambda: self._render_miss(plugin, route, device, with_secrets, key, secure),
            )
        return served(cached, route.spec.content_type)

    async def _render_miss(
        self,
        plugin: Plugin,
        route: FileRoute,
        device: dict[str, Any],
        with_secrets: bool,
        key: tuple[Any, ...],
        secure: bool = False,
        learn: bool = True,
    ) -> FileResult:
        prov = self.prov
        remote = getattr(plugin, "remote", False)
        config_id = device.get("config")
        # the device's config must still be one its tenant may use: an id deleted and re-created
        # by another tenant never lends that tenant's secrets (cached, no query)
        usable = bool(config_id) and await prov.configs.referable(
            None, device["tenant_uuid"], str(config_id)
        )
        # a wazo plugin's common files are written from the base config only (shared by all)
        common_only = remote and route.spec.kind == "common"
        raw = None if common_only or not usable else await prov.configs.effective(config_id)
        if raw is None:
            if route.spec.kind == "device":
                return FileResult.not_found("device has no config")
            raw = dict(prov.configs.base())
        # a shared gateway: ports held by other tenants carry their lines, never the owner's
        # (a wazo plugin's common file is everybody's: it gets none)
        owners_part = raw
        if not common_only:
            raw, owners_part = await prov.devices.ports.overlay(device["id"], raw)
            if not learn:  # the console's preview, read by the owner: other tenants' ports empty
                raw = owners_part
        # a bootstrap answer (no secrets) hands out the device's token until the phone has
        # used it once: after that, whoever holds the tenant key and names the MAC gets none
        with_token = with_secrets or not device.get("token_taken")
        raw["http_base_url"] = await self.base_url(device, secure, with_token)
        raw = apply_defaults(raw)
        if route.spec.kind == "device":
            try:
                validate_raw_config(raw, complete=True)
            except InvalidInput as exc:
                return FileResult.not_found(f"device config incomplete: {exc.message}")
        overrides = await prov.param_store.overrides_for(
            device["tenant_uuid"], plugin.id, device.get("model"), device["id"]
        )
        ctx = RenderContext(
            route=route,
            device=device,
            raw_config=raw,
            with_secrets=with_secrets,
            template_overrides=overrides,
            plugin_root=plugin.root,
        )
        started = time.perf_counter()
        try:
            if remote:  # a wazo plugin renders in its own worker process, under its deadline
                body = await call_plugin(True, plugin.render, ctx, self.renderer.limits)
            else:
                body = await self.renderer.render(plugin, ctx, key)
            RENDER_SECONDS.labels(plugin.id).observe(time.perf_counter() - started)
        except RenderRefused as exc:  # logged once by the renderer, remembered for this key
            return FileResult.error(exc.message)
        except NotFound as exc:
            return FileResult.not_found(exc.message)
        except PluginError as exc:
            log.error("device %s: %s", device["id"], exc.message)
            return FileResult.error(exc.message)
        except Exception as exc:
            log.exception("device %s: plugin %s failed rendering", device["id"], plugin.id)
            return FileResult.error(f"plugin {plugin.id} failed: {type(exc).__name__}")
        etag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
        cached = Rendered(body, etag, time.time())
        self.renders.put(key, cached)
        if route.spec.trigger and learn:
            await self._learn_remote_state(device, owners_part)  # (the owner reads it back)
        # "rendered", not "served": the metrics and the access log tell a cache miss by it
        return dataclasses.replace(served(cached, route.spec.content_type), reason="rendered")

    async def _learn_remote_state(self, device: dict[str, Any], raw: Mapping[str, Any]) -> None:
        line = raw.get("sip_lines", {}).get("1") or {}
        username = line.get("username")
        if not username or not device.get("configured"):
            return
        if device.get("config") == self._template[1]:
            return  # a phone still on the shared autoprov template has no account of its own
        known = device.get("remote_state_sip_username")
        if known == username or self._learnt.get(device["id"]) == username:
            return  # already known, or being written by a concurrent request
        self._learnt[device["id"]] = username
        await self.prov.devices.save(dict(device, remote_state_sip_username=username))
