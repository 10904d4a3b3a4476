"""Strict JSON for what clients send: bounded depth, finite numbers, no NaN or Infinity.

Python's parser accepts ``NaN``, ``Infinity`` and ``-Infinity`` (not JSON, and PostgreSQL
refuses them), turns ``1e400`` into infinity, reads integers of any size (SQLite then stores
those past 64 bits as imprecise reals, PostgreSQL as exact numerics: the two databases would
disagree), and recurses once per level of nesting, so a document a few thousand levels deep
exhausts the stack. Here the depth is measured before parsing, in C-speed passes over the
bytes, and anything deeper than :data:`MAX_DEPTH` is refused; the standard parser then runs
with hooks that refuse non-finite numbers and integers outside the signed 64-bit range.
``\\u0000`` in a string is refused too: PostgreSQL cannot store it in JSON, SQLite can, and a
document must not be valid on one database and not the other.
A key repeated in one object is refused: the parser would keep the last value silently, while
a proxy or an auditing tool in front of provisor may read the first.
Every refusal is a ``ValueError`` whose message names the problem.
"""

from __future__ import annotations

import json
import math
import re
from array import array
from itertools import accumulate
from typing import Any

__all__ = ["MAX_DEPTH", "MAX_INT", "depth_exceeds", "strict_loads"]

#: Deepest nesting of arrays and objects accepted (provd documents need about 6).
MAX_DEPTH = 64
#: Largest integer magnitude accepted (what a signed 64-bit column holds).
MAX_INT = 2**63 - 1

# an escaped NUL: "\u0000" preceded by an even number of backslashes (odd ones escape it)
_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
# "[" and "{" → +1, "]" and "}" → -1 (as signed bytes), everything else dropped
_STEPS = bytes.maketrans(b"[]{}", bytes([1, 255, 1, 255]))
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))


def depth_exceeds(data: bytes, limit: int = MAX_DEPTH) -> bool:
    """True when arrays/objects in ``data`` nest deeper than ``limit``.

    Linear: strings are removed, each bracket becomes +1/-1, and the running sum's maximum is
    the depth (about 0.3 s for 8 MiB of brackets, as long as parsing them).
    """
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    steps = array("b")
    steps.frombytes(_STRING.sub(b"", data).translate(_STEPS, _NOT_BRACKETS))
    return max(accumulate(steps), default=0) > limit


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def _bounded_int(text: str) -> int:
    digits = text.lstrip("-")
    # the length check first: int() of thousands of digits is slow, and refused past 4300
    if len(digits) > 19 or abs(int(text)) > MAX_INT:
        shown = text if len(text) <= 40 else text[:40] + "…"
        raise ValueError(f"integer {shown} is out of range (at most {MAX_INT} in magnitude)")
    return int(text)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                shown = key if len(key) <= 40 else key[:40] + "…"
                raise ValueError(f"duplicate key {shown!r} in an object")
            seen.add(key)
    return obj


def strict_loads(data: bytes | str) -> Any:
    """Parse JSON strictly; ``ValueError`` (or ``UnicodeDecodeError``) names what is wrong."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if depth_exceeds(raw):
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
    if b"\\u0000" in raw and _NUL.search(raw):
        raise ValueError("a string holds \\u0000, which the database cannot store")
    try:
        return json.loads(
            data,
            parse_constant=_refuse_constant,
            parse_float=_finite,
            parse_int=_bounded_int,
            object_pairs_hook=_unique_keys,
        )
    except RecursionError:  # not reachable after the depth check; kept as a last guard
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels") from None
