"""Configs: validation, tenant scoping, inheritance and the effective raw config.

A config belongs to a tenant, or to nobody: the system configs ``base``, ``default``,
``defaultconfigdevice``, ``autoprov`` and those the master creates with ``"shared": true`` are
shared. A tenant sees its own configs and the shared ones, never another tenant's (upstream
shares every config, SIP passwords included); who may see and reference what is decided in
provisor.authz.

Effective raw configs are cached per config id and invalidated as a whole by a generation
counter that every config write bumps: a change to a parent shared by thousands of devices costs
one increment, and each device's next fetch recomputes lazily.
"""

from __future__ import annotations

import copy
import json
import uuid as uuidlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from provisor.authz import (
    ConflictBudget,
    Lineage,
    Scope,
    config_visible,
    may_reference,
    tenants_of,
)
from provisor.domain.inheritance import (
    ConfigNode,
    ancestors,
    check_parents,
    depth,
    effective_raw_config,
)
from provisor.domain.raw_config import validate_raw_config
from provisor.domain.selector import Selector
from provisor.domain.values import validate_id
from provisor.errors import Conflict, Forbidden, InvalidInput, NotFound
from provisor.services.quotas import TenantQuota
from provisor.store.changes import ChangeFeed
from provisor.store.configstore import ConfigStore
from provisor.store.page import Page

__all__ = ["SYSTEM_CONFIGS", "ConfigService"]

SYSTEM_CONFIGS = ("base", "default", "defaultconfigdevice", "autoprov")
#: Most direct parents of one config (wazo clients give one to three).
MAX_PARENTS = 32
CONFIG_DOC_MAX_BYTES = 1024 * 1024
"""Largest config once encoded: a phone's whole configuration with every line, key and
certificate is tens of KB; a tenant may create many configs, each one must stay bounded."""
# levels of inheritance, the config itself included: each level is one round trip when the
# cache is cold, and a chain of 953 configs made every write under it a 500 (RecursionError)
MAX_DEPTH = 32


def _own_lineage(tenant: str | None) -> frozenset[str]:
    return frozenset({tenant}) if tenant else frozenset()


@dataclass(slots=True)
class _Chain:
    """Configs and their ancestors as one read saw them (``ConfigService._load_chain``)."""

    nodes: dict[str, ConfigNode | None]
    owners: dict[str, str | None]

    def add(self, cid: str, node: ConfigNode | None, owner: str | None, parents: list[str]) -> None:
        """Record one config; its parents go on the list still to walk."""
        self.nodes[cid] = node
        self.owners[cid] = owner
        if node is not None:
            parents.extend(node.parent_ids)


class ConfigService:
    """Config documents with their rules; the one place that computes inheritance."""

    def __init__(
        self,
        store: ConfigStore,
        base_raw_config: Callable[[], Mapping[str, Any]],
        *,
        on_change: Callable[[], None] | None = None,
        cache_size: int = 20_000,
    ) -> None:
        self.store = store
        self._base = base_raw_config
        self._on_change = on_change
        self.generation = 0
        self._nodes: OrderedDict[str, ConfigNode | None] = OrderedDict()
        self._owners: dict[str, str | None] = {}
        #: a tenant and its ancestors; the device service wires the tenant tree in
        self.lineage: Lineage = _own_lineage
        self.subtree: Callable[[str], frozenset[str]] = lambda t: frozenset({t})
        self.conflicts = ConflictBudget()
        #: configs per tenant (``rest_api.tenant_max_configs``), wired by Provisor.open
        self.quota: TenantQuota | None = None
        self._effective: OrderedDict[str, dict[str, Any] | None] = OrderedDict()
        self._cache_size = cache_size
        self.feed: ChangeFeed | None = None
        self.listeners: list[Callable[[str, Mapping[str, Any]], Awaitable[None] | None]] = []

    async def _emit(self, event: str, doc: Mapping[str, Any]) -> None:
        for listener in self.listeners:
            result = listener(event, doc)
            if result is not None:
                await result

    def base(self) -> dict[str, Any]:
        """A copy of the base raw config (where phones reach provisor)."""
        return dict(self._base())

    # -- cache --------------------------------------------------------------------------------

    def invalidate(self) -> None:
        """Forget every cached node and effective config (after any config write)."""
        self.generation += 1
        self._nodes.clear()
        self._owners.clear()
        self._effective.clear()
        if self._on_change is not None:
            self._on_change()

    async def _load_chain(self, *config_ids: str) -> _Chain:
        """These configs and their ancestors, from the cache or one round trip per level.

        Gathered in a view of their own, kept in the cache only when no config was written
        meanwhile: a write (any tenant's, on any node) clears the cache between two round
        trips, and reading the cache afterwards found the first levels gone (another tenant's
        device read as having no config: 404, and that None kept until the next write). Each id
        is asked once: configs sharing parents (a level of 32 configs each naming the same 32
        parents) multiplied the list by 32 a level (4 levels: a million ids, 9 s for one config
        write; 5: minutes and gigabytes).
        """
        start = self.generation
        chain = _Chain({}, {})
        wanted = list(config_ids)
        while wanted:
            parents: list[str] = []
            fetch: list[str] = []
            for cid in dict.fromkeys(wanted):
                if cid in chain.nodes:
                    continue
                if cid in self._nodes:
                    chain.add(cid, self._nodes[cid], self._owners.get(cid), parents)
                else:
                    fetch.append(cid)
            if fetch:
                docs = await self.store.get_many(fetch)
                for cid in fetch:
                    doc = docs.get(cid)
                    node = (
                        ConfigNode(cid, tuple(doc.get("parent_ids", ())), doc.get("raw_config", {}))
                        if doc
                        else None
                    )
                    chain.add(cid, node, doc.get("tenant_uuid") if doc else None, parents)
            wanted = parents
        if self.generation == start:
            for cid, node in chain.nodes.items():
                self._nodes[cid] = node
                self._owners[cid] = chain.owners[cid]
            while len(self._nodes) > self._cache_size:
                self._owners.pop(self._nodes.popitem(last=False)[0], None)
        return chain

    def _chain_lookup(self, config_id: str, chain: _Chain) -> Callable[[str], ConfigNode | None]:
        """Node lookup for inheriting into ``config_id``: ancestors its owner may not
        reference (an id deleted and re-created by another tenant) read as missing."""
        allowed = self.lineage(chain.owners.get(config_id))

        def lookup(cid: str) -> ConfigNode | None:
            owner = chain.owners.get(cid)
            return chain.nodes.get(cid) if owner is None or owner in allowed else None

        return lookup

    async def effective(self, config_id: str | None) -> dict[str, Any] | None:
        """The config's raw config merged over its ancestors and the base raw config."""
        if not config_id:
            return None
        if config_id in self._effective:
            self._effective.move_to_end(config_id)
            cached = self._effective[config_id]
            return copy.deepcopy(cached) if cached is not None else None
        start = self.generation
        chain = await self._load_chain(config_id)
        result = effective_raw_config(config_id, self._chain_lookup(config_id, chain), self._base())
        if self.generation == start:  # else a write came in meanwhile: not kept
            self._effective[config_id] = result
            while len(self._effective) > self._cache_size:
                self._effective.popitem(last=False)
        return copy.deepcopy(result) if result is not None else None

    async def chain(self, config_id: str) -> list[tuple[str | None, Mapping[str, Any]]]:
        """The raw configs merged into ``config_id``'s effective one, in merge order: the base
        raw config (id None), each usable ancestor, the config itself. For showing which
        config set what (the console); the effective config itself comes from
        :meth:`effective`."""
        chain = await self._load_chain(config_id)
        lookup = self._chain_lookup(config_id, chain)
        out: list[tuple[str | None, Mapping[str, Any]]] = [(None, self._base())]
        for cid in [*ancestors(config_id, lookup), config_id]:
            node = lookup(cid)
            if node is not None:
                out.append((cid, node.raw_config))
        return out

    # -- visibility ---------------------------------------------------------------------------

    async def get(self, config_id: str, scope: Scope | None = None) -> dict[str, Any]:
        """A visible config; NotFound otherwise (the same for one that is not yours)."""
        doc = await self.store.get_in(config_id, tenants_of(scope))
        if doc is None or not config_visible(scope, doc.get("tenant_uuid")):
            raise NotFound("No such resource")
        return self._public(doc)

    @staticmethod
    def _public(doc: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in doc.items() if k != "tenant_uuid"}

    async def list(
        self, selector: Selector, tenants: Collection[str] | None, page: Page | None
    ) -> list[dict[str, Any]]:
        """Configs of these tenants (None: all) and the shared ones, matching the selector."""
        docs = await self.store.query(selector, tenants=tenants, page=page)
        return [self._public(d) for d in docs]

    async def raw(self, config_id: str, scope: Scope | None = None) -> dict[str, Any]:
        """The flattened raw config of a visible config."""
        await self.get(config_id, scope)
        result = await self.effective(config_id)
        if result is None:
            raise NotFound("No such resource")
        return result

    async def owner(self, config_id: str) -> tuple[bool, str | None]:
        """(exists, owning tenant) of a config, from the node cache when it is there."""
        chain = await self._load_chain(config_id)
        return chain.nodes.get(config_id) is not None, chain.owners.get(config_id)

    async def referable(self, scope: Scope | None, referrer: str | None, config_id: str) -> bool:
        """May an object owned by ``referrer`` use ``config_id`` (it exists and authz allows)?"""
        exists, owner = await self.owner(config_id)
        return exists and may_reference(scope, referrer, owner, self.lineage)

    # -- writes -------------------------------------------------------------------------------

    async def _validate(
        self,
        body: object,
        *,
        owner: str | None,
        scope: Scope | None,
        config_id: str | None = None,
    ) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise InvalidInput("config: must be a JSON object")
        # Other keys (label, configdevice, X_type…) are stored opaquely, as wazo clients expect.
        doc = dict(body)
        doc.pop("tenant_uuid", None)  # ownership comes from the caller, never the body
        doc.pop("shared", None)
        if config_id is not None:
            doc["id"] = config_id
        doc["id"] = validate_id(doc.get("id") or uuidlib.uuid4().hex, "config.id")
        parents = doc.get("parent_ids")
        if not isinstance(parents, list) or not all(isinstance(p, str) for p in parents):
            raise InvalidInput("config.parent_ids: required, a list of config ids")
        # checked before any is looked up: each costs a query, and an 8 MiB list of ids kept
        # the server busy for minutes on one request
        if len(parents) > MAX_PARENTS:
            raise InvalidInput(f"config.parent_ids: at most {MAX_PARENTS} parents")
        for parent in parents:
            validate_id(parent, "config.parent_ids")
        raw = doc.get("raw_config")
        if not isinstance(raw, dict):
            raise InvalidInput("config.raw_config: required, a JSON object")
        doc["raw_config"] = validate_raw_config(raw, complete=False)
        for key in ("deletable", "transient"):
            if key in doc and not isinstance(doc[key], bool):
                raise InvalidInput(f"config.{key}: must be true or false")
        if "role" in doc and doc["role"] is not None and not isinstance(doc["role"], str):
            raise InvalidInput("config.role: must be a string")
        code = doc.get("provisioning_code")
        if code not in (None, ""):
            # isdigit() alone takes "١٢٣" and "²³", which no phone keypad dials
            if not isinstance(code, str) or not (code.isascii() and code.isdigit()):
                raise InvalidInput("config.provisioning_code: 2 to 16 digits")
            if not 2 <= len(code) <= 16:
                raise InvalidInput("config.provisioning_code: 2 to 16 digits")
        if doc.get("X_type") == "device":
            doc = _strip_none(doc)
        if len(json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()) > (
            CONFIG_DOC_MAX_BYTES
        ):
            raise InvalidInput(f"config: larger than {CONFIG_DOC_MAX_BYTES} bytes once encoded")
        await self._check_parents(doc["id"], parents, owner, scope)
        return doc

    async def _check_parents(
        self, config_id: str, parents: Sequence[str], owner: str | None, scope: Scope | None
    ) -> None:
        chain = await self._load_chain(config_id, *parents)
        # a parent the new config may not inherit from reads as unknown: same answer as missing
        usable = {
            p
            for p in parents
            if chain.nodes.get(p) is not None
            and may_reference(scope, owner, chain.owners.get(p), self.lineage)
        }

        def lookup(cid: str) -> ConfigNode | None:
            if cid == config_id:
                return ConfigNode(cid, tuple(parents), {})
            if cid in parents and cid not in usable:
                return None
            return chain.nodes.get(cid)

        check_parents(config_id, parents, lookup)
        levels = depth(config_id, lookup)
        if levels <= MAX_DEPTH:  # configs that name this one (a re-created id too) sit below it
            below: set[str] = {config_id}
            while below and levels <= MAX_DEPTH:
                below = await self.store.children(below)
                levels += bool(below)
        if levels > MAX_DEPTH:
            raise InvalidInput(
                f"config {config_id!r}: parent_ids: inheritance deeper than {MAX_DEPTH} levels"
            )

    async def create(
        self, body: object, tenant_uuid: str | None, scope: Scope | None = None
    ) -> str:
        """Create a config in a tenant (None = shared); returns its id."""
        doc = await self._validate(body, owner=tenant_uuid, scope=scope)
        self.conflicts.check(scope)
        if self.quota is not None:
            await self.quota.check(tenant_uuid)
        below_root = tenant_uuid is not None and self.lineage(tenant_uuid) != {tenant_uuid}
        if below_root and await self.store.used_outside(  # (the master's subtree is everyone)
            str(doc["id"]), self.subtree(str(tenant_uuid))
        ):
            # devices of another tenant still name this id (their config was deleted): a new
            # config under it would hand them this tenant's data. Answered like a taken id.
            self.conflicts.spend(scope, "a config id")
            raise Conflict(f"config {doc['id']!r} already exists")
        try:
            await self.store.insert(doc, tenant_uuid)
        except Conflict:
            # the same answer whoever holds the id; holders the caller cannot see are counted
            taken = await self.store.get(str(doc["id"]))
            if taken is not None and not config_visible(scope, taken.get("tenant_uuid")):
                self.conflicts.spend(scope, "a config id")
            raise
        await self.changed(str(doc["id"]))
        await self._emit("config_created", dict(doc, tenant_uuid=tenant_uuid))
        return str(doc["id"])

    def _forget(self, config_id: str) -> None:
        """A new config changes nothing already inherited: drop only what named it missing."""
        self._nodes.pop(config_id, None)
        self._owners.pop(config_id, None)
        self._effective.pop(config_id, None)

    async def changed(self, config_id: str | None = None) -> None:
        """After a write: drop local caches (all, or one new id) and tell the other nodes."""
        if config_id is None:
            self.invalidate()
        else:
            self._forget(config_id)
        if self.feed is not None:
            await self.feed.bump("configs")

    async def replace(self, config_id: str, body: object, scope: Scope | None) -> bool:
        """Full replace; returns False when nothing changed."""
        current = await self.store.get_in(config_id, tenants_of(scope))
        if current is None:
            raise NotFound("No such resource")
        if current.get("tenant_uuid") is None and not (scope is None or scope.is_master):
            raise Forbidden(f"config {config_id!r} is shared: only the master tenant may change it")
        doc = await self._validate(
            body, owner=current.get("tenant_uuid"), scope=scope, config_id=config_id
        )
        if self._public(current) == doc:
            return False
        await self.store.replace(doc, current.get("tenant_uuid"))
        await self.changed()
        await self._emit("config_updated", dict(doc, tenant_uuid=current.get("tenant_uuid")))
        return True

    async def delete(self, config_id: str, scope: Scope | None) -> None:
        """Delete a deletable config; Forbidden when deletable is false."""
        current = await self.store.get_in(config_id, tenants_of(scope))
        if current is None:
            raise NotFound("No such resource")
        if current.get("tenant_uuid") is None and not (scope is None or scope.is_master):
            raise Forbidden(f"config {config_id!r} is shared: only the master tenant may delete it")
        if current.get("deletable", True) is False:
            raise Forbidden(f"config {config_id!r} is not deletable")
        await self.store.delete(config_id)
        await self.changed()
        await self._emit("config_deleted", current)

    async def autocreate(self, tenant_uuid: str | None) -> str | None:
        """A transient copy of the ``role: autocreate`` template; None when there is none."""
        for tpl in await self.store.find_by_role("autocreate"):
            lines = tpl.get("raw_config", {}).get("sip_lines", {})
            if "1" not in lines:
                continue
            doc = {
                "id": f"{tpl['id']}{uuidlib.uuid4().hex}",
                "parent_ids": [tpl["id"]],
                "raw_config": copy.deepcopy(tpl.get("raw_config", {})),
                "transient": True,
            }
            await self.store.insert(doc, tenant_uuid)
            await self.changed(str(doc["id"]))
            return str(doc["id"])
        return None

    async def template(self) -> str | None:
        """The id of the ``role: autocreate`` template with a first SIP line, if any."""
        for tpl in await self.store.find_by_role("autocreate"):
            if "1" in tpl.get("raw_config", {}).get("sip_lines", {}):
                return str(tpl["id"])
        return None

    async def ensure_system(self, docs: Mapping[str, Mapping[str, Any]]) -> None:
        """Create the system configs that do not exist yet (first start)."""
        for config_id, doc in docs.items():
            if await self.store.get(config_id) is None:
                await self.store.insert(dict(doc, id=config_id), None)
        self.invalidate()


def _strip_none(doc: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if value is None:
            continue
        out[key] = _strip_none(value) if isinstance(value, Mapping) else value
    return out
