"""Patton SmartNode: a whole startup configuration in SmartWare's CLI syntax.

The gateway replaces its configuration with the file and reloads, so the file carries what
it needs to stay reachable and provisioned (DHCP on its LAN port, this provisioning profile)
and every FXS port: a used port with its SIP identity, an unused one shut down.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provisor.plugins.base import Plugin as Base
from provisor.plugins.contract import RenderContext
from provisor.plugins.helpers import one_line, pick, server_url
from provisor.plugins.slots import line_slots, slot_count
from provisor.plugins.tz import DstRule, format_offset, timezone_info

TRANSPORT = {"udp": "udp", "tcp": "tcp", "tls": "tls"}
DTMF = {"RTP-in-band": "inband", "RTP-out-of-band": "rtp", "SIP-INFO": "signaling"}
SYSLOG = {"critical": "critical", "error": "error", "warning": "warning", "info": "info"}
MONTHS = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
]
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
WEEKS = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "last"}


def dst_point(rule: DstRule) -> str:
    """``march last sunday 02:00``: a rule, not a date (the file stays the same every year)."""
    return (
        f"{MONTHS[rule.month - 1]} {WEEKS[rule.week]} {WEEKDAYS[rule.weekday - 1]} "
        f"{rule.hour:02d}:{rule.minute:02d}"
    )


class Plugin(Base):
    """SmartNode SN41xx/SN43xx FXS gateways."""

    def variables(self, ctx: RenderContext, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Ports, servers and the clock of the startup configuration."""
        models = self.manifest.models
        model = models.get(str(ctx.device.get("model") or ""))
        tz = timezone_info(raw["timezone"]) if raw.get("timezone") else None
        dst = None
        if tz is not None and tz.dst_start and tz.dst_end:
            dst = (
                f"{format_offset(tz.dst_save_minutes)} from {dst_point(tz.dst_start)} "
                f"until {dst_point(tz.dst_end)}"
            )
        return {
            # a port's values stay on their own CLI lines (ports may be different tenants')
            "XX_ports": [
                one_line(port, drop='"')
                for port in line_slots(raw, slot_count(models, model, "lines"))
            ],
            "XX_offset": format_offset(tz.utcoffset_minutes if tz else 0),
            "XX_dst": dst,
            "XX_transport": pick(TRANSPORT, raw.get("sip_transport"), "udp"),
            "XX_dtmf": pick(DTMF, raw.get("sip_dtmf_mode"), "rtp"),
            "XX_syslog_level": pick(SYSLOG, raw.get("syslog_level"), "warning"),
            "XX_server_url": server_url(raw),
        }
