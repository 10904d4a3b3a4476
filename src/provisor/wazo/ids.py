"""Ids of wazo plugins (``wazo-yealink-v86``, ``xivo-cisco-spa-7.5.5``): checked where they enter.

A wazo id becomes a folder name under the plugins folder and part of an archive name, so only
letters, digits, ``.``, ``_`` and ``-`` are allowed, it starts with a letter or digit and is at
most 128 characters. (When provisor.domain.ids holds a shared plugin-id check, this one should
call it and keep only what is wazo-specific.)
"""

from __future__ import annotations

import re

from provisor.errors import InvalidInput

__all__ = ["check_wazo_id"]

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_wazo_id(value: str, *, what: str = "plugin id") -> str:
    """Return ``value`` when it is a safe wazo plugin id; InvalidInput naming it otherwise."""
    if not isinstance(value, str) or not _ID.match(value) or ".." in value:
        raise InvalidInput(f"{what} {value!r} is not a valid plugin id (letters, digits, . _ -)")
    return value
