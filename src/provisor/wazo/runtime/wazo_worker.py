"""The wazo plugin worker: loads one wazo-format plugin and answers the server's requests.

Run as ``python wazo_worker.py <plugin_dir>`` by provisor.wazo.worker, never imported by the
server. It puts this folder on ``sys.path`` (the ``wazo_provd`` stand-in, with ``provd`` as an
alias for older plugins), runs the plugin's ``entry.py`` with the ``execfile_`` helper those
plugins expect, and then reads one JSON request per line on stdin and writes one JSON answer
per line. The protocol uses a private copy of the original stdout; the plugin's own prints go
to stderr. End of input means the server is gone: the worker exits.
"""

from __future__ import annotations

import base64
import importlib
import json
import logging
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

HERE = Path(__file__).resolve().parent
_SUBMODULES = (
    "plugins",
    "util",
    "tzinform",
    "synchronize",
    "devices",
    "devices.config",
    "devices.ident",
    "devices.pgasso",
    "servers",
    "servers.http",
    "servers.http_site",
    "servers.tftp",
    "servers.tftp.packet",
    "servers.tftp.service",
)
_INFO_KEYS = ("vendor", "model", "version", "mac", "sn", "uuid")
_MAX_FILE = 4 * 1024 * 1024
_OPS = frozenset(
    {
        "extract",
        "associate",
        "package_root",
        "configure_common",
        "render",
        "render_common",
        "deconfigure",
        "trigger",
        "sensitive",
        "synchronize",
        "ping",
    }
)


def _install_api() -> None:
    """Make ``wazo_provd`` importable, and ``provd`` the same modules (wazo < 24.02 plugins)."""
    sys.path.insert(0, str(HERE))
    sys.modules["provd"] = importlib.import_module("wazo_provd")
    for name in _SUBMODULES:
        sys.modules[f"provd.{name}"] = importlib.import_module(f"wazo_provd.{name}")


def _execfile_for(plugin_dir: Path) -> Callable[..., None]:
    def execfile_(filename: str, globals_: dict[str, Any] | None = None, *_: Any) -> None:
        target = (plugin_dir / filename).resolve()
        if not target.is_relative_to(plugin_dir):
            raise ImportError(f"execfile_: {filename!r} is outside the plugin")
        scope = globals_ if globals_ is not None else {}
        scope.setdefault("execfile_", execfile_)
        scope.setdefault("__name__", f"wazo_plugin.{target.stem}")
        code = compile(target.read_text(encoding="utf-8"), str(target), "exec", dont_inherit=True)
        exec(code, scope)  # the worker exists to run this third-party code, isolated

    return execfile_


def _load(plugin_dir: Path, gen_cfg: dict[str, Any]) -> Any:
    info = json.loads((plugin_dir / "plugin-info").read_text(encoding="utf-8"))
    scope: dict[str, Any] = {"__name__": "wazo_plugin.entry"}
    _execfile_for(plugin_dir)("entry.py", scope)
    classes = [v for v in scope.values() if isinstance(v, type) and getattr(v, "IS_PLUGIN", False)]
    if len(classes) != 1:
        raise ImportError(f"entry.py defines {len(classes)} plugin classes (IS_PLUGIN), not 1")
    plugin = classes[0](None, str(plugin_dir), gen_cfg, {})
    plugin.id = plugin_dir.name
    return plugin, info


def _service_folder(service: Any, plugin_dir: Path) -> str | None:
    """The folder (relative to the plugin) a plugin's ``http_service``/``tftp_service`` serves.

    ``HTTPNoListingFileService(dir)`` and ``TFTPFileService(dir)`` serve ``dir``; ``None`` (the
    plugin does not serve that protocol), ``TFTPNullService``, ``NoResource`` and any other
    resource serve nothing here, nor does a folder outside the plugin.
    """
    from wazo_provd.servers.http import HTTPNoListingFileService
    from wazo_provd.servers.tftp.service import TFTPFileService

    if not isinstance(service, HTTPNoListingFileService | TFTPFileService):
        return None
    if not isinstance(service.path, str):
        return None
    target = (plugin_dir / service.path).resolve()  # a relative folder is the plugin's
    if not target.is_relative_to(plugin_dir) or target == plugin_dir:
        return None
    return target.relative_to(plugin_dir).as_posix()


def services_of(plugin: Any, plugin_dir: Path) -> dict[str, str | None]:
    """The folder served over each protocol (None: nothing is served over it)."""
    return {
        "http": _service_folder(getattr(plugin, "http_service", None), plugin_dir),
        "tftp": _service_folder(getattr(plugin, "tftp_service", None), plugin_dir),
    }


def _settle(value: Any) -> Any:
    """The result of a Deferred that already fired (no reactor runs here), else the value."""
    from twisted.internet import defer
    from twisted.python.failure import Failure

    if not isinstance(value, defer.Deferred):
        return value
    box: list[Any] = []
    value.addBoth(box.append)
    if not box:
        raise RuntimeError("the plugin returned a Deferred that never fired")
    if isinstance(box[0], Failure):
        box[0].raiseException()
    return box[0]


class Worker:
    """Dispatches requests to the loaded plugin."""

    def __init__(self, plugin: Any, info: dict[str, Any], plugin_dir: Path) -> None:
        self.plugin = plugin
        self.info = info
        self.plugin_dir = plugin_dir
        self.tftpboot = (plugin_dir / "var" / "tftpboot").resolve()
        self.services = services_of(plugin, plugin_dir)
        self.roots = [(plugin_dir / f).resolve() for f in self.services.values() if f is not None]
        """The folders the server may ask files of (what the plugin serves, nothing else)."""
        self.configured: dict[str, str] = {}
        self.common_key: str | None = None

    def op_extract(self, req: dict[str, Any]) -> dict[str, str] | None:
        from wazo_provd.devices.ident import RequestType
        from wazo_provd.servers.http_site import Request

        protocol = req["protocol"]
        request: Any
        if protocol == "http":
            extractor = self.plugin.http_dev_info_extractor
            headers = {b"user-agent": req["ua"].encode("latin-1")} if req.get("ua") else {}
            args: dict[bytes, list[bytes]] = {}
            for k, v in parse_qsl(req.get("query", ""), keep_blank_values=True):
                args.setdefault(k.encode(), []).append(v.encode())
            path = ("/" + req.get("path", "")).encode("latin-1")
            request = Request(path, headers, args, req.get("ip", ""))
            kind = RequestType.HTTP
        elif protocol == "tftp":
            extractor = self.plugin.tftp_dev_info_extractor
            packet = {
                "opcode": b"\x00\x01",
                "filename": req.get("path", "").encode("latin-1"),
                "mode": b"octet",
                "options": {},
            }
            request = {"address": (req.get("ip", ""), 69), "packet": packet, "rfc2347": False}
            kind = RequestType.TFTP
        else:
            extractor = self.plugin.dhcp_dev_info_extractor
            options = {int(k): v for k, v in req.get("options", {}).items()}
            request = {"ip": req.get("ip", ""), "mac": req.get("mac", ""), "options": options}
            kind = RequestType.DHCP
        if extractor is None:
            return None
        found = _settle(extractor.extract(request, kind))
        if not isinstance(found, dict):
            return None
        return {k: str(v) for k, v in found.items() if k in _INFO_KEYS and v}

    def op_associate(self, req: dict[str, Any]) -> int:
        associator = self.plugin.pg_associator
        if associator is None:
            return 0
        return int(associator.associate(dict(req["info"])))

    def op_configure_common(self, req: dict[str, Any]) -> None:
        if req["key"] != self.common_key:
            self.plugin.configure_common(dict(req["raw_config"]))
            self.common_key = req["key"]

    def op_render(self, req: dict[str, Any]) -> dict[str, Any]:
        """Configure the device when its document or config changed, then read its file."""
        from wazo_provd import _tenant_templates

        device, key = req["device"], req["key"]
        if self.configured.get(device["id"]) != key:
            self.configured.pop(device["id"], None)
            # the device's tenant overrides (the server's key covers them): this call only
            limits = (
                float(req.get("override_cpu_seconds") or 1.0),
                int(req.get("override_max_bytes") or 4 * 1024 * 1024),
            )
            with _tenant_templates.overrides(req.get("overrides"), *limits):
                self.plugin.configure(dict(device), dict(req["raw_config"]))
            self.configured[device["id"]] = key
        return self._read(req["filename"])

    def op_render_common(self, req: dict[str, Any]) -> dict[str, Any]:
        return self._read(req["filename"])

    def op_deconfigure(self, req: dict[str, Any]) -> None:
        self.configured.pop(req["device"].get("id", ""), None)
        self.plugin.deconfigure(dict(req["device"]))

    def _read(self, filename: str) -> dict[str, Any]:
        """A file the plugin wrote, by its path in the plugin folder, within a served folder."""
        target = (self.plugin_dir / filename).resolve()
        if not any(target.is_relative_to(root) for root in self.roots) or not target.is_file():
            return {"missing": True}
        if target.stat().st_size > _MAX_FILE:
            return {"too_large": True}
        return {"data": base64.b64encode(target.read_bytes()).decode("ascii")}

    def op_trigger(self, req: dict[str, Any]) -> str | None:
        name = self.plugin.get_remote_state_trigger_filename(dict(req["device"]))
        return str(name) if name else None

    def op_sensitive(self, req: dict[str, Any]) -> bool:
        return bool(self.plugin.is_sensitive_filename(req["filename"]))

    def op_synchronize(self, req: dict[str, Any]) -> dict[str, Any]:
        from wazo_provd import synchronize

        synchronize.pop_requests()
        _settle(self.plugin.synchronize(dict(req["device"]), dict(req["raw_config"])))
        asked = synchronize.pop_requests()
        return {"event": asked[0]["event"] if asked else None}

    def op_package_root(self, req: dict[str, Any]) -> str:
        """Where the plugin wants its packages' files (its FetchfwPluginHelper's root_dir)."""
        services = self.plugin.services or {}
        root = (
            getattr(services.get("install"), "root_dir", None)
            if isinstance(services, dict)
            else None
        )
        return str(root or self.tftpboot)

    def op_ping(self, req: dict[str, Any]) -> str:
        return "pong"


def main() -> int:
    """Serve requests until stdin closes."""
    proto_out = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)  # a plugin's print() must not corrupt the protocol
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    plugin_dir = Path(sys.argv[1]).resolve()
    gen_cfg = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    os.chdir(plugin_dir)

    def send(doc: dict[str, Any]) -> None:
        proto_out.write(json.dumps(doc) + "\n")

    try:
        _install_api()
        plugin, info = _load(plugin_dir, gen_cfg)
    except BaseException as exc:  # report any load failure to the server, then stop
        send({"ok": False, "error": f"{type(exc).__name__}: {exc}"})
        return 1
    worker = Worker(plugin, info, plugin_dir)
    send({"ok": True, "result": {"info": info, "services": worker.services}})
    for line in sys.stdin:
        try:
            doc = json.loads(line)
            handler = getattr(worker, f"op_{doc['op']}", None) if doc["op"] in _OPS else None
            if handler is None:
                raise ValueError(f"unknown operation {doc['op']!r}")
            result = handler(doc.get("req") or {})
            send({"ok": True, "result": result})
        except Exception as exc:
            logging.getLogger("wazo_worker").debug("request failed", exc_info=True)
            send({"ok": False, "error": f"{type(exc).__name__}: {exc}", "where": _where()})
    return 0


def _where() -> str:
    lines = traceback.format_exc().strip().splitlines()
    return lines[-3] if len(lines) >= 3 else ""


if __name__ == "__main__":
    sys.exit(main())
