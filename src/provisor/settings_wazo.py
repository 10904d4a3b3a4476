"""wazo-provd's ``config.yml`` keys, read the way wazo-provd reads them.

An operator who replaces wazo-provd keeps ``/etc/wazo-provd/config.yml`` and its ``conf.d/``.
Every key wazo-provd knows is either moved to the provisor setting that means the same thing
or dropped with a warning that says why provisor has no use for it; provisor's own sections
stay strict, so a typo in them is still refused by name. The table below is the whole list:
a key that is in neither it nor provisor's settings is an error, as before.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["translate_wazo_keys"]

# wazo-provd key (dotted) -> provisor key it means, when provisor's own is not set.
# A section moves key by key, so a typo inside it is refused under provisor's name.
_MOVED: dict[str, str] = {
    "general.syncdb": "syncdb",
    "general.http_port": "provisioning.http_port",
}

# wazo-provd keys it reads with int(): the same value means the same thing here (0.1 is 0).
_WHOLE_SECONDS = ("general.syncdb.start_sec", "general.syncdb.interval_sec")

# wazo-provd keys provisor accepts and does not use, with the reason given to the operator.
_UNUSED: dict[str, str] = {
    "config_file": "provisor is given its file with --config",
    "extra_config_files": "provisor reads the conf.d/ folder beside its config file",
    "general.request_config_dir": "provisor's request pipeline is not configured by files",
    "general.info_extractor": "provisor's request pipeline is not configured by files",
    "general.retriever": "provisor's request pipeline is not configured by files",
    "general.updater": "provisor's request pipeline is not configured by files",
    "general.cache_dir": "provisor keeps downloads in its data directory",
    "general.cache_plugin": "provisor keeps downloads in its data directory",
    "general.base_storage_dir": "provisor keeps its state in general.data_dir",
    "general.check_compat_min": "provisor checks a plugin's interface version itself",
    "general.check_compat_max": "provisor checks a plugin's interface version itself",
    "general.external_ip": "set general.advertised_http_url instead",
    "general.asterisk_ami_servers": "provisor reaches Asterisk through sync.ami_*",
    "rest_api.ssl": "provisor's REST listener has no TLS: put it behind a TLS proxy",
    "rest_api.ssl_certfile": "provisor's REST listener has no TLS: put it behind a TLS proxy",
    "rest_api.ssl_keyfile": "provisor's REST listener has no TLS: put it behind a TLS proxy",
    "database.type": "provisor stores data in database.url (import with provisor import)",
    "database.generator": "provisor makes its own ids",
    "database.ensure_common_indexes": "provisor creates its indexes by migration",
    "database.json_db_dir": "provisor stores data in database.url (import with provisor import)",
    "database.uri": "wazo-provd's database is not provisor's: import it with provisor import",
    "database.pool_size": "provisor sizes its own connection pool",
    "amid": "provisor talks AMI directly: set sync.ami_host, ami_username and ami_secret",
    "tenants": "tenants come from wazo-auth or provisor's tenant commands",
}


def _pop(data: dict[str, Any], dotted: str) -> tuple[bool, Any]:
    node: Any = data
    *parents, last = dotted.split(".")
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            return False, None
    if not isinstance(node, dict) or last not in node:
        return False, None
    value = node.pop(last)
    for depth in range(len(parents), 0, -1):  # drop sections the move left empty
        parent = data
        for part in parents[: depth - 1]:
            parent = parent[part]
        if parent.get(parents[depth - 1]) == {}:
            del parent[parents[depth - 1]]
        else:
            break
    return True, value


def _has(data: dict[str, Any], dotted: str) -> bool:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _put(data: dict[str, Any], dotted: str, value: Any) -> None:
    node = data
    *parents, last = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


def _base_raw_config_file(data: dict[str, Any], path: Any, warn: Callable[[str], None]) -> None:
    """wazo-provd's base raw config file: its keys go under general.base_raw_config."""
    try:
        loaded = json.loads(Path(str(path)).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        warn(f"general.base_raw_config_file: not read ({exc.__class__.__name__}: {exc})")
        return
    if not isinstance(loaded, dict):
        warn("general.base_raw_config_file: not a JSON object, ignored")
        return
    general = data.setdefault("general", {})
    own = general.get("base_raw_config") or {}
    general["base_raw_config"] = {**loaded, **own}


def _as_wazo_reads(key: str, value: Any, warn: Callable[[str], None]) -> Any:
    """A wazo-provd value as wazo-provd reads it (whole seconds for the syncdb timers)."""
    if key not in _WHOLE_SECONDS or isinstance(value, bool) or not isinstance(value, int | float):
        return value  # anything else is checked, and refused by name, as provisor's own key
    whole = int(value)
    if whole != value:
        warn(f"{key}: {value} read as {whole} s, as wazo-provd reads it (whole seconds)")
    return whole


def translate_wazo_keys(data: dict[str, Any]) -> list[str]:
    """Move or drop wazo-provd's keys in ``data`` (in place); returns the warnings to log."""
    warnings: list[str] = []
    for wazo_key, own_key in _MOVED.items():
        found, value = _pop(data, wazo_key)
        if not found:
            continue
        moves = value.items() if isinstance(value, dict) else [(None, value)]
        for sub, item in moves:
            src = f"{wazo_key}.{sub}" if sub else wazo_key
            dst = f"{own_key}.{sub}" if sub else own_key
            if _has(data, dst):
                warnings.append(f"{src}: ignored, {dst} is set")
            else:
                _put(data, dst, _as_wazo_reads(src, item, warnings.append))
    found, path = _pop(data, "general.base_raw_config_file")
    if found and path:
        _base_raw_config_file(data, path, warnings.append)
    found, proxies = _pop(data, "proxy")
    if found and isinstance(proxies, dict):
        # wazo-provd's initial proxy parameters; values set through the API win.
        data["proxy"] = {str(k): v for k, v in proxies.items() if k in ("http", "https", "ftp")}
        warnings.extend(
            f"proxy.{k}: ignored, only http, https and ftp are proxy parameters"
            for k in proxies
            if k not in ("http", "https", "ftp")
        )
    for wazo_key, reason in _UNUSED.items():
        found, _ = _pop(data, wazo_key)
        if found:
            warnings.append(f"{wazo_key}: accepted and not used ({reason})")
    return warnings
