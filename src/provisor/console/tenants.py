"""The Tenants page: the tenants of the caller's subtree, their provisioning key (masked; set,
rotate or clear), their TFTP switch and how many devices they hold.

Each action is authorised like its REST call, acting in that tenant (as a ``Wazo-Tenant``
header would): the key like ``PUT /0.2/configure/provisioning_key``, TFTP like
``PUT /0.2/tenant_mgr/tenants/{uuid}/tftp``. A rotated key is shown once on the answer page
(the DHCP server needs it) and never logged.
"""

from __future__ import annotations

import logging
import secrets
import string

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from provisor.api.deps import authorize_token, provisor_of
from provisor.console.masking import MASK
from provisor.console.sessions import Session
from provisor.console.web import (
    PREFIX,
    ConsoleRoute,
    console_caller,
    read_form,
    redirect,
    render,
)
from provisor.errors import InvalidInput, NotFound
from provisor.services.tenants import TenantAdmin
from provisor.store.fleet import count_devices

__all__ = ["router"]

log = logging.getLogger(__name__)
router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute)

_KEY_ALPHABET = string.ascii_letters + string.digits


async def _page(request: Request, session: Session, new_key: tuple[str, str] | None) -> Response:
    _, caller = await console_caller(request, "provd.tenant_mgr.tenants.read")
    prov = provisor_of(request)
    rows = []
    for uuid in caller.subtree:
        tenant = prov.tenants.get(uuid)
        if tenant is None:
            continue
        rows.append(
            {
                "uuid": uuid,
                "name": tenant.name or uuid,
                "parent": tenant.parent_uuid or "",
                "is_master": tenant.is_master,
                "key": MASK if tenant.provisioning_key else "",
                "tftp": tenant.tftp_enabled,
                "devices": await count_devices(prov.engine, [uuid]),
            }
        )
    rows.sort(key=lambda r: (not r["is_master"], str(r["name"]).lower()))
    return render(request, "tenants.html", session=session, rows=rows, new_key=new_key)


@router.get("/tenants")
async def tenants(request: Request) -> Response:
    """The Tenants page."""
    session, _ = await console_caller(request, "provd.tenant_mgr.tenants.read")
    return await _page(request, session, None)


async def _in_view(request: Request, session: Session, tenant_uuid: str, acl: str) -> None:
    """Authorise ``acl`` acting in ``tenant_uuid`` (404 when the token does not see it)."""
    prov = provisor_of(request)
    if prov.tenants.get(tenant_uuid) is None:
        raise NotFound("No such resource")
    _, caller = await console_caller(request, "provd.tenant_mgr.tenants.read")
    if tenant_uuid not in caller.subtree:
        raise NotFound("No such resource")
    await authorize_token(prov, session.token, tenant_uuid, acl)


@router.post("/tenants/{tenant_uuid}/key")
async def set_key(request: Request, tenant_uuid: str) -> Response:
    """Set, rotate or clear a tenant's provisioning key."""
    session, caller = await console_caller(request, "provd.tenant_mgr.tenants.read")
    form = await read_form(request, session)
    acl = f"provd.configure.{tenant_uuid.replace('.', '_')}.provisioning_key.update"
    await _in_view(request, session, tenant_uuid, acl)
    prov = provisor_of(request)
    action = form.get("action", "")
    if action == "rotate":
        key = "".join(secrets.choice(_KEY_ALPHABET) for _ in range(24))
    elif action == "set":
        key = form.get("key", "")
        if not key:
            raise InvalidInput("key: give a key (or use Clear)")
    elif action == "clear":
        key = ""
    else:
        raise InvalidInput("action: set, rotate or clear")
    await prov.params.set("provisioning_key", key, tenant_uuid, caller.scope)
    log.info(
        "console: %s changed the provisioning key of tenant %s (%s)",
        session.label,
        tenant_uuid,
        action,
    )
    if action == "rotate":
        return await _page(request, session, (tenant_uuid, key))
    return redirect(f"{PREFIX}/tenants")


@router.post("/tenants/{tenant_uuid}/tftp")
async def set_tftp(request: Request, tenant_uuid: str) -> Response:
    """Turn a tenant's TFTP on or off."""
    session, _ = await console_caller(request, "provd.tenant_mgr.tenants.read")
    form = await read_form(request, session)
    acl = f"provd.tenant_mgr.tenants.{tenant_uuid.replace('.', '_')}.tftp.update"
    await _in_view(request, session, tenant_uuid, acl)
    enabled = form.get("enabled")
    if enabled not in ("on", "off"):
        raise InvalidInput("enabled: on or off")
    await TenantAdmin(provisor_of(request)).set_tftp(tenant_uuid, enabled == "on")
    log.info("console: %s turned TFTP %s for tenant %s", session.label, enabled, tenant_uuid)
    return redirect(f"{PREFIX}/tenants")
