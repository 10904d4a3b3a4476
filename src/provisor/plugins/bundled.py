"""The plugins shipped with provisor, installed offline into a fresh data directory.

``make run`` used to install them before starting; a server started any other way (a wheel,
systemd) had no plugin at all and answered every phone 404 until someone found
``provisor plugin install-bundled``. Now the server does it at its first start, once: the
marker file keeps an operator's later uninstalls, and ``general.install_bundled_plugins``
turns it off. Installed this way they are recorded in the database like any install (with
their archives, the bundled repository being a local folder); a node joining a cluster skips
the bundled plugins the database already records, installed or removed, and follows it.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial

from provisor.errors import PluginError
from provisor.plugins.manager import get_manager
from provisor.service import Provisor
from provisor.store.plugin_state import PluginStateStore

__all__ = ["MARKER", "install_bundled", "install_bundled_at_first_start"]

log = logging.getLogger(__name__)

#: Written in the data directory once the bundled plugins were installed there.
MARKER = ".bundled-plugins-installed"


async def install_bundled(prov: Provisor, *, skip_recorded: bool = False) -> list[str]:
    """Install every bundled plugin that is not installed yet; returns their ids.

    ``skip_recorded``: leave out the plugins the database already records (installed, upgraded
    or removed through another node): this node gets those from the database instead."""
    manager = get_manager(prov)
    recorded = set(await PluginStateStore(prov.engine).records()) if skip_recorded else set()
    previous = manager.force_server
    manager.force_server = str(await asyncio.to_thread(manager.bundled_repository))
    done: list[str] = []
    try:
        await manager.update()
        for plugin_id in sorted(manager.installable()):
            if plugin_id in prov.plugins or plugin_id in recorded:
                continue
            op = prov.operations.start("pg.bundled", partial(manager.install, plugin_id))
            await prov.operations.wait(op, timeout=300)
            if op.state != "success":
                raise PluginError(f"{plugin_id}: {op.reason or 'install failed'}")
            done.append(plugin_id)
    finally:
        manager.force_server = previous
    return done


async def install_bundled_at_first_start(prov: Provisor) -> list[str]:
    """On a data directory that never had them, install the bundled plugins (logged once)."""
    marker = prov.settings.data_dir / MARKER
    if not prov.settings.general.install_bundled_plugins or marker.exists():
        return []
    done = await install_bundled(prov, skip_recorded=True)
    marker.write_text("the bundled plugins were installed here; delete to install again\n")
    if done:
        log.info("first start: installed the bundled plugins %s", ", ".join(done))
    return done
