"""Htek: ``<hl_provision>`` XML of P-values (Grandstream's numbering for accounts).

Function keys are not written: their P-value numbering was not verified (docs/plugins.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provisor.plugins.base import Plugin as Base
from provisor.plugins.contract import RenderContext
from provisor.plugins.helpers import phonebook_url, pick, server_url, sip_lines
from provisor.plugins.pvalues import account_pvalues
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


class Plugin(Base):
    """Htek phones."""

    def variables(self, ctx: RenderContext, raw: Mapping[str, Any]) -> dict[str, Any]:
        """XX_ variables."""
        model = self.manifest.models.get(str(ctx.device.get("model") or ""))
        transport = pick(TRANSPORT, raw.get("sip_transport"), 0)
        accounts: list[tuple[str, Any]] = []
        for line in sip_lines(raw, min(model.lines if model else 3, 3)):
            accounts += account_pvalues(line, transport, raw.get("sip_dtmf_mode"))
        tz = timezone_info(raw["timezone"]) if raw.get("timezone") else None
        return {
            "XX_accounts": accounts,
            "XX_lang": LANGUAGE.get(raw.get("locale") or "", 0),
            "XX_tz": posix_tz(tz) if tz else None,
            "XX_server_url": server_url(raw),
            "XX_phonebook_url": phonebook_url(raw, "htek"),
        }
