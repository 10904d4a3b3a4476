"""Install, upgrade, uninstall and reload plugins, and install their firmware packages.

Plugins live in ``<data_dir>/plugins/<id>``; the repository index is cached in
``<data_dir>/plugins-index.json``. An install or upgrade is atomic: the new version is extracted
beside the plugins folder, loaded, and only then moved into place and swapped into the running
set; if anything fails the old version keeps serving and its folder is untouched.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from provisor.errors import InvalidInput, NotFound, PluginError
from provisor.plugins.build import BUNDLED_SOURCES, build_repository
from provisor.plugins.loader import load_plugin, version_key
from provisor.plugins.repository import IndexEntry, download, fetch_index, parse_index, safe_extract
from provisor.service import Provisor
from provisor.services.operations import Operation
from provisor.settings import WazoSettings
from provisor.wazo.index import WazoEntry, fetch_plugins_db, parse_plugins_db, repository_kind
from provisor.wazo.packages import (
    install_package,
    installed_packages,
    read_packages,
    uninstall_package,
)
from provisor.wazo.plugin import WazoPlugin

#: An entry of either repository format (provisor's index.json or wazo's plugins.db).
Entry = IndexEntry | WazoEntry

__all__ = ["PluginManager", "get_manager"]


def get_manager(prov: Provisor) -> PluginManager:
    """The Provisor's plugin manager (created on first use)."""
    manager = prov.extra.get("plugin_manager")
    if manager is None:
        manager = prov.extra["plugin_manager"] = PluginManager(prov)
    return manager  # type: ignore[no-any-return]


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
        self.index_file.write_text(json.dumps(raw))
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
        """Refuse what cannot start (unknown, already installed, not installed, busy)."""
        entry = self.installable().get(plugin_id)
        if entry is None:
            raise InvalidInput(f"plugin {plugin_id!r} is not in the repository index (run update)")
        present = (self.root / plugin_id).is_dir()
        if upgrade and not present:
            raise InvalidInput(f"plugin {plugin_id!r} is not installed")
        if not upgrade and present:
            raise InvalidInput(f"plugin {plugin_id!r} is already installed")
        if self._lock(plugin_id).locked():
            raise InvalidInput(f"plugin {plugin_id!r} is being installed or upgraded")
        return entry

    async def install(self, plugin_id: str, op: Operation, *, upgrade: bool = False) -> None:
        """Download, verify, extract, load, then swap in atomically."""
        entry = self.check_install(plugin_id, upgrade=upgrade)
        async with self._lock(plugin_id):
            server = await self.server()
            self.cache.mkdir(parents=True, exist_ok=True)
            archive = self.cache / entry.file
            sub = op.sub("download")
            sub.progress(0, entry.size)
            algorithm, digest = (
                entry.checksum if isinstance(entry, WazoEntry) else ("sha256", entry.sha256)
            )
            await download(
                f"{server.rstrip('/')}/{entry.file}",
                archive,
                size=entry.size,
                sha256=digest,
                algorithm=algorithm,
                proxies=await self._proxies(),
                progress=lambda done, total: sub.progress(done, total),
            )
            sub.state = "success"
            self.root.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{plugin_id}-", dir=self.root))
            try:
                folder = safe_extract(archive, staging, plugin_id)
                probe = load_plugin_at(folder, plugin_id, self.prov.settings.wazo)
                probe_close = getattr(probe, "close", None)
                if callable(probe_close):
                    probe_close()  # a wazo plugin's worker runs from the final folder only
                target = self.root / plugin_id
                old = self.root / f".{plugin_id}.old"
                shutil.rmtree(old, ignore_errors=True)
                if target.exists():
                    target.rename(old)
                folder.rename(target)
                self.prov.plugins.add(load_plugin(target, self.prov.settings.wazo))
                shutil.rmtree(old, ignore_errors=True)
            finally:
                shutil.rmtree(staging, ignore_errors=True)

    async def uninstall(self, plugin_id: str) -> None:
        """Remove a plugin; its devices become unconfigured."""
        target = self.root / plugin_id
        if not target.is_dir():
            raise InvalidInput(f"plugin {plugin_id!r} is not installed")
        async with self._lock(plugin_id):
            self.prov.plugins.remove(plugin_id)
            shutil.rmtree(target)
            await self.prov.devices.unconfigure_plugin(plugin_id)

    async def reload(self, plugin_id: str) -> None:
        """Load a plugin again from its folder (after a manual change)."""
        target = self.root / plugin_id
        if not target.is_dir():
            raise InvalidInput(f"plugin {plugin_id!r} is not installed")
        try:
            self.prov.plugins.add(load_plugin(target, self.prov.settings.wazo))
        except PluginError as exc:
            raise InvalidInput(f"plugin {plugin_id!r} failed to load: {exc.message}") from None

    def newer_available(self) -> dict[str, str]:
        """Installed plugins for which the index has a newer version."""
        index = self.installable()
        return {
            p.id: index[p.id].version
            for p in self.prov.plugins
            if p.id in index and version_key(index[p.id].version) > version_key(p.version)
        }

    # -- firmware packages -------------------------------------------------------------------

    def packages(self, plugin_id: str) -> dict[str, dict[str, Any]]:
        """A plugin's firmware packages (``[firmware.<pkg>]`` in its manifest)."""
        plugin = self.prov.plugins.get(plugin_id)
        if plugin is None:
            raise NotFound("No such resource")
        if isinstance(plugin, WazoPlugin):
            return {k: p.public() for k, p in read_packages(plugin.root).items()}
        return {k: dict(v) for k, v in plugin.manifest.firmware.items() if isinstance(v, dict)}

    def installed_packages(self, plugin_id: str) -> dict[str, dict[str, Any]]:
        """Firmware packages installed for a plugin."""
        plugin = self.prov.plugins.get(plugin_id)
        if isinstance(plugin, WazoPlugin):
            return {
                k: {"version": v.get("version", ""), "description": v.get("description", "")}
                for k, v in installed_packages(plugin.root).items()
            }
        state = self.firmware / plugin_id / "installed.json"
        return dict(json.loads(state.read_text())) if state.exists() else {}

    async def install_firmware(self, plugin_id: str, pkg_id: str, op: Operation) -> None:
        """Download a firmware package, verify it, and place its files for phones to fetch."""
        wazo = self.prov.plugins.get(plugin_id)
        if isinstance(wazo, WazoPlugin):
            found = read_packages(wazo.root).get(pkg_id)
            if found is None:
                raise InvalidInput(f"plugin {plugin_id!r} has no package {pkg_id!r}")
            sub = op.sub("download")
            sub.progress(0, found.size)
            root = await asyncio.to_thread(wazo.package_root)
            await install_package(
                wazo.root, root, found, self.cache, await self._proxies(), sub.progress
            )
            sub.state = "success"
            return
        pkg = self.packages(plugin_id).get(pkg_id)
        if pkg is None:
            raise InvalidInput(f"plugin {plugin_id!r} has no firmware package {pkg_id!r}")
        for key in ("url", "size", "sha256"):
            if key not in pkg:
                raise InvalidInput(
                    f"firmware package {pkg_id!r}: {key!r} is missing from the manifest"
                )
        self.cache.mkdir(parents=True, exist_ok=True)
        url = str(pkg["url"])
        cached = self.cache / f"{plugin_id}-{pkg_id}-{PurePosixPath(url).name}"
        sub = op.sub("download")
        await download(
            url,
            cached,
            size=int(pkg["size"]),
            sha256=str(pkg["sha256"]),
            proxies=await self._proxies(),
            progress=lambda d, t: sub.progress(d, t),
        )
        sub.state = "success"
        base = (self.firmware / plugin_id).resolve()
        base.mkdir(parents=True, exist_ok=True)
        for item in pkg.get(
            "files", [{"src": PurePosixPath(url).name, "dest": PurePosixPath(url).name}]
        ):
            dest = (base / str(item["dest"])).resolve()
            if not dest.is_relative_to(base) or ".." in PurePosixPath(str(item["dest"])).parts:
                raise InvalidInput(
                    f"firmware package {pkg_id!r}: destination {item['dest']!r} is not allowed"
                )
            dest.parent.mkdir(parents=True, exist_ok=True)
            data = _member(cached, str(item.get("src", "")), url)
            tmp = dest.with_name(dest.name + ".part")
            tmp.write_bytes(data)
            tmp.replace(dest)
        state = self.installed_packages(plugin_id)
        state[pkg_id] = {
            "version": pkg.get("version", ""),
            "description": pkg.get("description", ""),
        }
        (base / "installed.json").write_text(json.dumps(state))

    async def uninstall_firmware(self, plugin_id: str, pkg_id: str) -> None:
        """Forget a firmware package and remove its files."""
        wazo = self.prov.plugins.get(plugin_id)
        if isinstance(wazo, WazoPlugin):
            uninstall_package(wazo.root, pkg_id)
            return
        state = self.installed_packages(plugin_id)
        if pkg_id not in state:
            raise InvalidInput(f"firmware package {pkg_id!r} is not installed")
        pkg = self.packages(plugin_id).get(pkg_id, {})
        base = (self.firmware / plugin_id).resolve()
        for item in pkg.get("files", []):
            target = (base / str(item["dest"])).resolve()
            if target.is_relative_to(base):
                target.unlink(missing_ok=True)
        del state[pkg_id]
        (base / "installed.json").write_text(json.dumps(state))


def load_plugin_at(folder: Path, plugin_id: str, wazo: WazoSettings | None = None) -> Any:
    """Load a freshly extracted plugin; InvalidInput when it does not load."""
    try:
        plugin = load_plugin(folder, wazo)
    except PluginError as exc:
        raise InvalidInput(f"plugin {plugin_id!r} does not load: {exc.message}") from None
    if plugin.id != plugin_id:
        raise InvalidInput(f"archive for {plugin_id!r} holds plugin {plugin.id!r}")
    return plugin


def _member(archive: Path, src: str, url: str) -> bytes:
    """A file from a downloaded package: a zip member, or the download itself."""
    if url.endswith(".zip"):
        try:
            with zipfile.ZipFile(archive) as zf:
                return zf.read(src)
        except (zipfile.BadZipFile, KeyError) as exc:
            raise InvalidInput(
                f"firmware package: {src!r} not found in {archive.name}: {exc}"
            ) from None
    return archive.read_bytes()
