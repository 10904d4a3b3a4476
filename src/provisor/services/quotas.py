"""How many devices and configs one tenant may hold (``rest_api.tenant_max_*``).

Every tenant is an adversary of every other: without a count bound one tenant's script could
fill the shared database and disk. Counting a tenant's rows on every creation would cost a
query per request (an index range the size of the tenant), so a count is reused for
:data:`FRESH` seconds with this process's own creations added; within 10 % of the limit every
creation counts again, so the bound holds to a few rows even with several nodes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable

from provisor.errors import Forbidden

__all__ = ["FRESH", "TenantQuota"]

FRESH = 10.0
"""Seconds a tenant's count is reused (far from its limit)."""
_MAX_TENANTS = 100_000


class TenantQuota:
    """At most ``limit`` rows of one kind per tenant (0: no limit)."""

    def __init__(
        self, what: str, setting: str, limit: int, count: Callable[[str], Awaitable[int]]
    ) -> None:
        self.what = what
        self.setting = setting
        self.limit = limit
        self.count = count
        self._seen: dict[str, tuple[float, int]] = {}

    async def check(self, tenant_uuid: str | None) -> None:
        """Refuse (403 naming the setting) a creation that would pass the tenant's limit."""
        if not self.limit or tenant_uuid is None:  # shared configs belong to no tenant
            return
        now = time.monotonic()
        stamp, held = self._seen.get(tenant_uuid, (-math.inf, 0))
        if now - stamp > FRESH or held >= self.limit * 0.9:
            held, stamp = await self.count(tenant_uuid), now
        if held >= self.limit:
            self._seen[tenant_uuid] = (stamp, held)
            raise Forbidden(
                f"tenant {tenant_uuid} holds {held} {self.what}, the most"
                f" {self.setting} ({self.limit}) allows: delete some first"
            )
        if len(self._seen) >= _MAX_TENANTS:
            self._seen.clear()
        self._seen[tenant_uuid] = (stamp, held + 1)
