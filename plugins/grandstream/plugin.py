"""Grandstream: ``gs_provision`` XML of P-values; the per-account P numbers live here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provisor.plugins.base import Plugin as Base
from provisor.plugins.contract import RenderContext
from provisor.plugins.helpers import funckeys, pick, server_url, sip_lines
from provisor.plugins.tz import posix_tz, timezone_info

# P-values of accounts 1-3: active, name, server, outbound, user, auth, password, display,
# voicemail, transport, DTMF in-audio / RFC2833 / SIP INFO.
ACCOUNT_P = {
    1: ("271", "270", "47", "48", "35", "36", "34", "3", "33", "130", "850", "851", "852"),
    2: ("401", "417", "402", "403", "404", "405", "406", "407", "426", "448", "2350", "2351", "2352"),
    3: ("501", "517", "502", "503", "504", "505", "506", "507", "526", "548", "2450", "2451", "2452"),
}
FIELDS = ("active", "name", "server", "outbound", "user", "auth", "password", "display",
          "voicemail", "transport", "dtmf_audio", "dtmf_rfc2833", "dtmf_info")
TRANSPORT = {"udp": 0, "tcp": 1, "tls": 2}
LANGUAGE = {"fr_FR": "fr", "fr_CA": "fr", "de_DE": "de", "es_ES": "es", "it_IT": "it",
            "nl_NL": "nl", "pt_BR": "pt", "pt_PT": "pt", "ru_RU": "ru", "pl_PL": "pl"}
MPK_MODE = {"speeddial": 0, "blf": 1, "park": 9}


class Plugin(Base):
    """Grandstream phones and ATAs."""

    def normalise_info(self, info: dict[str, str]) -> dict[str, str]:
        """Upper-case models."""
        if "model" in info:
            info["model"] = info["model"].upper()
        return info

    def variables(self, ctx: RenderContext, raw: Mapping[str, Any]) -> dict[str, Any]:
        """The P-value list of the device file."""
        model = self.manifest.models.get(str(ctx.device.get("model") or ""))
        limit = min(model.lines if model else 3, 3)
        dtmf = raw.get("sip_dtmf_mode")
        transport = pick(TRANSPORT, raw.get("sip_transport"), 0)
        p: list[tuple[str, Any]] = []
        for line in sip_lines(raw, limit):
            numbers = dict(zip(FIELDS, ACCOUNT_P[line["number_index"]], strict=True))
            server = line.get("registrar_ip") or line.get("proxy_ip") or ""
            port = line.get("registrar_port") or line.get("proxy_port")
            mode = line.get("dtmf_mode") or dtmf
            p += [
                (numbers["active"], 1),
                (numbers["name"], line.get("display_name") or line.get("number") or ""),
                (numbers["server"], f"{server}:{port}" if port and server else server),
                (numbers["outbound"], line.get("outbound_proxy_ip") or ""),
                (numbers["user"], line.get("username") or ""),
                (numbers["auth"], line.get("auth_username") or ""),
                (numbers["password"], line.get("password") or ""),
                (numbers["display"], line.get("display_name") or ""),
                (numbers["voicemail"], line.get("voicemail") or ""),
                (numbers["transport"], transport),
                (numbers["dtmf_audio"], "Yes" if mode == "RTP-in-band" else "No"),
                (numbers["dtmf_rfc2833"], "Yes" if mode in (None, "RTP-out-of-band") else "No"),
                (numbers["dtmf_info"], "Yes" if mode == "SIP-INFO" else "No"),
            ]
        if raw.get("admin_password"):
            p.append(("2", raw["admin_password"]))
        if raw.get("user_password"):
            p.append(("196", raw["user_password"]))
        if raw.get("ntp_enabled") and raw.get("ntp_ip"):
            p.append(("30", raw["ntp_ip"]))
        if raw.get("timezone"):
            p += [("64", "customize"), ("246", posix_tz(timezone_info(raw["timezone"])))]
        if raw.get("dns_enabled") and raw.get("dns_ip"):
            p.append(("92", raw["dns_ip"]))
        if raw.get("vlan_enabled"):
            p += [("51", raw.get("vlan_id", 0)), ("87", raw.get("vlan_priority") or 0)]
        p += [("1362", LANGUAGE.get(raw.get("locale") or "", "en"))]
        url = server_url(raw)
        p += [("212", 2), ("237", url.split("://", 1)[-1]), ("192", url.split("://", 1)[-1] + "/firmware")]
        # Multi-purpose keys 1-7 (mode P323+i; account, label, value P301+3i..P303+3i).
        # Later keys use model-specific numbers and are not written (docs/plugins.md).
        for index, (_, key) in enumerate(funckeys(raw)):
            if index >= 7:
                break
            p += [
                (str(323 + index), MPK_MODE.get(key["type"], 0)),
                (str(301 + 3 * index), (key.get("line") or 1) - 1),
                (str(302 + 3 * index), key.get("label") or ""),
                (str(303 + 3 * index), key.get("value", "")),
            ]
        return {"XX_pvalues": p, "XX_mac_hex": str(ctx.device.get("mac") or "").replace(":", "")}
