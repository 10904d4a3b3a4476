"""Bring the loaded plugins in line with the plugin folders after another process changed them.

``provisor plugin install|upgrade|uninstall`` run from the CLI change ``<data_dir>/plugins``
and bump the ``plugins`` change counter; a running server on the same data directory then
calls :func:`resync_plugins`: a folder it has not loaded is loaded, a loaded plugin whose folder
is gone is unloaded, one whose folder now holds another version is loaded again. A folder that
fails to load is reported and the version already serving (if any) keeps serving.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from provisor.errors import PluginError
from provisor.plugins.loader import PluginSet, load_plugin
from provisor.plugins.manifest import load_manifest

__all__ = ["ResyncResult", "resync_plugins"]

log = logging.getLogger(__name__)


@dataclass
class ResyncResult:
    """What a resync changed."""

    added: list[str] = field(default_factory=list)
    reloaded: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def _on_disk(folders: Iterable[Path]) -> dict[str, Path]:
    """Plugin id → folder; later parent folders win, as in PluginSet.from_folders."""
    found: dict[str, Path] = {}
    for parent in folders:
        if not parent.is_dir():
            continue
        for root in sorted(parent.iterdir()):
            # dot folders are the manager's staging and rollback copies, never plugins
            if not root.name.startswith(".") and (root / "manifest.toml").is_file():
                found[root.name] = root
    return found


def resync_plugins(plugins: PluginSet, folders: Iterable[Path]) -> ResyncResult:
    """Load, reload or unload plugins so that ``plugins`` matches the folders."""
    result = ResyncResult()
    disk = _on_disk(folders)
    for plugin in list(plugins):
        if plugin.id not in disk:
            plugins.remove(plugin.id)
            result.removed.append(plugin.id)
    for plugin_id, root in disk.items():
        loaded = plugins.get(plugin_id)
        if loaded is not None and loaded.root == root:
            try:
                if load_manifest(root).version == loaded.version:
                    continue
            except PluginError as exc:
                result.failed[plugin_id] = exc.message
                continue
        try:
            plugins.add(load_plugin(root))
        except PluginError as exc:
            log.error("plugin not loaded: %s", exc.message)
            result.failed[plugin_id] = exc.message
            continue
        (result.added if loaded is None else result.reloaded).append(plugin_id)
    if result.added or result.reloaded or result.removed:
        log.info(
            "plugins changed on disk: added %s, reloaded %s, removed %s",
            result.added or "-",
            result.reloaded or "-",
            result.removed or "-",
        )
    return result
