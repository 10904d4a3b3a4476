"""Tenant deletions under way, and the wait that keeps requests from seeing them half done.

A tenant deleted on the bus (``auth_tenant_deleted``) or by the tenant sync loses its ports,
devices, configs and key in several writes. A REST request authorised after the deletion began
would otherwise read whatever those writes had not removed yet: wazo-provd's suite publishes the
event and reads the device at once. The deletion raises a fence before its first write; a request
whose tenants include a fenced one waits for the deletion to end, so it answers as after it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Collection

from provisor.errors import Unavailable

__all__ = ["TenantFence"]


class TenantFence:
    """Which tenants are being deleted; requests on them wait until that is finished."""

    def __init__(self, wait_limit: float = 30.0) -> None:
        self.wait_limit = wait_limit
        self._under_way: dict[str, list[asyncio.Event]] = {}

    @contextlib.asynccontextmanager
    async def deleting(self, tenant_uuid: str) -> AsyncIterator[None]:
        """Fence ``tenant_uuid`` for the body (a deletion); raised before the body's first await."""
        done = asyncio.Event()
        self._under_way.setdefault(tenant_uuid, []).append(done)
        try:
            yield
        finally:
            waiting = self._under_way[tenant_uuid]
            waiting.remove(done)
            if not waiting:
                del self._under_way[tenant_uuid]
            done.set()

    @property
    def active(self) -> bool:
        """Whether any deletion is under way (checked first: nearly never)."""
        return bool(self._under_way)

    def fenced(self, tenants: Collection[str]) -> list[asyncio.Event]:
        """The deletions under way among ``tenants`` (none, nearly always)."""
        if not self._under_way:
            return []
        return [done for t in self._under_way if t in tenants for done in self._under_way[t]]

    async def wait(self, tenants: Collection[str]) -> None:
        """Return once no deletion of one of ``tenants`` is under way; 503 after ``wait_limit``
        seconds (a deletion stuck on the database must not hold requests for ever)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_limit
        while pending := self.fenced(tenants):
            left = deadline - loop.time()
            try:
                await asyncio.wait_for(asyncio.gather(*(d.wait() for d in pending)), left)
            except TimeoutError:
                raise Unavailable("a tenant of this request is being deleted", 1) from None
