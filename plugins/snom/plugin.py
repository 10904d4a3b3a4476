"""Snom: ``<settings>`` XML with ``perm`` attributes; value maps and DST rule computed here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provisor.plugins.base import Plugin as Base
from provisor.plugins.contract import RenderContext
from provisor.plugins.helpers import funckeys, phonebook_url, pick, server_url, sip_lines
from provisor.plugins.tz import timezone_info

DTMF = {"RTP-in-band": "off", "RTP-out-of-band": "off", "SIP-INFO": "sip_info_only"}
TRANSPORT = {"udp": "udp", "tcp": "tcp", "tls": "tls"}
SRTP = {"disabled": "off", "preferred": "on", "required": "on"}
LANGUAGE = {
    "de_DE": "Deutsch",
    "en_US": "English(US)",
    "en_GB": "English(UK)",
    "es_ES": "Espanol",
    "fr_FR": "Francais",
    "fr_CA": "Francais",
    "it_IT": "Italiano",
    "nl_NL": "Nederlands",
    "pt_BR": "Portugues",
    "pt_PT": "Portugues",
    "pl_PL": "Polski",
    "ru_RU": "Russian",
    "sv_SE": "Svenska",
    "tr_TR": "Turkce",
}


def _rule(rule: Any) -> str:
    # Snom: MM.WW.DD HH:MM:SS with week 5 = last and day 7 = Sunday
    return (
        f"{rule.month:02d}.{rule.week:02d}.{rule.weekday:02d} {rule.hour:02d}:{rule.minute:02d}:00"
    )


class Plugin(Base):
    """Snom deskphones."""

    model_case = "upper"

    def variables(self, ctx: RenderContext, raw: Mapping[str, Any]) -> dict[str, Any]:
        """XX_ variables of the setting files."""
        model = self.manifest.models.get(str(ctx.device.get("model") or ""))
        tz = timezone_info(raw["timezone"]) if raw.get("timezone") else None
        keys = []
        for number, key in funckeys(raw):
            host = raw.get("sip_proxy_ip") or ""
            if key["type"] == "blf":
                value = (
                    f"blf <sip:{key.get('value', '')}@{host}>|{raw.get('exten_pickup_call', '')}"
                )
            elif key["type"] == "park":
                value = f"orbit {key.get('value', '')}"
            else:
                value = f"speed {key.get('value', '')}"
            keys.append({"index": number - 1, "value": value, "label": key.get("label") or ""})
        lines = sip_lines(raw, model.lines if model else None)
        for line in lines:
            line["XX_dtmf"] = pick(DTMF, line.get("dtmf_mode"), "off")
        return {
            "XX_lines": lines,
            "XX_fkeys": keys,
            "XX_transport": pick(TRANSPORT, raw.get("sip_transport"), "udp"),
            "XX_srtp": pick(SRTP, raw.get("sip_srtp_mode"), "off"),
            "XX_lang": LANGUAGE.get(raw.get("locale") or "en_US", "English(US)"),
            "XX_utc_offset": tz.utcoffset_minutes * 60 if tz else None,
            "XX_dst": (
                f"{tz.dst_save_minutes * 60} {_rule(tz.dst_start)} {_rule(tz.dst_end)}"
                if tz and tz.dst_start and tz.dst_end
                else None
            ),
            "XX_server_url": server_url(raw),
            "XX_phonebook_url": phonebook_url(raw, "snom"),
            "XX_mac_upper": str(ctx.device.get("mac") or "").replace(":", "").upper(),
        }
