"""P-value numbering shared by Grandstream and Htek phones (Htek kept the same scheme).

Accounts 1-3: active, name, server, outbound proxy, user id, auth id, password, display name,
voicemail, transport, and the DTMF in-audio / RFC 2833 / SIP INFO switches. Accounts 4-10 (the
six-account GXP21xx, the ten-account DP75x DECT bases) follow the same offsets from a base of
their own (4: 600, 5: 1700, 6: 1800, … 10: 2200; DTMF switches 2550 + 100 per account):
written from Grandstream's P-value tables as remembered, unverified (docs/plugins.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["ACCOUNT_P", "FIELDS", "MAX_ACCOUNTS", "account_pvalues", "blank_account_pvalues"]

ACCOUNT_P: dict[int, tuple[str, ...]] = {
    1: ("271", "270", "47", "48", "35", "36", "34", "3", "33", "130", "850", "851", "852"),
    2: (
        "401",
        "417",
        "402",
        "403",
        "404",
        "405",
        "406",
        "407",
        "426",
        "448",
        "2350",
        "2351",
        "2352",
    ),
    3: (
        "501",
        "517",
        "502",
        "503",
        "504",
        "505",
        "506",
        "507",
        "526",
        "548",
        "2450",
        "2451",
        "2452",
    ),
}
#: Account N >= 4: its base P number (active = base + 1, name = base + 17, …).
_HIGH_BASE = {4: 600, 5: 1700, 6: 1800, 7: 1900, 8: 2000, 9: 2100, 10: 2200}


def _high_account(number: int) -> tuple[str, ...]:
    base, dtmf = _HIGH_BASE[number], 2550 + 100 * (number - 4)
    offsets = (1, 17, 2, 3, 4, 5, 6, 7, 26, 48)
    return tuple(str(base + o) for o in offsets) + (str(dtmf), str(dtmf + 1), str(dtmf + 2))


ACCOUNT_P.update({n: _high_account(n) for n in _HIGH_BASE})

#: The most accounts a P-value file of this scheme can hold.
MAX_ACCOUNTS = max(ACCOUNT_P)

FIELDS = (
    "active",
    "name",
    "server",
    "outbound",
    "user",
    "auth",
    "password",
    "display",
    "voicemail",
    "transport",
    "dtmf_audio",
    "dtmf_rfc2833",
    "dtmf_info",
)


def account_pvalues(
    line: Mapping[str, Any], transport: int, dtmf: str | None
) -> list[tuple[str, Any]]:
    """The P-values of one resolved SIP line (numbered 1 to :data:`MAX_ACCOUNTS`)."""
    numbers = dict(zip(FIELDS, ACCOUNT_P[line["number_index"]], strict=True))
    server = line.get("registrar_ip") or line.get("proxy_ip") or ""
    port = line.get("registrar_port") or line.get("proxy_port")
    mode = line.get("dtmf_mode") or dtmf
    outbound = line.get("outbound_proxy_ip") or ""
    if outbound and line.get("outbound_proxy_port"):
        outbound = f"{outbound}:{line['outbound_proxy_port']}"
    return [
        (numbers["active"], 1),
        (numbers["name"], line.get("display_name") or line.get("number") or ""),
        (numbers["server"], f"{server}:{port}" if port and server else server),
        (numbers["outbound"], outbound),
        (numbers["user"], line.get("username") or ""),
        (numbers["auth"], line.get("auth_username") or ""),
        (numbers["password"], line.get("password") or ""),
        (numbers["display"], line.get("display_name") or ""),
        (numbers["voicemail"], line.get("voicemail") or ""),
        (numbers["transport"], transport),
        (numbers["dtmf_audio"], "Yes" if mode == "RTP-in-band" else "No"),
        (numbers["dtmf_rfc2833"], "Yes" if mode in (None, "RTP-out-of-band") else "No"),
        (numbers["dtmf_info"], "Yes" if mode == "SIP-INFO" else "No"),
    ]


def blank_account_pvalues(number: int) -> list[tuple[str, Any]]:
    """The P-values clearing account ``number`` (1 to :data:`MAX_ACCOUNTS`): inactive, every
    field empty."""
    return [
        (p, 0 if field == "active" else "")
        for field, p in zip(FIELDS, ACCOUNT_P[number], strict=True)
    ]
