"""REST resources beyond the core 0.2 set: request trace, plugin management, tenants.

Kept in one list so :mod:`provisor.server` mounts them without knowing each module.
"""

from __future__ import annotations

from typing import Any

__all__ = ["extra_routers"]


def extra_routers() -> tuple[Any, ...]:
    """Routers mounted after the core ones."""
    from provisor.api import autoprov, requests, tenant_mgr

    routers: list[Any] = [requests.router, autoprov.router, tenant_mgr.router]
    try:
        from provisor.api import pg_mgr
    except ImportError:  # plugin management not installed in this build
        pass
    else:
        routers.append(pg_mgr.router)
    return tuple(routers)
