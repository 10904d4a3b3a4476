"""Record each plugin install and removal in the database, for every node to follow.

A node that installs a plugin records its id, version and source (:mod:`provisor.store.
plugin_state`), then bumps the ``plugins`` change counter; every other node's
:class:`~provisor.plugins.reconcile.PluginReconciler` installs, upgrades or removes to match.
A plugin from an HTTP(S) repository is recorded by URL, size and digest (the other nodes
download and verify it as the first did); one from a local repository (a folder, such as the
bundled plugins' one) is recorded with its archive, at most ``plugins.stored_archive_max_bytes``.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from provisor.errors import InvalidInput
from provisor.plugins.repository import IndexEntry
from provisor.settings import PluginsSettings
from provisor.store.plugin_state import PluginRecord, PluginStateStore
from provisor.wazo.index import WazoEntry

if TYPE_CHECKING:
    from provisor.service import Provisor

__all__ = [
    "SharedSource",
    "is_remote",
    "record_archive",
    "record_installed",
    "record_removed",
    "shared_source",
]


@dataclass(frozen=True, slots=True)
class SharedSource:
    """Where every node gets one plugin version, and how it is checked."""

    plugin_id: str
    version: str
    url: str | None  # None: the archive itself is kept in the database
    size: int
    algorithm: str
    digest: str


def is_remote(server: str) -> bool:
    """True for a repository every node can reach by the same name (HTTP or HTTPS)."""
    return server.startswith(("http://", "https://"))


def shared_source(
    server: str, entry: IndexEntry | WazoEntry, settings: PluginsSettings
) -> SharedSource:
    """How other nodes will get this entry; InvalidInput if its archive is too big to keep."""
    # a wazo entry names its hash (sha1)
    algorithm, digest = entry.checksum if isinstance(entry, WazoEntry) else ("sha256", entry.sha256)
    url = f"{server.rstrip('/')}/{entry.file}" if is_remote(server) else None
    if url is None and entry.size > settings.stored_archive_max_bytes:
        raise InvalidInput(
            f"plugin {entry.id!r}: its archive is {entry.size} bytes; an archive from a local"
            f" repository is kept in the database for the other nodes, up to"
            f" {settings.stored_archive_max_bytes} (plugins.stored_archive_max_bytes)"
        )
    return SharedSource(entry.id, entry.version, url, entry.size, algorithm, digest.lower())


async def record_installed(prov: Provisor, source: SharedSource, archive: Path | None) -> None:
    """Record an installed plugin version for the other nodes and tell them."""
    data = None
    if source.url is None:
        if archive is None:
            raise InvalidInput(f"plugin {source.plugin_id!r}: no archive to keep")
        data = await asyncio.to_thread(archive.read_bytes)
    record = PluginRecord(
        source.plugin_id,
        True,
        source.version,
        source.url,
        source.size,
        source.algorithm,
        source.digest,
    )
    await PluginStateStore(prov.engine).put(record, data, time.time())
    await prov.feed.bump("plugins")


async def record_archive(prov: Provisor, plugin_id: str, version: str, data: bytes) -> None:
    """Record a plugin known only from its folder (packed by the caller) with its archive."""
    digest = hashlib.sha256(data).hexdigest()
    record = PluginRecord(plugin_id, True, version, None, len(data), "sha256", digest)
    await PluginStateStore(prov.engine).put(record, data, time.time())
    await prov.feed.bump("plugins")


async def record_removed(prov: Provisor, plugin_id: str) -> None:
    """Record that no node should have this plugin, and tell them."""
    await PluginStateStore(prov.engine).put(PluginRecord(plugin_id, False), None, time.time())
    await prov.feed.bump("plugins")
