"""Configure parameters (``/0.2/configure``): a typed table, not method names looked up by string.

Each parameter declares its description, whether it is per tenant, and its validator; the
validator normalises the value or raises InvalidInput with the reason. Global parameters are
stored under tenant "", per-tenant ones under the tenant's uuid. ``provisioning_key`` is kept
on the tenant row so the phone path finds the tenant of a key in O(1).

Global parameters are global state: only master tokens read or change them (a proxy URL may
carry credentials, and ``plugin_server`` decides what code the server installs). A sub-tenant
sees and sets its own per-tenant parameters only; setting a key another tenant uses spends the
tenant's conflict budget (provisor.authz.ConflictBudget).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from provisor.authz import ConflictBudget, Scope, require_master
from provisor.domain.values import parse_nat, validate_provisioning_key
from provisor.errors import InvalidInput, NotFound
from provisor.store.tenancy import ParamStore, TenantStore

__all__ = ["PARAMS", "Param", "ParamService"]

_LOCALE = re.compile(r"^[a-z]{2}_[A-Z]{2}\Z")
_HOSTPORT = re.compile(r"^[A-Za-z0-9.\-\[\]:]+:[0-9]{1,5}\Z")


def _url(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput("plugin_server: must be a URL string or null")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https", "file") or (
        parts.scheme != "file" and not parts.netloc
    ):
        raise InvalidInput(f"plugin_server: {value!r} is not an http(s) or file URL")
    return value


def _proxy(name: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if value in (None, ""):
            return None
        if not isinstance(value, str):
            raise InvalidInput(f"{name}: must be a string or null")
        parts = urlsplit(value)
        try:
            port = parts.port
        except ValueError:
            port = None
        if not parts.scheme or not parts.hostname or port is None or parts.path not in ("", "/"):
            raise InvalidInput(f"{name}: expected scheme://[user:pass@]host:port, no path")
        return value

    return check


def _https_proxy(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _HOSTPORT.match(value):
        raise InvalidInput("https_proxy: expected host:port")
    return value


def _locale(value: Any) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not _LOCALE.match(value):
        raise InvalidInput("locale: expected a locale like fr_FR")
    return value


@dataclass(frozen=True, slots=True)
class Param:
    """One configure parameter."""

    id: str
    description: str
    validate: Callable[[Any], Any]
    per_tenant: bool = False


PARAMS: dict[str, Param] = {
    p.id: p
    for p in (
        Param("plugin_server", "The plugins repository URL", _url),
        Param(
            "http_proxy", "The HTTP proxy for plugin and firmware downloads", _proxy("http_proxy")
        ),
        Param("ftp_proxy", "The FTP proxy for plugin and firmware downloads", _proxy("ftp_proxy")),
        Param("https_proxy", "The HTTPS proxy (host:port) for downloads", _https_proxy),
        Param("locale", "The current locale, e.g. fr_FR", _locale),
        Param("NAT", "Set to 1 if all the devices are behind a NAT", parse_nat),
        Param(
            "provisioning_key",
            "The tenant's provisioning key, the first segment of its phones' URLs",
            validate_provisioning_key,
            per_tenant=True,
        ),
    )
}


class ParamService:
    """Read and change parameters with their validation."""

    def __init__(self, store: ParamStore, tenants: TenantStore, defaults: dict[str, Any]) -> None:
        self.store = store
        self.tenants = tenants
        self.defaults = defaults
        self.conflicts = ConflictBudget()

    def describe(self, name: str) -> Param:
        """The parameter's declaration; NotFound for an unknown name."""
        param = PARAMS.get(name)
        if param is None:
            raise NotFound("No such resource")
        return param

    async def get(self, name: str, tenant_uuid: str, scope: Scope | None = None) -> Any:
        """The value of a parameter (per-tenant ones for ``tenant_uuid``)."""
        param = self.describe(name)
        if not param.per_tenant:
            require_master(scope, f"parameter {name}")
        if name == "provisioning_key":
            tenant = self.tenants.get(tenant_uuid)
            return tenant.provisioning_key if tenant else None
        value = await self.store.get(name, tenant_uuid if param.per_tenant else "")
        if value is None:
            value = self.defaults.get(name)
        if name == "NAT":
            return int(value or 0)
        return value

    async def set(
        self, name: str, value: Any, tenant_uuid: str, scope: Scope | None = None
    ) -> None:
        """Validate and store a parameter."""
        param = self.describe(name)
        if not param.per_tenant:
            require_master(scope, f"parameter {name}")
        normalised = param.validate(value)
        if name == "provisioning_key":
            self.conflicts.check(scope)
            try:
                await self.tenants.set_key(tenant_uuid, normalised)
            except InvalidInput:
                self.conflicts.spend(scope, "a provisioning key")
                raise
            return
        await self.store.set(name, normalised, tenant_uuid if param.per_tenant else "")

    async def all(self, tenant_uuid: str, scope: Scope | None = None) -> list[dict[str, Any]]:
        """The parameters the caller may read, with their values, for ``GET /configure``."""
        shown = [p for p in PARAMS.values() if p.per_tenant or scope is None or scope.is_master]
        return [
            {"id": p.id, "description": p.description, "value": await self.get(p.id, tenant_uuid)}
            for p in shown
        ]
