"""Helpers shared by vendor plugins: value maps, lines, function keys, locale, phonebook.

Most vendor logic is a table lookup; these helpers keep each plugin's ``plugin.py`` to the
tables and the few lines that are really vendor-specific.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

__all__ = [
    "LANGUAGES",
    "funckeys",
    "language",
    "line_value",
    "numbered",
    "one_line",
    "phonebook_url",
    "pick",
    "server_url",
    "sip_lines",
]

#: locale → (language name in English, ISO 639-1, ISO 3166 country)
LANGUAGES: Mapping[str, tuple[str, str, str]] = {
    "de_DE": ("German", "de", "DE"),
    "en_US": ("English", "en", "US"),
    "en_GB": ("English", "en", "GB"),
    "es_ES": ("Spanish", "es", "ES"),
    "fr_FR": ("French", "fr", "FR"),
    "fr_CA": ("French", "fr", "CA"),
    "it_IT": ("Italian", "it", "IT"),
    "nl_NL": ("Dutch", "nl", "NL"),
    "pt_BR": ("Portuguese", "pt", "BR"),
    "pt_PT": ("Portuguese", "pt", "PT"),
    "pl_PL": ("Polish", "pl", "PL"),
    "ru_RU": ("Russian", "ru", "RU"),
    "sv_SE": ("Swedish", "sv", "SE"),
    "tr_TR": ("Turkish", "tr", "TR"),
}

DTMF_KEYS = ("RTP-in-band", "RTP-out-of-band", "SIP-INFO")
TRANSPORT_KEYS = ("udp", "tcp", "tls")


def pick(mapping: Mapping[str, Any], value: str | None, default: Any = None) -> Any:
    """``mapping[value]`` or ``default`` (value maps for dtmf, transport, syslog level…)."""
    if value is None:
        return default
    return mapping.get(value, default)


def language(raw: Mapping[str, Any], default: str = "en_US") -> tuple[str, str, str]:
    """(English name, language code, country) for the raw config's locale."""
    return LANGUAGES.get(raw.get("locale") or default, LANGUAGES[default])


def numbered(items: Mapping[str, Any] | None) -> list[tuple[int, dict[str, Any]]]:
    """Items of a numeric-keyed dict (sip_lines, funckeys) as sorted (int, dict) pairs."""
    out = []
    for key, value in (items or {}).items():
        if isinstance(value, Mapping) and str(key).isdigit():
            out.append((int(key), dict(value)))
    return sorted(out, key=lambda kv: kv[0])


def line_value(raw: Mapping[str, Any], line: Mapping[str, Any], key: str) -> Any:
    """A per-line value falling back to the global ``sip_<key>``."""
    value = line.get(key)
    return raw.get(f"sip_{key}") if value is None else value


def sip_lines(raw: Mapping[str, Any], count: int | None = None) -> list[dict[str, Any]]:
    """Lines with every server key resolved (line value, else global), numbered from 1.

    With ``count``, lines beyond the model's capacity are dropped (phones refuse them).
    """
    out = []
    for number, line in numbered(raw.get("sip_lines")):
        if count is not None and number > count:
            continue
        resolved = dict(line)
        resolved["number_index"] = number
        for key in (
            "proxy_ip",
            "proxy_port",
            "backup_proxy_ip",
            "backup_proxy_port",
            "registrar_ip",
            "registrar_port",
            "backup_registrar_ip",
            "backup_registrar_port",
            "outbound_proxy_ip",
            "outbound_proxy_port",
            "dtmf_mode",
            "srtp_mode",
        ):
            resolved[key] = line_value(raw, line, key)
        resolved.setdefault("auth_username", line.get("username"))
        resolved["voicemail"] = line.get("voicemail") or raw.get("exten_voicemail")
        out.append(resolved)
    return out


def funckeys(raw: Mapping[str, Any]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Function keys in key order, with pickup prefix resolved for BLF."""
    for number, key in numbered(raw.get("funckeys")):
        key.setdefault("line", 1)
        key.setdefault("label", "")
        if key.get("type") == "blf" and raw.get("exten_pickup_call"):
            key["pickup"] = f"{raw['exten_pickup_call']}{key.get('value', '')}"
        yield number, key


def one_line(item: Mapping[str, Any], drop: str = "") -> dict[str, Any]:
    """A copy whose strings hold no control character (nor any of ``drop``): a value can then
    never start another line or field of a line-oriented file (a gateway's port is one line,
    and ports may belong to different tenants)."""
    out = dict(item)
    for key, value in item.items():
        if isinstance(value, str):
            out[key] = "".join(c for c in value if c >= " " and c != "\x7f" and c not in drop)
    return out


def server_url(raw: Mapping[str, Any]) -> str:
    """Where the phone fetches further files: http_base_url, else http://ip:http_port."""
    url = raw.get("http_base_url")
    if url:
        return str(url).rstrip("/")
    return f"http://{raw.get('ip', '')}:{raw.get('http_port', 80)}"


def phonebook_url(raw: Mapping[str, Any], vendor: str) -> str | None:
    """The Wazo directory lookup URL for a vendor, when the phonebook keys are set."""
    host = raw.get("X_xivo_phonebook_ip")
    if not host:
        return None
    scheme = raw.get("X_xivo_phonebook_scheme") or "http"
    port = raw.get("X_xivo_phonebook_port") or (443 if scheme == "https" else 9498)
    url = f"{scheme}://{host}:{port}/0.1/directories/input/default/{vendor}"
    user = raw.get("X_xivo_user_uuid")
    return f"{url}?xivo_user_uuid={user}" if user else url
