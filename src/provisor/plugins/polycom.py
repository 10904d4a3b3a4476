"""UC Software values shared by the Poly plugins (VVX on UC 5/6; Trio, Edge E and CCX on UC 7/8
and PolyOS): one ``<polycomConfig>`` schema, so one set of value maps and one variable builder.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provisor.plugins.contract import Manifest, RenderContext
from provisor.plugins.helpers import funckeys, language, phonebook_url, pick, server_url
from provisor.plugins.slots import line_slots, slot_count
from provisor.plugins.tz import DstRule, timezone_info

__all__ = ["LANG", "SYSLOG", "TRANSPORT", "dst_rule", "ucs_variables"]

TRANSPORT = {"udp": "UDPOnly", "tcp": "TCPOnly", "tls": "TLS"}
SYSLOG = {"critical": 5, "error": 4, "warning": 3, "info": 2, "debug": 0}
LANG = {
    "de_DE": "German_Germany",
    "en_US": "English_United_States",
    "en_GB": "English_United_Kingdom",
    "es_ES": "Spanish_Spain",
    "fr_FR": "French_France",
    "fr_CA": "French_Canada",
    "it_IT": "Italian_Italy",
    "nl_NL": "Dutch_Netherlands",
    "pt_BR": "Portuguese_Brazil",
    "pl_PL": "Polish_Poland",
    "ru_RU": "Russian_Russia",
    "sv_SE": "Swedish_Sweden",
}


def dst_rule(rule: DstRule) -> dict[str, Any]:
    """A DST change as UC Software wants it: dayOfWeek 1 = Sunday … 7 = Saturday, and
    ``lastInMonth`` for a week-5 rule."""
    return {
        "month": rule.month,
        "date": rule.day if rule.week != 5 else 1,
        "dow": rule.weekday % 7 + 1,
        "last": 1 if rule.week == 5 else 0,
        "week_date": (rule.week - 1) * 7 + 1 if rule.week != 5 else 1,
        "time": rule.hour,
    }


def ucs_variables(manifest: Manifest, ctx: RenderContext, raw: Mapping[str, Any]) -> dict[str, Any]:
    """The XX_ variables of a UC Software per-phone file: every registration and attendant
    (BLF / speed-dial) slot of the model, value maps, time zone, URLs."""
    models = manifest.models
    model = models.get(str(ctx.device.get("model") or ""))
    tz = timezone_info(raw["timezone"]) if raw.get("timezone") else None
    # Every attendant slot of the model, BLF and speed-dial keys first, then blanks.
    count = slot_count(models, model, "function_keys")
    keys = [key for _, key in funckeys(raw) if key["type"] in ("blf", "speeddial")]
    attendants: list[dict[str, Any] | None] = [*keys[:count]]
    attendants += [None] * (count - len(attendants))
    return {
        "XX_lines": line_slots(raw, slot_count(models, model, "lines")),
        "XX_transport": pick(TRANSPORT, raw.get("sip_transport"), "UDPOnly"),
        "XX_syslog_level": pick(SYSLOG, raw.get("syslog_level"), 3),
        "XX_lang": LANG.get(raw.get("locale") or "en_US", "English_United_States"),
        "XX_language": language(raw)[0],
        "XX_tz": tz,
        "XX_dst_start": dst_rule(tz.dst_start) if tz and tz.dst_start else None,
        "XX_dst_stop": dst_rule(tz.dst_end) if tz and tz.dst_end else None,
        "XX_attendants": attendants,
        "XX_server_url": server_url(raw),
        "XX_phonebook_url": phonebook_url(raw, "polycom"),
    }
