"""Load plugins from folders and keep the set of loaded plugins.

A plugin folder holds ``manifest.toml``, optionally ``plugin.py`` (imported as a module, never
``exec``'d) defining ``class Plugin(provisor.plugins.base.Plugin)``, ``templates/`` and
``static/``. A folder with wazo's ``plugin-info`` instead is a wazo-format plugin: it runs in a
worker process (provisor.wazo). A plugin that fails to load is reported and skipped: the others
keep serving.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.version import InvalidVersion, Version

from provisor.domain.ids import is_plugin_id
from provisor.errors import PluginError
from provisor.plugins.base import Plugin
from provisor.plugins.contract import (
    PROBABLE,
    DeviceInfo,
    ProbeRequest,
    Protocol_,
    clean_user_agent,
)
from provisor.plugins.manifest import load_manifest

if TYPE_CHECKING:
    from provisor.settings import WazoSettings

__all__ = ["Identification", "LoadError", "PluginSet", "load_plugin", "version_key"]

log = logging.getLogger(__name__)


def version_key(version: str) -> tuple[int, Version | str]:
    """Sort key comparing versions as versions; unparsable ones sort first, as text."""
    try:
        return (1, Version(version))
    except InvalidVersion:
        return (0, version)


def is_plugin_folder(root: Path) -> bool:
    """True for a native (manifest.toml) or wazo-format (plugin-info) plugin folder."""
    return (root / "manifest.toml").is_file() or (root / "plugin-info").is_file()


def load_plugin(
    root: Path, wazo: WazoSettings | None = None, *, serve_from: Path | None = None
) -> Plugin:
    """Load the plugin in ``root``; raise PluginError naming the problem.

    ``serve_from`` is the folder the plugin will serve its files from when that is not
    ``root`` yet: an install loads the staged copy, then moves it there and swaps the plugin
    in at once, so no request ever sees an old plugin with new files or no folder at all.
    A wazo-format plugin (``plugin-info``) is loaded by :mod:`provisor.wazo` into worker
    processes; the server never imports its code.
    """
    if not (root / "manifest.toml").is_file() and (root / "plugin-info").is_file():
        from provisor.wazo.loading import load_wazo_plugin  # only when one is installed

        return load_wazo_plugin(root, wazo)
    manifest = load_manifest(root)
    home = serve_from or root
    if manifest.id != home.name:
        raise PluginError(f"plugin folder {home.name!r} holds manifest id {manifest.id!r}")
    code = root / "plugin.py"
    if not code.is_file():
        return Plugin(manifest, home)
    module_name = _module_name(manifest.id)
    spec = importlib.util.spec_from_file_location(module_name, code)
    if spec is None or spec.loader is None:
        raise PluginError(f"plugin {manifest.id!r}: cannot import plugin.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(module_name, None)
        raise PluginError(f"plugin {manifest.id!r}: plugin.py failed to import: {exc}") from exc
    cls = getattr(module, "Plugin", None)
    if not (isinstance(cls, type) and issubclass(cls, Plugin)):
        raise PluginError(f"plugin {manifest.id!r}: plugin.py defines no Plugin subclass")
    try:
        return cls(manifest, home)
    except Exception as exc:
        raise PluginError(f"plugin {manifest.id!r}: failed to start: {exc}") from exc


def _module_name(plugin_id: str) -> str:
    """A module name per plugin id, one-to-one (``a-b`` and ``a_b`` must not share one)."""
    escaped = plugin_id.replace("_", "__").replace("-", "_h").replace(".", "_d")
    return f"provisor_plugin_{escaped}"


@dataclass(frozen=True, slots=True)
class LoadError:
    """A plugin folder that could not be loaded, and why."""

    folder: str
    message: str


class PluginSet:
    """The loaded plugins, by id; identification across all of them."""

    def __init__(self, plugins: Iterable[Plugin] = ()) -> None:
        self._plugins: dict[str, Plugin] = {p.id: p for p in plugins}
        self.errors: list[LoadError] = []
        self.generation = 0
        """Bumped on every add/remove: caches of plugin output key on it."""

    @classmethod
    def from_folders(cls, folders: Iterable[Path], wazo: WazoSettings | None = None) -> PluginSet:
        """Load every plugin under the given parent folders; later folders win on id clash."""
        found = cls()
        for parent in folders:
            if not parent.is_dir():
                continue
            for root in sorted(p for p in parent.iterdir() if is_plugin_folder(p)):
                if root.name.startswith("."):
                    continue  # an install's staging or replaced folder, not a plugin
                if not is_plugin_id(root.name):
                    message = f"plugin folder {root.name!r} is not a valid plugin id"
                    log.error("plugin not loaded: %s", message)
                    found.errors.append(LoadError(root.name, message))
                    continue
                try:
                    found.add(load_plugin(root, wazo))
                except PluginError as exc:
                    log.error("plugin not loaded: %s", exc.message)
                    found.errors.append(LoadError(root.name, exc.message))
        return found

    def add(self, plugin: Plugin) -> None:
        """Add or replace a plugin (an upgrade swaps the object atomically)."""
        old = self._plugins.get(plugin.id)
        self._plugins[plugin.id] = plugin
        self.generation += 1
        if old is not None and old is not plugin:
            _close(old)

    def remove(self, plugin_id: str) -> Plugin | None:
        """Unload a plugin; returns it if it was loaded."""
        self.generation += 1
        plugin = self._plugins.pop(plugin_id, None)
        if plugin is not None:
            _close(plugin)
        return plugin

    @property
    def has_remote(self) -> bool:
        """True when a plugin runs in a worker (its calls must leave the event loop)."""
        return any(getattr(p, "remote", False) for p in self._plugins.values())

    def close(self) -> None:
        """Stop every plugin worker."""
        for plugin in self._plugins.values():
            _close(plugin)

    def get(self, plugin_id: str | None) -> Plugin | None:
        """The plugin with this id, if loaded."""
        return self._plugins.get(plugin_id) if plugin_id else None

    def __iter__(self) -> Iterator[Plugin]:
        return iter(list(self._plugins.values()))

    def __len__(self) -> int:
        return len(self._plugins)

    def __contains__(self, plugin_id: object) -> bool:
        return plugin_id in self._plugins

    def ids(self) -> list[str]:
        """Sorted ids of the loaded plugins."""
        return sorted(self._plugins)

    def extract(self, req: ProbeRequest) -> dict[str, str]:
        """The device info of the most specific match across plugins (see :meth:`identify`)."""
        return self.identify(req).info

    def identify(self, req: ProbeRequest) -> Identification:
        """Rank every plugin's match by specificity; the most specific wins, failures isolated.

        Less specific matches only fill keys the winner lacks, and only when they name the
        same vendor: a generic rule of one plugin never outvotes another's specific one. Two
        plugins tied at the top that disagree are both reported in ``ties``; the majority
        among them wins, then the one whose OUIs hold the MAC found, then the first plugin id,
        so the choice is stable."""
        found: list[tuple[int, str, DeviceInfo]] = []
        for plugin in self:
            try:
                ranked = plugin.identify(req)
            except Exception:
                log.exception("plugin %s: extractor failed", plugin.id)
                continue
            if ranked is not None and ranked[0]:
                found.append((ranked[1], plugin.id, dict(ranked[0])))
        if not found:
            return Identification({})
        top = max(rank for rank, _, _ in found)
        best = [(pid, info) for rank, pid, info in found if rank == top]
        votes: dict[tuple[tuple[str, str], ...], list[str]] = {}
        for pid, info in best:
            votes.setdefault(tuple(sorted(info.items())), []).append(pid)
        ordered = sorted(
            votes.items(), key=lambda kv: (-len(kv[1]), not self._owns_mac(kv), sorted(kv[1])[0])
        )
        info = dict(ordered[0][0])
        ties = (
            tuple(f"{','.join(sorted(pids))}: {dict(items)}" for items, pids in ordered)
            if len(ordered) > 1 and _conflict([dict(k) for k, _ in ordered])
            else ()
        )
        vendor = info.get("vendor", "").lower()
        for rank, _, other in sorted(found, key=lambda f: (-f[0], f[1])):
            if rank == top or other.get("vendor", "").lower() != vendor:
                continue
            for key, value in other.items():
                info.setdefault(key, value)
        return Identification(info, top, ties)

    def identify_request(
        self,
        protocol: Protocol_,
        path: str,
        user_agent: str | None,
        query: Mapping[str, str] | None = None,
        client_ip: str = "",
    ) -> dict[str, str]:
        """A phone request's device info: the more specific of its UA and path probes, the
        other filling keys for the same vendor only; a tie between plugins in ``tie``."""
        ua, args = clean_user_agent(user_agent), (dict(query or {}), client_ip)
        results = []
        if ua:  # wazo extractors read UA and path together: the UA probe carries the path too
            results.append(self.identify(ProbeRequest(protocol, "", ua, *args, request_path=path)))
        results.append(
            self.identify(ProbeRequest(protocol, path, None, *args, has_user_agent=bool(ua)))
        )
        results.sort(key=lambda r: -r.rank)  # stable: the UA probe first on equal rank
        found = dict(results[0].info)
        vendor = found.get("vendor", "").lower()
        for other in results[1:]:
            if not vendor or other.info.get("vendor", "").lower() == vendor:
                for key, value in other.info.items():
                    found.setdefault(key, value)
        if results[0].ties:
            found["tie"] = "; ".join(results[0].ties)
        return found

    def _owns_mac(self, vote: tuple[tuple[tuple[str, str], ...], list[str]]) -> bool:
        """True when a plugin of this candidate lists the found MAC's prefix among its OUIs."""
        mac = dict(vote[0]).get("mac", "")[:8]
        owners = (self._plugins.get(pid) for pid in vote[1])
        return bool(mac) and any(p is not None and mac in p.manifest.ouis for p in owners)

    def vendor_of_mac(self, mac: str) -> str | None:
        """The vendor whose plugins claim this MAC's prefix (OUI), when exactly one does."""
        vendors = {p.manifest.vendor for p in self if mac.lower()[:8] in p.manifest.ouis}
        return vendors.pop() if len(vendors) == 1 else None

    def best_for(self, info: Mapping[str, str]) -> Plugin | None:
        """The best-scoring plugin (>= PROBABLE); ties go to the newest plugin version."""
        best: tuple[int, tuple[int, Version | str], str] | None = None
        chosen: Plugin | None = None
        for plugin in self:
            try:
                score = plugin.score(info)
            except Exception:
                log.exception("plugin %s: score failed", plugin.id)
                continue
            if score < PROBABLE:
                continue
            key = (score, version_key(plugin.version), plugin.id)
            if best is None or key > best:
                best, chosen = key, plugin
        return chosen


@dataclass(frozen=True, slots=True)
class Identification:
    """What the plugins made of one request: the chosen info, its rank, and any tie."""

    info: dict[str, str]
    rank: int = 0
    ties: tuple[str, ...] = ()
    """On a tie at the top rank between disagreeing plugins: each candidate, for the trace."""


def _conflict(candidates: list[dict[str, str]]) -> bool:
    """True when two candidates give different values for one key."""
    seen: dict[str, str] = {}
    for info in candidates:
        for key, value in info.items():
            if seen.setdefault(key, value) != value:
                return True
    return False


def _close(plugin: Plugin) -> None:
    close = getattr(plugin, "close", None)
    if callable(close):
        try:
            close()
        except Exception:
            log.exception("plugin %s: close failed", plugin.id)
