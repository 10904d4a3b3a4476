"""Value rules shared by devices, configs and parameters: MACs, IPs, ids, keys, NAT.

Every function normalises or raises InvalidInput naming the value, so a bad value never reaches
the store. Ids become database keys and appear in URLs: only a safe alphabet is accepted (no
'/', no '..'), which closes upstream's path traversal through ids.
"""

from __future__ import annotations

import ipaddress
import os
import re

from provisor.domain.ids import shown
from provisor.errors import InvalidInput

__all__ = [
    "DEVICE_DOC_MAX_BYTES",
    "DEVICE_TEXT_MAX",
    "device_text_problem",
    "format_mac",
    "mac_hex",
    "new_id",
    "normalize_ip",
    "normalize_mac",
    "parse_nat",
    "validate_id",
    "validate_provisioning_key",
]

# anchored with \Z: "$" also matches before a final "\n", which let "id\n" through
_HEX12 = re.compile(r"^[0-9a-f]{12}\Z")
_CANONICAL_MAC = re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}")
_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:@+\-]{0,127}\Z")
_KEY = re.compile(r"^[A-Za-z0-9\-$~.]+\Z")
# C0, DEL, NEL and the Unicode line separators, as for raw_config values
_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")
_CONTROL_BUT_LINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x85\u2028\u2029]")

DEVICE_TEXT_MAX = {"vendor": 128, "model": 128, "version": 128, "sn": 128, "uuid": 128}
"""Longest value of a device's identification fields: real ones are a few dozen characters;
they are stored, indexed, shown in the console and written into phones' files."""
DESCRIPTION_MAX = 1024
DEVICE_DOC_MAX_BYTES = 64 * 1024
"""Largest device document once encoded (``options`` and extra keys included): a tenant may
create many devices, each one must stay small."""


def normalize_mac(value: object) -> str:
    """``aa:bb:cc:dd:ee:ff`` from any common spelling (colons, dashes, dots, none; any case)."""
    if not isinstance(value, str):
        raise InvalidInput(f"invalid MAC address {shown(value)}: must be a string")
    if _CANONICAL_MAC.fullmatch(value):
        return value  # already canonical: the common case, from the API and the pipeline
    text = value.strip().lower()
    if re.fullmatch(r"[0-9a-f]{1,2}([:-][0-9a-f]{1,2}){5}", text):
        # groups may drop leading zeros (ISC dhcpd's binary-to-ascii writes 0:11:2:…)
        text = ":".join(g.zfill(2) for g in re.split(r"[:-]", text))
    compact = re.sub(r"[:\-.\s]", "", text)
    if not _HEX12.match(compact):
        raise InvalidInput(f"invalid MAC address {shown(value)}: expected 12 hexadecimal digits")
    if any(sep in text for sep in ":-") and not re.fullmatch(
        r"[0-9a-f]{1,2}([:-][0-9a-f]{1,2}){5}", text
    ):
        raise InvalidInput(f"invalid MAC address {shown(value)}: expected 6 groups of 2 digits")
    return ":".join(compact[i : i + 2] for i in range(0, 12, 2))


def mac_hex(mac: str) -> str:
    """``aabbccddeeff`` for a normalised MAC."""
    return mac.replace(":", "")


def format_mac(mac: str, sep: str = ":", upper: bool = False) -> str:
    """A normalised MAC with another separator and case (for vendor file names)."""
    text = sep.join(mac_hex(mac)[i : i + 2] for i in range(0, 12, 2))
    return text.upper() if upper else text


def normalize_ip(value: object) -> str:
    """A dotted IPv4 or compressed IPv6 address; InvalidInput otherwise."""
    if not isinstance(value, str):
        raise InvalidInput(f"invalid IP address {shown(value)}: must be a string")
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise InvalidInput(f"invalid IP address {shown(value)}") from None


def validate_id(value: object, field: str = "id") -> str:
    """A safe id: 1-128 characters of ``[A-Za-z0-9_.:@+-]``, no '..', not starting with '.'/'-'."""
    if not isinstance(value, str) or not _ID.match(value) or ".." in value:
        raise InvalidInput(
            f"{field}: {shown(value)} is not a valid id (1-128 characters of A-Z a-z 0-9 _ . : @ + -,"
            " not starting with '.' or '-', no '..')"
        )
    return value


def device_text_problem(key: str, value: str) -> str | None:
    """Why ``value`` cannot be a device's ``key`` (too long, control characters), or None."""
    limit = DESCRIPTION_MAX if key == "description" else DEVICE_TEXT_MAX.get(key)
    if limit is None:
        return None
    if len(value) > limit:
        return f"longer than {limit} characters"
    # a description may span lines; identification fields are one token each
    control = _CONTROL_BUT_LINES if key == "description" else _CONTROL
    if control.search(value):
        return "control characters are not allowed"
    return None


def new_id() -> str:
    """A new random id: a version-4 UUID in hex, as wazo-provd (built from the bytes directly,
    a third of ``uuid.uuid4().hex``'s cost)."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    return raw.hex()


def validate_provisioning_key(value: object) -> str | None:
    """None/"" clear the key; else 8-256 characters of ``[A-Za-z0-9-$~.]``."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidInput("provisioning_key: must be a string or null")
    if not 8 <= len(value) <= 256:
        raise InvalidInput("provisioning_key: must be 8 to 256 characters long")
    if not _KEY.match(value):
        raise InvalidInput("provisioning_key: only A-Z a-z 0-9 - $ ~ . are allowed")
    return value


def parse_nat(value: object) -> int:
    """NAT as 0 or 1: "0"/None → 0, "1" → 1.

    Upstream accepts only the strings; we also accept JSON 0/1 and booleans, a deliberate
    difference (documented in docs/api.md).
    """
    if value is None or value == "0" or value is False or (type(value) is int and value == 0):
        return 0
    if value == "1" or value is True or (type(value) is int and value == 1):
        return 1
    raise InvalidInput(f'NAT: {shown(value)} is not one of "0", "1" or null')
