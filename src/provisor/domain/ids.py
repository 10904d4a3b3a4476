"""Identifier rules: what a plugin, package, config or device id, a version or a file name may be.

Ids arrive from REST bodies and paths, the CLI, repository indexes and plugin manifests, and
some of them become file names (``<data_dir>/plugins/<plugin id>``, ``firmware/<plugin id>/…``,
cached archives). Each rule is a strict ASCII pattern checked with ``fullmatch`` (so a trailing
newline, a NUL or a look-alike Unicode letter is refused), never containing ``/``, ``\\``,
``..`` or a leading ``.``; each validator raises InvalidInput naming the field and the bad
value (escaped with ``ascii()`` so an invisible character shows).

=============  ===============================================  ===========================
rule           pattern (plus: no ``..`` anywhere)               accepts, e.g.
=============  ===============================================  ===========================
plugin id      ``[A-Za-z0-9][A-Za-z0-9._-]{0,63}``               yealink, cisco-spa,
                                                                wazo-yealink-v86,
                                                                xivo-cisco-spa-7.5.5,
                                                                xivo-aastra-3.3.1-SP4
package id     ``[A-Za-z0-9][A-Za-z0-9._+-]{0,127}``             (firmware packages)
                                                                tp100-fw, T46S-66.86.0.15
version        ``[A-Za-z0-9][A-Za-z0-9._+~-]{0,63}``             1.0.0, 2.0rc1, 8.7.5.35+b1
file name      ``[A-Za-z0-9_][A-Za-z0-9._+~-]{0,254}``           yealink-1.0.0.tar.gz
relative path  file names joined by ``/``, at most 8 levels     firmware/T46S-66.86.0.15.rom
config id      ``[A-Za-z0-9_][A-Za-z0-9_.:@+-]{0,127}``          base, defaultconfigdevice,
                                                                autoprov, a uuid4 hex
device id      same as config id                                a uuid4 hex, wazo's ids
=============  ===============================================  ===========================

Pure: no I/O. Building a path from a validated id under a fixed root, and checking the result
stays under it, is the caller's job (see ``plugins/manager.py``).
"""

from __future__ import annotations

import re

from provisor.errors import InvalidInput

__all__ = [
    "CONFIG_ID",
    "DEVICE_ID",
    "FILE_NAME",
    "PACKAGE_ID",
    "PLUGIN_ID",
    "VERSION",
    "config_id",
    "device_id",
    "file_name",
    "is_plugin_id",
    "package_id",
    "plugin_id",
    "relative_path",
    "shown",
    "version",
]

PLUGIN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
PACKAGE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+~-]{0,63}")
FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+~-]{0,254}")
CONFIG_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:@+-]{0,127}")
DEVICE_ID = CONFIG_ID

_MAX_DEPTH = 8
_SHOWN = 80


def shown(value: object) -> str:
    """The bad value for a message: escaped, and cut so a huge value is not echoed back."""
    text = ascii(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def _check(value: object, field: str, rule: re.Pattern[str], what: str, spec: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{field}: expected a {what} (a string), got {shown(value)}")
    if rule.fullmatch(value) is None or ".." in value:
        raise InvalidInput(f"{field}: {shown(value)} is not a valid {what} ({spec})")
    return value


def plugin_id(value: object, field: str = "id") -> str:
    """Return ``value`` if it is a valid plugin id (it names a folder); else InvalidInput."""
    return _check(
        value,
        field,
        PLUGIN_ID,
        "plugin id",
        "1-64 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit, no '..'",
    )


def is_plugin_id(value: object) -> bool:
    """True when ``value`` is a valid plugin id (for filtering lists read from outside)."""
    return isinstance(value, str) and PLUGIN_ID.fullmatch(value) is not None and ".." not in value


def package_id(value: object, field: str = "id") -> str:
    """Return ``value`` if it is a valid (firmware) package id; else InvalidInput."""
    return _check(
        value,
        field,
        PACKAGE_ID,
        "package id",
        "1-128 characters of A-Z a-z 0-9 . _ + -, starting with a letter or digit, no '..'",
    )


def version(value: object, field: str = "version") -> str:
    """Return ``value`` if it is a valid plugin or package version (archive names hold it)."""
    return _check(
        value,
        field,
        VERSION,
        "version",
        "1-64 characters of A-Z a-z 0-9 . _ + ~ -, starting with a letter or digit, no '..'",
    )


def file_name(value: object, field: str = "file") -> str:
    """Return ``value`` if it is a plain file name (no folder, no '..'); else InvalidInput."""
    return _check(
        value,
        field,
        FILE_NAME,
        "file name",
        "1-255 characters of A-Z a-z 0-9 . _ + ~ -, not starting with '.', '+', '~' or '-',"
        " no '..'",
    )


def relative_path(value: object, field: str = "path") -> str:
    """Return ``value`` if it is 1-8 valid file names joined by '/'; else InvalidInput."""
    if not isinstance(value, str):
        raise InvalidInput(f"{field}: expected a relative path (a string), got {shown(value)}")
    parts = value.split("/")
    if len(parts) > _MAX_DEPTH or any(FILE_NAME.fullmatch(p) is None or ".." in p for p in parts):
        raise InvalidInput(
            f"{field}: {shown(value)} is not a valid relative path (1-{_MAX_DEPTH} file names"
            " of A-Z a-z 0-9 . _ + ~ - joined by '/', none starting with '.', no '..')"
        )
    return value


def config_id(value: object, field: str = "config.id") -> str:
    """Return ``value`` if it is a valid config id; else InvalidInput."""
    return _check(
        value,
        field,
        CONFIG_ID,
        "config id",
        "1-128 characters of A-Z a-z 0-9 _ . : @ + -, starting with a letter, digit or _, no '..'",
    )


def device_id(value: object, field: str = "device.id") -> str:
    """Return ``value`` if it is a valid device id; else InvalidInput."""
    return _check(
        value,
        field,
        DEVICE_ID,
        "device id",
        "1-128 characters of A-Z a-z 0-9 _ . : @ + -, starting with a letter, digit or _, no '..'",
    )
