"""The raw_config schema (wazo-provd §3.3) with pydantic v2, and the host defaults.

A config's own fragment is checked on write (types and ranges of the keys present); the
effective, inherited config is checked before rendering (cross-key rules too). Messages give the
dotted path of each problem and never echo a secret.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import available_timezones

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from provisor.errors import InvalidInput

__all__ = ["apply_defaults", "validate_raw_config"]

Port = Annotated[int, Field(ge=1, le=65535)]
_HOST = re.compile(r"^[A-Za-z0-9.\-:\[\]]{1,253}\Z")
_NUMERIC = re.compile(r"^[0-9]{1,6}\Z")
_SECRET_WORDS = ("password", "key", "secret")
# Line and record separators: a value holding one could add a key or a line to the
# line-oriented files of most vendors (Yealink `key = value`, Panasonic `KEY="value"`, Patton
# CLI), or a field to another port's row in a gateway shared by tenants.
_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")


def _host(value: str | None) -> str | None:
    if value is None:
        return None
    if not _HOST.match(value):
        raise ValueError("must be an IP address or a host name")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class SipLine(_Strict):
    """One SIP line."""

    model_config = ConfigDict(extra="allow", strict=True)

    proxy_ip: str | None = None
    proxy_port: Port | None = None
    backup_proxy_ip: str | None = None
    backup_proxy_port: Port | None = None
    registrar_ip: str | None = None
    registrar_port: Port | None = None
    backup_registrar_ip: str | None = None
    backup_registrar_port: Port | None = None
    outbound_proxy_ip: str | None = None
    outbound_proxy_port: Port | None = None
    username: str | None = None
    auth_username: str | None = None
    password: str | None = None
    display_name: str | None = None
    number: str | None = None
    dtmf_mode: Literal["RTP-in-band", "RTP-out-of-band", "SIP-INFO"] | None = None
    srtp_mode: Literal["disabled", "preferred", "required"] | None = None
    voicemail: str | None = None

    _hosts = field_validator(
        "proxy_ip",
        "backup_proxy_ip",
        "registrar_ip",
        "backup_registrar_ip",
        "outbound_proxy_ip",
    )(_host)


class CallManager(_Strict):
    """One SCCP call manager."""

    ip: str
    port: Port | None = None


class FuncKey(_Strict):
    """One function key."""

    model_config = ConfigDict(extra="allow", strict=True)

    type: Literal["speeddial", "blf", "park"]
    value: str | None = None
    label: str | None = None
    line: int | None = None


class RawConfig(_Strict):
    """The standard raw_config keys; other keys must start with ``X_``."""

    model_config = ConfigDict(extra="allow", strict=True)

    http_base_url: str | None = None
    ip: str | None = None
    http_port: Port | None = None
    tftp_port: Annotated[int, Field(ge=0, le=65535)] | None = None
    dns_enabled: bool | None = None
    dns_ip: str | None = None
    ntp_enabled: bool | None = None
    ntp_ip: str | None = None
    syslog_enabled: bool | None = None
    syslog_ip: str | None = None
    syslog_port: Port | None = None
    syslog_level: Literal["critical", "error", "warning", "info", "debug"] | None = None
    vlan_enabled: bool | None = None
    vlan_id: Annotated[int, Field(ge=0, le=4094)] | None = None
    vlan_priority: Annotated[int, Field(ge=0, le=7)] | None = None
    vlan_pc_port_id: Annotated[int, Field(ge=0, le=4094)] | None = None
    admin_username: str | None = None
    admin_password: str | None = None
    user_username: str | None = None
    user_password: str | None = None
    timezone: str | None = None
    locale: str | None = None
    protocol: Literal["SIP", "SCCP"] | None = None
    sip_proxy_ip: str | None = None
    sip_proxy_port: Port | None = None
    sip_backup_proxy_ip: str | None = None
    sip_backup_proxy_port: Port | None = None
    sip_registrar_ip: str | None = None
    sip_registrar_port: Port | None = None
    sip_backup_registrar_ip: str | None = None
    sip_backup_registrar_port: Port | None = None
    sip_outbound_proxy_ip: str | None = None
    sip_outbound_proxy_port: Port | None = None
    sip_dtmf_mode: Literal["RTP-in-band", "RTP-out-of-band", "SIP-INFO"] | None = None
    sip_srtp_mode: Literal["disabled", "preferred", "required"] | None = None
    sip_transport: Literal["udp", "tcp", "tls"] | None = None
    sip_servers_root_and_intermediate_certificates: str | None = None
    sip_local_root_and_intermediate_certificates: str | None = None
    sip_local_certificate: str | None = None
    sip_local_key: str | None = None
    sip_subscribe_mwi: bool | None = None
    sip_lines: dict[str, SipLine] | None = None
    sccp_call_managers: dict[str, CallManager] | None = None
    funckeys: dict[str, FuncKey] | None = None
    exten_dnd: str | None = None
    exten_fwd_unconditional: str | None = None
    exten_fwd_no_answer: str | None = None
    exten_fwd_busy: str | None = None
    exten_fwd_disable_all: str | None = None
    exten_park: str | None = None
    exten_pickup_group: str | None = None
    exten_pickup_call: str | None = None
    exten_voicemail: str | None = None
    config_version: int | None = None

    _hosts = field_validator(
        "ip",
        "dns_ip",
        "ntp_ip",
        "syslog_ip",
        "sip_proxy_ip",
        "sip_backup_proxy_ip",
        "sip_registrar_ip",
        "sip_backup_registrar_ip",
        "sip_outbound_proxy_ip",
    )(_host)

    @field_validator("http_base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError("must be an http(s) URL")
        return value

    @field_validator("locale")
    @classmethod
    def _locale(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[a-z]{2}_[A-Z]{2}", value):
            raise ValueError("must look like fr_FR")
        return value

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        if value is not None and value not in _zones():
            raise ValueError("unknown time zone")
        return value

    @field_validator("sip_lines", "sccp_call_managers", "funckeys")
    @classmethod
    def _numeric_keys(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        for key in value or {}:
            if not _NUMERIC.match(key):
                raise ValueError(f"key {key!r} must be a number")
        return value


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _loc(loc: tuple[Any, ...]) -> str:
    return ".".join(["raw_config", *(str(p) for p in loc)])


def _message(err: Mapping[str, Any]) -> str:
    path = _loc(tuple(err["loc"]))
    msg = str(err["msg"])
    if any(w in path.lower() for w in _SECRET_WORDS):
        return f"{path}: {msg}"
    return f"{path}: {msg}"


def _control_characters(raw: Mapping[str, Any]) -> list[str]:
    """Paths of standard values holding a control character (``X_`` keys are plugins' own)."""
    found: list[str] = []

    def walk(value: object, path: tuple[Any, ...]) -> None:
        if isinstance(value, str):
            if _CONTROL.search(value):
                found.append(f"{_loc(path)}: control characters (line breaks, tabs…) not allowed")
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(v, (*path, k))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, (*path, i))

    for key, value in raw.items():
        if isinstance(key, str) and not key.startswith("X"):
            walk(value, (key,))
    return found


def validate_raw_config(raw: object, *, complete: bool) -> dict[str, Any]:
    """Check a raw config; InvalidInput lists every problem with its dotted path."""
    if not isinstance(raw, dict):
        raise InvalidInput("raw_config: must be a JSON object")
    problems: list[str] = []
    for key in raw:
        if not isinstance(key, str):
            continue
        if key.startswith("XX_"):
            problems.append(f"raw_config.{key}: XX_ keys are reserved for plugins")
        elif key not in RawConfig.model_fields and not key.startswith("X_"):
            problems.append(f"raw_config.{key}: unknown key (custom keys must start with X_)")
    if not complete:
        problems.extend(_control_characters(raw))
    try:
        RawConfig.model_validate(raw)
    except ValidationError as exc:
        problems.extend(
            _message(e)
            for e in exc.errors(include_input=False, include_url=False)
            if not (len(e["loc"]) == 1 and str(e["loc"][0]).startswith("X"))
        )
    if complete:
        for flag, needed in (
            ("dns_enabled", "dns_ip"),
            ("ntp_enabled", "ntp_ip"),
            ("syslog_enabled", "syslog_ip"),
            ("vlan_enabled", "vlan_id"),
        ):
            if raw.get(flag) and raw.get(needed) is None:
                problems.append(f"raw_config.{needed}: required when {flag} is true")
        if not raw.get("http_base_url") and not (raw.get("ip") and raw.get("http_port")):
            problems.append("raw_config.http_base_url: required (or ip and http_port)")
        lines = raw.get("sip_lines") or {}
        if isinstance(lines, dict):
            for n, line in lines.items():
                if (
                    isinstance(line, dict)
                    and line.get("username") is None
                    and raw.get("protocol", "SIP") == "SIP"
                ):
                    problems.append(f"raw_config.sip_lines.{n}.username: required")
        for n, key in (
            (raw.get("funckeys") or {}).items() if isinstance(raw.get("funckeys"), dict) else []
        ):
            if (
                isinstance(key, dict)
                and key.get("type") in ("speeddial", "blf")
                and not key.get("value")
            ):
                problems.append(f"raw_config.funckeys.{n}.value: required for {key['type']}")
    if problems:
        raise InvalidInput("; ".join(problems))
    return dict(raw)


def apply_defaults(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The host defaults applied before rendering (a new dict)."""
    out = dict(raw)
    out.setdefault("syslog_port", 514)
    out.setdefault("syslog_level", "warning")
    out.setdefault("sip_srtp_mode", "disabled")
    out.setdefault("sip_transport", "udp")
    if out.get("sip_registrar_ip") is None and out.get("sip_proxy_ip") is not None:
        out["sip_registrar_ip"] = out["sip_proxy_ip"]
    for key in ("sip_lines", "sccp_call_managers", "funckeys"):
        if out.get(key) is None:
            out[key] = {}
    lines = {}
    for n, line in out["sip_lines"].items():
        line = dict(line)
        if line.get("proxy_ip") is None and out.get("sip_proxy_ip") is not None:
            line["proxy_ip"] = out["sip_proxy_ip"]
        if line.get("registrar_ip") is None and line.get("proxy_ip") is not None:
            line["registrar_ip"] = line["proxy_ip"]
        if line.get("auth_username") is None and line.get("username") is not None:
            line["auth_username"] = line["username"]
        lines[n] = line
    out["sip_lines"] = lines
    return out
