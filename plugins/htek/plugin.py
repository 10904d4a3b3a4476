"""Htek: ``<hl_provision>`` XML of P-values (Grandstream's numbering for accounts).

Line keys are numbered in three runs of P-values: keys 1-4 at 41200 + key (fields 100 apart),
keys 5-36 at 20200 + 5 per key and keys 37 and up at 23000 + 5 per key (fields consecutive:
type, value, label, account, extension), each with a mode at 20600 + key (none past 36). Keys
that carry a SIP line come first; every key of the model is written, so a removed function
key is cleared on the phone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provisor.plugins.base import Plugin as Base
from provisor.plugins.contract import RenderContext
from provisor.plugins.helpers import funckeys, phonebook_url, pick, server_url
from provisor.plugins.pvalues import account_pvalues, blank_account_pvalues
from provisor.plugins.slots import line_slots
from provisor.plugins.tz import posix_tz, timezone_info

TRANSPORT = {"udp": 0, "tcp": 1, "tls": 2}
LANGUAGE = {
    "fr_FR": 2,
    "fr_CA": 2,
    "de_DE": 3,
    "es_ES": 5,
    "it_IT": 4,
    "nl_NL": 9,
    "pt_BR": 6,
    "pt_PT": 6,
    "ru_RU": 8,
    "pl_PL": 10,
    "tr_TR": 11,
}


#: Line keys per model (UC902 and UC921 have none to program here).
LINE_KEYS = {"UC903": 20, "UC912": 12, "UC923": 20, "UC924": 28, "UC926": 36}
#: Line key types: none, line, speed dial, BLF, call park.
KEY_TYPE = {"line": 1, "speeddial": 2, "blf": 3, "park": 8}
_FIELDS = ("type", "value", "label", "account", "extension")


def key_count(model_name: str, known: bool) -> int:
    """The model's line keys; a model not known yet gets the most any model has (all cleared)."""
    return LINE_KEYS.get(model_name, 0) if known else max(LINE_KEYS.values())


def key_pvalues(key: int) -> tuple[dict[str, int], int | None]:
    """The P-value of each field of line key ``key`` (from 1), and of its mode."""
    if key <= 4:
        return {f: 41200 + key - 1 + 100 * i for i, f in enumerate(_FIELDS)}, 20600 + key - 1
    if key <= 36:
        base = 20200 + 5 * (key - 5)
        return {f: base + i for i, f in enumerate(_FIELDS)}, 20600 + key - 1
    base = 23000 + 5 * (key - 37)
    return {f: base + i for i, f in enumerate(_FIELDS)}, None


def line_keys(
    raw: Mapping[str, Any], lines: list[dict[str, Any]], count: int
) -> list[tuple[str, Any]]:
    """P-values of the model's ``count`` line keys: lines first, then function keys."""
    keys = dict(funckeys(raw))
    by_line = {line["number_index"]: line for line in lines}
    out: list[tuple[str, Any]] = []
    for n in range(1, count + 1):
        if n in by_line:
            line = by_line[n]
            kind, value, label, ext = (
                "line",
                "",
                line.get("number") or line.get("username") or "",
                "",
            )
        elif n in keys and keys[n].get("type") in KEY_TYPE:
            key = keys[n]
            kind, value, label = key["type"], key.get("value") or "", key.get("label") or ""
            ext = key.get("pickup") or value
        else:
            kind, value, label, ext = "", "", "", ""
        fields, mode = key_pvalues(n)
        out += [
            (str(fields["type"]), KEY_TYPE.get(kind, 0)),
            (str(fields["value"]), value),
            (str(fields["label"]), label),
            (str(fields["account"]), 255),  # 255: the phone picks the account
            (str(fields["extension"]), ext),
        ]
        if mode is not None:
            out.append((str(mode), 0))
    return out


class Plugin(Base):
    """Htek phones."""

    def variables(self, ctx: RenderContext, raw: Mapping[str, Any]) -> dict[str, Any]:
        """XX_ variables."""
        model = self.manifest.models.get(str(ctx.device.get("model") or ""))
        transport = pick(TRANSPORT, raw.get("sip_transport"), 0)
        accounts: list[tuple[str, Any]] = []
        # Accounts 1-3 (the P-value table's), an unused one inactive and empty.
        slots = line_slots(raw, min(model.lines if model else 3, 3))
        lines = [line for line in slots if line["XX_used"]]
        for line in slots:
            if line["XX_used"]:
                accounts += account_pvalues(line, transport, raw.get("sip_dtmf_mode"))
            else:
                accounts += blank_account_pvalues(line["number_index"])
        model_name = str(ctx.device.get("model") or "")
        tz = timezone_info(raw["timezone"]) if raw.get("timezone") else None
        return {
            "XX_accounts": accounts,
            "XX_keys": line_keys(raw, lines, key_count(model_name, model is not None)),
            "XX_lang": LANGUAGE.get(raw.get("locale") or "", 0),
            "XX_tz": posix_tz(tz) if tz else None,
            "XX_server_url": server_url(raw),
            "XX_phonebook_url": phonebook_url(raw, "htek"),
        }
