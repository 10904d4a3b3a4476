"""Panasonic KX-HDV / KX-TGP: ``KEY="value"`` text files; value maps and time zone here."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from provisor.plugins.base import Plugin as Base
from provisor.plugins.contract import DeviceInfo, RenderContext
from provisor.plugins.helpers import language, phonebook_url, pick, server_url
from provisor.plugins.slots import key_slots, line_slots, slot_count
from provisor.plugins.tz import DstRule, timezone_info

TRANSPORT = {"udp": 0, "tcp": 1, "tls": 2}
DTMF = {"RTP-out-of-band": 0, "RTP-in-band": 1, "SIP-INFO": 2}
#: Flexible-button facilities (FLEX_BUTTON_FACILITY_ACTn) of the key types provisor knows.
FACILITY = {"speeddial": "X_PANASONIC_IPTEL_ONETOUCH", "blf": "X_PANASONIC_IPTEL_BLF"}
#: Regional suffixes (KX-HDV230NE, KX-TGP600CE, …) are the same phone to provision.
_BASE_MODEL = re.compile(r"^KX-(?:HDV|TGP|UT)\d+")


def _dst(rule: DstRule | None) -> dict[str, Any]:
    """A DST change: ordinal week 1-4 or 5 (last), day 0 = Sunday, time in minutes."""
    if rule is None:
        return {"month": "", "week": "", "dow": "", "time": ""}
    return {
        "month": rule.month,
        "week": rule.week,
        "dow": rule.weekday % 7,
        "time": rule.hour * 60 + rule.minute,
    }


class Plugin(Base):
    """Panasonic KX-HDV phones and KX-TGP DECT bases."""

    def normalise_info(self, info: DeviceInfo) -> DeviceInfo:
        """``KX-HDV230NE`` → ``KX-HDV230`` (a regional variant of a listed model)."""
        model = info.get("model", "").upper()
        m = _BASE_MODEL.match(model)
        if m is not None and m.group() in self.manifest.models:
            info["model"] = m.group()
        return info

    def variables(self, ctx: RenderContext, raw: Mapping[str, Any]) -> dict[str, Any]:
        """XX_ variables: every line and flexible button of the model, time zone, URLs."""
        models = self.manifest.models
        model = models.get(str(ctx.device.get("model") or ""))
        tz = timezone_info(raw["timezone"]) if raw.get("timezone") else None
        keys = []
        for number, key in key_slots(raw, slot_count(models, model, "function_keys")):
            facility = FACILITY.get(key["type"]) if key else None
            keys.append((number, key if facility else None, facility or ""))
        lines = line_slots(raw, slot_count(models, model, "lines"))
        for line in lines:  # the line's DTMF mode (resolved against the global one) or unset
            line["XX_dtmf"] = pick(DTMF, line["dtmf_mode"], 0) if line["XX_used"] else ""
        return {
            "XX_lines": lines,
            "XX_keys": keys,
            "XX_transport": pick(TRANSPORT, raw.get("sip_transport"), 0),
            "XX_language": language(raw)[1],
            "XX_tz": tz,
            "XX_dst_start": _dst(tz.dst_start if tz else None),
            "XX_dst_stop": _dst(tz.dst_end if tz else None),
            "XX_server_url": server_url(raw),
            "XX_phonebook_url": phonebook_url(raw, "panasonic"),
            "XX_mac_upper": str(ctx.device.get("mac") or "").replace(":", "").upper(),
        }
