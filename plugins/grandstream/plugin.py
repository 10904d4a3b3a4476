"""Grandstream: ``gs_provision`` XML of P-values; the per-account P numbers live here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provisor.plugins.base import Plugin as Base
from provisor.plugins.contract import RenderContext
from provisor.plugins.helpers import funckeys, language, pick, server_url, sip_lines
from provisor.plugins.pvalues import account_pvalues
from provisor.plugins.tz import posix_tz, timezone_info

TRANSPORT = {"udp": 0, "tcp": 1, "tls": 2}
MPK_MODE = {"speeddial": 0, "blf": 1, "park": 9}


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
        for line in sip_lines(raw, limit):
            p += account_pvalues(line, transport, dtmf)
        if raw.get("admin_password"):
            p.append(("2", raw["admin_password"]))
        if raw.get("user_password"):
            p.append(("196", raw["user_password"]))
        if raw.get("ntp_enabled") and raw.get("ntp_ip"):
            p.append(("30", raw["ntp_ip"]))
        if raw.get("timezone"):
            p += [("64", "customize"), ("246", posix_tz(timezone_info(raw["timezone"])))]
        if raw.get("dns_enabled") and raw.get("dns_ip"):
            p.append(("92", raw["dns_ip"]))
        if raw.get("vlan_enabled"):
            p += [("51", raw.get("vlan_id", 0)), ("87", raw.get("vlan_priority") or 0)]
        p += [("1362", language(raw)[1])]
        url = server_url(raw)
        p += [
            ("212", 2),
            ("237", url.split("://", 1)[-1]),
            ("192", url.split("://", 1)[-1] + "/firmware"),
        ]
        # Multi-purpose keys 1-7 (mode P323+i; account, label, value P301+3i..P303+3i).
        # Later keys use model-specific numbers and are not written (docs/plugins.md).
        for index, (_, key) in enumerate(funckeys(raw)):
            if index >= 7:
                break
            p += [
                (str(323 + index), MPK_MODE.get(key["type"], 0)),
                (str(301 + 3 * index), (key.get("line") or 1) - 1),
                (str(302 + 3 * index), key.get("label") or ""),
                (str(303 + 3 * index), key.get("value", "")),
            ]
        return {"XX_pvalues": p, "XX_mac_hex": str(ctx.device.get("mac") or "").replace(":", "")}
