"""``/0.2/dev_mgr/bans``: the phone addresses every node refuses, and lifting a ban (an
extension; wazo-provd has no bans API, its operators edit fail2ban).

Bans are global state holding other tenants' phone addresses: master-tenant tokens only, as
for plugins. An unban is logged with the token's fingerprint, never the token.
"""

from __future__ import annotations

import ipaddress
import logging

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from provisor.api.deps import authorize, provisor_of
from provisor.api.http import check_accept, json_response, no_content
from provisor.auth.base import token_fingerprint
from provisor.authz import require_master
from provisor.domain.ids import shown
from provisor.errors import InvalidInput, NotFound
from provisor.service import Provisor

__all__ = ["checked_address", "lift_ban", "router"]

log = logging.getLogger(__name__)
router = APIRouter(prefix="/0.2/dev_mgr/bans")


def checked_address(value: str) -> str:
    """An IP address from a URL or a form, normalised; a 400 naming it otherwise."""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise InvalidInput(f"address: {shown(value)} is not an IP address") from None


async def lift_ban(prov: Provisor, address: str) -> bool:
    """Lift a ban on every node (False when there was none); through the pipeline when it runs
    in this process, so the address's failures are forgotten too."""
    pipeline = prov.extra.get("pipeline")
    if pipeline is not None:
        return bool(await pipeline.failures.unban(address))
    return await prov.bans.remove(address)


@router.get("")
async def list_bans(request: Request) -> Response:
    """Addresses refused by every node, with when their ban ends and why."""
    check_accept(request)
    caller = await authorize(request, "provd.dev_mgr.bans.read")
    require_master(caller.scope, "bans")
    return json_response({"bans": [b.public() for b in provisor_of(request).bans.listed()]})


@router.delete("/{address}")
async def unban(request: Request, address: str) -> Response:
    """Lift a ban on every node (within about a second); 404 when the address is not banned."""
    caller = await authorize(request, "provd.dev_mgr.bans.delete")
    require_master(caller.scope, "bans")
    address = checked_address(address)
    if not await lift_ban(provisor_of(request), address):
        raise NotFound(f"address {address} is not banned")
    token = request.headers.get("x-auth-token", "")
    who = caller.token.user or f"token {token_fingerprint(token)}"
    log.warning("REST: %s lifted the ban of %s", who, address)
    return no_content()
