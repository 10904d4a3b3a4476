"""Install, upgrade, uninstall and reload plugins, and install their firmware packages.

Plugins live in ``<data_dir>/plugins/<id>``; the repository index is cached in
``<data_dir>/plugins-index.json``. An install or upgrade is atomic: the new version is extracted
beside the plugins folder, loaded, and only then moved into place and swapped into the running
set; if anything fails the old version keeps serving and its folder is untouched.

Every id is checked by :mod:`provisor.domain.ids` on entry to each method, and every path is
built by :meth:`PluginManager._under` from validated names under a fixed root and checked to
stay there. Extraction, plugin imports and folder removals run in worker threads so that phones
and the REST API keep being served while an install runs.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from provisor.domain import ids
from provisor.errors import InvalidInput, PluginError
from provisor.plugins.archive import ArchiveLimits, safe_extract
from provisor.plugins.base import Plugin
from provisor.plugins.build import BUNDLED_SOURCES, build_repository
from provisor.plugins.convergence import record_installed, record_removed, shared_source
from provisor.plugins.firmware import FirmwarePackages
from provisor.plugins.loader import load_plugin, version_key
from provisor.plugins.repository import IndexEntry, download, fetch_index, parse_index
from provisor.service import Provisor
from provisor.services.operations import Operation
from provisor.settings import WazoSettings
from provisor.wazo.index import WazoEntry, fetch_plugins_db, parse_plugins_db, repository_kind
from provisor.wazo.plugin import WazoPlugin

#: An entry of either repository format (provisor's index.json or wazo's plugins.db).
Entry = IndexEntry | WazoEntry

__all__ = ["PluginManager", "get_manager"]


def get_manager(prov: Provisor) -> PluginManager:
    """The Provisor's plugin manager (created on first use)."""
    manager = prov.extra.get("plugin_manager")
    if manager is None:
        manager = prov.extra["plugin_manager"] = PluginManager(prov)
    return manager


class PluginManager:
    """Plugin and firmware package operations for one Provisor."""

    def __init__(self, prov: Provisor) -> None:
        self.prov = prov
        self.root = prov.settings.data_dir / "plugins"
        self.cache = prov.settings.data_dir / "cache"
        self.firmware = prov.settings.data_dir / "firmware"
        self.index_file = prov.settings.data_dir / "plugins-index.json"
        self._locks: dict[str, asyncio.Lock] = {}
        self.force_server: str | None = None
        self.limits = ArchiveLimits.from_settings(prov.settings.plugins)
        self.max_archive_bytes = prov.settings.plugins.archive_max_bytes
        self.firmware_packages = FirmwarePackages(self)

    @staticmethod
    def _under(root: Path, *names: str) -> Path:
        """``root/names…`` for names already validated, refused if it resolves elsewhere."""
        path = root.joinpath(*names)
        base = root.resolve()
        real = path.resolve()
        if real == base or not real.is_relative_to(base):
            raise InvalidInput(f"{'/'.join(names)!r}: resolves outside {root.name}/, refused")
        return path

    def plugin_dir(self, plugin_id: str) -> Path:
        """The folder of a plugin (validated id; not a link pointing elsewhere)."""
        return self._under(self.root, ids.plugin_id(plugin_id))

    # -- repository -----------------------------------------------------------------------------

    async def server(self) -> str:
        """The repository in use: the plugin_server parameter, else the bundled one."""
        if self.force_server:
            return self.force_server
        configured = await self.prov.params.get("plugin_server", "")
        if configured:
            return str(configured)
        return str(self.bundled_repository())

    def bundled_repository(self) -> Path:
        """The repository built from the plugins shipped with provisor (rebuilt when stale)."""
        out = self.prov.settings.data_dir / "bundled-repository"
        index = out / "index.json"
        if BUNDLED_SOURCES.is_dir():
            newest = max(
                (p.stat().st_mtime for p in BUNDLED_SOURCES.rglob("*") if p.is_file()), default=0
            )
            if not index.exists() or index.stat().st_mtime < newest:
                build_repository(BUNDLED_SOURCES, out)
        return out

    async def proxies(self) -> dict[str, str | None]:
        """The proxies the ``http_proxy``/``https_proxy`` parameters name."""
        return await self._proxies()

    async def _proxies(self) -> dict[str, str | None]:
        return {
            "http": await self.prov.params.get("http_proxy", ""),
            "https": await self.prov.params.get("https_proxy", ""),
        }

    async def update(self, op: Operation | None = None) -> dict[str, Entry]:
        """Fetch the repository index (index.json, or a wazo plugins.db) and cache it."""
        server = await self.server()
        proxies = await self._proxies()
        self.index_file.parent.mkdir(parents=True, exist_ok=True)
        if await repository_kind(server, proxies) == "wazo":
            entries = await fetch_plugins_db(server, proxies)
            doc = {"format": 1, "kind": "wazo", "server": server}
            doc["plugins"] = {pid: e.cached() for pid, e in entries.items()}
            self.index_file.write_text(json.dumps(doc))
            return dict(entries)
        index = await fetch_index(server, proxies)
        raw = {
            "format": 1,
            "server": server,
            "plugins": {
                pid: {
                    "version": e.version,
                    "description": e.description,
                    "vendor": e.vendor,
                    "capabilities": dict(e.capabilities),
                    "file": e.file,
                    "size": e.size,
                    "sha256": e.sha256,
                }
                for pid, e in index.items()
            },
        }
        tmp = self.index_file.with_name(self.index_file.name + ".part")
        tmp.write_text(json.dumps(raw))
        tmp.replace(self.index_file)
        return dict(index)

    def installable(self) -> dict[str, Entry]:
        """The cached index (empty until the first update)."""
        if not self.index_file.exists():
            return {}
        data = self.index_file.read_bytes()
        doc = json.loads(data)
        if isinstance(doc, dict) and doc.get("kind") == "wazo":
            return dict(parse_plugins_db(json.dumps(doc.get("plugins", {})).encode()))
        return dict(parse_index(data))

    def installed(self) -> dict[str, dict[str, Any]]:
        """Loaded plugins with their version, description and capabilities."""
        return {
            p.id: {
                "version": p.version,
                "description": p.manifest.description,
                "capabilities": p.manifest.capabilities
                or {
                    f"{p.manifest.vendor}, {m}, *": {"lines": i.lines}
                    for m, i in p.manifest.models.items()
                },
            }
            for p in self.prov.plugins
        }

    # -- plugins -------------------------------------------------------------------------------

    def _lock(self, plugin_id: str) -> asyncio.Lock:
        return self._locks.setdefault(plugin_id, asyncio.Lock())

    def check_install(self, plugin_id: str, *, upgrade: bool) -> Entry:
        """Refuse what cannot start (bad id, unknown, already installed, not installed, busy)."""
        ids.plugin_id(plugin_id)
        entry = self.installable().get(plugin_id)
        if entry is None:
            raise InvalidInput(f"plugin {plugin_id!r} is not in the repository index (run update)")
        if entry.size > self.max_archive_bytes:
            raise InvalidInput(
                f"plugin {plugin_id!r}: its archive is {entry.size} bytes, more than"
                f" {self.max_archive_bytes} (plugins.archive_max_bytes)"
            )
        present = self.plugin_dir(plugin_id).is_dir()
        if upgrade and not present:
            raise InvalidInput(f"plugin {plugin_id!r} is not installed")
        if not upgrade and present:
            raise InvalidInput(f"plugin {plugin_id!r} is already installed")
        if self._lock(plugin_id).locked():
            raise InvalidInput(f"plugin {plugin_id!r} is being installed or upgraded")
        return entry

    async def install(self, plugin_id: str, op: Operation, *, upgrade: bool = False) -> None:
        """Download, verify, extract, load, then swap in atomically; then record it for the
        other nodes (plugins/convergence.py)."""
        entry = self.check_install(plugin_id, upgrade=upgrade)
        async with self._lock(plugin_id):
            server = await self.server()
            shared = shared_source(server, entry, self.prov.settings.plugins)
            self.cache.mkdir(parents=True, exist_ok=True)
            archive = self._under(self.cache, entry.file)
            sub = op.sub("download")
            sub.progress(0, entry.size)
            await download(
                shared.url or f"{server.rstrip('/')}/{entry.file}",
                archive,
                size=entry.size,
                sha256=shared.digest,
                algorithm=shared.algorithm,
                proxies=await self._proxies(),
                progress=lambda done, total: sub.progress(done, total),
            )
            sub.state = "success"
            await self.install_archive(plugin_id, archive, op)
            await record_installed(self.prov, shared, archive)
        reconciler = self.prov.extra.get("plugin_reconciler")
        if reconciler is not None:  # firmware packages recorded for this plugin can come now
            reconciler.poke()

    async def install_archive(self, plugin_id: str, archive: Path, op: Operation) -> None:
        """Extract a verified archive beside the plugins, load it, then swap it in atomically."""
        extract = op.sub("extract")
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{plugin_id}-", dir=self.root))
        try:
            folder = await asyncio.to_thread(
                safe_extract,
                archive,
                staging,
                plugin_id,
                self.limits,
                lambda done: extract.progress(done),
            )
            extract.state = "success"
            wazo = self.prov.settings.wazo
            # plugin.py is third-party code: import it off the event loop too
            plugin = await asyncio.to_thread(
                load_plugin_at, folder, plugin_id, self.plugin_dir(plugin_id), wazo
            )
            old = self._under(self.root, f".{plugin_id}.old")
            await asyncio.to_thread(shutil.rmtree, old, True)
            if isinstance(plugin, WazoPlugin):
                # a probe: a wazo plugin's workers run from its final folder only
                plugin.close()
                self._swap(folder, None, old, plugin_id)
                self.prov.plugins.add(
                    await asyncio.to_thread(load_plugin, self.plugin_dir(plugin_id), wazo)
                )
            else:
                self._swap(folder, plugin, old, plugin_id)
            await asyncio.to_thread(shutil.rmtree, old, True)
        finally:
            await asyncio.to_thread(shutil.rmtree, staging, True)

    def _swap(self, folder: Path, plugin: Plugin | None, old: Path, plugin_id: str) -> None:
        """Move the staged folder into place and swap the plugin in, with no await between."""
        target = self.plugin_dir(plugin_id)
        if target.exists():
            target.rename(old)
        try:
            folder.rename(target)
        except OSError:
            if old.exists():
                old.rename(target)
            raise
        if plugin is not None:
            self.prov.plugins.add(plugin)

    async def uninstall(self, plugin_id: str) -> None:
        """Remove a plugin here and on every node; its devices become unconfigured."""
        target = self.plugin_dir(plugin_id)
        if not target.is_dir():
            raise InvalidInput(f"plugin {plugin_id!r} is not installed")
        async with self._lock(plugin_id):
            # recorded first: should the removal here fail, this node's reconciler retries it,
            # where the other order could leave a removed plugin recorded as installed
            await record_removed(self.prov, plugin_id)
            await self.remove_local(plugin_id)
            await self.prov.devices.unconfigure_plugin(plugin_id)

    async def remove_local(self, plugin_id: str) -> None:
        """Unload a plugin and remove its folder (this node only); the caller holds its lock."""
        target = self.plugin_dir(plugin_id)
        gone = self._under(self.root, f".{plugin_id}.uninstalled")
        await asyncio.to_thread(shutil.rmtree, gone, True)
        # unload and rename together (the atomic step); removing the files may then take long
        removed = self.prov.plugins.remove(plugin_id)
        try:
            target.rename(gone)
        except OSError as exc:
            if removed is not None:
                self.prov.plugins.add(removed)
            raise InvalidInput(f"plugin {plugin_id!r}: cannot remove: {exc.strerror}") from None
        await asyncio.to_thread(shutil.rmtree, gone, True)

    def lock(self, plugin_id: str) -> asyncio.Lock:
        """The lock every change of one plugin's folder in this process takes."""
        return self._lock(plugin_id)

    async def reload(self, plugin_id: str) -> None:
        """Load a plugin again from its folder (after a manual change)."""
        target = self.plugin_dir(plugin_id)
        if not target.is_dir():
            raise InvalidInput(f"plugin {plugin_id!r} is not installed")
        try:
            plugin = await asyncio.to_thread(load_plugin, target, self.prov.settings.wazo)
        except PluginError as exc:
            raise InvalidInput(f"plugin {plugin_id!r} failed to load: {exc.message}") from None
        self.prov.plugins.add(plugin)

    def newer_available(self) -> dict[str, str]:
        """Installed plugins for which the index has a newer version."""
        index = self.installable()
        return {
            p.id: index[p.id].version
            for p in self.prov.plugins
            if p.id in index and version_key(index[p.id].version) > version_key(p.version)
        }

    # -- firmware packages (plugins/firmware.py) ------------------------------------------

    def packages(self, plugin_id: str) -> dict[str, dict[str, Any]]:
        """A plugin's firmware packages (``[firmware.<pkg>]`` in its manifest)."""
        return self.firmware_packages.packages(plugin_id)

    def installed_packages(self, plugin_id: str) -> dict[str, dict[str, Any]]:
        """Firmware packages installed for a plugin."""
        return self.firmware_packages.installed(plugin_id)

    def start_firmware_install(self, plugin_id: str, pkg_id: str, tenant_uuid: str) -> Operation:
        """Start installing a package the plugin declares (a 400 otherwise), as an operation
        of kind ``pkg.<plugin>`` owned by ``tenant_uuid`` (REST and the console alike)."""
        return self.firmware_packages.start_install(plugin_id, pkg_id, tenant_uuid)

    async def install_firmware(self, plugin_id: str, pkg_id: str, op: Operation) -> None:
        """Download a firmware package, verify it, place its files, record it for every node."""
        await self.firmware_packages.install(plugin_id, pkg_id, op)

    async def uninstall_firmware(self, plugin_id: str, pkg_id: str) -> None:
        """Remove a firmware package's files here and on every node."""
        await self.firmware_packages.uninstall(plugin_id, pkg_id)


def load_plugin_at(
    folder: Path, plugin_id: str, serve_from: Path, wazo: WazoSettings | None = None
) -> Plugin:
    """Load a freshly extracted plugin that will serve from ``serve_from``; InvalidInput if not."""
    try:
        plugin = load_plugin(folder, wazo, serve_from=serve_from)
    except PluginError as exc:
        raise InvalidInput(f"plugin {plugin_id!r} does not load: {exc.message}") from None
    if plugin.id != plugin_id:
        raise InvalidInput(f"archive for {plugin_id!r} holds plugin {plugin.id!r}")
    return plugin
