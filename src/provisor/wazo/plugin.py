"""A wazo-format plugin as the pipeline sees it: a native-looking plugin backed by a worker.

Identification, association, configuration and the plugin's own file-name rules run in the
plugin's worker process (:mod:`provisor.wazo.worker`); this object only translates. A device
file (a path naming a MAC) is produced by the plugin's ``configure`` in the worker at the first
request after anything it depends on changed, and the pipeline caches and serves the bytes with
provisor's keys, tokens, scan defence and trace. Other files are read from the folder the
plugin serves over the request's protocol (after ``configure_common``); big ones are streamed
like firmware.

Which folder is served over which protocol is the plugin's choice, as on wazo-provd: its
``http_service``/``tftp_service`` (``HTTPNoListingFileService(dir)``, ``TFTPFileService(dir)``;
usually ``var/tftpboot``, any folder inside the plugin works). A protocol whose service is
``None``, ``TFTPNullService``, ``NoResource`` or a resource of the plugin's own gets nothing.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import mimetypes
import re
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlencode

from provisor.domain.values import normalize_mac
from provisor.errors import InvalidInput, NotFound, PluginError
from provisor.plugins.base import Plugin
from provisor.plugins.budget import RenderLimits
from provisor.plugins.contract import (
    EXACT,
    INFO_KEYS,
    NONE,
    DeviceInfo,
    FileRoute,
    FileSpec,
    Manifest,
    ModelInfo,
    ProbeRequest,
    RenderContext,
)
from provisor.wazo.worker import WazoWorker, WorkerError

__all__ = ["STREAM_ABOVE", "WazoPlugin", "manifest_from_info"]

log = logging.getLogger(__name__)

#: Files of var/tftpboot larger than this are streamed from disk (firmware, language packs).
STREAM_ABOVE = 512 * 1024
_ANY = re.compile(r".*", re.DOTALL)
_MAC_IN_PATH = re.compile(
    r"(?<![0-9A-Fa-f])([0-9A-Fa-f]{2}(?:[:\-]?[0-9A-Fa-f]{2}){5})(?![0-9A-Fa-f])"
)
_MEMO = 10_000
_MAX_INFO = 128


def manifest_from_info(plugin_id: str, info: Mapping[str, Any]) -> Manifest:
    """A provisor manifest from a ``plugin-info`` document (models from its capabilities)."""
    capabilities = info.get("capabilities")
    capabilities = capabilities if isinstance(capabilities, dict) else {}
    models: dict[str, ModelInfo] = {}
    vendors: list[str] = []
    for key, caps in capabilities.items():
        parts = [p.strip() for p in str(key).split(",")]
        if len(parts) != 3:
            continue
        vendor, model, version = parts
        vendors.append(vendor)
        caps = caps if isinstance(caps, dict) else {}
        models.setdefault(
            model,
            ModelInfo(
                name=model,
                lines=int(caps.get("lines", 1) or 1),
                function_keys=int(caps.get("function_keys", 0) or 0),
                expansion_modules=int(caps.get("expansion_modules", 0) or 0),
                type=str(caps.get("type", "deskphone")),
                firmware_version=None if version == "*" else version,
            ),
        )
    vendor = str(info.get("vendor") or (vendors[0] if vendors else ""))
    return Manifest(
        id=plugin_id,
        version=str(info.get("version", "0")),
        vendor=vendor,
        description=str(info.get("description", "")),
        iface_version=0,
        models=models,
        identify=(),
        files=(),
        expected_misses=(),
        sync_event="check-sync",
        ouis=(),
        dhcp={},
        firmware={},
        capabilities=capabilities,
        raw=dict(info),
    )


def _safe(path: str) -> bool:
    if not path or "\\" in path or "\x00" in path:
        return False
    parts = PurePosixPath(path).parts
    return not PurePosixPath(path).is_absolute() and ".." not in parts


def _remember(memo: OrderedDict[str, Any], key: str, value: Any) -> Any:
    memo[key] = value
    if len(memo) > _MEMO:
        memo.popitem(last=False)
    return value


class WazoPlugin(Plugin):
    """A loaded wazo plugin; every call into plugin code goes to its worker."""

    remote = True
    """Calls may block (a worker round trip): the pipeline runs them off the event loop."""

    def __init__(
        self,
        root: Path,
        ident: WazoWorker,
        worker: WazoWorker,
        info: Mapping[str, Any],
        services: Mapping[str, str | None] | None = None,
    ) -> None:
        super().__init__(manifest_from_info(root.name, info), root)
        self.ident = ident
        """Identification calls (extract, associate, file-name rules): quick, never blocked by
        a configure that hangs in the other worker."""
        self.worker = worker
        """configure / configure_common / synchronize: may be slow, has its own process."""
        self.tftpboot = root / "var" / "tftpboot"
        served = {"http": "var/tftpboot", "tftp": "var/tftpboot"} if services is None else services
        self.services: dict[str, str] = {
            protocol: folder
            for protocol, folder in served.items()
            if protocol in ("http", "tftp") and isinstance(folder, str) and _safe(folder)
        }
        """Protocol → the plugin's folder served over it; a protocol missing serves nothing."""
        self.firmware_root = root
        """Routes name files by their path in the plugin folder (under a served folder)."""
        self._sensitive: OrderedDict[str, bool] = OrderedDict()
        self._triggers: OrderedDict[str, str | None] = OrderedDict()
        self._common_ready = False
        self._configured: dict[str, dict[str, Any]] = {}
        """Device id → the device document its files were last written for (to deconfigure)."""

    def close(self) -> None:
        """Stop the workers (uninstall, upgrade, shutdown)."""
        self.ident.close()
        self.worker.close()

    def _call(self, op: str, **args: Any) -> Any:
        try:
            return self.worker.call(op, **args)
        except WorkerError as exc:
            if exc.plugin_raised:
                # as on wazo-provd: a configure that raises leaves the device without a file
                raise NotFound(f"plugin {self.id}: {exc}") from None
            raise PluginError(f"plugin {self.id}: {exc}") from None

    # -- identification -------------------------------------------------------------------

    def extract(self, req: ProbeRequest) -> DeviceInfo | None:
        """The plugin's extractor for this protocol, run in the worker; None on failure."""
        args: dict[str, Any] = {"protocol": req.protocol, "path": req.path, "ip": req.client_ip}
        if req.protocol == "http":
            if req.user_agent is None and req.has_user_agent:
                return None  # wazo extractors saw this request whole, on the User-Agent probe
            path = req.request_path if req.user_agent is not None else req.path
            args.update(ua=req.user_agent, path=path or "", query=urlencode(dict(req.query)))
        elif req.protocol == "dhcp":
            option60 = req.dhcp_options.get(60)
            options = {"60": option60.decode("latin-1").rstrip("\x00")} if option60 else {}
            args.update(mac=req.mac or "", options=options)
        try:
            found = self.ident.call("extract", req=args)
        except WorkerError as exc:
            log.warning("plugin %s: extractor unavailable: %s", self.id, exc)
            return None
        if not isinstance(found, dict) or not found:
            return None
        # the worker runs third-party code: keep only device-info keys, of sane length
        info: DeviceInfo = {k: str(v)[:_MAX_INFO] for k, v in found.items() if k in INFO_KEYS and v}
        if "mac" in info:
            try:
                info["mac"] = normalize_mac(info["mac"])
            except InvalidInput:
                del info["mac"]
        return info or None

    def score(self, info: Mapping[str, str]) -> int:
        """The plugin associator's support level (same 0..600 scale as native scores)."""
        keys = ("vendor", "model", "version")
        try:
            level = self.ident.call(
                "associate", req={"info": {k: info[k] for k in keys if info.get(k)}}
            )
        except WorkerError as exc:
            log.warning("plugin %s: associator unavailable: %s", self.id, exc)
            return NONE
        # clamped: a plugin cannot outbid every other one for every device
        return min(max(level, NONE), EXACT) if isinstance(level, int) else NONE

    # -- files ----------------------------------------------------------------------------

    def route(self, path: str) -> FileRoute | None:
        """The route over any protocol the plugin serves (identification, scan defence)."""
        for protocol in ("http", "tftp"):
            found = self.route_for(path, protocol)
            if found is not None:
                return found
        return None

    def route_for(self, path: str, protocol: str) -> FileRoute | None:
        """A device file when the path names a MAC, else a file of the folder the plugin serves
        over ``protocol`` (HTTPS is HTTP); None when it serves nothing over it."""
        folder = self.services.get("tftp" if protocol == "tftp" else "http")
        if folder is None or not _safe(path):
            return None
        root = (self.root / folder).resolve()
        relative = f"{folder}/{path}"
        content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
        sensitive = self._is_sensitive(PurePosixPath(path).name)
        m = _MAC_IN_PATH.search(path)
        if m is not None:
            try:
                mac = normalize_mac(m.group(1))
            except InvalidInput:
                mac = None
            if mac is not None:
                trigger = self._trigger_for(mac) == path
                spec = FileSpec(_ANY, "device", None, sensitive, trigger, content_type, path)
                return FileRoute(spec=spec, path=relative, mac=mac)
        target = (root / path).resolve()
        if not target.is_relative_to(root):
            return None
        if target.is_file() and target.stat().st_size > STREAM_ABOVE:
            spec = FileSpec(_ANY, "firmware", None, sensitive, False, content_type, path)
            return FileRoute(spec=spec, path=relative)
        if target.is_file() or not self._common_ready:
            spec = FileSpec(_ANY, "common", None, sensitive, False, content_type, path)
            return FileRoute(spec=spec, path=relative)
        return None

    def _is_sensitive(self, name: str) -> bool:
        if name in self._sensitive:
            return bool(self._sensitive[name])
        try:
            answer = bool(self.ident.call("sensitive", req={"filename": name}))
        except WorkerError:
            return True  # unknown: treat as secret (served only under device credentials)
        return bool(_remember(self._sensitive, name, answer))

    def _trigger_for(self, mac: str) -> str | None:
        if mac in self._triggers:
            return self._triggers[mac]
        try:
            name = self.ident.call("trigger", req={"device": {"mac": mac}})
        except WorkerError:
            return None
        return _remember(self._triggers, mac, name if isinstance(name, str) else None)  # type: ignore[no-any-return]

    def is_expected_miss(self, path: str) -> bool:
        """wazo plugins declare no optional files."""
        return False

    def render(self, ctx: RenderContext, limits: RenderLimits | None = None) -> bytes:
        """Run ``configure`` (device files) or ``configure_common`` in the worker; the bytes.

        ``limits`` are the render budget's (``render.*``): they bound a configure that uses the
        tenant's template overrides; the worker's own deadline and memory cap (``wazo.*``) bound
        every call."""
        raw = json.loads(json.dumps(ctx.raw_config, default=str))
        if ctx.route.spec.kind == "device":
            # the device's tenant's REST overrides, for its own configure only (common files
            # are shared by every tenant's phones: only var/templates, install-wide, apply)
            overrides = dict(ctx.template_overrides)
            key = hashlib.sha256(
                json.dumps([ctx.device, raw, overrides], sort_keys=True, default=str).encode()
            ).hexdigest()
            if ctx.route.spec.sensitive and not ctx.with_secrets:
                raise NotFound(
                    f"{ctx.route.spec.name} holds secrets and needs the device's credentials"
                )
            device = json.loads(json.dumps(dict(ctx.device), default=str))
            self._configured[str(device.get("id"))] = device
            answer = self._call(
                "render",
                req={
                    "device": device,
                    "raw_config": raw,
                    "key": key,
                    "filename": ctx.route.path,
                    "overrides": overrides,
                    # the render budget's CPU time bounds a configure that uses overrides
                    "override_cpu_seconds": (limits or RenderLimits()).cpu_seconds,
                    "override_max_bytes": (limits or RenderLimits()).max_bytes,
                },
            )
        else:
            key = hashlib.sha256(
                json.dumps([ctx.device, raw], sort_keys=True, default=str).encode()
            ).hexdigest()
            self._call("configure_common", req={"raw_config": raw, "key": key})
            self._common_ready = True
            answer = self._call("render_common", req={"filename": ctx.route.path})
        if not isinstance(answer, dict) or "data" not in answer:
            raise NotFound(f"plugin {self.id} wrote no {ctx.route.spec.name}")
        return base64.b64decode(answer["data"])

    def device_changed(self, doc: Mapping[str, Any], *, deleted: bool) -> None:
        """Run the plugin's ``deconfigure`` when a device it configured is deleted, moves to
        another plugin or loses its config (as wazo-provd does); blocking, call off the loop."""
        device_id = str(doc.get("id"))
        if device_id not in self._configured:
            return
        if not deleted and doc.get("plugin") == self.id and doc.get("config"):
            return
        old = self._configured.pop(device_id)
        try:
            self.worker.call("deconfigure", req={"device": old})
        except WorkerError as exc:
            log.warning("plugin %s: deconfigure of %s failed: %s", self.id, device_id, exc)

    def package_root(self) -> Path:
        """The folder the plugin installs its packages into (inside the plugin)."""
        answer = self._call("package_root", req={})
        root = Path(str(answer)).resolve()
        if not root.is_relative_to(self.root.resolve()):
            raise PluginError(f"plugin {self.id}: package folder {root} is outside the plugin")
        return root

    def sync_event(self, device: Mapping[str, Any]) -> str:
        """The NOTIFY event the plugin's ``synchronize`` asks for; "" when it succeeded without
        asking for one (it did its own thing, provisor sends nothing)."""
        doc = json.loads(json.dumps(dict(device), default=str))
        answer = self._call("synchronize", req={"device": doc, "raw_config": {}})
        event = answer.get("event") if isinstance(answer, dict) else None
        return str(event) if event else ""
