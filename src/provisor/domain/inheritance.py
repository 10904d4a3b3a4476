"""Config inheritance: depth-first through ``parent_ids``, later parents win, the child wins.

Pure functions over a ``lookup`` callable, so the service can feed them from a cache and tests
from a dict. Cycles are refused when a config is written, never discovered while rendering.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from provisor.errors import InvalidInput

__all__ = [
    "ConfigNode",
    "ancestors",
    "check_parents",
    "depth",
    "descendants",
    "effective_raw_config",
    "merge",
]


@dataclass(frozen=True)
class ConfigNode:
    """A config as inheritance sees it."""

    id: str
    parent_ids: tuple[str, ...]
    raw_config: Mapping[str, Any] = field(default_factory=dict)


Lookup = Callable[[str], ConfigNode | None]


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; ``override`` wins; lists are replaced; inputs are not mutated."""
    out = {k: copy.deepcopy(v) for k, v in base.items()}
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def ancestors(config_id: str, lookup: Lookup) -> list[str]:
    """Ancestors in merge order (depth-first, each once), without the config itself."""
    order: list[str] = []
    seen: set[str] = {config_id}

    def visit(cid: str) -> None:
        node = lookup(cid)
        if node is None:
            return
        for parent in node.parent_ids:
            if parent in seen:
                continue
            seen.add(parent)
            visit(parent)
            if lookup(parent) is not None:
                order.append(parent)

    visit(config_id)
    return order


def effective_raw_config(
    config_id: str, lookup: Lookup, base: Mapping[str, Any]
) -> dict[str, Any] | None:
    """``base`` merged with every ancestor then the config's own raw config; None if unknown."""
    node = lookup(config_id)
    if node is None:
        return None
    result = dict(copy.deepcopy(dict(base)))
    for cid in ancestors(config_id, lookup):
        parent = lookup(cid)
        if parent is not None:
            result = merge(result, parent.raw_config)
    return merge(result, node.raw_config)


def check_parents(config_id: str, parent_ids: Sequence[str], lookup: Lookup) -> None:
    """Refuse unknown, duplicate or self parents, and cycles."""
    if len(set(parent_ids)) != len(parent_ids):
        raise InvalidInput(f"config {config_id!r}: parent_ids has duplicates")
    for parent in parent_ids:
        if parent == config_id:
            raise InvalidInput(f"config {config_id!r} cannot be its own parent")
        if lookup(parent) is None:
            raise InvalidInput(f"unknown parent config {parent!r}")
    # a cycle exists if config_id is reachable from one of its parents
    for parent in parent_ids:
        path = _path_to(parent, config_id, lookup, set())
        if path is not None:
            chain = " -> ".join([*path, config_id])
            raise InvalidInput(f"config {config_id!r} would inherit from itself through {chain}")


def _path_to(start: str, target: str, lookup: Lookup, seen: set[str]) -> list[str] | None:
    if start in seen:
        return None
    seen.add(start)
    node = lookup(start)
    if node is None:
        return None
    for parent in node.parent_ids:
        if parent == target:
            return [start]
        sub = _path_to(parent, target, lookup, seen)
        if sub is not None:
            return [start, *sub]
    return None


def depth(config_id: str, lookup: Lookup) -> int:
    """Levels from ``config_id`` up to its furthest ancestor (1: no parents).

    Iterative and memoised: measured before a chain is allowed to grow, so it must not recurse
    (a chain of 953 configs overflowed Python's stack) nor walk shared parents twice.
    """
    memo: dict[str, int] = {}
    visiting: set[str] = set()
    stack = [config_id]
    while stack:
        cid = stack[-1]
        if cid in memo:
            stack.pop()
            continue
        node = lookup(cid)
        parents = [p for p in node.parent_ids if lookup(p) is not None] if node else []
        todo = [p for p in parents if p not in memo and p not in visiting]
        if todo and cid not in visiting:
            visiting.add(cid)
            stack.extend(todo)
            continue
        memo[cid] = 1 + max((memo.get(p, 0) for p in parents), default=0)
        visiting.discard(cid)
        stack.pop()
    return memo[config_id]


def descendants(config_id: str, children_of: Callable[[str], Iterable[str]]) -> set[str]:
    """Every config inheriting (directly or not) from ``config_id``."""
    out: set[str] = set()
    stack = list(children_of(config_id))
    while stack:
        cid = stack.pop()
        if cid in out:
            continue
        out.add(cid)
        stack.extend(children_of(cid))
    return out
