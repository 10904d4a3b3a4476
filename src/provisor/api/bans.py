"""``/0.2/dev_mgr/bans``: the phone addresses every node refuses, and lifting a ban (an
extension; wazo-provd has no bans API, its operators edit fail2ban).

Bans are global state holding other tenants' phone addresses: master-tenant tokens only, as
for plugins. An unban is logged with the token's fingerprint, never the token.
"""

from __future__ import annotations

import ipaddress
import logging
from datetime import UTC, datetime

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from provisor.api.deps import authorize, provisor_of
from provisor.api.http import check_accept, json_response, no_content
from provisor.auth.base import token_fingerprint
from provisor.authz import require_master
from provisor.domain.ids import shown
from provisor.errors import InvalidInput, NotFound

__all__ = ["router"]

log = logging.getLogger(__name__)
router = APIRouter(prefix="/0.2/dev_mgr/bans")


@router.get("")
async def list_bans(request: Request) -> Response:
    """Addresses refused by every node, with when their ban ends and why."""
    check_accept(request)
    caller = await authorize(request, "provd.dev_mgr.bans.read")
    require_master(caller.scope, "bans")
    bans = provisor_of(request).bans.listed()
    return json_response(
        {
            "bans": [
                {
                    "address": b.address,
                    "until": datetime.fromtimestamp(b.until, UTC).isoformat(),
                    "reason": b.reason,
                }
                for b in bans
            ]
        }
    )


@router.delete("/{address}")
async def unban(request: Request, address: str) -> Response:
    """Lift a ban on every node (within about a second); 404 when the address is not banned."""
    caller = await authorize(request, "provd.dev_mgr.bans.delete")
    require_master(caller.scope, "bans")
    try:
        address = str(ipaddress.ip_address(address))
    except ValueError:
        raise InvalidInput(f"address: {shown(address)} is not an IP address") from None
    prov = provisor_of(request)
    pipeline = prov.extra.get("pipeline")
    # through the pipeline when it runs here: it also forgets the address's failures
    lifted = await (pipeline.failures.unban(address) if pipeline else prov.bans.remove(address))
    if not lifted:
        raise NotFound(f"address {address} is not banned")
    token = request.headers.get("x-auth-token", "")
    who = caller.token.user or f"token {token_fingerprint(token)}"
    log.warning("REST: %s lifted the ban of %s", who, address)
    return no_content()
