"""Tenants' template overrides of a plugin: the one write path of the REST API and the console.

An override belongs to the caller's own tenant; ``device`` overrides name one of that tenant's
devices (any other id, missing or another tenant's, gets the same refusal); the source is
checked by the sandbox before it is stored.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provisor.api.deps import Caller, path_id
from provisor.domain.ids import shown
from provisor.errors import InvalidInput, NotFound
from provisor.plugins.sandbox import check_template

if TYPE_CHECKING:
    from provisor.service import Provisor

__all__ = ["SCOPES", "delete_override", "put_override", "template_names", "template_source"]

SCOPES = ("tenant", "model", "device")
#: Longest override target (the ``template_overrides.target`` column).
MAX_TARGET = 128
_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")


def template_names(plugin: Any) -> set[str]:
    """The plugin's own template files (the names an override may replace)."""
    root = plugin.root / "templates"
    return (
        {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
        if root.is_dir()
        else set()
    )


def template_source(plugin: Any, name: str) -> str:
    """The plugin's own text of a template (to diff an override against)."""
    if name not in template_names(plugin):
        raise NotFound("No such resource")
    return Path(plugin.root / "templates" / name).read_text("utf-8", "replace")


async def put_override(
    prov: Provisor,
    caller: Caller,
    plugin: Any,
    plugin_id: str,
    scope: str,
    name: str,
    target: object,
    source: object,
) -> None:
    """Create or replace one of the caller tenant's overrides (validated, sandbox-checked)."""
    if scope not in SCOPES:
        raise InvalidInput(f"scope: {scope!r} is not one of {', '.join(SCOPES)}")
    if name not in template_names(plugin):
        raise InvalidInput(f"template: plugin {plugin_id!r} has no template {name!r}")
    if not isinstance(source, str):
        raise InvalidInput('body: expected {"template": {"target": "...", "source": "..."}}')
    target = target or ""
    if not isinstance(target, str) or (scope != "tenant" and not target):
        raise InvalidInput(
            f"template.target: required for scope {scope!r} (a model or a device id)"
        )
    if scope == "model" and (len(target) > MAX_TARGET or _CONTROL.search(target)):
        # the column holds 128 characters (PostgreSQL enforces it, SQLite does not); a model
        # name is one line of text
        raise InvalidInput(
            f"template.target: a model name of 1-{MAX_TARGET} characters without control"
            f" characters, not {shown(target)}"
        )
    if scope == "device":
        # only the caller's own device: the override applies where the device's tenant is
        # the caller's; any other id, missing or not, gets the same answer
        path_id(target, "template.target")
        try:
            owner = (await prov.devices.get(target, caller.scope))["tenant_uuid"]
        except NotFound:
            owner = None
        if owner != caller.tenant_uuid:
            raise InvalidInput(f"template.target: no device {target!r} in this tenant")
    check_template(source)
    await prov.param_store.put_override(
        {
            "tenant_uuid": caller.tenant_uuid,
            "plugin_id": plugin_id,
            "scope": scope,
            "target": "" if scope == "tenant" else target,
            "name": name,
            "source": source,
        }
    )


async def delete_override(
    prov: Provisor, caller: Caller, plugin_id: str, scope: str, target: str, name: str
) -> None:
    """Delete one of the caller tenant's overrides (404 when it has none by that key)."""
    key = {
        "tenant_uuid": caller.tenant_uuid,
        "plugin_id": plugin_id,
        "scope": scope,
        "target": target,
        "name": name,
    }
    if not await prov.param_store.delete_override(key):
        raise NotFound("No such resource")
