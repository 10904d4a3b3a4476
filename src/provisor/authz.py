"""Who may see, change and reference what: the one place tenant ownership is decided.

Every REST caller becomes a :class:`Scope` (api/deps.py builds it once per request); the
services ask the functions below before they return, change or link an object, and load
per-tenant rows through queries already restricted to ``Scope.subtree``. Internal callers (the
phone pipeline, the CLI) pass ``scope=None``: the server itself sees everything, but the
ownership rules that protect one tenant's data from another (what a config or device may
reference) still apply to it.

The rules, stated for users in docs/api.md ("Authorization model"):

1. Global state — plugins, the repository, firmware packages, global parameters, DHCP lease
   information — is changed only by tokens of the master tenant (:func:`require_master`).
2. A device is seen by a caller whose tenant subtree holds its tenant.
3. A config is seen by a caller whose subtree holds its owner, or by everyone when it is
   shared (owner ``None``: the system configs and those the master creates as shared).
4. An object owned by tenant O may reference config C (a config's parents, a device's config)
   only when C is shared or owned by O or an ancestor of O, and the caller's token sees C's
   owner. Inheritance applies the same rule when it computes a raw config, so an id deleted
   and re-created elsewhere never pulls another tenant's data in.
5. An ``is_new`` device is claimed by a PUT as :func:`claim_tenant` says.
6. Long operations belong to the tenant that started them (:func:`operation_visible`).
7. A device's ports may be held by other tenants (a gateway shared by tenants): a port is seen
   and given a line by callers whose subtree holds the port's tenant (:func:`port_visible`);
   only callers who see the device assign or revoke ports, to tenants of their own subtree.
8. A refusal never tells an invisible object from a missing one; where an answer must differ
   (a taken id, a taken provisioning key) :class:`ConflictBudget` bounds how often a
   sub-tenant may ask.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from provisor.errors import NotFound, ProvisorError, Unauthorized

__all__ = [
    "ConflictBudget",
    "Lineage",
    "Scope",
    "TooManyConflicts",
    "claim_tenant",
    "config_visible",
    "device_visible",
    "may_reference",
    "operation_visible",
    "port_visible",
    "require_master",
    "tenants_of",
]

log = logging.getLogger(__name__)

Lineage = Callable[[str | None], frozenset[str]]
"""A tenant and its ancestors (empty for None), from the tenant tree."""


@dataclass(frozen=True, slots=True)
class Scope:
    """An authorised caller as the rules see it."""

    tenant_uuid: str  # the tenant acted in: Wazo-Tenant, or the token's own
    subtree: frozenset[str]  # tenant_uuid and every tenant below it
    token_tenant: str  # the tenant the token belongs to
    token_subtree: frozenset[str]  # what the token may see whatever the header says
    is_master: bool  # the token belongs to the master tenant


class TooManyConflicts(ProvisorError):
    """A sub-tenant asked too often whether an id or key is taken elsewhere."""

    status_code = 429


def require_master(scope: Scope | None, what: str) -> None:
    """Refuse a change of global state to a token outside the master tenant (401, like an
    ACL the token lacks: wazo clients know no 403 for this)."""
    if scope is not None and not scope.is_master:
        raise Unauthorized(f"Unauthorized: {what} belongs to the master tenant")


def device_visible(scope: Scope | None, tenant_uuid: str | None) -> bool:
    """A device is visible when its tenant is in the caller's subtree."""
    return scope is None or tenant_uuid in scope.subtree


def config_visible(scope: Scope | None, owner: str | None) -> bool:
    """A config is visible when shared or owned inside the caller's subtree."""
    return scope is None or owner is None or owner in scope.subtree


def may_reference(
    scope: Scope | None, referrer_owner: str | None, target_owner: str | None, lineage: Lineage
) -> bool:
    """May an object owned by ``referrer_owner`` inherit from / use a config owned by
    ``target_owner``? Shared targets always; owned ones only from the owner or one of its
    ancestors (what flows down a tree was put there by someone above), and only when the
    caller's token sees the target at all."""
    if target_owner is None:
        return True
    if target_owner not in lineage(referrer_owner):
        return False
    return scope is None or target_owner in scope.token_subtree


def claim_tenant(scope: Scope, device: Mapping[str, Any], master_uuid: str) -> str | None:
    """The tenant a PUT by ``scope`` leaves an ``is_new`` device in; None when the device is
    not new (the ordinary rules apply). NotFound when the caller may not touch it.

    - auto-created by a phone in the master tenant: claimed by the caller's tenant (wazo's
      rule: the tenant whose line is associated with it takes it);
    - created by the master through the API: only a master token may move it (to the tenant
      it acts in); to anyone else it does not exist;
    - auto-created under a tenant's provisioning key: it already belongs to that tenant and
      stays there; callers outside that tenant's subtree do not see it.
    """
    if not device.get("is_new"):
        return None
    tenant = device.get("tenant_uuid")
    if tenant == master_uuid:
        if device.get("added") == "auto" or master_uuid in scope.token_subtree:
            return scope.tenant_uuid
        raise NotFound("No such resource")
    if tenant in scope.subtree:
        return str(tenant)
    raise NotFound("No such resource")


def port_visible(scope: Scope | None, port_tenant: str) -> bool:
    """A port of a shared device is the port tenant's: its subtree sees it and sets its line
    (the device's owner sees that the port is held, and by whom, but not its line)."""
    return scope is None or port_tenant in scope.subtree


def operation_visible(scope: Scope | None, owner: str | None) -> bool:
    """An operation is seen by the subtree of the tenant that started it (ownerless ones,
    started by the server itself, by master tokens only)."""
    if scope is None:
        return True
    if owner is None:
        return scope.is_master
    return owner in scope.subtree


class ConflictBudget:
    """How many "already taken by someone you cannot see" answers a tenant gets per window.

    A sub-tenant that sets a provisioning key another tenant uses, or creates an object with
    an id another tenant holds, learns that it exists: the answer cannot be the same as for a
    free value. Each such answer is logged (the tenant, never the value) and counted; past
    ``limit`` in ``window`` seconds the tenant gets 429 until the window ends. Master tokens
    see every tenant anyway and are not counted.
    """

    def __init__(self, limit: int = 5, window: float = 3600.0) -> None:
        self.limit = limit
        self.window = window
        self._spent: dict[str, list[float]] = {}

    def _recent(self, tenant: str, now: float) -> list[float]:
        kept = [t for t in self._spent.get(tenant, ()) if now - t < self.window]
        if kept:
            self._spent[tenant] = kept
        else:
            self._spent.pop(tenant, None)
        return kept

    def check(self, scope: Scope | None) -> None:
        """Refuse (429) a tenant whose budget is spent, before it asks again."""
        if scope is None or scope.is_master:
            return
        if len(self._recent(scope.token_tenant, time.monotonic())) >= self.limit:
            raise TooManyConflicts("too many conflicts with other tenants' values; try again later")

    def spend(self, scope: Scope | None, what: str) -> None:
        """Count one conflict with an invisible value (logged without the value)."""
        if scope is None or scope.is_master:
            return
        now = time.monotonic()
        spent = self._recent(scope.token_tenant, now)
        spent.append(now)
        self._spent[scope.token_tenant] = spent
        if len(self._spent) > 100_000:  # bounded: drop the oldest tenants' counts
            self._spent.pop(next(iter(self._spent)))
        log.warning(
            "tenant %s: %s conflicts with another tenant's (%d in the window)",
            scope.token_tenant,
            what,
            len(spent),
        )


def tenants_of(scope: Scope | None) -> Collection[str] | None:
    """The tenants a scoped query covers (None: every tenant, for the server itself)."""
    return None if scope is None else scope.subtree
