"""Fanvil: ``<sysConf>`` XML; models are also named by their common file (f0X3shw1.100)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provisor.plugins.base import Plugin as Base
from provisor.plugins.contract import RenderContext
from provisor.plugins.helpers import language, phonebook_url, pick, server_url
from provisor.plugins.slots import key_slots, line_slots, slot_count
from provisor.plugins.tz import timezone_info

DTMF = {"RTP-in-band": 0, "RTP-out-of-band": 1, "SIP-INFO": 2}
TRANSPORT = {"udp": 0, "tcp": 1, "tls": 3}
SRTP = {"disabled": 0, "preferred": 1, "required": 2}
SYSLOG = {"critical": 2, "error": 3, "warning": 4, "info": 6, "debug": 7}
FKEY = {"speeddial": 1, "blf": 1, "park": 1}
FKEY_SUB = {"speeddial": "SpeedDial", "blf": "BLF", "park": "Park"}


class Plugin(Base):
    """Fanvil phones."""

    def normalise_info(self, info: dict[str, str]) -> dict[str, str]:
        """``X6U Pro`` → ``X6U-Pro``; a common file name → its model."""
        model = info.get("model")
        if model and model.startswith("f0"):
            found = next(
                (
                    m.name
                    for m in self.manifest.models.values()
                    if m.extra.get("common_file") == model
                ),
                None,
            )
            if found:
                info["model"] = found
            else:
                info.pop("model")
        elif model:
            info["model"] = model.replace(" ", "-")
        return info

    def variables(self, ctx: RenderContext, raw: Mapping[str, Any]) -> dict[str, Any]:
        """XX_ variables of the common and device files."""
        models = self.manifest.models
        model = models.get(str(ctx.device.get("model") or ""))
        lines = line_slots(raw, slot_count(models, model, "lines"))
        for line in lines:
            line["XX_dtmf"] = pick(DTMF, line.get("dtmf_mode"), 1)
            line["XX_srtp"] = pick(SRTP, line.get("srtp_mode"), 0)
        tz = timezone_info(raw["timezone"]) if raw.get("timezone") else None
        # Every DSS key slot of the model; type 0 ("none") and empty fields clear an unused one.
        keys = [
            {
                "index": n,
                "type": FKEY[k["type"]],
                "sub": FKEY_SUB[k["type"]],
                "value": k.get("value", ""),
                "label": k.get("label") or "",
                "line": k.get("line") or 1,
            }
            if k
            else {"index": n, "type": 0}
            for n, k in key_slots(raw, slot_count(models, model, "function_keys"))
        ]
        return {
            "XX_lines": lines,
            "XX_fkeys": keys,
            "XX_transport": pick(TRANSPORT, raw.get("sip_transport"), 0),
            "XX_syslog_level": pick(SYSLOG, raw.get("syslog_level"), 4),
            "XX_lang": language(raw)[1],
            "XX_tz": tz,
            "XX_server_url": server_url(raw),
            "XX_phonebook_url": phonebook_url(raw, "fanvil"),
            "XX_model_common": route_common(ctx),
        }


def route_common(ctx: RenderContext) -> str:
    """The common file name this request routed to (empty for device files)."""
    return str(ctx.route.params.get("common", ""))
