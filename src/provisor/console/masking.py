"""What the console shows of secrets: masked unless revealed, and never in a log.

A raw config is flattened to dotted keys (``sip_lines.1.password``); a key naming a secret
(password, secret, key, token, PIN) shows as a mask. File previews are rendered without the
device's credentials (passwords blanked by the plugin contract) and the tenant's provisioning
key and the device token, which URLs in a file carry, are replaced by the mask.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["MASK", "flatten", "is_secret", "mask_text", "provenance"]

MASK = "••••••"
_SECRET = re.compile(r"pass(word|wd)?$|password|secret|(^|_)key$|token|(^|_)pin$", re.IGNORECASE)


def is_secret(dotted: str) -> bool:
    """Whether the last part of a dotted key names a secret."""
    return bool(_SECRET.search(dotted.rsplit(".", 1)[-1]))


def flatten(value: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` as ``{"a.b": 1}`` (lists stay whole)."""
    out: dict[str, Any] = {}
    for key, item in value.items():
        dotted = f"{prefix}{key}"
        if isinstance(item, Mapping) and item:
            out.update(flatten(item, dotted + "."))
        else:
            out[dotted] = item
    return out


def provenance(chain: Iterable[tuple[str | None, Mapping[str, Any]]]) -> dict[str, str | None]:
    """For each dotted key, the config that set it last (None: the base raw config)."""
    origin: dict[str, str | None] = {}
    for source, raw in chain:
        for dotted in flatten(raw):
            # a parent's whole sub-dict replaced by a scalar: its keys no longer count
            for known in [k for k in origin if k.startswith(dotted + ".")]:
                del origin[known]
            origin[dotted] = source
    return origin


def mask_text(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with each known secret value replaced by the mask."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, MASK)
    return text
