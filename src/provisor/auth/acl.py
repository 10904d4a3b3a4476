"""wazo's dotted ACLs: ``*`` is one segment, ``#`` any number of segments, ``!`` denies.

Granted lists are compiled once to regexes and cached: this runs on every REST call.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

__all__ = ["acl_matches"]


def _pattern(acl: str) -> str:
    parts = []
    for segment in acl.split("."):
        if segment == "#":
            parts.append(r"(?:[^.]+(?:\.[^.]+)*)?")
        elif segment == "*":
            parts.append(r"[^.]+")
        else:
            parts.append(re.escape(segment).replace(r"\*", "[^.]*").replace(r"\#", ".*"))
    regex = r"\.".join(parts)
    # "a.#" must also match "a": let the dot before an empty "#" be optional
    return regex.replace(r"\.(?:[^.]+(?:\.[^.]+)*)?", r"(?:\.[^.]+(?:\.[^.]+)*)?")


@lru_cache(maxsize=4096)
def _compiled(granted: tuple[str, ...]) -> tuple[re.Pattern[str] | None, re.Pattern[str] | None]:
    allow = [_pattern(a) for a in granted if a and not a.startswith("!")]
    deny = [_pattern(a[1:]) for a in granted if a.startswith("!") and len(a) > 1]
    return (
        re.compile("^(?:" + "|".join(allow) + ")$") if allow else None,
        re.compile("^(?:" + "|".join(deny) + ")$") if deny else None,
    )


def acl_matches(granted: Iterable[str], required: str) -> bool:
    """True when ``required`` is granted and not denied."""
    allow, deny = _compiled(tuple(granted))
    if allow is None or not allow.match(required):
        return False
    return not (deny is not None and deny.match(required))
