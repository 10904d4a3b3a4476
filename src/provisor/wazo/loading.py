"""Load a wazo-format plugin folder: validate ``plugin-info``, start its worker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from provisor.domain import ids
from provisor.errors import InvalidInput, PluginError
from provisor.wazo.plugin import WazoPlugin
from provisor.wazo.worker import WazoWorker, WorkerError

if TYPE_CHECKING:
    from provisor.settings import WazoSettings

__all__ = ["load_wazo_plugin"]

_MAX_INFO = 1024 * 1024


def load_wazo_plugin(root: Path, settings: WazoSettings | None = None) -> WazoPlugin:
    """Check the folder, start a worker that loads ``entry.py``, and wrap it."""
    from provisor.settings import WazoSettings

    cfg = settings or WazoSettings()
    try:
        ids.plugin_id(root.name, "plugin folder")
    except InvalidInput as exc:
        raise PluginError(exc.message) from None
    info_file = root / "plugin-info"
    if info_file.stat().st_size > _MAX_INFO:
        raise PluginError(f"plugin {root.name!r}: plugin-info is larger than {_MAX_INFO} bytes")
    try:
        info = json.loads(info_file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise PluginError(f"plugin {root.name!r}: plugin-info is not JSON: {exc}") from None
    if not isinstance(info, dict) or not isinstance(info.get("version"), str):
        raise PluginError(f"plugin {root.name!r}: plugin-info needs a string 'version'")
    if not (root / "entry.py").is_file():
        raise PluginError(f"plugin {root.name!r}: entry.py is missing")
    for sub in ("var/tftpboot", "var/templates", "var/cache", "var/installed"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    # two processes: identification never waits behind a configure (the second starts on use)
    ident, worker = (
        WazoWorker(
            root,
            timeout=cfg.worker_timeout,
            start_timeout=cfg.worker_start_timeout,
            memory_mb=cfg.worker_memory_mb,
        )
        for _ in range(2)
    )
    try:
        ident.start()
    except WorkerError as exc:
        ident.close()
        raise PluginError(f"plugin {root.name!r}: {exc}") from None
    return WazoPlugin(root, ident, worker, info, ident.services)
