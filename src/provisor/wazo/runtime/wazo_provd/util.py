"""MAC, IP and UUID helpers with the spellings wazo plugins expect (lower-case, colons)."""

from __future__ import annotations

import ipaddress
import re
import uuid
from typing import Any

__all__ = [
    "decode_bytes",
    "encode_bytes",
    "format_mac",
    "is_normed_ip",
    "is_normed_mac",
    "is_normed_uuid",
    "norm_ip",
    "norm_mac",
    "norm_uuid",
]

_MAC_SEPARATED = re.compile(r"^[0-9a-fA-F]{1,2}([:\-.])(?:[0-9a-fA-F]{1,2}\1){4}[0-9a-fA-F]{1,2}$")
_MAC_BARE = re.compile(r"^[0-9a-fA-F]{12}$")
_NORMED_MAC = re.compile(r"^(?:[0-9a-f]{2}:){5}[0-9a-f]{2}$")


def _mac_bytes(mac: str) -> list[int]:
    if _MAC_BARE.match(mac):
        return [int(mac[i : i + 2], 16) for i in range(0, 12, 2)]
    m = _MAC_SEPARATED.match(mac)
    if m is None:
        raise ValueError(f"invalid MAC address: {mac!r}")
    return [int(part, 16) for part in mac.split(m.group(1))]


def norm_mac(mac_string: str) -> str:
    """``aa:bb:cc:dd:ee:ff`` from any usual spelling; ValueError when it is no MAC."""
    return ":".join(f"{b:02x}" for b in _mac_bytes(mac_string))


def is_normed_mac(mac_string: str) -> bool:
    """True when already in normal form."""
    return bool(_NORMED_MAC.match(mac_string))


def format_mac(mac_string: str, separator: str = ":", uppercase: bool = False) -> str:
    """A MAC with the separator and case a vendor's file names use."""
    text = separator.join(f"{b:02x}" for b in _mac_bytes(mac_string))
    return text.upper() if uppercase else text


def norm_ip(ip_string: str) -> str:
    """A dotted IPv4 address in canonical form; ValueError otherwise."""
    try:
        return str(ipaddress.IPv4Address(ip_string))
    except ipaddress.AddressValueError as exc:
        raise ValueError(f"invalid IP address: {ip_string!r}") from exc


def is_normed_ip(ip_string: str) -> bool:
    """True when already canonical."""
    try:
        return norm_ip(ip_string) == ip_string
    except ValueError:
        return False


def norm_uuid(uuid_string: str) -> str:
    """The canonical lower-case form of a UUID; ValueError otherwise."""
    return str(uuid.UUID(uuid_string))


def is_normed_uuid(uuid_string: str) -> bool:
    """True when already canonical."""
    try:
        return norm_uuid(uuid_string) == uuid_string
    except ValueError:
        return False


def decode_bytes(value: Any, encoding: str = "utf-8") -> str:
    """Text from bytes (other values as their str)."""
    return value.decode(encoding) if isinstance(value, bytes) else str(value)


def encode_bytes(value: str | bytes, encoding: str = "utf-8") -> bytes:
    """Bytes from text (bytes unchanged)."""
    return value.encode(encoding) if isinstance(value, str) else value
