"""Shared by the Cisco MPP and SPA/ATA plugins: the ``<flat-profile>`` value maps.

Both families read the same XML flat profile (``<Parameter_Name_N_>value``); only file names,
models and a few parameters differ, so the maps and the time-zone rule live here once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provisor.plugins.contract import IMPROBABLE, NONE, PROBABLE, ModelInfo
from provisor.plugins.helpers import funckeys, language, phonebook_url, pick, server_url, sip_lines
from provisor.plugins.slots import line_slots, slot_count
from provisor.plugins.tz import DstRule, format_offset, timezone_info

__all__ = ["cisco_score", "cisco_variables", "dst_rule", "whole_state"]

DTMF = {"RTP-in-band": "InBand", "RTP-out-of-band": "AVT", "SIP-INFO": "INFO"}
TRANSPORT = {"udp": "UDP", "tcp": "TCP", "tls": "TLS"}
SYSLOG = {"critical": 2, "error": 3, "warning": 4, "info": 6, "debug": 7}


def dst_rule(rule: DstRule) -> str:
    """Cisco's ``month/day/weekday/h:m:s``: day -1 = last weekday, else "on or after day"."""
    day = -1 if rule.week == 5 else (rule.week - 1) * 7 + 1
    return f"{rule.month}/{day}/{rule.weekday}/{rule.hour}:{rule.minute}:0"


def cisco_variables(raw: Mapping[str, Any], lines: int | None) -> dict[str, Any]:
    """XX_ variables of a flat profile."""
    tz = timezone_info(raw["timezone"]) if raw.get("timezone") else None
    keys = []
    for number, key in funckeys(raw):
        value = key.get("value", "")
        label = key.get("label") or value
        if key["type"] == "speeddial":
            fnc = f"fnc=sd;ext={value}@$PROXY;nme={label}"
        elif key["type"] == "blf":
            fnc = f"fnc=blf+sd+cp;sub={value}@$PROXY;nme={label}"
        else:
            fnc = f"fnc=park;sub={value}@$PROXY;nme={label}"
        keys.append({"index": number, "fnc": fnc})
    return {
        "XX_lines": sip_lines(raw, lines),
        "XX_fkeys": keys,
        "XX_dtmf": pick(DTMF, raw.get("sip_dtmf_mode"), "Auto"),
        "XX_transport": pick(TRANSPORT, raw.get("sip_transport"), "UDP"),
        "XX_syslog_level": pick(SYSLOG, raw.get("syslog_level"), 4),
        "XX_tz": f"GMT{format_offset(tz.utcoffset_minutes)}" if tz else None,
        "XX_dst": (
            f"start={dst_rule(tz.dst_start)};end={dst_rule(tz.dst_end)};save={tz.dst_save_minutes // 60}"
            if tz and tz.dst_start and tz.dst_end
            else None
        ),
        "XX_lang": language(raw)[0],
        "XX_server_url": server_url(raw),
        "XX_phonebook_url": phonebook_url(raw, "cisco"),
        "XX_line_dtmf": {
            ln["number_index"]: pick(DTMF, ln.get("dtmf_mode"), "Auto")
            for ln in sip_lines(raw, lines)
        },
    }


def cisco_score(
    models: Mapping[str, Any], info: Mapping[str, str], base: int, ouis: tuple[str, ...] = ()
) -> int:
    """Another Cisco family's model is IMPROBABLE here, not PROBABLE; a Cisco device known only
    by a MAC of this plugin's own OUIs is this plugin's, ahead of the enterprise phones' plugin
    (which takes the other model-less Cisco devices: they asked for ``SEP<MAC>.cnf.xml``)."""
    if base == NONE:
        return base
    if not info.get("model"):
        return PROBABLE + 20 if info.get("mac", "")[:8] in ouis else base
    return base if info["model"] in models else IMPROBABLE


def whole_state(
    out: dict[str, Any],
    raw: Mapping[str, Any],
    models: Mapping[str, ModelInfo],
    model: ModelInfo | None,
) -> dict[str, Any]:
    """Every line and line-key slot of the model, the unused ones blank (cleared on the phone)."""
    lines = line_slots(raw, slot_count(models, model, "lines"))
    fnc = {key["index"]: key["fnc"] for key in out["XX_fkeys"]}
    out["XX_lines"] = lines
    out["XX_line_dtmf"] = {
        ln["number_index"]: out["XX_line_dtmf"].get(ln["number_index"], "Auto") for ln in lines
    }
    out["XX_fkeys"] = [
        {"index": n, "fnc": fnc.get(n, "")}
        for n in range(1, slot_count(models, model, "function_keys") + 1)
    ]
    return out
