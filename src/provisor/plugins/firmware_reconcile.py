"""Each node brings its firmware packages in line with the ``firmware_state`` table.

Run by :class:`~provisor.plugins.reconcile.PluginReconciler` in the same pass, after the
plugins (so a package whose plugin just arrived is installed at once), under the same folder
lock (two processes of one node never write the same files) and with the same retries: a
package this node cannot get is logged once per new reason, listed in :attr:`failed` (and
``/health/ready``'s body) and tried again after 2 s, 4 s… up to 5 minutes, or at once when the
``plugins`` counter moves. A package whose plugin is not (yet) installed on this node waits for
it (:attr:`waiting`), without a failure. A package this node has that the database does not
know at all (installed before clustering) is recorded, as its plugin declares it. Files are downloaded from the recorded vendor URLs,
through this node's proxies, and checked against the recorded size and digest before anything
is placed.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Literal

from provisor.domain import ids
from provisor.errors import ProvisorError
from provisor.plugins.firmware import FirmwarePackages, is_shared
from provisor.service import Provisor
from provisor.store.firmware_state import FirmwareRecord

__all__ = ["FirmwareReconciler"]

log = logging.getLogger(__name__)

#: ``user:password@`` in a URL: never written to a log line or a report.
_USERINFO = re.compile(r"(?<=://)[^/@\s]*@")


def redact(text: str) -> str:
    """A reason with any URL's credentials replaced by ``***``."""
    return _USERINFO.sub("***@", text)


class FirmwareReconciler:
    """Install and remove this node's firmware packages as the database says."""

    def __init__(self, prov: Provisor, packages: FirmwarePackages) -> None:
        self.prov = prov
        self.packages = packages
        #: ``<plugin>/<package>`` → why this node does not have it yet
        self.failed: dict[str, str] = {}
        #: packages whose plugin this node does not have (yet)
        self.waiting: set[str] = set()
        self._local_only: set[str] = set()  # cannot be recorded: said once, not every pass

    async def reconcile(self) -> bool:
        """One pass; True when every recorded package matches (none failed, none waiting)."""
        failed: dict[str, str] = {}
        waiting: set[str] = set()
        records = await self.packages.store.records()
        await self._adopt({(r.plugin_id, r.package_id) for r in records})
        for record in records:
            # ids come from a shared row: a control character must not forge a log line
            key = record.key if record.key.isprintable() else ascii(record.key)
            try:
                if await self._converge(record) == "waiting":
                    waiting.add(key)
            except (ProvisorError, OSError) as exc:
                failed[key] = redact(getattr(exc, "message", None) or str(exc))
            except Exception as exc:  # a wazo plugin's worker, say: this package only
                failed[key] = f"{type(exc).__name__} while installing"
        for key, reason in failed.items():
            if self.failed.get(key) != reason:  # once per new reason, not per retry
                log.warning("firmware package %s not installed on this node: %s", key, reason)
        for key in waiting - self.waiting:
            log.info("firmware package %s waits for its plugin on this node", key)
        for key in set(self.failed) - set(failed):
            log.info("firmware package %s now matches the cluster", key)
        self.failed, self.waiting = failed, waiting
        return not failed and not waiting

    async def _adopt(self, known: set[tuple[str, str]]) -> None:
        """Record the packages this node has that the database does not know at all (installed
        before clustering), as their plugin declares them, so they reach the other nodes."""
        adopted = False
        for plugin in list(self.prov.plugins):
            try:
                here = self.packages.installed(plugin.id)
            except (ProvisorError, OSError, ValueError):  # an unreadable installed.json
                continue
            for pkg_id in here:
                key = f"{plugin.id}/{pkg_id}"
                if (plugin.id, pkg_id) in known or key in self._local_only:
                    continue
                try:
                    record = self.packages.declared(plugin.id, pkg_id)
                except ProvisorError:
                    record = None
                if record is None or not is_shared(record) or not self.packages.matches(record):
                    # no longer declared, not from a URL, or another version than declared
                    self._local_only.add(key)
                    log.warning(
                        "firmware package %s stays on this node only: the plugin does not"
                        " declare this version at an http(s) URL",
                        key,
                    )
                    continue
                await self.packages.store.put(record, time.time())
                adopted = True
                log.info("firmware package %s %s recorded for the other nodes", key, record.version)
        if adopted:
            await self.prov.feed.bump("plugins")

    async def _converge(self, record: FirmwareRecord) -> Literal["done", "waiting"]:
        plugin_id = ids.plugin_id(record.plugin_id, "plugin id")
        pkg_id = ids.package_id(record.package_id, "package id")
        async with self.packages.lock(plugin_id, pkg_id):
            # read again under the lock: an operator's change in this process may have been
            # recorded while this pass waited for it
            fresh = await self.packages.store.record(plugin_id, pkg_id)
            if fresh is None:
                return "done"
            record = fresh
            if record.problem:
                raise ProvisorError(record.problem)
            if not record.installed:
                if self.packages.present(plugin_id, pkg_id):
                    await self.packages.remove_here(plugin_id, pkg_id)
                    log.info("firmware package %s removed (removed on another node)", record.key)
                return "done"
            if self.prov.plugins.get(plugin_id) is None:
                return "waiting"
            if self.packages.matches(record):
                return "done"
            await self.packages.place(record, _no_progress)
            log.info(
                "firmware package %s %s installed (as on another node)", record.key, record.version
            )
            return "done"


def _no_progress(_done: int, _total: int) -> None:
    """A reconciler's download reports no progress (no operation watches it)."""
