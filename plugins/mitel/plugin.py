"""Mitel/Aastra: ``key: value`` text files; value maps and soft keys computed here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provisor.plugins.base import Plugin as Base
from provisor.plugins.contract import RenderContext
from provisor.plugins.helpers import phonebook_url, pick, server_url
from provisor.plugins.slots import key_slots, line_slots, slot_count
from provisor.plugins.tz import timezone_info

DTMF = {"RTP-in-band": 0, "RTP-out-of-band": 1, "SIP-INFO": 2}
TRANSPORT = {"udp": 1, "tcp": 2, "tls": 4}
SRTP = {"disabled": 0, "preferred": 1, "required": 2}
LANGUAGE = {
    "fr_FR": ("lang_fr.txt", "French"),
    "fr_CA": ("lang_fr_ca.txt", "French"),
    "de_DE": ("lang_de.txt", "German"),
    "es_ES": ("lang_es.txt", "Spanish"),
    "it_IT": ("lang_it.txt", "Italian"),
    "nl_NL": ("lang_nl.txt", "Dutch"),
    "pt_BR": ("lang_pt_br.txt", "Portuguese"),
}
KEY_TYPE = {"speeddial": "speeddial", "blf": "blf", "park": "park"}
# 67xx/68xx call soft keys "softkey", 69xx "topsoftkey"/"expmod" differ; programmable keys on
# 6730i/6731i are "prgkey".
PRGKEY_MODELS = {"6730i", "6731i", "6863i"}


class Plugin(Base):
    """Mitel/Aastra phones."""

    def normalise_info(self, info: dict[str, str]) -> dict[str, str]:
        """``55i`` → ``6755i``; the vendor stays "Aastra" for compatibility."""
        model = info.get("model")
        if model and len(model) == 3 and model.endswith("i"):
            info["model"] = "67" + model
        info["vendor"] = "Aastra"
        return info

    def variables(self, ctx: RenderContext, raw: Mapping[str, Any]) -> dict[str, Any]:
        """XX_ variables of the device file."""
        model_name = str(ctx.device.get("model") or "")
        models = self.manifest.models
        model = models.get(model_name)
        lines = line_slots(raw, slot_count(models, model, "lines"))
        for line in lines:
            line["XX_dtmf"] = pick(DTMF, line.get("dtmf_mode"), 0)
            line["XX_srtp"] = pick(SRTP, line.get("srtp_mode"), 0)
        tz = timezone_info(raw["timezone"]) if raw.get("timezone") else None
        prefix = (
            "prgkey"
            if model_name in PRGKEY_MODELS
            else "topsoftkey"
            if model_name.startswith("69")
            else "softkey"
        )
        # Every key slot of the model; type "empty" and blank fields clear an unused one.
        keys = [
            {
                "prefix": prefix,
                "index": n,
                "type": KEY_TYPE[k["type"]] if k else "empty",
                "value": k.get("value", "") if k else "",
                "label": (k.get("label") or "") if k else "",
                "line": (k.get("line") or 1) if k else "",
            }
            for n, k in key_slots(raw, slot_count(models, model, "function_keys"))
        ]
        lang = LANGUAGE.get(raw.get("locale") or "")
        return {
            "XX_lines": lines,
            "XX_fkeys": keys,
            "XX_transport": pick(TRANSPORT, raw.get("sip_transport"), 1),
            "XX_tz": tz,
            "XX_lang": lang,
            "XX_server_url": server_url(raw),
            "XX_phonebook_url": phonebook_url(raw, "aastra"),
        }
