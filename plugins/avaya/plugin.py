"""Avaya J100: ``SET NAME value`` settings; the upgrade script points at the per-MAC file."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provisor.plugins.base import Plugin as Base
from provisor.plugins.contract import RenderContext
from provisor.plugins.helpers import funckeys, language, phonebook_url, pick, server_url
from provisor.plugins.slots import line_slots, slot_count
from provisor.plugins.tz import timezone_info

DTMF = {"RTP-in-band": 0, "RTP-out-of-band": 1, "SIP-INFO": 2}
TRANSPORT = {"udp": 0, "tcp": 1, "tls": 2}
SRTP = {"disabled": 0, "preferred": 1, "required": 2}


def _dst(rule: Any) -> str:
    # Avaya: "1stSunMar2L" style rules (L = local time, last = "L" week)
    days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    week = "L" if rule.week == 5 else {1: "1st", 2: "2nd", 3: "3rd", 4: "4th"}[rule.week]
    return f"{week}{days[rule.weekday - 1]}{months[rule.month - 1]}{rule.hour}L"


class Plugin(Base):
    """Avaya J100 phones."""

    def variables(self, ctx: RenderContext, raw: Mapping[str, Any]) -> dict[str, Any]:
        """XX_ variables."""
        models = self.manifest.models
        model = models.get(str(ctx.device.get("model") or ""))
        tz = timezone_info(raw["timezone"]) if raw.get("timezone") else None
        offset = None
        if tz:
            sign = "-" if tz.utcoffset_minutes < 0 else "+"
            h, m = divmod(abs(tz.utcoffset_minutes), 60)
            offset = f"{sign}{h}:{m:02d}"
        return {
            "XX_lines": line_slots(raw, slot_count(models, model, "lines")),
            "XX_fkeys": [key for _, key in funckeys(raw)],
            "XX_dtmf": pick(DTMF, raw.get("sip_dtmf_mode"), 1),
            "XX_transport": pick(TRANSPORT, raw.get("sip_transport"), 0),
            "XX_srtp": pick(SRTP, raw.get("sip_srtp_mode"), 0),
            "XX_gmt_offset": offset,
            "XX_dst_start": _dst(tz.dst_start) if tz and tz.dst_start else None,
            "XX_dst_stop": _dst(tz.dst_end) if tz and tz.dst_end else None,
            "XX_dst_save": (tz.dst_save_minutes // 60) if tz else 0,
            "XX_lang": language(raw)[1],
            "XX_server_url": server_url(raw),
            "XX_phonebook_url": phonebook_url(raw, "avaya"),
        }
