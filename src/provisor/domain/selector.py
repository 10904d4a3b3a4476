"""wazo-provd's q/q64 selector language, validated strictly, plus projection, paging, sort.

Semantics follow upstream: keys are ANDed, dotted keys walk into dicts and lists of dicts (a
list on the path means "any element"), a plain value is equality on the whole value, operators
are ``$in $nin $contains $gt $ge $lt $le $ne $exists``. Unlike upstream, an invalid selector is
an error (upstream returns everything, or answers 500), and sorting compares numbers as numbers.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from provisor.domain.strictjson import strict_loads
from provisor.errors import InvalidInput

__all__ = [
    "MISSING",
    "OPERATORS",
    "Selector",
    "get_path",
    "parse_fields",
    "parse_paging",
    "parse_selector",
    "parse_sort",
    "project",
    "sort_key",
]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
OPERATORS = frozenset({"$in", "$nin", "$contains", "$gt", "$ge", "$lt", "$le", "$ne", "$exists"})


def _values(doc: Any, parts: list[str]) -> list[Any]:
    """Every value reached by the dotted path (lists fan out)."""
    if not parts:
        return [doc]
    if isinstance(doc, Mapping):
        if parts[0] not in doc:
            return []
        return _values(doc[parts[0]], parts[1:])
    if isinstance(doc, list):
        out: list[Any] = []
        for item in doc:
            out.extend(_values(item, parts))
        return out
    return []


def get_path(doc: Mapping[str, Any], dotted: str) -> Any:
    """The first value at a dotted path, or MISSING."""
    found = _values(doc, dotted.split("."))
    return found[0] if found else MISSING


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _cmp(a: Any, b: Any, op: str) -> bool:
    if _is_num(a) and _is_num(b) or (isinstance(a, str) and isinstance(b, str)):
        if op == "$gt":
            return bool(a > b)
        if op == "$ge":
            return bool(a >= b)
        if op == "$lt":
            return bool(a < b)
        return bool(a <= b)
    return False


def _op_match(values: list[Any], op: str, arg: Any) -> bool:
    if op == "$exists":
        found: bool = bool(values) == arg
        return found
    if op == "$ne":
        return all(v != arg for v in values)
    if op == "$nin":
        return all(v not in arg for v in values)
    if op == "$in":
        return any(v in arg for v in values)
    if op == "$contains":
        return any(
            (isinstance(v, list) and arg in v)
            or (isinstance(v, str) and isinstance(arg, str) and arg in v)
            for v in values
        )
    return any(_cmp(v, arg, op) for v in values)


@dataclass(frozen=True)
class Selector:
    """A parsed selector: key → plain value or {operator: argument}."""

    conditions: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def eq(cls, **values: Any) -> Selector:
        """A selector of plain equalities."""
        return cls(tuple(values.items()))

    @property
    def is_empty(self) -> bool:
        """True when it selects everything."""
        return not self.conditions

    def and_(self, other: Selector) -> Selector:
        """Both selectors."""
        return Selector(self.conditions + other.conditions)

    def matches(self, doc: Mapping[str, Any]) -> bool:
        """True when the document satisfies every condition."""
        for key, cond in self.conditions:
            values = _values(doc, key.split("."))
            if _is_ops(cond):
                if not all(_op_match(values, op, arg) for op, arg in cond.items()):
                    return False
            elif not any(v == cond for v in values):
                return False
        return True

    def fully_indexed(self, keys: Collection[str]) -> bool:
        """True when index_hints(keys) express every condition exactly (SQL can page)."""
        hints = self.index_hints(keys)
        return len(hints) == len(self.conditions) and len({k for k, _ in self.conditions}) == len(
            self.conditions
        )

    def index_hints(self, keys: Collection[str]) -> dict[str, list[Any]]:
        """Candidate values for indexed top-level keys (plain equality or $in of scalars)."""
        hints: dict[str, list[Any]] = {}
        for key, cond in self.conditions:
            if key not in keys:
                continue
            if _is_ops(cond):
                arg = cond.get("$in")
                if set(cond) == {"$in"} and all(_scalar(a) for a in arg):
                    hints[key] = list(arg)
            elif _scalar(cond):
                hints[key] = [cond] if key not in hints else [v for v in hints[key] if v == cond]
        return hints


def _scalar(v: Any) -> bool:
    return isinstance(v, (str, int, float)) and not isinstance(v, bool)


def _is_ops(cond: Any) -> bool:
    return (
        isinstance(cond, dict)
        and bool(cond)
        and all(isinstance(k, str) and k.startswith("$") for k in cond)
    )


def _check(obj: Any) -> Selector:
    if not isinstance(obj, dict):
        raise InvalidInput("q: the selector must be a JSON object")
    conditions = []
    for key, cond in obj.items():
        if not key:
            raise InvalidInput("q: empty key")
        if isinstance(cond, dict) and any(isinstance(k, str) and k.startswith("$") for k in cond):
            for op, arg in cond.items():
                if op not in OPERATORS:
                    raise InvalidInput(f"q: unknown operator {op!r} on {key!r}")
                if op in ("$in", "$nin") and not isinstance(arg, list):
                    raise InvalidInput(f"q: {op} on {key!r} needs a list")
                if op == "$exists" and not isinstance(arg, bool):
                    raise InvalidInput(f"q: $exists on {key!r} needs true or false")
        conditions.append((key, cond))
    return Selector(tuple(conditions))


def parse_selector(q: str | None = None, q64: str | None = None) -> Selector:
    """Parse ``q`` (JSON) and ``q64`` (base64 JSON); both given are ANDed."""
    selector = Selector()
    if q:
        try:
            selector = selector.and_(_check(strict_loads(q)))
        except ValueError as exc:
            raise InvalidInput(f"q: invalid JSON: {exc}") from None
    if q64:
        padded = q64 + "=" * (-len(q64) % 4)
        try:
            raw = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
            selector = selector.and_(_check(strict_loads(raw)))
        except (binascii.Error, ValueError) as exc:
            raise InvalidInput(f"q64: invalid base64 JSON: {exc}") from None
    return selector


def parse_fields(fields: str | None) -> list[str] | None:
    """``fields=a,b.c`` → ["a", "b.c"]; None when absent."""
    if fields is None:
        return None
    names = [f.strip() for f in fields.split(",") if f.strip()]
    return names or None


def project(doc: Mapping[str, Any], fields: list[str]) -> dict[str, Any]:
    """Keep only the given (dotted) fields, and always ``id``."""
    out: dict[str, Any] = {}
    for name in ["id", *fields]:
        value = get_path(doc, name)
        if value is MISSING:
            continue
        node = out
        *parents, last = name.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return out


def parse_paging(skip: str | None, limit: str | None) -> tuple[int, int | None]:
    """(skip, limit); limit 0 or absent means no limit."""
    values = []
    for name, text in (("skip", skip), ("limit", limit)):
        if text is None or text == "":
            values.append(0)
            continue
        if not text.isdigit():
            raise InvalidInput(f"{name}: {text!r} is not a non-negative integer")
        values.append(int(text))
    return values[0], (values[1] or None)


def parse_sort(sort: str | None, sort_ord: str | None) -> tuple[str, bool] | None:
    """(key, descending) or None."""
    if not sort:
        if sort_ord and sort_ord.upper() not in ("ASC", "DESC"):
            raise InvalidInput(f"sort_ord: {sort_ord!r} is not ASC or DESC")
        return None
    order = (sort_ord or "ASC").upper()
    if order not in ("ASC", "DESC"):
        raise InvalidInput(f"sort_ord: {sort_ord!r} is not ASC or DESC")
    return sort, order == "DESC"


def sort_key(value: Any) -> tuple[int, Any]:
    """Missing/None first, then numbers numerically, then strings, then the rest as JSON."""
    if value is MISSING or value is None:
        return (0, 0)
    if _is_num(value):
        return (1, value)
    if isinstance(value, str):
        return (2, value)
    return (3, json.dumps(value, sort_keys=True, default=str))
