"""Snom: ``<settings>`` XML with ``perm`` attributes; value maps and DST rule computed here.

Deskphones and M-series DECT bases read the same file names; a DECT base's ``<MAC>.xml`` holds
SIP servers by index (one per distinct proxy) and handsets by index, each handset's account
pointing at its server, with the line's index as the DECT registration code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provisor.plugins.base import Plugin as Base
from provisor.plugins.contract import RenderContext
from provisor.plugins.helpers import phonebook_url, pick, server_url
from provisor.plugins.slots import key_slots, line_slots, slot_count
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


#: SIP server slots of an M-series base (written up to the model's line count).
MAX_DECT_SERVERS = 10
DECT_DTMF = {"RTP-in-band": "off", "RTP-out-of-band": "off", "SIP-INFO": "on"}


class Plugin(Base):
    """Snom deskphones and M-series DECT bases."""

    model_case = "upper"

    def _is_dect(self, device: Mapping[str, Any]) -> bool:
        model = self.manifest.models.get(str(device.get("model") or ""))
        return model is not None and model.type == "dect"

    def sync_event(self, device: Mapping[str, Any]) -> str:
        """DECT bases apply a new configuration on a reboot only."""
        return "check-sync;reboot=true" if self._is_dect(device) else self.manifest.sync_event

    @staticmethod
    def _dect(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
        servers: dict[tuple[Any, ...], dict[str, Any]] = {}
        for line in lines:
            port = line.get("proxy_port") or 5060
            outbound = line.get("outbound_proxy_ip")
            key = (line.get("proxy_ip"), port, outbound, line.get("dtmf_mode"))
            if key not in servers:
                servers[key] = {
                    "id": len(servers) + 1,
                    "host": f"{line.get('proxy_ip') or ''}:{port}",
                    "outbound": (
                        f"{outbound}:{line.get('outbound_proxy_port') or 5060}" if outbound else ""
                    ),
                    "dtmf": pick(DECT_DTMF, line.get("dtmf_mode"), "off"),
                }
            line["XX_server"] = servers[key]["id"]
            line["XX_dect_code"] = f"{line['number_index']:04d}"
        return list(servers.values())

    def variables(self, ctx: RenderContext, raw: Mapping[str, Any]) -> dict[str, Any]:
        """XX_ variables of the setting files."""
        models = self.manifest.models
        model = models.get(str(ctx.device.get("model") or ""))
        tz = timezone_info(raw["timezone"]) if raw.get("timezone") else None
        dect = self._is_dect(ctx.device)
        keys = []
        host = raw.get("sip_proxy_ip") or ""
        # Every key slot of the model: an unused one is written empty (not programmed).
        for number, key in key_slots(
            raw, 0 if dect else slot_count(models, model, "function_keys")
        ):
            if key is None:
                value = ""
            elif key["type"] == "blf":
                value = (
                    f"blf <sip:{key.get('value', '')}@{host}>|{raw.get('exten_pickup_call', '')}"
                )
            elif key["type"] == "park":
                value = f"orbit {key.get('value', '')}"
            else:
                value = f"speed {key.get('value', '')}"
            label = (key.get("label") or "") if key else ""
            keys.append({"index": number - 1, "value": value, "label": label})
        lines = line_slots(raw, slot_count(models, model, "lines"))
        for line in lines:
            line["XX_dtmf"] = pick(DTMF, line.get("dtmf_mode"), "off")
        servers = self._dect([ln for ln in lines if ln["XX_used"]]) if dect else []
        # Server slots past the ones in use are cleared too (one per line at most).
        servers += [
            {"id": n, "host": "", "outbound": "", "dtmf": ""}
            for n in range(len(servers) + 1, min(len(lines), MAX_DECT_SERVERS) + 1)
        ]
        return {
            "XX_dect": dect,
            "XX_servers": servers,
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
