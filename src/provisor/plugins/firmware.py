"""A plugin's firmware packages on this node, and their record for the other nodes.

A native plugin declares packages in its manifest (``[firmware.<pkg>]``); the files are placed
under ``<data_dir>/firmware/<plugin>/`` with a per-plugin ``installed.json``. A wazo plugin's
packages (``pkgs/pkgs.db``) are installed into the plugin's own folder
(:mod:`provisor.wazo.packages`). Either way an operator's install or uninstall is recorded in
the ``firmware_state`` table (:mod:`provisor.store.firmware_state`) and the ``plugins`` change
counter bumped, so every node's reconciler (:mod:`provisor.plugins.firmware_reconcile`)
installs or removes the same package, downloading it from the vendor's URL itself: the files
are never copied into the database.

A package is placed from a :class:`FirmwareRecord` (where to download, the size and digest to
check); where its files go comes from the plugin on this node (its manifest's ``files`` or its
``pkgs.db`` install steps), never from the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import shutil
import time
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from provisor.domain import ids
from provisor.errors import Conflict, InvalidInput, NotFound
from provisor.plugins.folder_lock import folder_lock_path, waiting_for
from provisor.plugins.repository import download
from provisor.services.operations import Operation
from provisor.store.firmware_state import Download, FirmwareRecord, FirmwareStateStore
from provisor.wazo.packages import (
    PkgFile,
    install_package,
    installed_packages,
    read_packages,
    uninstall_package,
)
from provisor.wazo.plugin import WazoPlugin

if TYPE_CHECKING:
    from provisor.plugins.manager import PluginManager

__all__ = ["FirmwarePackages", "is_shared"]

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]

#: How long a REST uninstall waits for the node's folder lock (a reconciler's pass may be
#: downloading for minutes) before answering 409.
_UNINSTALL_WAIT = 10.0


def is_shared(record: FirmwareRecord) -> bool:
    """True when every node can fetch the package's files: HTTP(S) URLs, or files the plugin
    ships (a wazo ``pkgs.db`` file without URL, taken from the plugin's own ``var/cache``)."""
    return all(d.url.startswith(("http://", "https://")) or not d.url for d in record.downloads)


class FirmwarePackages:
    """Firmware package operations of one node (used through :class:`PluginManager`)."""

    def __init__(self, manager: PluginManager) -> None:
        self.manager = manager
        self.prov = manager.prov
        self.root = manager.firmware
        self.store = FirmwareStateStore(manager.prov.engine)

    def lock(self, plugin_id: str, pkg_id: str) -> asyncio.Lock:
        """The lock every change of one package in this process takes."""
        return self.manager.lock(f"{plugin_id}/{pkg_id}")  # "/" is in no plugin id

    # -- what a plugin declares and what this node has --------------------------------------

    def packages(self, plugin_id: str) -> dict[str, dict[str, Any]]:
        """A plugin's firmware packages (``[firmware.<pkg>]`` in its manifest)."""
        plugin = self.prov.plugins.get(ids.plugin_id(plugin_id, "plugin_id"))
        if plugin is None:
            raise NotFound("No such resource")
        if isinstance(plugin, WazoPlugin):
            return {k: p.public() for k, p in read_packages(plugin.root).items()}
        return {k: dict(v) for k, v in plugin.manifest.firmware.items() if isinstance(v, dict)}

    def _state_file(self, plugin_id: str) -> Path:
        return self.manager._under(
            self.root, ids.plugin_id(plugin_id, "plugin_id"), "installed.json"
        )

    def _state(self, plugin_id: str) -> dict[str, dict[str, Any]]:
        """A native plugin's ``installed.json``: per package its version, description, the
        files placed (relative to the plugin's firmware folder) and the download's digest."""
        state = self._state_file(plugin_id)
        return dict(json.loads(state.read_text())) if state.exists() else {}

    def _write_state(self, plugin_id: str, state: dict[str, Any]) -> None:
        path = self._state_file(plugin_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        tmp.write_text(json.dumps(state))
        tmp.replace(path)

    def installed(self, plugin_id: str) -> dict[str, dict[str, Any]]:
        """Firmware packages installed here for a plugin (version and description)."""
        plugin = self.prov.plugins.get(ids.plugin_id(plugin_id, "plugin_id"))
        found = (
            installed_packages(plugin.root)
            if isinstance(plugin, WazoPlugin)
            else self._state(plugin_id)
        )
        return {
            k: {"version": v.get("version", ""), "description": v.get("description", "")}
            for k, v in found.items()
        }

    def _package_files(self, pkg: dict[str, Any], url: str) -> list[tuple[str, str]]:
        """(src, dest) of each file of a package, both checked as relative paths."""
        default = PurePosixPath(urlsplit(url).path).name
        items = pkg.get("files") or [{"src": default, "dest": default}]
        return [
            (
                ids.relative_path(item.get("src") or default, "firmware file src"),
                ids.relative_path(item.get("dest"), "firmware file dest"),
            )
            for item in items
        ]

    def declared(self, plugin_id: str, pkg_id: str) -> FirmwareRecord:
        """The package as the plugin on this node declares it (what an install records)."""
        ids.package_id(pkg_id)
        plugin = self.prov.plugins.get(ids.plugin_id(plugin_id, "plugin_id"))
        if plugin is None:
            raise NotFound("No such resource")
        if isinstance(plugin, WazoPlugin):
            found = read_packages(plugin.root).get(pkg_id)
            if found is None:
                raise InvalidInput(f"plugin {plugin_id!r} has no package {pkg_id!r}")
            downloads = tuple(Download(f.name, f.url, f.size, "sha1", f.sha1) for f in found.files)
            return FirmwareRecord(plugin_id, pkg_id, True, found.version, downloads)
        pkg = self.packages(plugin_id).get(pkg_id)
        if pkg is None:
            raise InvalidInput(f"plugin {plugin_id!r} has no firmware package {pkg_id!r}")
        for key in ("url", "size", "sha256"):
            if key not in pkg:
                raise InvalidInput(
                    f"firmware package {pkg_id!r}: {key!r} is missing from the manifest"
                )
        url = str(pkg["url"])
        name = PurePosixPath(urlsplit(url).path).name
        one = Download(name, url, int(pkg["size"]), "sha256", str(pkg["sha256"]).lower())
        return FirmwareRecord(plugin_id, pkg_id, True, str(pkg.get("version", "")), (one,))

    def matches(self, record: FirmwareRecord) -> bool:
        """True when this node has the recorded version of the package, its files in place."""
        plugin = self.prov.plugins.get(record.plugin_id)
        if isinstance(plugin, WazoPlugin):
            entry = installed_packages(plugin.root).get(record.package_id)
            base = plugin.root.resolve()
        else:
            entry = self._state(record.plugin_id).get(record.package_id)
            base = self.manager._under(self.root, record.plugin_id).resolve()
            digest = entry.get("digest") if entry else None
            if entry and digest is not None and [digest] != [d.digest for d in record.downloads]:
                return False
        if not entry or entry.get("version", "") != record.version:
            return False
        return all((base / f).is_file() for f in entry.get("files", []))

    def present(self, plugin_id: str, pkg_id: str) -> bool:
        """True when this node holds the package (at any version), loaded plugin or not."""
        plugin = self.prov.plugins.get(plugin_id)
        if isinstance(plugin, WazoPlugin):
            return pkg_id in installed_packages(plugin.root)
        return pkg_id in self._state(plugin_id)

    # -- placing and removing on this node ----------------------------------------------------

    async def place(self, record: FirmwareRecord, progress: Progress) -> None:
        """Download the recorded files (size and digest checked) and place them as the plugin on
        this node says; nothing is placed unless every download checks out."""
        plugin = self.prov.plugins.get(record.plugin_id)
        if plugin is None:
            raise InvalidInput(f"plugin {record.plugin_id!r} is not installed on this node")
        proxies = await self.manager.proxies()
        if isinstance(plugin, WazoPlugin):
            found = read_packages(plugin.root).get(record.package_id)
            if found is None:
                raise InvalidInput(
                    f"plugin {record.plugin_id!r} {plugin.version} has no package"
                    f" {record.package_id!r} on this node"
                )
            if [f.name for f in found.files] != [d.name for d in record.downloads] or any(
                d.algorithm != "sha1" for d in record.downloads
            ):
                raise InvalidInput(
                    f"package {record.package_id!r}: its record names other files than the"
                    f" plugin {plugin.version} on this node"
                )
            recorded = tuple(PkgFile(d.name, d.url, d.size, d.digest) for d in record.downloads)
            wanted = dataclasses.replace(found, files=recorded, version=record.version)
            root = await asyncio.to_thread(plugin.package_root)
            await install_package(plugin.root, root, wanted, self.manager.cache, proxies, progress)
            return
        pkg = self.packages(record.plugin_id).get(record.package_id)
        if pkg is None:
            raise InvalidInput(
                f"plugin {record.plugin_id!r} {plugin.version} has no firmware package"
                f" {record.package_id!r} on this node"
            )
        if len(record.downloads) != 1:
            raise InvalidInput(f"package {record.package_id!r}: a native package has one download")
        (one,) = record.downloads
        if not one.url:
            raise InvalidInput(f"package {record.package_id!r}: its record names no URL")
        files = [
            (src, dest, self.manager._under(self.root, record.plugin_id, *dest.split("/")))
            for src, dest in self._package_files(pkg, one.url)
        ]
        cached = self.manager._under(
            self.manager.cache, "packages", record.plugin_id, f"{record.package_id}.download"
        )
        cached.parent.mkdir(parents=True, exist_ok=True)
        await download(
            one.url,
            cached,
            size=one.size,
            sha256=one.digest,
            algorithm=one.algorithm,
            proxies=proxies,
            progress=progress,
        )
        for src, _dest, path in files:
            await asyncio.to_thread(_place, cached, src, one.url, path)
        state = self._state(record.plugin_id)
        state[record.package_id] = {
            "version": record.version,
            "description": pkg.get("description", ""),
            "files": [dest for _src, dest, _path in files],
            "digest": one.digest,
        }
        self._write_state(record.plugin_id, state)

    async def remove_here(self, plugin_id: str, pkg_id: str) -> None:
        """Remove a package's files from this node (InvalidInput when it has none)."""
        plugin = self.prov.plugins.get(plugin_id)
        if isinstance(plugin, WazoPlugin):
            await asyncio.to_thread(uninstall_package, plugin.root, pkg_id)
            return
        state = self._state(plugin_id)
        entry = state.get(pkg_id)
        if entry is None:
            raise InvalidInput(f"firmware package {pkg_id!r} is not installed")
        placed = entry.get("files")
        if placed is None:  # written before files were listed: the manifest says which
            pkg = self.packages(plugin_id).get(pkg_id, {}) if plugin is not None else {}
            url = str(pkg.get("url", ""))
            placed = [dest for _src, dest in self._package_files(pkg, url)] if url else []
        for dest in placed:
            path = self.manager._under(self.root, plugin_id, *ids.relative_path(dest).split("/"))
            path.unlink(missing_ok=True)
        del state[pkg_id]
        self._write_state(plugin_id, state)

    # -- an operator's install and uninstall (REST, console) ----------------------------------

    def start_install(self, plugin_id: str, pkg_id: str, tenant_uuid: str) -> Operation:
        """Start installing a package the plugin declares (a 400 otherwise), as an operation
        of kind ``pkg.<plugin>`` owned by ``tenant_uuid`` (REST and the console alike)."""
        if pkg_id not in self.packages(plugin_id):
            raise InvalidInput(f"plugin {plugin_id!r} has no firmware package {pkg_id!r}")

        async def work(op: Operation) -> None:
            await self.install(plugin_id, pkg_id, op)

        return self.prov.operations.start(
            f"pkg.{plugin_id}", work, label="install_pkg", tenant_uuid=tenant_uuid
        )

    async def install(self, plugin_id: str, pkg_id: str, op: Operation) -> None:
        """Download a package, verify it, place its files for phones to fetch, then record it
        for the other nodes."""
        record = self.declared(plugin_id, pkg_id)
        sub = op.sub("download")
        sub.progress(0, record.size)
        # the node's folder lock first, then the package's (the reconciler's order): another
        # process of this node never writes the same files meanwhile
        async with self._folder(), self.lock(plugin_id, pkg_id):
            await self.place(record, sub.progress)
            sub.state = "success"
            if not is_shared(record):
                log.warning(
                    "firmware package %s stays on this node only: its URL is not http(s)",
                    record.key,
                )
                return
            await self.store.put(record, time.time())
            await self.prov.feed.bump("plugins")

    async def uninstall(self, plugin_id: str, pkg_id: str) -> None:
        """Remove a package here and on every node (also when only the database records it:
        a package no node could get is withdrawn that way)."""
        ids.package_id(pkg_id)
        ids.plugin_id(plugin_id, "plugin_id")
        async with contextlib.AsyncExitStack() as held:
            try:
                await held.enter_async_context(self._folder(_UNINSTALL_WAIT))
            except TimeoutError:
                raise Conflict(
                    "this node's firmware packages are being changed (a download may be"
                    " running): try again later"
                ) from None
            await held.enter_async_context(self.lock(plugin_id, pkg_id))
            recorded = await self.store.record(plugin_id, pkg_id)
            present = self.present(plugin_id, pkg_id)
            if not present and (recorded is None or not recorded.installed):
                raise InvalidInput(f"firmware package {pkg_id!r} is not installed")
            # recorded first: should the removal here fail, this node's reconciler retries it
            await self.store.put(FirmwareRecord(plugin_id, pkg_id, False), time.time())
            await self.prov.feed.bump("plugins")
            if present:
                await self.remove_here(plugin_id, pkg_id)

    def _folder(self, within: float | None = None) -> contextlib.AbstractAsyncContextManager[None]:
        """The node's folder lock, waited for (at most ``within`` seconds)."""
        return waiting_for(folder_lock_path(self.prov.settings.data_dir), within)


def _place(download_file: Path, src: str, url: str, dest: Path) -> None:
    """Write one file of a package (a zip member, or the download itself), streamed, atomically."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    try:
        if url.endswith(".zip"):
            try:
                with (
                    zipfile.ZipFile(download_file) as zf,
                    zf.open(src) as data,
                    tmp.open("wb") as out,
                ):
                    shutil.copyfileobj(data, out, 1024 * 1024)
            except (zipfile.BadZipFile, KeyError, OSError, EOFError) as exc:
                raise InvalidInput(
                    f"firmware package: {src!r} not found in {download_file.name}: {exc}"
                ) from None
        else:
            shutil.copyfile(download_file, tmp)
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)
