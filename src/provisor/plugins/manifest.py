"""Read and validate a plugin's ``manifest.toml`` into a :class:`Manifest`.

The manifest is data, so a third party can write most of a plugin without code, and CI can
check every plugin the hassfest way: required keys, an ``id`` equal to the folder name, regexes
that compile, files whose templates exist.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from provisor.errors import PluginError
from provisor.plugins.contract import FileSpec, IdentifyRule, Manifest, ModelInfo

__all__ = ["IFACE_VERSION", "load_manifest", "parse_manifest"]

#: The plugin interface version this host implements.
IFACE_VERSION = 1

_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_KINDS = {"device", "common", "static", "firmware"}
_SOURCES = re.compile(r"^(ua|path|dhcp60|query:[A-Za-z0-9_]+)$")


def load_manifest(root: Path) -> Manifest:
    """Load ``root/manifest.toml``; raise PluginError naming the problem."""
    path = root / "manifest.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PluginError(f"plugin at {root.name!r} has no manifest.toml") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PluginError(f"plugin {root.name!r}: manifest.toml is not valid TOML: {exc}") from None
    manifest = parse_manifest(data)
    _check_files_exist(manifest, root)
    return manifest


def parse_manifest(data: Mapping[str, Any]) -> Manifest:
    """Validate a manifest mapping; raise PluginError naming the first problem."""
    pid = _req_str(data, "id")
    if not _ID.match(pid):
        raise PluginError(f"manifest: id {pid!r} must match {_ID.pattern}")
    where = f"plugin {pid!r}: manifest"
    iface = data.get("iface_version", 1)
    if not isinstance(iface, int) or iface != IFACE_VERSION:
        raise PluginError(f"{where}: iface_version {iface!r} is not supported (host: 1)")
    models = {
        name: _model(name, spec, where) for name, spec in _table(data, "models", where).items()
    }
    identify = tuple(_rule(i, rule, where) for i, rule in enumerate(_list(data, "identify", where)))
    files = tuple(_file(i, spec, where) for i, spec in enumerate(_list(data, "files", where)))
    misses = tuple(
        _regex(p, f"{where}: expected_misses[{i}]")
        for i, p in enumerate(data.get("expected_misses", []))
    )
    sync = _table(data, "sync", where)
    return Manifest(
        id=pid,
        version=_req_str(data, "version", where),
        vendor=_req_str(data, "vendor", where),
        description=str(data.get("description", "")),
        iface_version=iface,
        models=models,
        identify=identify,
        files=files,
        expected_misses=misses,
        sync_event=str(sync.get("event", "check-sync")),
        ouis=tuple(str(o).lower() for o in data.get("ouis", [])),
        dhcp=_table(data, "dhcp", where),
        firmware=_table(data, "firmware", where),
        capabilities=_table(data, "capabilities", where),
        owners=tuple(str(o) for o in data.get("owners", [])),
        raw=dict(data),
    )


def _req_str(data: Mapping[str, Any], key: str, where: str = "manifest") -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise PluginError(f"{where}: {key!r} is required and must be a non-empty string")
    return value


def _table(data: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise PluginError(f"{where}: {key!r} must be a table")
    return value


def _list(data: Mapping[str, Any], key: str, where: str) -> list[dict[str, Any]]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise PluginError(f"{where}: {key!r} must be an array of tables")
    return value


def _regex(pattern: object, where: str) -> re.Pattern[str]:
    if not isinstance(pattern, str):
        raise PluginError(f"{where}: regex must be a string")
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise PluginError(f"{where}: invalid regex {pattern!r}: {exc}") from None


def _rule(i: int, rule: Mapping[str, Any], where: str) -> IdentifyRule:
    at = f"{where}: identify[{i}]"
    source = rule.get("source")
    if not isinstance(source, str) or not _SOURCES.match(source):
        raise PluginError(f"{at}: source {source!r} must be ua, path, dhcp60 or query:<name>")
    protocols = tuple(rule.get("protocols", ("http", "tftp", "dhcp")))
    return IdentifyRule(
        source=source,
        regex=_regex(rule.get("regex"), at),
        vendor=rule.get("vendor"),
        model=rule.get("model"),
        protocols=protocols,
    )


def _file(i: int, spec: Mapping[str, Any], where: str) -> FileSpec:
    at = f"{where}: files[{i}]"
    kind = spec.get("kind")
    if kind not in _KINDS:
        raise PluginError(f"{at}: kind {kind!r} must be one of {sorted(_KINDS)}")
    template = spec.get("template")
    if kind in ("device", "common", "static") and not isinstance(template, str):
        raise PluginError(f"{at}: a {kind} file needs a 'template'")
    return FileSpec(
        pattern=_regex(spec.get("pattern"), at),
        kind=kind,
        template=template,
        sensitive=bool(spec.get("sensitive", False)),
        trigger=bool(spec.get("trigger", False)),
        content_type=str(spec.get("content_type", "application/octet-stream")),
        name=str(spec.get("name", template or "")),
    )


def _model(name: str, spec: object, where: str) -> ModelInfo:
    if not isinstance(spec, dict):
        raise PluginError(f"{where}: models.{name} must be a table")
    known = {"lines", "function_keys", "expansion_modules", "type", "firmware_version"}
    return ModelInfo(
        name=name,
        lines=int(spec.get("lines", 1)),
        function_keys=int(spec.get("function_keys", 0)),
        expansion_modules=int(spec.get("expansion_modules", 0)),
        type=str(spec.get("type", "deskphone")),
        firmware_version=spec.get("firmware_version"),
        firmware_file=spec.get("firmware_file"),
        extra={k: v for k, v in spec.items() if k not in known | {"firmware_file"}},
    )


def _check_files_exist(manifest: Manifest, root: Path) -> None:
    for spec in manifest.files:
        if spec.template is None:
            continue
        folder = "static" if spec.kind == "static" else "templates"
        if "{" in spec.template:
            continue  # templated name, resolved per request
        if not (root / folder / spec.template).is_file():
            raise PluginError(
                f"plugin {manifest.id!r}: {folder}/{spec.template} named in manifest is missing"
            )
