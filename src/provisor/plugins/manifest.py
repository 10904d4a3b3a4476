"""Read and validate a plugin's ``manifest.toml`` into a :class:`Manifest`.

The manifest is data, so a third party can write most of a plugin without code, and CI can
check every plugin the hassfest way: required keys, an ``id`` equal to the folder name, regexes
that compile, files whose templates exist. The manifest is also read from outside (an archive
from a repository), so its id, version, firmware package ids and package file names must pass
:mod:`provisor.domain.ids` before any of them is used in a path.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from provisor.domain import ids
from provisor.errors import InvalidInput, PluginError
from provisor.plugins.contract import SPECIFICITY, FileSpec, IdentifyRule, Manifest, ModelInfo

__all__ = ["IFACE_VERSION", "load_manifest", "parse_manifest"]

#: The plugin interface version this host implements.
IFACE_VERSION = 1

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
    pid = _valid(ids.plugin_id, _req_str(data, "id"), "manifest: id")
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
        version=_valid(ids.version, _req_str(data, "version", where), f"{where}: version"),
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
        firmware=_firmware(_table(data, "firmware", where), where),
        capabilities=_table(data, "capabilities", where),
        owners=tuple(str(o) for o in data.get("owners", [])),
        raw=dict(data),
        no_version_files=tuple(
            _regex(p, f"{where}: no_version_files[{i}]")
            for i, p in enumerate(data.get("no_version_files", []))
        ),
    )


def _valid(rule: Callable[[object, str], str], value: object, field: str) -> str:
    """``rule(value)``, its InvalidInput turned into the PluginError of a manifest."""
    try:
        return rule(value, field)
    except InvalidInput as exc:
        raise PluginError(exc.message) from None


def _firmware(packages: dict[str, Any], where: str) -> dict[str, Any]:
    """Firmware packages: ids, url, size, sha256 and file names safe to use in paths."""
    for pkg, spec in packages.items():
        at = f"{where}: firmware.{pkg}"
        _valid(ids.package_id, pkg, f"{where}: firmware package id")
        if not isinstance(spec, dict):
            raise PluginError(f"{at} must be a table")
        url = spec.get("url")
        if url is not None:
            if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https", "file"):
                raise PluginError(f"{at}: url {url!r} must be an http, https or file URL")
            if "files" not in spec:  # the download itself is the file, named after the URL
                _valid(ids.file_name, PurePosixPath(urlsplit(url).path).name, f"{at}: url")
        size = spec.get("size")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
            raise PluginError(f"{at}: size must be a non-negative integer")
        sha = spec.get("sha256")
        if sha is not None and not (isinstance(sha, str) and re.fullmatch(r"[0-9a-fA-F]{64}", sha)):
            raise PluginError(f"{at}: sha256 must be 64 hex digits")
        files = spec.get("files", [])
        if not isinstance(files, list) or not all(isinstance(f, dict) for f in files):
            raise PluginError(f"{at}: files must be an array of {{src, dest}} tables")
        for i, item in enumerate(files):
            _valid(ids.relative_path, item.get("dest"), f"{at}: files[{i}].dest")
            if item.get("src") is not None:
                _valid(ids.relative_path, item["src"], f"{at}: files[{i}].src")
    return packages


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
    specificity = rule.get("specificity", 0)
    if isinstance(specificity, str):
        if specificity not in SPECIFICITY:
            raise PluginError(
                f"{at}: specificity {specificity!r} must be one of {list(SPECIFICITY)}"
            )
        specificity = SPECIFICITY[specificity]
    elif not isinstance(specificity, int) or isinstance(specificity, bool) or specificity < 0:
        raise PluginError(f"{at}: specificity must be a name or a non-negative integer")
    unless = rule.get("version_unless")
    return IdentifyRule(
        source=source,
        regex=_regex(rule.get("regex"), at),
        vendor=rule.get("vendor"),
        model=rule.get("model"),
        protocols=protocols,
        specificity=specificity,
        version_unless=None if unless is None else _regex(unless, f"{at}: version_unless"),
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
