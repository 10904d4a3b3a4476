"""Gigaset IP DECT bases: two families, two formats, chosen by model (or by the file name's
case when the model is not known yet).

* N510 IP PRO / N720 DM PRO read ``<MAC>.xml``: a ``ProviderFrame`` of ``SYMB_ITEM``s whose
  strings are quoted inside the attribute and whose numbers are hexadecimal; account 1 has no
  suffix and accounts 2… take ``_<n>`` (the account name and active flag always do).
* N670/N870/N870E IP PRO read ``<mac>.xml``: ``<provisioning><nvm>`` of ``param``s. Lines are
  handsets (``add_hs`` with the last four digits of the number as the DECT registration code);
  servers are "providers", one per distinct proxy, which the handsets' accounts point at.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from provisor.plugins.base import Plugin as Base
from provisor.plugins.contract import DeviceInfo, RenderContext
from provisor.plugins.helpers import phonebook_url, pick, server_url
from provisor.plugins.slots import line_slots, slot_count
from provisor.plugins.tz import timezone_info

DTMF = {"RTP-in-band": 1, "RTP-out-of-band": 2, "SIP-INFO": 4}
TRANSPORT = {"udp": 1, "tcp": 2, "tls": 3}
SRTP = {"disabled": 0, "preferred": 1, "required": 1}
#: N510/N720 web UI language.
LANGUAGE = {
    "en": 0x1,
    "de": 0x2,
    "es": 0x4,
    "it": 0x7,
    "fr": 0x9,
    "nl": 0xA,
    "tr": 0x10,
    "pl": 0x11,
}
#: N510/N720 time zone codes by standard UTC offset in hours.
TZ_CODE = {
    -12: 0x00, -11: 0x01, -10: 0x02, -9: 0x03, -8: 0x04, -7: 0x07, -6: 0x09, -5: 0x0D,
    -4: 0x0F, -3: 0x15, -2: 0x16, -1: 0x18, 0: 0x1A, 1: 0x1B, 2: 0x20, 3: 0x28, 4: 0x2B,
    5: 0x2E, 6: 0x33, 7: 0x37, 8: 0x3A, 9: 0x3D, 10: 0x43,
}  # fmt: skip
#: SIP provider slots of an Nx70 base.
MAX_PROVIDERS = 10
_NX70 = re.compile(r"^N\d70E? ")


class Plugin(Base):
    """Gigaset N510/N720 and Nx70 bases."""

    def normalise_info(self, info: DeviceInfo) -> DeviceInfo:
        """``N720_DM_PRO`` (DHCP vendor class) → ``N720 DM PRO``."""
        if "model" in info:
            info["model"] = info["model"].replace("_", " ")
        return info

    def variables(self, ctx: RenderContext, raw: Mapping[str, Any]) -> dict[str, Any]:
        """XX_ variables for whichever format the device reads."""
        model_name = str(ctx.device.get("model") or "")
        model = self.manifest.models.get(model_name)
        if model_name:
            nx70 = bool(_NX70.match(model_name))
        else:
            nx70 = not any(c.isupper() for c in ctx.route.path.removesuffix(".xml"))
        # Every account/handset slot of the model (of its family when the model is unknown).
        family = {n: m for n, m in self.manifest.models.items() if bool(_NX70.match(n)) == nx70}
        lines = line_slots(raw, slot_count(family, model, "lines"))
        tz = timezone_info(raw["timezone"]) if raw.get("timezone") else None
        server = server_url(raw)
        common = {
            "XX_nx70": nx70,
            "XX_lines": lines,
            "XX_server_url": server,
            "XX_phonebook_url": phonebook_url(raw, "gigaset"),
        }
        if nx70:
            return {**common, **self._nx70(raw, lines)}
        pin = str(raw.get("admin_password") or "")
        return {
            **common,
            "XX_MAC": str(ctx.device.get("mac") or ctx.route.mac or "").replace(":", "").upper(),
            "XX_dtmf": pick(DTMF, raw.get("sip_dtmf_mode"), 2),
            # No time zone configured: UTC, so a previous user's zone does not stay.
            "XX_tz_code": (
                TZ_CODE[0]
                if tz is None
                else TZ_CODE.get(tz.utcoffset_minutes // 60)
                if not tz.utcoffset_minutes % 60
                else None
            ),
            "XX_dst": 1 if tz and tz.has_dst else 0,
            "XX_lang": LANGUAGE.get(str(raw.get("locale") or "en")[:2], 0x1),
            "XX_pin": f"0x{pin[:2]},0x{pin[2:]}" if len(pin) == 4 and pin.isdigit() else None,
            "XX_data_server": urlsplit(server).netloc,
        }

    @staticmethod
    def _nx70(raw: Mapping[str, Any], lines: list[dict[str, Any]]) -> dict[str, Any]:
        providers: dict[tuple[Any, Any], dict[str, Any]] = {}
        for line in lines:
            line["XX_handset"] = f"{line['number_index']:05d}"
            if not line["XX_used"]:
                continue
            key = (line.get("proxy_ip"), line.get("proxy_port") or 5060)
            if key not in providers:
                providers[key] = {
                    "id": len(providers),
                    "proxy_ip": key[0],
                    "proxy_port": key[1],
                    "registrar_ip": line.get("registrar_ip") or key[0],
                    "registrar_port": line.get("registrar_port") or key[1],
                    "backup_ip": line.get("backup_registrar_ip") or line.get("backup_proxy_ip"),
                    "backup_port": line.get("backup_registrar_port")
                    or line.get("backup_proxy_port")
                    or 5060,
                    "outbound_ip": line.get("outbound_proxy_ip"),
                    "outbound_port": line.get("outbound_proxy_port") or 5060,
                    "dtmf": pick(DTMF, line.get("dtmf_mode"), 2),
                    "srtp": pick(SRTP, line.get("srtp_mode"), 0),
                }
            line["XX_provider"] = providers[key]["id"]
            digits = "".join(c for c in str(line.get("number") or "") if c.isdigit())
            line["XX_dect_code"] = digits[-4:].zfill(4) if digits else "0000"
        # Provider slots past the ones in use are cleared too (one per line at most).
        count = min(len(lines), MAX_PROVIDERS)
        blank = [{"id": n, "unused": True} for n in range(len(providers), count)]
        return {
            "XX_providers": [*providers.values(), *blank],
            "XX_transport": pick(TRANSPORT, raw.get("sip_transport"), 1),
            "XX_mwi": 1 if raw.get("sip_subscribe_mwi") else 0,
        }
