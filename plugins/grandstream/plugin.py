"""Grandstream: ``gs_provision`` XML of P-values; the per-account P numbers live here.

One plugin for every Grandstream family that reads ``cfg<mac>.xml`` with the same User-Agent:
GXP/GRP deskphones, WP8xx Wi-Fi phones, DP75x DECT bases and the HT8xx analog adapters. A
model's ``family`` (manifest) picks its layout: accounts (phones, HT80x/HT812/HT813, DECT
bases with ten accounts) or FXS ports (HT814/HT818, one SIP profile and per-port P-values).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provisor.plugins.base import Plugin as Base
from provisor.plugins.contract import RenderContext
from provisor.plugins.helpers import language, pick, server_url
from provisor.plugins.pvalues import MAX_ACCOUNTS, account_pvalues, blank_account_pvalues
from provisor.plugins.slots import key_slots, line_slots
from provisor.plugins.tz import posix_tz, timezone_info

TRANSPORT = {"udp": 0, "tcp": 1, "tls": 2}
MPK_MODE = {"speeddial": 0, "blf": 1, "park": 9}


#: Keys written in the virtual multi-purpose key block (P23000 + 5 per key).
MAX_KEYS = 100
#: The key mode "None" of an unused multi-purpose key.
NO_KEY = -1


def mpk_pvalues(raw: Mapping[str, Any], phone: bool = True) -> list[tuple[str, Any]]:
    """Function keys by their number: the classic multi-purpose keys 1-7 (mode P323+i,
    account/label/value P301+3i..P303+3i) and every key in the virtual multi-purpose key block
    of current firmware (mode, account, label, value at P23000 + 5 × (key - 1)).

    Every slot is written; an unused one (or one of a type the phone lacks) gets mode -1
    ("None") and empty fields, so a removed key is cleared on the phone. An ATA has none.
    """
    p: list[tuple[str, Any]] = []
    if not phone:
        return p
    for number, key in key_slots(raw, MAX_KEYS):
        mode = MPK_MODE.get(key["type"]) if key else None
        account: int | str = ""
        label: str = ""
        value: str = ""
        if key is None or mode is None:
            mode = NO_KEY
        else:
            account = (key.get("line") or 1) - 1
            label = key.get("label") or ""
            value = key.get("value", "")
        if number <= 7:
            i = number - 1
            p += [
                (str(323 + i), mode),
                (str(301 + 3 * i), account),
                (str(302 + 3 * i), label),
                (str(303 + 3 * i), value),
            ]
        base = 23000 + 5 * (number - 1)
        p += [
            (str(base), mode),
            (str(base + 1), account),
            (str(base + 2), label),
            (str(base + 3), value),
        ]
    return p


#: HT814/HT818 FXS port N (1-8): P base + N - 1 per field (unverified, docs/plugins.md).
PORT_P = {"user": 4060, "auth": 4090, "password": 4120, "profile": 4150, "name": 4180}
#: Profile 1 (the SIP server every port uses): server, outbound proxy, transport, voicemail.
PROFILE_P = {"server": "47", "outbound": "48", "transport": "130", "voicemail": "33"}


def port_pvalues(raw: Mapping[str, Any], ports: int, transport: int) -> list[tuple[str, Any]]:
    """HT814/HT818: profile 1 from the first used line's servers, then every FXS port, a used
    one with its account and a free one with every field empty (nothing left registered).

    The profile is the device owner's: a line of a port held by another tenant never sets it
    (that tenant's port registers on the owner's server; docs/api.md, shared devices)."""
    lines = line_slots(raw, ports)
    used = [line for line in lines if line["XX_used"] and not line.get("XX_port_tenant")]
    first = (
        used[0]
        if used
        else {
            "registrar_ip": raw.get("sip_registrar_ip"),
            "registrar_port": raw.get("sip_registrar_port"),
            "proxy_ip": raw.get("sip_proxy_ip"),
            "proxy_port": raw.get("sip_proxy_port"),
            "outbound_proxy_ip": raw.get("sip_outbound_proxy_ip"),
            "outbound_proxy_port": raw.get("sip_outbound_proxy_port"),
        }
    )
    server = first.get("registrar_ip") or first.get("proxy_ip") or ""
    port = first.get("registrar_port") or first.get("proxy_port")
    outbound = first.get("outbound_proxy_ip") or ""
    if outbound and first.get("outbound_proxy_port"):
        outbound = f"{outbound}:{first['outbound_proxy_port']}"
    p: list[tuple[str, Any]] = [
        (PROFILE_P["server"], f"{server}:{port}" if port and server else server),
        (PROFILE_P["outbound"], outbound),
        (PROFILE_P["transport"], transport),
        (PROFILE_P["voicemail"], first.get("voicemail") or ""),
    ]
    for line in lines:
        i = line["number_index"] - 1
        on = line["XX_used"]
        p += [
            (str(PORT_P["user"] + i), line.get("username") or ""),
            (str(PORT_P["auth"] + i), line.get("auth_username") or ""),
            (str(PORT_P["password"] + i), line.get("password") or ""),
            (str(PORT_P["profile"] + i), 0 if on else ""),
            (str(PORT_P["name"] + i), line.get("display_name") or ""),
        ]
    return p


class Plugin(Base):
    """Grandstream phones and ATAs."""

    model_case = "upper"

    def variables(self, ctx: RenderContext, raw: Mapping[str, Any]) -> dict[str, Any]:
        """The P-value list of the device file."""
        model = self.manifest.models.get(str(ctx.device.get("model") or ""))
        family = str(model.extra.get("family", "phone")) if model else "phone"
        dtmf = raw.get("sip_dtmf_mode")
        transport = pick(TRANSPORT, raw.get("sip_transport"), 0)
        p: list[tuple[str, Any]] = []
        if family == "fxs-ports":
            p += port_pvalues(raw, model.lines if model else 8, transport)
        else:
            # every account of the model (an unknown model: the first three, which every
            # Grandstream has; the DECT bases' accounts 4-10 only once the model is known)
            limit = min(model.lines if model else 3, MAX_ACCOUNTS)
            for line in line_slots(raw, limit):
                if line["XX_used"]:
                    p += account_pvalues(line, transport, dtmf)
                else:  # an unused account: off, and nothing of a previous user left in it
                    p += blank_account_pvalues(line["number_index"])
        if raw.get("admin_password"):
            p.append(("2", raw["admin_password"]))
        if raw.get("user_password"):
            p.append(("196", raw["user_password"]))
        p.append(("30", raw["ntp_ip"] if raw.get("ntp_enabled") and raw.get("ntp_ip") else ""))
        if raw.get("timezone"):
            p += [("64", "customize"), ("246", posix_tz(timezone_info(raw["timezone"])))]
        else:
            p += [("64", "auto"), ("246", "")]
        p.append(("92", raw["dns_ip"] if raw.get("dns_enabled") and raw.get("dns_ip") else ""))
        if raw.get("vlan_enabled"):
            p += [("51", raw.get("vlan_id", 0)), ("87", raw.get("vlan_priority") or 0)]
        else:
            p += [("51", 0), ("87", 0)]
        p += [("1362", language(raw)[1])]
        url = server_url(raw)
        p += [
            ("212", 2),
            ("237", url.split("://", 1)[-1]),
            ("192", url.split("://", 1)[-1] + "/firmware"),
        ]
        p += mpk_pvalues(raw, phone=family == "phone")  # ATAs, DECT and Wi-Fi phones have none
        return {"XX_pvalues": p, "XX_mac_hex": str(ctx.device.get("mac") or "").replace(":", "")}
