"""The Phone page: a device's fields, effective config and where each value comes from,
previews of its files, its request timeline, and the actions on it.

Every read and action takes the ACL of the matching REST endpoint for the session's token, and
the device is loaded through the scoped service call (a device outside the token's subtree is
a 404, the same as a missing one). Secrets are masked; ``reveal`` (a POST, with the ACLs that
read the config and the device token over REST) shows them once, and is logged without them.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from provisor.api.deps import Caller, authorize_token, path_id, provisor_of
from provisor.auth.base import format_acl
from provisor.console.fleet_state import last_seen, state_of
from provisor.console.masking import MASK, flatten, is_secret, mask_text, provenance
from provisor.console.phones import trace_of, when
from provisor.console.sessions import Session
from provisor.console.web import (
    PREFIX,
    ConsoleRoute,
    console_caller,
    read_form,
    redirect,
    render,
)
from provisor.domain.values import normalize_mac
from provisor.errors import InvalidInput, NotFound, Unauthorized
from provisor.plugins.base import Plugin
from provisor.plugins.contract import FileRoute

__all__ = ["device_files", "file_previews", "router"]

log = logging.getLogger(__name__)
router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute)

P = "provd.dev_mgr"
PREVIEW_BYTES = 64 * 1024
_MAC_GROUP = re.compile(r"\(\?P<mac>[^)]*\)")
_OPTIONAL = re.compile(r"\(\?:[^()]*\)\?")  # an optional prefix such as (?:tp/)?
_REGEX_LEFT = re.compile(r"[\\()\[\]{}*+?|^$]")


def _mac_forms(mac: str) -> list[str]:
    bare = mac.replace(":", "")
    return [bare.lower(), bare.upper(), mac.lower(), mac.upper(), mac.replace(":", "-").lower()]


def device_files(plugin: Plugin, device: dict[str, Any]) -> list[tuple[str, FileRoute]]:
    """(name, route) of the device's own files the plugin serves, for those whose name is
    the MAC in a fixed pattern (the common case; others are not previewed)."""
    mac = device.get("mac")
    if not mac:
        return []
    out: list[tuple[str, FileRoute]] = []
    for spec in plugin.manifest.files:
        if spec.kind != "device":
            continue
        source = _OPTIONAL.sub("", spec.pattern.pattern)
        if not _MAC_GROUP.search(source):
            continue
        for form in _mac_forms(normalize_mac(mac)):
            candidate = _MAC_GROUP.sub(form, source).replace("\\.", ".").replace("\\-", "-")
            if _REGEX_LEFT.search(candidate):
                break  # other variable parts: cannot name the file
            route = plugin.route(candidate)
            if route is not None and route.spec is spec:
                out.append((spec.name or candidate, route))
                break
    return out


async def file_previews(
    prov: Any, doc: dict[str, Any], hidden: list[str | None]
) -> list[dict[str, Any]]:
    """The device's files as its plugin would render them now (the budgeted render path, with
    the tenant's template overrides), secrets blanked and ``hidden`` values masked."""
    previews: list[dict[str, Any]] = []
    plugin = prov.plugins.get(doc.get("plugin"))
    pipeline = prov.extra.get("pipeline")
    if plugin is not None and pipeline is not None:
        for name, route in device_files(plugin, doc):
            result = await pipeline.preview(plugin, route, doc)
            body = result.body[:PREVIEW_BYTES].decode("utf-8", "replace")
            previews.append(
                {
                    "name": name,
                    "path": route.path,
                    "status": result.status,
                    "reason": result.reason,
                    "body": mask_text(body, hidden),
                    "cut": len(result.body) > PREVIEW_BYTES,
                }
            )
    return previews


async def _allowed(session: Session, request: Request, acl: str) -> bool:
    try:
        await authorize_token(provisor_of(request), session.token, session.acting_tenant, acl)
    except Unauthorized:
        return False
    return True


async def _readable(prov: Any, caller: Caller, config_id: str) -> bool:
    """Whether the caller reads this config over REST: a master's line config given to a
    sub-tenant's phone is not the sub-tenant's to read (authorization rule 4)."""
    try:
        await prov.configs.get(config_id, caller.scope)
    except NotFound:
        return False
    return True


async def _page(
    request: Request, session: Session, caller: Caller, device_id: str, reveal: bool
) -> Response:
    prov = provisor_of(request)
    doc = await prov.devices.get(device_id, caller.scope)
    tenant = prov.tenants.get(doc.get("tenant_uuid"))
    config_id = doc.get("config")
    rows: list[dict[str, Any]] = []
    if (
        config_id
        and await prov.configs.referable(None, doc["tenant_uuid"], config_id)
        and await _readable(prov, caller, config_id)
    ):
        effective = await prov.configs.effective(config_id) or {}
        origin = provenance(await prov.configs.chain(config_id))
        for key, value in sorted(flatten(effective).items()):
            secret = is_secret(key)
            shown = MASK if secret and value and not reveal else value
            rows.append(
                {"key": key, "value": shown, "secret": secret, "source": origin.get(key, None)}
            )
    token = await prov.devices.store.get_token(device_id)
    hidden = [tenant.provisioning_key if tenant else None, token]
    previews = await file_previews(prov, doc, hidden)
    trace = trace_of(request)
    last = (await last_seen(prov.engine, [device_id], trace, prov.seen)).get(device_id)
    master = await prov.master_tenant()
    timeline = (
        trace.query(
            device_id=device_id,
            tenants=None if caller.tenant_uuid == master else caller.subtree,
            limit=100,
        )
        if trace is not None
        else []
    )
    for entry in timeline:
        entry["path"] = mask_text(entry.get("path") or "", hidden)
    return render(
        request,
        "phone.html",
        session=session,
        doc=doc,
        fields=sorted((k, v) for k, v in doc.items() if not isinstance(v, dict)),
        options=doc.get("options") or {},
        tenant_name=(tenant.name or tenant.uuid) if tenant else doc.get("tenant_uuid"),
        rows=rows,
        previews=previews,
        timeline=timeline,
        last=last,
        last_file=mask_text(last.file, hidden) if last else "",
        state=state_of(last),
        token=(token if reveal else MASK) if token else "",
        revealed=reveal,
        when=when,
        config_id=config_id,
    )


@router.get("/phones/{device_id}")
async def phone(request: Request, device_id: str) -> Response:
    """One phone."""
    path_id(device_id, "device_id")
    session, caller = await console_caller(
        request, f"{P}.devices.{{device_id}}.read", device_id=device_id
    )
    return await _page(request, session, caller, device_id, reveal=False)


@router.post("/phones/{device_id}/reveal")
async def reveal(request: Request, device_id: str) -> Response:
    """The phone page with its secrets shown, for a token that may read them over REST."""
    path_id(device_id, "device_id")
    session, caller = await console_caller(
        request, f"{P}.devices.{{device_id}}.token.read", device_id=device_id
    )
    await read_form(request, session)
    prov = provisor_of(request)
    doc = await prov.devices.get(device_id, caller.scope)
    if doc.get("config") and not (
        await _allowed(
            session, request, format_acl("provd.cfg_mgr.configs.{c}.read", c=doc["config"])
        )
        and await _readable(prov, caller, doc["config"])
    ):
        raise Unauthorized("Unauthorized: revealing needs reading the device's config")
    log.info("console: %s revealed the secrets of device %s", session.label, device_id)
    return await _page(request, session, caller, device_id, reveal=True)


@router.post("/phones/{device_id}/resync")
async def resync(request: Request, device_id: str) -> Response:
    """Tell the phone to resync; the operation's page follows its result."""
    path_id(device_id, "device_id")
    session, caller = await console_caller(request, f"{P}.synchronize.create")
    await read_form(request, session)
    prov = provisor_of(request)
    doc = await prov.devices.get(device_id, caller.scope)
    sync = prov.extra.get("sync")
    if sync is None:
        op = prov.operations.failed("synchronize", "no sync service configured")
    else:
        op = sync.start_one(doc)
    op.tenant_uuid = caller.tenant_uuid  # the operation is the caller's (authz rule 6)
    log.info("console: %s asked device %s to resync", session.label, device_id)
    return redirect(f"{PREFIX}/operations/synchronize/{op.id}?device={device_id}")


@router.post("/phones/{device_id}/rotate-token")
async def rotate_token(request: Request, device_id: str) -> Response:
    """Give the phone a new provisioning token (the old one stops working at once)."""
    path_id(device_id, "device_id")
    session, caller = await console_caller(
        request, f"{P}.devices.{{device_id}}.token.update", device_id=device_id
    )
    await read_form(request, session)
    await provisor_of(request).devices.rotate_token(device_id, caller.scope)
    log.info("console: %s rotated the token of device %s", session.label, device_id)
    return redirect(f"{PREFIX}/phones/{device_id}?done=token")


@router.post("/phones/{device_id}/reconfigure")
async def reconfigure(request: Request, device_id: str) -> Response:
    """Recompute the phone's configured state."""
    path_id(device_id, "device_id")
    session, caller = await console_caller(request, f"{P}.reconfigure.create")
    await read_form(request, session)
    await provisor_of(request).devices.get(device_id, caller.scope)
    await provisor_of(request).devices.reconfigure(device_id, caller.scope)
    return redirect(f"{PREFIX}/phones/{device_id}?done=reconfigure")


@router.post("/phones/{device_id}/delete")
async def delete(request: Request, device_id: str) -> Response:
    """Delete the phone (the form's confirmation box must be ticked)."""
    path_id(device_id, "device_id")
    session, caller = await console_caller(
        request, f"{P}.devices.{{device_id}}.delete", device_id=device_id
    )
    form = await read_form(request, session)
    if form.get("confirm") != "yes":
        raise InvalidInput("confirm: tick the box to delete the phone")
    await provisor_of(request).devices.delete(device_id, caller.scope)
    log.info("console: %s deleted device %s", session.label, device_id)
    return redirect(f"{PREFIX}/phones")
