"""Cisco enterprise SIP phones: ``SEP<MAC>.cnf.xml``, the full configuration CUCM would send.

The file is complete (``<fullConfig>true</fullConfig>``): the phone builds its whole state from
it, so a line or key the file does not list is blank on the phone; every setting that has a
value elsewhere (NTP, log server, directory, time zone, locale) is written explicitly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provisor.plugins.base import Plugin as Base
from provisor.plugins.contract import NONE, PROBABLE, ModelInfo, RenderContext
from provisor.plugins.helpers import funckeys, language, phonebook_url, pick, server_url
from provisor.plugins.slots import line_slots, slot_count
from provisor.plugins.tz import TzInfo, timezone_info

# values of <dtmfOutofBand>: SIP INFO is not offered by this firmware, RFC 2833 stands in
DTMF = {"RTP-in-band": "none", "RTP-out-of-band": "avt", "SIP-INFO": "avt"}
# <transportLayerProtocol>: 1 TCP, 2 UDP, 3 TLS (4 "TCP preferred" is not used)
TRANSPORT = {"udp": 2, "tcp": 1, "tls": 3}
# locale → (<userLocale><name>, <networkLocale>)
LOCALES = {
    "en_US": ("English_United_States", "United_States"),
    "en_GB": ("English_United_Kingdom", "United_Kingdom"),
    "fr_FR": ("French_France", "France"),
    "fr_CA": ("French_France", "Canada"),
    "de_DE": ("German_Germany", "Germany"),
    "es_ES": ("Spanish_Spain", "Spain"),
    "it_IT": ("Italian_Italy", "Italy"),
    "nl_NL": ("Dutch_Netherlands", "Netherlands"),
    "pt_BR": ("Portuguese_Brazil", "Brazil"),
    "pt_PT": ("Portuguese_Portugal", "Portugal"),
}
# IANA zone → the firmware's (Windows-style) zone name; other zones go by their offsets
ZONES = {
    "Europe/London": "GMT Standard/Daylight Time",
    "Europe/Dublin": "GMT Standard/Daylight Time",
    "Europe/Lisbon": "GMT Standard/Daylight Time",
    "Europe/Paris": "Romance Standard/Daylight Time",
    "Europe/Brussels": "Romance Standard/Daylight Time",
    "Europe/Madrid": "Romance Standard/Daylight Time",
    "Europe/Berlin": "W. Europe Standard/Daylight Time",
    "Europe/Amsterdam": "W. Europe Standard/Daylight Time",
    "Europe/Rome": "W. Europe Standard/Daylight Time",
    "Europe/Zurich": "W. Europe Standard/Daylight Time",
    "Europe/Prague": "Central Europe Standard/Daylight Time",
    "Europe/Warsaw": "Central European Standard/Daylight Time",
    "Europe/Athens": "GTB Standard/Daylight Time",
    "Europe/Bucharest": "E. Europe Standard/Daylight Time",
    "Europe/Helsinki": "FLE Standard/Daylight Time",
    "America/New_York": "Eastern Standard/Daylight Time",
    "America/Montreal": "Eastern Standard/Daylight Time",
    "America/Toronto": "Eastern Standard/Daylight Time",
    "America/Chicago": "Central Standard/Daylight Time",
    "America/Denver": "Mountain Standard/Daylight Time",
    "America/Phoenix": "US Mountain Standard Time",
    "America/Los_Angeles": "Pacific Standard/Daylight Time",
    "America/Regina": "Canada Central Standard Time",
    "America/Halifax": "Atlantic Standard/Daylight Time",
    "Asia/Tokyo": "Tokyo Standard Time",
    "Asia/Shanghai": "China Standard Time",
    "Asia/Kolkata": "India Standard Time",
    "Australia/Sydney": "AUS Eastern Standard/Daylight Time",
    "Pacific/Honolulu": "Hawaiian Standard Time",
}
# by (standard offset in minutes, observes DST): for zones not listed above
BY_OFFSET = {
    (0, False): "Greenwich Standard Time",
    (0, True): "GMT Standard/Daylight Time",
    (60, False): "W. Central Africa Standard Time",
    (60, True): "W. Europe Standard/Daylight Time",
    (120, False): "South Africa Standard Time",
    (120, True): "E. Europe Standard/Daylight Time",
    (180, False): "Arab Standard Time",
    (240, False): "Arabian Standard Time",
    (-300, True): "Eastern Standard/Daylight Time",
    (-300, False): "SA Pacific Standard Time",
    (-360, True): "Central Standard/Daylight Time",
    (-360, False): "Canada Central Standard Time",
    (-420, True): "Mountain Standard/Daylight Time",
    (-420, False): "US Mountain Standard Time",
    (-480, True): "Pacific Standard/Daylight Time",
    (-240, True): "Atlantic Standard/Daylight Time",
    (-240, False): "SA Western Standard Time",
}
DEFAULT_ZONE = "Greenwich Standard Time"


def zone_name(tz: TzInfo | None) -> str:
    """The firmware's zone name: by IANA name, else by offset and DST, else Greenwich."""
    if tz is None:
        return DEFAULT_ZONE
    return ZONES.get(tz.name) or BY_OFFSET.get((tz.utcoffset_minutes, tz.has_dst), DEFAULT_ZONE)


def buttons(
    raw: Mapping[str, Any], models: Mapping[str, ModelInfo], model: ModelInfo | None
) -> list[dict[str, Any]]:
    """The used buttons in order: line N on button N, function key K on button K when no line
    holds it (keys past the phone's own buttons land on its key expansion modules)."""
    lines = {ln["number_index"]: ln for ln in line_slots(raw, slot_count(models, model, "lines"))}
    own = slot_count(models, model, "function_keys")
    modules = slot_count(models, model, "expansion_modules")
    per_module = slot_count(models, model, "expansion_keys")
    out: list[dict[str, Any]] = []
    for n, line in lines.items():
        if line["XX_used"]:
            out.append({"button": n, "line": line})
    taken = {b["button"] for b in out}
    for n, key in funckeys(raw):
        if n in taken or n > own + modules * per_module:
            continue
        value = str(key.get("value", ""))
        out.append({"button": n, "key": {"label": key.get("label") or value, "value": value}})
    return sorted(out, key=lambda b: int(b["button"]))


class Plugin(Base):
    """Cisco 78xx/88xx/79xx, enterprise SIP firmware."""

    def score(self, info: Mapping[str, str]) -> int:
        """A Cisco device known only by its MAC asked for ``SEP<MAC>.cnf.xml`` (a SPA found by
        its own OUI scores higher in its plugin); another family's model is not ours."""
        base = super().score(info)
        if base == NONE:
            return base
        if not info.get("model"):
            return PROBABLE + 10 if info.get("mac") else base
        return base if info["model"] in self.manifest.models else NONE

    def variables(self, ctx: RenderContext, raw: Mapping[str, Any]) -> dict[str, Any]:
        """The cnf.xml values: buttons, servers, locale, zone, directory."""
        models = self.manifest.models
        model = models.get(str(ctx.device.get("model") or ""))
        tz = timezone_info(raw["timezone"]) if raw.get("timezone") else None
        user_locale, network_locale = LOCALES.get(raw.get("locale") or "en_US", LOCALES["en_US"])
        return {
            "XX_buttons": buttons(raw, models, model),
            "XX_dtmf": pick(DTMF, raw.get("sip_dtmf_mode"), "avt"),
            "XX_transport": pick(TRANSPORT, raw.get("sip_transport"), 2),
            "XX_zone": zone_name(tz),
            "XX_user_locale": user_locale,
            "XX_network_locale": network_locale,
            "XX_lang_code": raw.get("locale") if raw.get("locale") in LOCALES else "en_US",
            "XX_lang": language(raw)[1],
            "XX_server_url": server_url(raw),
            "XX_phonebook_url": phonebook_url(raw, "cisco") or "",
            "XX_load": (model.firmware_file or "") if model is not None else "",
        }
