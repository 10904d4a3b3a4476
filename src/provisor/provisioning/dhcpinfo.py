"""Lease information from a DHCP server, in wazo-provd's ``dhcp_info`` shape, validated."""

from __future__ import annotations

from provisor.domain.values import normalize_ip, normalize_mac
from provisor.errors import InvalidInput

__all__ = ["parse_dhcp_info"]


def parse_dhcp_info(info: object) -> tuple[str, str, dict[int, bytes]] | None:
    """Validate a wazo-style dhcp_info; None for expiry/release; InvalidInput when malformed."""
    if not isinstance(info, dict):
        raise InvalidInput("dhcp_info: must be a JSON object")
    op = info.get("op")
    if op not in ("commit", "expiry", "release"):
        raise InvalidInput("dhcp_info.op: must be commit, expiry or release")
    if op != "commit":
        return None
    ip = normalize_ip(info.get("ip") if isinstance(info.get("ip"), str) else "")
    mac = normalize_mac(info.get("mac") if isinstance(info.get("mac"), str) else "")
    raw_options = info.get("options")
    if not isinstance(raw_options, list):
        raise InvalidInput('dhcp_info.options: required, a list like ["060.41.42"]')
    options: dict[int, bytes] = {}
    for item in raw_options:
        if not isinstance(item, str) or len(item) < 3 or not item[:3].isdigit():
            raise InvalidInput(f"dhcp_info.options: {item!r} is not 'NNN.hh.hh…'")
        code = int(item[:3])
        rest = item[3:].lstrip(".")
        try:
            options[code] = bytes(int(h, 16) for h in rest.split(".") if h) if rest else b""
        except ValueError:
            raise InvalidInput(f"dhcp_info.options: {item!r} has a byte that is not hex") from None
    return ip, mac, options
