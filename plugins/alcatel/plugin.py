"""Alcatel-Lucent Enterprise Myriad M3/M5/M7: ``<settings><setting id=… value=…/></settings>``.

Settings are named per account (``Account<N>…``) and per programmable key
(``ProgramKey<N>…``); key 1 carries the line, so function key N is programmable key N + 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provisor.plugins.base import Plugin as Base
from provisor.plugins.contract import RenderContext
from provisor.plugins.helpers import phonebook_url, pick, server_url
from provisor.plugins.slots import key_slots, line_slots, slot_count
from provisor.plugins.tz import timezone_info

DTMF = {"RTP-in-band": 1, "RTP-out-of-band": 2, "SIP-INFO": 4}
#: Function key types: speed dial and BLF (with pickup); a park key dials the slot.
KEY_TYPE = {"speeddial": 1, "blf": 59, "park": 1}
#: The type of a programmable key with no function.
NO_KEY = 0
#: Programmable keys on the phone (the first carries the line).
KEYS = {"M3": 20, "M5": 28, "M7": 28}
LANGUAGE = {
    "en": 0, "fr": 1, "de": 2, "it": 3, "es": 4, "nl": 5, "pt": 6, "pl": 12, "tr": 15,
    "sv": 17,
}  # fmt: skip


def _offset(minutes: int) -> str:
    sign = "-" if minutes < 0 else "+"
    h, m = divmod(abs(minutes), 60)
    return f"{sign}{h}:{m:02d}"


class Plugin(Base):
    """Alcatel-Lucent Myriad phones."""

    def variables(self, ctx: RenderContext, raw: Mapping[str, Any]) -> dict[str, Any]:
        """XX_ variables."""
        model_name = str(ctx.device.get("model") or ctx.route.params.get("model") or "")
        models = self.manifest.models
        model = models.get(model_name)
        lines = line_slots(raw, slot_count(models, model, "lines"))
        for line in lines:
            line["XX_dtmf"] = pick(DTMF, line.get("dtmf_mode"), 2)
        # Every programmable key after the line's; type 0 and empty fields clear an unused one.
        keys = []
        for number, key in key_slots(raw, KEYS.get(model_name, max(KEYS.values())) - 1):
            if key is None or key.get("type") not in KEY_TYPE:
                keys.append({"position": number + 1, "XX_type": NO_KEY, "XX_used": False})
            else:
                keys.append(
                    {
                        **key,
                        "position": number + 1,
                        "XX_type": KEY_TYPE[key["type"]],
                        "XX_used": True,
                    }
                )
        tz = timezone_info(raw["timezone"]) if raw.get("timezone") else None
        options = ctx.device.get("options") or {}
        return {
            "XX_lines": lines,
            "XX_fkeys": keys,
            "XX_timezone": _offset(tz.utcoffset_minutes) if tz else None,
            "XX_dst": 2 if tz and tz.has_dst else 0,
            "XX_lang": LANGUAGE.get(str(raw.get("locale") or "en")[:2], 0),
            "XX_server_url": server_url(raw),
            "XX_phonebook_url": phonebook_url(raw, "snom"),
            "XX_switchboard": bool(options.get("switchboard")),
        }
