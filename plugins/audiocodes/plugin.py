"""AudioCodes: phones' ``key=value`` files and MediaPack gateways' ini files.

One vendor, two formats chosen by the file the device asks for (``.cfg`` phone, ``.ini``
gateway); each family's slot counts come from its own models, so an unknown gateway gets
the most ports of a gateway, an unknown phone the most lines and keys of a phone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provisor.plugins.base import Plugin as Base
from provisor.plugins.contract import DeviceInfo, ModelInfo, RenderContext
from provisor.plugins.helpers import language, one_line, pick, server_url
from provisor.plugins.slots import key_slots, line_slots, slot_count
from provisor.plugins.tz import DstRule, format_offset, timezone_info

DTMF = {"RTP-in-band": "INBAND", "RTP-out-of-band": "RFC2833", "SIP-INFO": "SIP_INFO"}
TRANSPORT = {"udp": "UDP", "tcp": "TCP", "tls": "TLS"}
FUNCKEY = {"speeddial": "SPEED_DIAL", "blf": "BLF", "park": "SPEED_DIAL"}
SYSLOG = {"critical": "ERROR", "error": "ERROR", "warning": "WARNING", "info": "INFO"}
# gateways: DTMF transport type (0 in-band, 2 RFC 2833, 1 SIP INFO) and SIP transport
GW_DTMF = {"RTP-in-band": 0, "RTP-out-of-band": 2, "SIP-INFO": 1}
GW_TRANSPORT = {"udp": 0, "tcp": 1, "tls": 2}
WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")


def gateway_dst(rule: DstRule | None) -> str:
    """A gateway's DST boundary by weekday of a week, ``'03:SUN/LAST:02:00'`` (not a date,
    which would change every year)."""
    if rule is None:
        return "''"
    week = "LAST" if rule.week == 5 else str(rule.week)
    day = WEEKDAYS[rule.weekday - 1]
    return f"'{rule.month:02d}:{day}/{week}:{rule.hour:02d}:{rule.minute:02d}'"


def family(models: Mapping[str, ModelInfo], gateway: bool) -> dict[str, ModelInfo]:
    """The models of one family (gateways or phones)."""
    return {k: m for k, m in models.items() if (m.type == "gateway") == gateway}


class Plugin(Base):
    """AudioCodes 400HD/C4xxHD phones and MP-1xx gateways."""

    def normalise_info(self, info: DeviceInfo) -> DeviceInfo:
        """``MP-118`` → ``MP118`` (the manifest's spelling)."""
        if info.get("model", "").startswith("MP-"):
            info["model"] = info["model"].replace("-", "")
        return info

    def variables(self, ctx: RenderContext, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Lines or ports, keys, and the settings written explicitly."""
        gateway = ctx.route.spec.template == "gateway.ini"
        models = family(self.manifest.models, gateway)
        model = models.get(str(ctx.device.get("model") or ""))
        tz = timezone_info(raw["timezone"]) if raw.get("timezone") else None
        out: dict[str, Any] = {
            # values stay in their own line (phones) or field of their port's row (gateways,
            # whose ports may be different tenants'): no control character, no '"' in a row
            "XX_lines": [
                one_line(line, drop='"' if gateway else "")
                for line in line_slots(raw, slot_count(models, model, "lines"))
            ],
            "XX_transport": pick(TRANSPORT, raw.get("sip_transport"), "UDP"),
            "XX_dtmf": pick(DTMF, raw.get("sip_dtmf_mode"), "RFC2833"),
            "XX_gw_transport": pick(GW_TRANSPORT, raw.get("sip_transport"), 0),
            "XX_gw_dtmf": pick(GW_DTMF, raw.get("sip_dtmf_mode"), 2),
            "XX_syslog_level": pick(SYSLOG, raw.get("syslog_level"), "INFO"),
            "XX_tz": tz,
            "XX_gmt_offset": format_offset(tz.utcoffset_minutes if tz else 0),
            "XX_dst_start": gateway_dst(tz.dst_start if tz else None),
            "XX_dst_end": gateway_dst(tz.dst_end if tz else None),
            "XX_utc_seconds": (tz.utcoffset_minutes if tz else 0) * 60,
            "XX_lang": language(raw)[0],
            "XX_server_url": server_url(raw),
        }
        if not gateway:
            own = slot_count(models, model, "function_keys")
            modules = slot_count(models, model, "expansion_modules")
            per_module = slot_count(models, model, "expansion_keys")
            keys = []
            for number, key in key_slots(raw, own + modules * per_module):
                slot: dict[str, Any] = {"used": key is not None}
                if number <= own:
                    slot["name"] = f"personal_settings/functional_key/{number - 1}"
                else:
                    module, index = divmod(number - own - 1, per_module)
                    slot["name"] = f"expansion_module/{module}/key/{index}"
                if key is not None:
                    slot.update(
                        type=FUNCKEY.get(key["type"], "EMPTY"),
                        value=key.get("value", ""),
                        label=key.get("label") or key.get("value", ""),
                    )
                keys.append(slot)
            out["XX_keys"] = keys
        return out
