"""Device events → wazo plugins' ``deconfigure`` (off the event loop, never delaying the API)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from provisor.plugins.loader import PluginSet

__all__ = ["deconfigure_listener"]

log = logging.getLogger(__name__)


def deconfigure_listener(plugins: PluginSet) -> Callable[[str, Mapping[str, Any]], None]:
    """A device-service listener telling wazo plugins about deleted or moved devices."""
    pending: set[asyncio.Future[None]] = set()

    def run(doc: Mapping[str, Any], deleted: bool) -> None:
        for plugin in plugins:
            changed = getattr(plugin, "device_changed", None)
            if callable(changed):
                changed(doc, deleted=deleted)

    def listener(event: str, doc: Mapping[str, Any]) -> None:
        if event not in ("device_deleted", "device_updated") or not plugins.has_remote:
            return
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(None, run, dict(doc), event == "device_deleted")
        pending.add(future)
        future.add_done_callback(pending.discard)

    return listener
