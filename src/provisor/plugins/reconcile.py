"""Each node brings its plugin folder in line with the plugins the database records.

The :class:`PluginReconciler` runs in the background of every server. It wakes when the
``plugins`` change counter moves (another node or the CLI installed, upgraded or removed a
plugin) and at start, then for each recorded plugin: installs or upgrades it when this node's
folder holds another version (downloading from the recorded URL, or taking the archive kept in
the database, checked against the recorded size and digest, then extracted with the same caps
as any install), or removes it when the record is a tombstone. A plugin this node cannot get
is reported (a log line, :attr:`PluginReconciler.failed`, ``/health/ready``'s body) and tried
again after 2 s, 4 s… up to 5 minutes (or at once
when the ``plugins`` counter moves again); the node keeps serving meanwhile.

The same pass then brings this node's firmware packages in line with the database
(:mod:`provisor.plugins.firmware_reconcile`), under the same lock and with the same retries.

A plugin in this node's folder that the database does not know at all (a data directory from
before clustering, or one populated by hand) is packed and recorded, so it reaches the others.
Several processes sharing one data directory take turns through a file lock on the folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable
from pathlib import Path

from provisor.domain import ids
from provisor.errors import ProvisorError
from provisor.plugins.build import pack_folder
from provisor.plugins.convergence import record_archive
from provisor.plugins.firmware_reconcile import FirmwareReconciler
from provisor.plugins.folder_lock import FolderLock as _FolderLock
from provisor.plugins.folder_lock import folder_lock_path
from provisor.plugins.loader import load_plugin
from provisor.plugins.manager import PluginManager, get_manager
from provisor.plugins.repository import download
from provisor.service import Provisor
from provisor.services.operations import Operation
from provisor.store.plugin_state import PluginRecord, PluginStateStore

__all__ = ["PluginReconciler"]

log = logging.getLogger(__name__)

_FIRST_RETRY = 2.0
#: The longest wait between two attempts for a plugin this node could not get (5 minutes).
_RETRY_MAX = 300.0
_LOCK_BUSY_RETRY = 1.0
#: A folder over this many times the stored-archive cap is not even packed to find out.
_PACK_RATIO = 4


class PluginReconciler:
    """Install, upgrade and remove this node's plugins as the database says."""

    def __init__(self, prov: Provisor) -> None:
        self.prov = prov
        self.manager: PluginManager = get_manager(prov)
        self.store = PluginStateStore(prov.engine)
        self.retry_max = _RETRY_MAX
        self.failed: dict[str, str] = {}
        #: the firmware packages the database records (reconciled in the same pass)
        self.firmware = FirmwareReconciler(prov, self.manager.firmware_packages)
        self._local_only: set[str] = set()  # too big to record: said once, not every pass
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        #: called after a pass that changed this process's plugins (the phone workers, which
        #: load from the same folder, then load them too)
        self.changed: list[Callable[[], None]] = []

    def poke(self) -> None:
        """Reconcile soon (the ``plugins`` counter moved)."""
        self._wake.set()

    def start(self) -> None:
        """Reconcile now, then whenever poked, retrying failures with backoff."""
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        """Stop reconciling."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        retry = _FIRST_RETRY
        while True:
            self._wake.clear()
            before = {p.id: p.version for p in self.prov.plugins}
            try:
                done = await self.reconcile()
            except Exception as exc:  # the database is away: try again later
                log.warning("plugin reconcile failed: %s", type(exc).__name__)
                done = False
            if {p.id: p.version for p in self.prov.plugins} != before:
                for notify in self.changed:
                    notify()
            if done is None:  # another process of this node holds the folder
                wait: float | None = _LOCK_BUSY_RETRY
            elif done:
                wait, retry = None, _FIRST_RETRY
            else:
                wait, retry = retry, min(retry * 2, self.retry_max)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()

    async def reconcile(self) -> bool | None:
        """One pass; True when every recorded plugin and firmware package matches, None if the
        folder was busy."""
        root = self.manager.root
        root.mkdir(parents=True, exist_ok=True)
        # beside the plugins folder, not in it: nothing but plugins and staging copies in there
        with _FolderLock(folder_lock_path(root.parent)) as held:
            if not held:
                return None
            records = await self.store.records()
            await self._adopt(records)
            failed: dict[str, str] = {}
            for record in records.values():
                try:
                    await self._converge(record)
                except (ProvisorError, OSError) as exc:
                    failed[record.id] = getattr(exc, "message", None) or str(exc)
                except Exception as exc:  # a third-party plugin's import, say: this one only
                    failed[record.id] = f"{type(exc).__name__} while installing"
            for plugin_id, reason in failed.items():
                if self.failed.get(plugin_id) != reason:  # once per new reason, not per retry
                    log.warning("plugin %s not installed on this node: %s", plugin_id, reason)
            for plugin_id in set(self.failed) - set(failed):
                log.info("plugin %s now matches the cluster", plugin_id)
            self.failed = failed
            # after the plugins: a package whose plugin just arrived is installed at once
            firmware_done = await self.firmware.reconcile()
            return not failed and firmware_done

    def _local_version(self, plugin_id: str) -> str | None:
        """The version this node's plugin folder serves (None: not installed here)."""
        folder = self.manager.plugin_dir(plugin_id)
        loaded = self.prov.plugins.get(plugin_id)
        if not folder.is_dir() or loaded is None:
            return None
        if Path(loaded.root).resolve() != folder.resolve():
            return None
        return loaded.version

    async def _converge(self, record: PluginRecord) -> None:
        plugin_id = ids.plugin_id(record.id, "plugin id")
        async with self.manager.lock(plugin_id):
            folder = self.manager.plugin_dir(plugin_id)
            if not record.installed:
                if folder.is_dir():
                    await self.manager.remove_local(plugin_id)
                    log.info("plugin %s removed (removed on another node)", plugin_id)
                return
            local = self._local_version(plugin_id)
            if local == record.version or await self._load_from_folder(record):
                return
            await self._install(record)
            log.info(
                "plugin %s %s installed (as on another node; was %s)",
                plugin_id,
                record.version,
                local or "absent",
            )

    async def _load_from_folder(self, record: PluginRecord) -> bool:
        """Load the folder when it already holds the recorded version (another process of this
        node installed it); True if so. A folder that fails to load is replaced instead."""
        folder = self.manager.plugin_dir(record.id)
        if not folder.is_dir() or self._local_version(record.id) is not None:
            return False
        try:
            plugin = await asyncio.to_thread(load_plugin, folder, self.prov.settings.wazo)
        except ProvisorError:
            return False
        if plugin.version != record.version or plugin.id != record.id:
            _close(plugin)
            return False
        self.prov.plugins.add(plugin)
        return True

    async def _install(self, record: PluginRecord) -> None:
        version = ids.version(record.version, "version")
        self.manager.cache.mkdir(parents=True, exist_ok=True)
        archive = self.manager.cache / f".converge-{record.id}-{version}.archive"
        try:
            if record.url is not None:
                await download(
                    record.url,
                    archive,
                    size=record.size,
                    sha256=record.digest,
                    algorithm=record.algorithm,
                    proxies=await self.manager.proxies(),
                )
            else:
                await self._write_kept_archive(record, archive)
            await self.manager.install_archive(record.id, archive, Operation(label="converge"))
        finally:
            archive.unlink(missing_ok=True)

    async def _write_kept_archive(self, record: PluginRecord, dest: Path) -> None:
        """The archive the database keeps, checked against the record, written to ``dest``."""
        cap = self.prov.settings.plugins.stored_archive_max_bytes
        if record.size > cap:
            raise ProvisorError(
                f"kept archive is {record.size} bytes, over {cap}"
                " (plugins.stored_archive_max_bytes)"
            )
        data = await self.store.archive(record.id, record.version)
        if data is None:
            raise ProvisorError("no archive kept in the database for this version")
        digest = hashlib.new(record.algorithm, data).hexdigest()
        if len(data) != record.size or digest != record.digest:
            raise ProvisorError("kept archive does not match its recorded size and digest")
        await asyncio.to_thread(dest.write_bytes, data)

    async def _adopt(self, records: dict[str, PluginRecord]) -> None:
        """Record the plugins of this node's folder that the database does not know."""
        cap = self.prov.settings.plugins.stored_archive_max_bytes
        for plugin in list(self.prov.plugins):
            if (
                plugin.id in records
                or plugin.id in self._local_only
                or self._local_version(plugin.id) is None
            ):
                continue
            folder = self.manager.plugin_dir(plugin.id)
            # packing holds the folder in memory: a folder far over the cap is not packed
            raw = await asyncio.to_thread(_folder_bytes, folder, _PACK_RATIO * cap)
            data = (
                b""
                if raw > _PACK_RATIO * cap
                else await asyncio.to_thread(pack_folder, folder, plugin.id)
            )
            if not data or len(data) > cap:
                self._local_only.add(plugin.id)
                log.warning(
                    "plugin %s stays on this node only: its folder packs to more than %d"
                    " bytes (plugins.stored_archive_max_bytes)",
                    plugin.id,
                    cap,
                )
                continue
            await record_archive(self.prov, plugin.id, plugin.version, data)
            records[plugin.id] = PluginRecord(plugin.id, True, plugin.version)
            log.info("plugin %s %s recorded for the other nodes", plugin.id, plugin.version)


def _folder_bytes(folder: Path, stop_over: int) -> int:
    """Bytes of a folder's files, counting no further than ``stop_over``."""
    total = 0
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            total += path.stat().st_size
            if total > stop_over:
                break
    return total


def _close(plugin: object) -> None:
    """Release a plugin loaded only to be compared (a wazo plugin's workers)."""
    close = getattr(plugin, "close", None)
    if close is not None:
        close()
