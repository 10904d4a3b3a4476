"""Every account and key slot of a model, used or not, so a device file describes the whole state.

Phones keep every parameter a file does not mention: a file that writes only the configured
lines leaves a removed line (or a previous user's line, after a reset to autoprov) registered
on the phone. Plugins therefore walk every slot the model has and write either the configured
values or the vendor's way of clearing the slot; these helpers give them that list.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provisor.plugins.contract import ModelInfo
from provisor.plugins.helpers import funckeys, sip_lines

__all__ = ["BLANK_LINE", "key_slots", "line_slots", "slot_count"]

#: The values of an unused line slot: empty strings, so a template writes them as cleared.
BLANK_LINE: Mapping[str, Any] = {
    "username": "",
    "auth_username": "",
    "password": "",
    "display_name": "",
    "number": "",
    "proxy_ip": "",
    "proxy_port": None,
    "registrar_ip": "",
    "registrar_port": None,
    "backup_proxy_ip": "",
    "backup_proxy_port": None,
    "backup_registrar_ip": "",
    "backup_registrar_port": None,
    "outbound_proxy_ip": "",
    "outbound_proxy_port": None,
    "dtmf_mode": None,
    "srtp_mode": None,
    "voicemail": "",
}


def slot_count(
    models: Mapping[str, ModelInfo], model: ModelInfo | None, field: str, *, cap: int | None = None
) -> int:
    """How many slots of ``field`` to write: the model's, else the most any listed model has.

    An unknown model gets the plugin's largest count, so nothing a bigger model may hold is
    left behind; ``cap`` bounds it where the file format itself has fewer slots.
    """
    if model is not None:
        count = int(getattr(model, field, 0) or model.extra.get(field, 0) or 0)
    else:
        count = max(
            (int(getattr(m, field, 0) or m.extra.get(field, 0) or 0) for m in models.values()),
            default=0,
        )
    return min(count, cap) if cap is not None else count


def line_slots(raw: Mapping[str, Any], count: int) -> list[dict[str, Any]]:
    """Lines 1..count: each configured line resolved (``XX_used`` true) or a blank one.

    The list is at least as long as the highest configured line within ``count``.
    """
    used = {line["number_index"]: line for line in sip_lines(raw, count)}
    out = []
    for n in range(1, count + 1):
        line = used.get(n)
        if line is None:
            line = dict(BLANK_LINE)
            line["number_index"] = n
            line["XX_used"] = False
        else:
            line["XX_used"] = True
        out.append(line)
    return out


def key_slots(raw: Mapping[str, Any], count: int) -> list[tuple[int, dict[str, Any] | None]]:
    """Function keys 1..count as (number, key or None for an unused slot)."""
    keys = dict(funckeys(raw))
    return [(n, keys.get(n)) for n in range(1, count + 1)]
