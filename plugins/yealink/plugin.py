"""Yealink: INI ``key = value`` files; value maps, time zone and line keys are computed here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provisor.plugins.base import Plugin as Base
from provisor.plugins.contract import RenderContext
from provisor.plugins.helpers import language, phonebook_url, pick, server_url
from provisor.plugins.slots import key_slots, line_slots, slot_count
from provisor.plugins.tz import timezone_info

DTMF = {"RTP-in-band": 0, "RTP-out-of-band": 1, "SIP-INFO": 2}
TRANSPORT = {"udp": 0, "tcp": 1, "tls": 2}
SRTP = {"disabled": 0, "preferred": 1, "required": 2}
SYSLOG = {"critical": 2, "error": 3, "warning": 4, "info": 6, "debug": 7}
FUNCKEY = {"speeddial": 13, "blf": 16, "park": 10}


def yealink_offset(minutes: int) -> str:
    """Yealink's time_zone value: +1, -5, +5:30."""
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    return f"{sign}{hours}" + (f":{mins:02d}" if mins else "")


class Plugin(Base):
    """Yealink deskphones and DECT bases."""

    model_case = "upper"

    def variables(self, ctx: RenderContext, raw: Mapping[str, Any]) -> dict[str, Any]:
        """XX_ variables for the device template."""
        models = self.manifest.models
        model = models.get(str(ctx.device.get("model") or ""))
        lines = line_slots(raw, slot_count(models, model, "lines"))
        for line in lines:
            line["XX_dtmf"] = pick(DTMF, line.get("dtmf_mode"))
            line["XX_srtp"] = pick(SRTP, line.get("srtp_mode"))
        linekeys = slot_count(models, model, "function_keys")
        modules = slot_count(models, model, "expansion_modules")
        per_module = slot_count(models, model, "expansion_keys")
        keys: list[dict[str, Any]] = []
        for number, key in key_slots(raw, linekeys + modules * per_module):
            slot: dict[str, Any] = {"used": key is not None}
            if number <= linekeys:
                slot["name"] = f"linekey.{number}"
            else:
                module, index = divmod(number - linekeys - 1, per_module)
                slot["name"] = f"expansion_module.{module + 1}.key.{index + 1}"
            if key is not None:
                slot.update(
                    type=FUNCKEY.get(key["type"], 0),
                    value=key.get("value", ""),
                    label=key.get("label") or "",
                    line=key.get("line", 1),
                    extension=raw.get("exten_pickup_call", "") if key["type"] == "blf" else "",
                )
            keys.append(slot)
        tz = timezone_info(raw["timezone"]) if raw.get("timezone") else None
        firmware = model.firmware_file if model else None
        return {
            "XX_lines": lines,
            "XX_fkeys": keys,
            "XX_transport": pick(TRANSPORT, raw.get("sip_transport"), 0),
            "XX_syslog_level": pick(SYSLOG, raw.get("syslog_level"), 4),
            "XX_tz": tz,
            "XX_tz_offset": yealink_offset(tz.utcoffset_minutes) if tz else None,
            "XX_lang": language(raw)[0],
            "XX_server_url": server_url(raw),
            "XX_phonebook_url": phonebook_url(raw, "yealink"),
            "XX_firmware_url": f"{server_url(raw)}/firmware/{firmware}" if firmware else None,
        }
