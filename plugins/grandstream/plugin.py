"""Grandstream: ``gs_provision`` XML of P-values; the per-account P numbers live here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provisor.plugins.base import Plugin as Base
from provisor.plugins.contract import RenderContext
from provisor.plugins.helpers import language, pick, server_url
from provisor.plugins.pvalues import account_pvalues, blank_account_pvalues
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


class Plugin(Base):
    """Grandstream phones and ATAs."""

    model_case = "upper"

    def variables(self, ctx: RenderContext, raw: Mapping[str, Any]) -> dict[str, Any]:
        """The P-value list of the device file."""
        model = self.manifest.models.get(str(ctx.device.get("model") or ""))
        limit = min(model.lines if model else 3, 3)
        dtmf = raw.get("sip_dtmf_mode")
        transport = pick(TRANSPORT, raw.get("sip_transport"), 0)
        p: list[tuple[str, Any]] = []
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
        p += mpk_pvalues(raw, phone=not (model and model.type == "ata"))
        return {"XX_pvalues": p, "XX_mac_hex": str(ctx.device.get("mac") or "").replace(":", "")}
