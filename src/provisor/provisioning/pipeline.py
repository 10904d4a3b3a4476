"""The one provisioning pipeline behind HTTP, HTTPS, TFTP and DHCP lease information.

    request ─▶ 1 ban check ─▶ 2 credentials (tenant key, device token) ─▶ 3 identify (plugins)
            ─▶ 4 find or create the device ─▶ 5 update it, associate a plugin, autocreate config
            ─▶ 6 route the path to the plugin's file ─▶ 7 render (cached) ─▶ bytes

Every refusal (banned, wrong key, wrong token, another device's file, nowhere to route) is the
same 404 so a scanner learns nothing; each one that is not a normal boot miss counts toward a
ban. Unchanged devices cause no database write.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from provisor.domain.values import device_text_problem, normalize_ip
from provisor.errors import InvalidInput
from provisor.flight import BatchLoader, single_flight
from provisor.logs import AccessLog
from provisor.metrics import BANS, DEVICES_CREATED, PHONE, REFUSALS
from provisor.plugins.base import Plugin
from provisor.plugins.contract import ProbeRequest
from provisor.plugins.offload import call_plugin
from provisor.provisioning.by_address import address_match, agrees, names_by_serial, names_device
from provisor.provisioning.cache import DeviceCache, RenderCache, StaleFiles
from provisor.provisioning.credentials import Credentials, read_credentials
from provisor.provisioning.defence import (
    FailureTracker,
    RateWindow,
    excused_miss,
    identifying_mac,
)
from provisor.provisioning.dhcpinfo import parse_dhcp_info
from provisor.provisioning.hot import HotAnswers
from provisor.provisioning.limits import proxy_networks
from provisor.provisioning.renderer import Renderer
from provisor.provisioning.rendering import Rendering
from provisor.provisioning.request import FileRequest, FileResult
from provisor.provisioning.security import SecurityLog, hide_secrets, redact_path
from provisor.provisioning.trace import Trace, TraceEntry
from provisor.service import Provisor
from provisor.store.health import is_unavailable
from provisor.store.tenancy import Tenant

__all__ = ["Pipeline"]

T = TypeVar("T")

Sent = Callable[[FileResult], tuple[int, int]]
"""What the front end sends for a 200 result: (status, body bytes)."""

# the cache outcome of an answer, told by its reason (see cache.served and _render_miss)
_CACHE_OUTCOME = {
    "served": "hit",
    "rendered": "miss",
    "served stale: database unavailable": "stale",
}

log = logging.getLogger(__name__)


class Pipeline(Rendering):
    """Turns a FileRequest into a FileResult; also takes DHCP lease information."""

    def __init__(self, prov: Provisor) -> None:
        self.prov = prov
        cfg = prov.settings.provisioning
        self.strategy = prov.settings.general.http_auth_strategy
        self.trusted_proxies = prov.settings.general.http_proxied_trusted_proxies_count
        # X-Forwarded-For is read only on connections from these (a forged header from anyone
        # else would choose the address bans and creation caps count)
        self.proxies = proxy_networks(prov.settings.limits.proxy_addresses, self.trusted_proxies)
        self.prefixes = tuple(f"{p}/" for p in prov.settings.advertised_path_prefixes)
        self.devices = DeviceCache()
        self.renders = RenderCache(max_item_bytes=prov.settings.render.max_bytes)
        self.renderer = Renderer(prov.settings.render, prov.param_store.list_overrides)
        self.stale = StaleFiles(cfg.stale_if_error)
        self.failures = FailureTracker(
            cfg.ban_threshold, cfg.ban_window, cfg.ban_duration, bans=prov.bans
        )
        self.creations = RateWindow(cfg.auto_create_per_source, cfg.auto_create_window)
        self.trace = Trace(cfg.trace_size)
        self.trace.recorder = prov.seen  # last seen, in the database in batches
        self.security = SecurityLog(prov.settings.security_log)
        observe = prov.settings.observability
        self.access = (
            AccessLog(observe.access_log_per_second, prov.tenants.by_key)
            if observe.access_log
            else None
        )
        self._device_count: tuple[float, int] = (0.0, 0)
        self._identified: OrderedDict[tuple[str, str, str | None], dict[str, str]] = OrderedDict()
        self._learnt: dict[str, str] = {}
        self._rendering: dict[tuple[Any, ...], asyncio.Future[FileResult]] = {}
        self._updating: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._finding: dict[str, asyncio.Future[tuple[dict[str, Any] | None, bool]]] = {}
        self._hot = HotAnswers()
        self._lookups: dict[tuple[str, str], asyncio.Future[dict[str, Any] | None]] = {}
        # new phones each miss a different MAC and IP: their lookups share queries
        self._by_mac: BatchLoader[str, dict[str, Any] | None] = BatchLoader(self._load_macs, None)
        self._by_ips: BatchLoader[str, list[dict[str, Any]]] = BatchLoader(
            lambda ips: self.prov.devices.store.find_by_values("ip", ips, per_value=2), []
        )
        prov.devices.listeners.append(self._on_device_event)

    def _on_device_event(self, _event: str, doc: Mapping[str, Any]) -> None:
        self.devices.forget(dict(doc))

    def close(self) -> None:
        """Release the security log and the render workers."""
        self.security.close()
        self.renderer.close()

    # -- entry points ---------------------------------------------------------------------------

    def _stamp(self, device_id: str) -> tuple[int, ...]:
        """Everything a served file depends on, as counters (see provisioning.hot)."""
        prov = self.prov
        return (
            self.devices.epoch(device_id),
            prov.configs.generation,
            prov.tenants.generation,
            prov.param_store.generation,
            prov.plugins.generation,
        )

    def hot(self, req: FileRequest, sent: Sent | None = None) -> FileResult | None:
        """The answer of a request the same phone made before, when nothing it depends on
        changed (traced, counted and logged like any answer); None when it must be worked out.

        Synchronous, so the HTTP listener can answer from its parser callback without an
        ASGI task (``GuardedHttpProtocol``).
        """
        key = self._hot.key(req)
        if key is None:
            return None
        hot = self._hot.get(key)
        if hot is None:
            return None
        started = time.perf_counter()
        if (
            time.monotonic() - hot.born < self.devices.ttl
            and hot.stamp == self._stamp(hot.device_id)
            and not self.failures.is_banned(req.client_ip)
        ):
            result = hot.result
            if hot.sensitive:
                self.security.sensitive_file_once(req.client_ip, result.reason)
            status, size = sent(result) if sent is not None else (200, len(result.body))
            entry = hot.origin.repeated(result.reason, status)
            self.trace.add(entry)
            PHONE.count(req.protocol, status, hot.origin.plugin, "hit")
            if self.access is not None:
                self._access(req, entry, size, started)
            return result
        self._hot.drop(key)
        return None

    async def handle(self, req: FileRequest, sent: Sent | None = None) -> FileResult:
        """Serve one phone request; never raises.

        ``sent`` tells what the front end will send for a 200 (a 304 or 206 for a conditional
        or range GET) so the trace, metrics and access log record what the phone got.
        """
        hot = self.hot(req, sent)
        if hot is not None:
            return hot
        started = time.perf_counter()
        # until the credentials are read and stripped, the path may start with a key or token
        shown = redact_path(req.path, self.prov.tenants.by_key)
        entry = TraceEntry(req.protocol, req.client_ip, shown, user_agent=req.user_agent)
        # same protocol, path, UA, address and TLS as the request served
        stale_key = (req.protocol, req.path, req.user_agent, req.client_ip, req.secure)
        health = self.prov.feed.health
        if health.skip():  # the database is down: do not wait for it on every request
            result = self._degraded(req, stale_key)
        else:
            try:
                result = await self._handle(req, entry)
            except Exception as exc:
                if is_unavailable(exc):  # logged once per outage by the health tracker
                    health.failed(exc)
                    result = self._degraded(req, stale_key)
                else:
                    log.exception(
                        "provisioning error for %s %s (device %s)",
                        req.protocol,
                        redact_path(entry.path, self.prov.tenants.by_key),
                        entry.device_id,
                    )
                    result = FileResult.error("internal error")
            else:
                if result.status == 200:
                    self.stale.put(stale_key, result)
        size = result.size if result.file is not None else len(result.body)
        entry.status, entry.reason = result.status, result.reason
        if entry.note:
            entry.reason = f"{result.reason}; {entry.note}"
        if sent is not None and result.status == 200:
            entry.status, size = sent(result)
        entry.cache = _CACHE_OUTCOME.get(result.reason, "none")
        self.trace.add(entry)
        PHONE.count(req.protocol, entry.status, entry.plugin, entry.cache)
        if self.access is not None:
            self._access(req, entry, size, started)
        if result.status == 200 and result.file is None and entry.device_id and entry.hot_stamp:
            key = self._hot.key(req)
            if key is not None:
                self._hot.keep(key, result, entry, born=time.monotonic())
        return result

    def _access(self, req: FileRequest, entry: TraceEntry, size: int, started: float) -> None:
        assert self.access is not None
        self.access.write(
            req.protocol,
            req.client_ip,
            entry.path,
            device_id=entry.device_id,
            tenant=entry.tenant_uuid,
            file=entry.file,
            status=entry.status,
            size=size,
            seconds=time.perf_counter() - started,
            cache=entry.cache,
        )

    def _degraded(self, req: FileRequest, key: tuple[Any, ...]) -> FileResult:
        """Database unreachable: the file this phone was last served, else 503 (no ban count)."""
        if self.failures.is_banned(req.client_ip):
            return FileResult.not_found("address banned after repeated failures")
        stale = self.stale.get(key)
        if stale is not None:
            return dataclasses.replace(stale, reason="served stale: database unavailable")
        return FileResult(
            503,
            b"Service Unavailable: try again later",
            "text/plain",
            reason="database unavailable",
        )

    async def dhcp_info(self, info: object) -> None:
        """Identify (and create) the device a DHCP lease describes; no file is served."""
        lease = parse_dhcp_info(info)
        if lease is None:
            return
        ip, mac, options = lease
        probe = ProbeRequest(protocol="dhcp", client_ip=ip, dhcp_options=options, mac=mac)
        found = await call_plugin(self.prov.plugins.has_remote, self.prov.plugins.extract, probe)
        if "vendor" not in found:
            # No vendor class (Kea's run_script passes none): the MAC prefix may name one.
            vendor = self.prov.plugins.vendor_of_mac(mac)
            if vendor is not None:
                found["vendor"] = vendor
        found.update(mac=mac, ip=ip)
        entry = TraceEntry("dhcp", ip, "", identified=dict(found))
        device, created = await self._find_or_create(found, ip, None, entry, force=True)
        if device is not None:
            await self._update(device, found, ip, created)
            entry.device_id = device["id"]
        entry.status, entry.reason = 204, "lease recorded"
        self.trace.add(entry)

    # -- steps ----------------------------------------------------------------------------------

    def refuse(self, ip: str, reason: str) -> None:
        """Count a refused request toward a ban and log it in the fail2ban format."""
        self.security.refused(ip, reason)
        REFUSALS.inc()
        if self.failures.failure(ip, reason):
            BANS.inc()
            self.security.banned(ip, reason)

    def _fail(self, req: FileRequest, reason: str, *, counts: bool = True) -> FileResult:
        if counts:
            self.refuse(req.client_ip, reason)
        return FileResult.not_found(reason)

    async def _handle(self, req: FileRequest, entry: TraceEntry) -> FileResult:
        if self.failures.is_banned(req.client_ip):
            self.security.refused_banned(req.client_ip)
            return FileResult.not_found("address banned after repeated failures")
        path = req.path
        for prefix in self.prefixes:  # the advertised URL's own path, as phones were told
            if path.startswith(prefix):
                path = path[len(prefix) :]
                break
        creds = await read_credentials(
            path, self.prov.tenants.by_key, self.strategy, lambda t: self._device_by("token", t)
        )
        entry.path = hide_secrets(creds.path, self.prov.tenants.by_key)
        if creds.refused:
            # what is left may still start with a wrong key or token: not for the trace
            entry.path = redact_path(creds.path, self.prov.tenants.by_key)
            return self._fail(req, creds.refused)
        if req.protocol == "tftp" and creds.tenant is not None and not creds.tenant.tftp_enabled:
            return self._fail(req, "TFTP is turned off for this tenant")
        info = await self._identify(req, creds.path)
        entry.identified = dict(info)
        device, created = await self._resolve(req, creds, info, entry)
        if device is None:  # an unknown device has no plugin: its misses are failures
            vendor = info.get("vendor")
            expected = bool(vendor) and excused_miss(self._of_vendor(vendor or ""), creds.path)
            return self._fail(req, entry.reason or "unknown device", counts=not expected)
        if created:  # a guess until the new device asks for another file
            if self.failures.created(req.client_ip, device["id"]):
                BANS.inc()
                self.security.banned(req.client_ip, "too many new devices from one address")
        else:
            self.failures.returned(device["id"])
        entry.device_id, entry.tenant_uuid, entry.created = (
            device["id"],
            device["tenant_uuid"],
            created,
        )
        device = await self._update(device, info, req.client_ip, created)
        plugin = self.prov.plugins.get(device.get("plugin"))
        if plugin is None:
            return self._fail(req, "device has no plugin", counts=False)
        entry.plugin = plugin.id
        route = await call_plugin(
            getattr(plugin, "remote", False), plugin.route_for, creds.path, req.protocol
        )
        if route is None:  # expected misses are the device's own plugin's only
            return self._fail(
                req, "the plugin has no such file", counts=not plugin.is_expected_miss(creds.path)
            )
        entry.file = route.spec.name
        if route.mac is not None and device.get("mac") and route.mac != device["mac"]:
            return self._fail(req, "path names another device's file")
        if route.spec.kind == "device" and route.mac is None and creds.token_device is None:
            if not info.get("mac"):
                return self._fail(req, "device file requested without identifying the device")
        with_secrets = self._with_secrets(creds, device)
        entry.secrets = with_secrets
        if self.strategy == "device_token":
            if with_secrets and not device.get("token_taken"):
                device = await self._token_taken(device)
            elif not with_secrets and device.get("token_taken"):
                entry.note = (
                    "bootstrap without the device token: the phone already took it"
                    " (rotate the token to let it bootstrap again)"
                )
        entry.hot_stamp = self._stamp(device["id"])
        entry.hot_sensitive = route.spec.sensitive
        if route.spec.sensitive:
            self.security.sensitive_file_once(req.client_ip, creds.path)
        if route.spec.kind == "firmware":
            root = getattr(plugin, "firmware_root", None) or (
                self.prov.settings.data_dir / "firmware" / plugin.id
            )
            return FileResult.from_store(root, route.path, route.spec.content_type)
        return await self._render(plugin, route, device, creds, with_secrets, req.secure)

    async def _identify(self, req: FileRequest, path: str) -> dict[str, str]:
        """Device info from the UA (preferred) and then the path (memoised: phones repeat)."""
        key = (req.protocol, path, req.user_agent)
        found = self._identified.get(key)
        if found is None or self._plugins_version != len(self.prov.plugins):
            found = await call_plugin(self.prov.plugins.has_remote, self._extract, req, path)
            self._identified[key] = found
            self._plugins_version = len(self.prov.plugins)
            if len(self._identified) > 50_000:
                self._identified.popitem(last=False)
        return dict(found)

    _plugins_version = -1

    def _extract(self, req: FileRequest, path: str) -> dict[str, str]:
        """The most specific identification of the request (a plugin tie goes to ``tie``)."""
        found = self.prov.plugins.identify_request(
            req.protocol, path, req.user_agent, req.query, req.client_ip
        )
        if "mac" not in found and found.get("vendor"):
            mac = identifying_mac(self._of_vendor(found["vendor"]), path)
            if mac is not None:
                found["mac"] = mac
        # a plugin's regex may capture more than a phone would send: what the REST API would
        # refuse is never stored from a phone either (the request goes on without it)
        for key, value in list(found.items()):
            if device_text_problem(key, value) is not None:
                del found[key]
        return found

    def _of_vendor(self, vendor: str) -> list[Plugin]:
        return [p for p in self.prov.plugins if p.manifest.vendor.lower() == vendor.lower()]

    async def _device_by(self, kind: str, value: str) -> dict[str, Any] | None:
        hit, doc = self.devices.get(kind, value)
        if hit:
            return doc
        if kind == "mac":
            return await self._by_mac.get(value)
        return await single_flight(
            self._lookups, (kind, value), lambda: self._load_device(kind, value)
        )

    async def _load_macs(self, macs: list[str]) -> dict[str, dict[str, Any] | None]:
        found = await self.prov.devices.store.find_by_values("mac", macs)
        out = {mac: (found[mac][0] if mac in found else None) for mac in macs}
        for mac, doc in out.items():
            # no negative entries: a "no such MAC" read before a creation committed would
            # outlive it and let the next request of that phone create it again
            if doc is not None:
                self.devices.put("mac", mac, doc)
        return out

    async def _load_device(self, kind: str, value: str) -> dict[str, Any] | None:
        store = self.prov.devices.store
        if kind == "token":
            doc = await store.find_by_token(value)
        else:
            doc = await store.find_one(**{kind: value})
        self.devices.put(kind, value, doc)
        return doc

    async def _resolve(
        self, req: FileRequest, creds: Credentials, info: dict[str, str], entry: TraceEntry
    ) -> tuple[dict[str, Any] | None, bool]:
        if creds.token_device is not None:
            by_token = creds.token_device
            if info.get("mac") and by_token.get("mac") and info["mac"] != by_token["mac"]:
                entry.reason = "the device token belongs to another device"
                return None, False
            return by_token, False
        device, created = await self._find_or_create(info, req.client_ip, creds.tenant, entry)
        if device is not None and creds.tenant is not None:
            if device["tenant_uuid"] != creds.tenant.uuid:
                entry.reason = "device belongs to another tenant than the key's"
                return None, False
        elif device is not None and self.strategy is not None:
            owner = self.prov.tenants.get(device["tenant_uuid"])
            if owner is not None and owner.provisioning_key:
                entry.reason = "device's tenant requires its provisioning key"
                return None, False
        return device, created

    async def _find_or_create(
        self,
        info: Mapping[str, str],
        client_ip: str,
        tenant: Tenant | None,
        entry: TraceEntry,
        *,
        force: bool = False,
    ) -> tuple[dict[str, Any] | None, bool]:
        """The device of a request, created when new; concurrent requests of one new MAC share
        one creation (a phone retrying, two files asked at once) and only one says created."""
        mac = info.get("mac") or (f"sn:{info['sn']}" if info.get("sn") else None)
        if not mac:
            return await self._find_or_create_once(info, client_ip, tenant, entry, force=force)
        leader = mac not in self._finding
        device, created = await single_flight(
            self._finding,
            mac,
            lambda: self._find_or_create_once(info, client_ip, tenant, entry, force=force),
        )
        return device, created and leader

    async def _find_or_create_once(
        self,
        info: Mapping[str, str],
        client_ip: str,
        tenant: Tenant | None,
        entry: TraceEntry,
        *,
        force: bool = False,
    ) -> tuple[dict[str, Any] | None, bool]:
        for key in ("mac", "sn", "uuid"):
            if info.get(key):
                device = await self._device_by(key, info[key])
                if device is not None and (key == "mac" or agrees(device, info)):
                    return device, False
        if info.get("ip") or client_ip:
            device = await self._by_ip(info, info.get("ip") or client_ip, tenant, entry)
            if device is not None:
                return device, False
        if force and not info.get("mac"):
            entry.reason = "lease without a MAC"
            return None, False
        if not info.get("mac") and not names_by_serial(info):
            entry.reason = entry.reason or "device not identified (no MAC in User-Agent or path)"
            return None, False
        return await self._create(info, client_ip, tenant, entry)

    async def _by_ip(
        self, info: Mapping[str, str], ip: str, tenant: Tenant | None, entry: TraceEntry
    ) -> dict[str, Any] | None:
        """The device at the request's address, when the address names one (see
        provisioning/by_address.py); the reason it does not goes to the trace."""
        nat = bool(await self.prov.params.get("NAT", ""))
        candidates = await self._by_ips.get(ip)
        if tenant is not None and any(c["tenant_uuid"] != tenant.uuid for c in candidates):
            # under a tenant's key only its devices count: another tenant's device put at this
            # address (through the API) neither answers nor makes the address ambiguous
            store = self.prov.devices.store
            candidates = await store.find_all(limit=2, ip=ip, tenant_uuid=tenant.uuid)
        found = address_match(info, candidates, nat=nat)
        if isinstance(found, str):
            if not names_device(info):  # a request that names its device needs no address
                entry.reason = found
            return None
        return found

    async def _create(
        self, info: Mapping[str, str], client_ip: str, tenant: Tenant | None, entry: TraceEntry
    ) -> tuple[dict[str, Any] | None, bool]:
        cfg = self.prov.settings.provisioning
        if not cfg.auto_create:
            entry.reason = "unknown device and auto-creation is off"
            return None, False
        if not self.creations.allowed(client_ip):
            entry.reason = "auto-creation rate limit reached for this address"
            return None, False
        if await self._total_devices() >= cfg.auto_create_max_total:
            entry.reason = "auto-creation cap on the total number of devices reached"
            return None, False
        self.creations.add(client_ip)
        body: dict[str, Any] = {
            k: v
            for k, v in info.items()
            if k in ("mac", "sn", "uuid", "vendor", "model", "version")
        }
        with contextlib.suppress(InvalidInput):
            body["ip"] = normalize_ip(client_ip)
        best = await call_plugin(self.prov.plugins.has_remote, self.prov.plugins.best_for, body)
        if best is not None:
            # one insert, already associated: a new phone costs one write, not three
            body["plugin"] = best.id
            config_id = await self._autoprov_config()
            if config_id is not None:
                body["config"] = config_id
        tenant_uuid = tenant.uuid if tenant is not None else self.prov.devices.master_uuid
        # one address, one device (unless NAT): taken in the insert's own transaction
        taken: list[str] | None = None if await self.prov.params.get("NAT", "") else []
        doc = await self.prov.devices.create(
            body, tenant_uuid, added="auto", is_new=True, ip_taken_from=taken
        )
        for other in taken or ():
            self.devices.forget({"id": other})
        self._device_count = (self._device_count[0], self._device_count[1] + 1)
        self.security.device_created(client_ip, doc["id"])
        DEVICES_CREATED.inc()
        return doc, True

    async def _autoprov_config(self) -> str | None:
        """The autocreate template itself: phones share it until an administrator assigns
        theirs (upstream copies it per device, a row per MAC a scanner invents)."""
        now = time.monotonic()
        if now - self._template[0] > 5:
            self._template = (now, await self.prov.configs.template())
        return self._template[1]

    _template: tuple[float, str | None] = (-1e9, None)

    async def _total_devices(self) -> int:
        stamp, count = self._device_count
        if time.monotonic() - stamp > 30:
            count = await self.prov.devices.store.count()
            self._device_count = (time.monotonic(), count)
        return count

    async def _update(
        self, device: dict[str, Any], info: Mapping[str, str], client_ip: str, created: bool
    ) -> dict[str, Any]:
        """Bring the device up to date; writes only when something changed."""
        doc = dict(device)
        for key in ("vendor", "model", "version", "mac", "sn", "uuid"):
            if info.get(key) and not doc.get(key):
                doc[key] = info[key]
        if info.get("version"):
            doc["version"] = info["version"]
        try:
            ip = normalize_ip(client_ip) if client_ip else None
        except InvalidInput:
            ip = None
        ip_changed = ip is not None and doc.get("ip") != ip
        if ip_changed:
            doc["ip"] = ip
        if not doc.get("plugin"):
            plugins, known = self.prov.plugins, {k: v for k, v in doc.items() if isinstance(v, str)}
            best = await call_plugin(plugins.has_remote, plugins.best_for, known)
            if best is not None:
                doc["plugin"] = best.id
        if not doc.get("config") and doc.get("plugin"):
            config_id = await self._autoprov_config()
            if config_id is not None:
                doc["config"] = config_id
        if doc == device:
            return device
        new_ip = ip if ip_changed else None
        return await single_flight(self._updating, doc["id"], lambda: self._write(doc, new_ip))

    async def _write(self, doc: dict[str, Any], new_ip: str | None) -> dict[str, Any]:
        ip, ip_changed = new_ip, new_ip is not None
        if ip_changed and ip and not await self.prov.params.get("NAT", ""):
            for other in await self.prov.devices.store.clear_ip(ip, doc["id"]):
                self.devices.forget({"id": other})
        return await self.prov.devices.save(doc)

    async def _token_taken(self, device: dict[str, Any]) -> dict[str, Any]:
        """Record that the phone fetched with its token (once): bootstrap answers then stop
        carrying it, so a tenant-key holder naming the MAC cannot take it."""
        doc = dict(device, token_taken=True)
        return await single_flight(self._updating, doc["id"], lambda: self._write(doc, None))

    def _with_secrets(self, creds: Credentials, device: Mapping[str, Any]) -> bool:
        if self.strategy != "device_token":
            return True
        return creds.token_device is not None and creds.token_device["id"] == device["id"]
