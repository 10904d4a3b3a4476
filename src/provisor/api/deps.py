"""Who is calling: the token check, the ACL of the endpoint and the tenants in view.

Every endpoint but the API spec names its ACL (wazo's dotted form, with ``{var}`` placeholders
filled from the path, '.' in values becoming '_'). The caller's tenant is the ``Wazo-Tenant``
header (it must be visible to the token) or the token's own; ``recurse=true`` widens lists to the
tenant's subtree, and single resources are always looked up in the subtree. What the caller may
then see, change and reference is decided by provisor.authz from the :class:`Scope` built here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from starlette.requests import Request

from provisor.auth.base import TokenInfo, format_acl
from provisor.authz import Scope
from provisor.domain.values import validate_id
from provisor.errors import InvalidInput, Unauthorized
from provisor.metrics import AUTH_SECONDS
from provisor.service import Provisor

__all__ = ["Caller", "authorize", "authorize_token", "path_id", "provisor_of"]


def provisor_of(request: Request) -> Provisor:
    """The Provisor instance serving this request."""
    app: Provisor = request.app.state.provisor
    return app


@dataclass(frozen=True, slots=True)
class Caller:
    """An authorised caller and the tenants it sees."""

    token: TokenInfo
    scope: Scope
    recurse: bool

    @property
    def tenant_uuid(self) -> str:
        """The tenant acted in (Wazo-Tenant, or the token's own)."""
        return self.scope.tenant_uuid

    @property
    def subtree(self) -> frozenset[str]:
        """The acting tenant and its sub-tenants."""
        return self.scope.subtree

    @property
    def list_tenants(self) -> frozenset[str]:
        """Tenants covered by a list call: the tenant, or its subtree with recurse=true."""
        return self.subtree if self.recurse else frozenset({self.tenant_uuid})


async def authorize(request: Request, acl: str, **variables: str) -> Caller:
    """Check ``X-Auth-Token`` for ``acl`` and resolve the caller's tenants (401 otherwise)."""
    return await authorize_token(
        provisor_of(request),
        _once(request.headers.getlist("x-auth-token"), "X-Auth-Token header"),
        _once(request.headers.getlist("wazo-tenant"), "Wazo-Tenant header") or None,
        acl,
        recurse=(_once(request.query_params.getlist("recurse"), "recurse") or "").lower() == "true",
        **variables,
    )


def _once(values: list[str], name: str) -> str | None:
    # given twice, a proxy or an audit log may act on one value and provisor on the other
    if len(values) > 1:
        raise InvalidInput(f"{name}: given {len(values)} times, expected once")
    return values[0] if values else None


async def authorize_token(
    prov: Provisor,
    token: str | None,
    tenant_header: str | None,
    acl: str,
    *,
    recurse: bool = False,
    **variables: str,
) -> Caller:
    """Check ``token`` for ``acl`` in ``tenant_header`` (or the token's tenant): the one path
    the REST API and the console both take."""
    required = format_acl(acl, **variables) if variables else acl
    started = time.perf_counter()
    try:
        info = await prov.auth.authorize(token, required, tenant_header)
    finally:  # refusals too: a slow wazo-auth slows both
        AUTH_SECONDS.labels(prov.settings.auth.backend).observe(time.perf_counter() - started)
    # cached by the backend; follows wazo-auth's service tenant
    master = await prov.master_tenant()
    tenant = tenant_header or info.tenant_uuid
    if prov.tenants.get(tenant) is None:
        await prov.tenants.ensure(tenant, None if tenant == info.tenant_uuid else info.tenant_uuid)
    if token is None:  # pragma: no cover - authorize refused it already
        raise Unauthorized("Unauthorized")
    subtree = frozenset(await prov.auth.visible_tenants(token, tenant))
    token_subtree = (
        subtree
        if tenant == info.tenant_uuid
        else frozenset(await prov.auth.visible_tenants(token, info.tenant_uuid))
    )
    if prov.fence.active:  # a tenant in reach being deleted: answer as after the deletion
        await prov.fence.wait(subtree | token_subtree | {tenant})
    scope = Scope(tenant, subtree, info.tenant_uuid, token_subtree, info.tenant_uuid == master)
    return Caller(token=info, scope=scope, recurse=recurse)


def path_id(value: str, field: str) -> str:
    """A config or device id from the URL, checked where it enters (400 naming the field)."""
    return validate_id(value, field)
