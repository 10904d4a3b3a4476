"""DHCP server configuration out: send each vendor's phones to provisor.

Each plugin's manifest says how its phones are recognised by a DHCP server (its MAC prefixes
with ``ouis = true``, and/or literal prefixes of the vendor class, option 60) and which options
they need. This module writes that as client classes for ISC dhcpd (``class … { match if …;
option … }``) or Kea (``client-classes`` with ``test`` expressions and ``option-data``), built
from the advertised URL — with a tenant's provisioning key in it when asked.

The options provisor writes (a manifest's ``[dhcp] options`` table, keyed by code):

* ``66`` TFTP server name — a full URL for HTTP phones (most vendors);
* ``114`` URL (Gigaset's ``default-url``; Kea knows the code as ``v4-captive-portal``);
* ``160`` provisioning server URL (Poly UC Software checks it before 66);
* ``150`` TFTP server addresses (Cisco): the template must give IPv4 addresses, comma-separated;
* ``43`` vendor-encapsulated options: a string (sent as its bytes, Fanvil) or a table of
  sub-options ``{ "2" = "{http_url}/Aastra", "3" = false }`` encoded as code/length/value
  (Mitel/Aastra's ``Aastra6700`` space; booleans are one byte).

Codes Kea or ISC do not define (150, 160) are declared in the output (``option-def`` /
``option … code …``). Only literal prefixes are used because Kea's expressions have no regular
expressions; the values may carry the phones' own macros (``$PSN``, ``$MAC``) which the DHCP
server passes on.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from provisor.errors import InvalidInput
from provisor.plugins.base import Plugin

__all__ = ["DhcpOption", "VendorClass", "isc_config", "kea_config", "vendor_classes"]


@dataclass(frozen=True, slots=True)
class _Code:
    isc: str  # the ISC dhcpd option name
    kea: str | None  # Kea's standard name; None when Kea has no definition (declared here)
    kind: str  # "text", "ips" or "binary"
    isc_def: str | None = None  # ISC declaration when dhcpd has no definition


_CODES: Mapping[int, _Code] = {
    66: _Code("tftp-server-name", "tftp-server-name", "text"),
    114: _Code("default-url", "v4-captive-portal", "text"),
    160: _Code("provisor-provisioning-url", None, "text", "text"),
    150: _Code("provisor-tftp-servers", None, "ips", "array of ip-address"),
    43: _Code("vendor-encapsulated-options", "vendor-encapsulated-options", "binary"),
}


@dataclass(frozen=True, slots=True)
class DhcpOption:
    """One option value: text, comma-separated IPv4 addresses, or bytes (shown as hex)."""

    code: int
    value: str

    def isc_value(self) -> str:
        kind = _CODES[self.code].kind
        if kind == "text":
            return f'"{self.value}"'
        if kind == "ips":
            return ", ".join(self.value.split(","))
        return ":".join(self.value[i : i + 2] for i in range(0, len(self.value), 2))


@dataclass(frozen=True, slots=True)
class VendorClass:
    """How one plugin's phones are matched and what they are sent."""

    name: str
    ouis: tuple[str, ...]
    vendor_prefixes: tuple[str, ...]
    options: tuple[DhcpOption, ...]

    def option(self, code: int) -> str | None:
        return next((o.value for o in self.options if o.code == code), None)


def _quote(value: str) -> str:
    if any(c in value for c in '"\\\n') or not value.isprintable():
        raise InvalidInput(f"dhcp: value {value!r} cannot be quoted safely")
    return value


def _tlv(code: int, data: bytes) -> bytes:
    if not 0 < code < 255 or len(data) > 255:
        raise InvalidInput(f"dhcp: option 43 sub-option {code} is out of range or too long")
    return bytes((code, len(data))) + data


def _encapsulated(template: object, values: Mapping[str, str]) -> str:
    """Option 43 as hex: a string's bytes, or a table of sub-options as code/length/value."""
    if isinstance(template, str):
        return _quote(template.format(**values)).encode().hex()
    if not isinstance(template, Mapping):
        raise InvalidInput("dhcp: option 43 must be a string or a table of sub-options")
    out = b""
    for code, value in sorted(template.items(), key=lambda kv: int(kv[0])):
        if isinstance(value, bool):
            data = b"\x01" if value else b"\x00"
        else:
            data = _quote(str(value).format(**values)).encode()
        out += _tlv(int(code), data)
    if len(out) > 255:
        raise InvalidInput("dhcp: option 43 is longer than 255 bytes")
    return out.hex()


def _option(code: int, template: object, values: Mapping[str, str]) -> DhcpOption:
    kind = _CODES[code].kind
    if kind == "binary":
        return DhcpOption(code, _encapsulated(template, values))
    text = _quote(str(template).format(**values))
    if kind == "ips":
        try:
            addrs = [str(ipaddress.IPv4Address(a.strip())) for a in text.split(",")]
        except ValueError:
            raise InvalidInput(
                f"dhcp: option {code} needs IPv4 addresses, not {text!r} "
                "(advertise an address, not a name)"
            ) from None
        text = ",".join(addrs)
    return DhcpOption(code, text)


def vendor_classes(plugins: Iterable[Plugin], http_url: str) -> list[VendorClass]:
    """The classes of every plugin that declares DHCP matching.

    Options that cannot be built from this URL (option 150 needs an address, not a name) are
    left out of that class rather than failing the whole file.
    """
    parts = urlsplit(http_url)
    values = {
        "http_url": http_url.rstrip("/"),
        "http_host": parts.hostname or "",
        "http_path": parts.path,
    }
    out = []
    for plugin in sorted(plugins, key=lambda p: p.id):
        dhcp = plugin.manifest.dhcp
        ouis = tuple(plugin.manifest.ouis) if dhcp.get("ouis") else ()
        prefixes = tuple(_quote(str(p)) for p in dhcp.get("vendor_class_prefixes", ()))
        if not ouis and not prefixes:
            continue
        options = []
        wanted = sorted(dict(dhcp.get("options", {})).items(), key=lambda kv: int(kv[0]))
        for code, template in wanted:
            if int(code) not in _CODES:
                continue
            try:
                options.append(_option(int(code), template, values))
            except InvalidInput:
                if _CODES[int(code)].kind != "ips":
                    raise
        if options:
            out.append(VendorClass(f"provisor-{plugin.id}", ouis, prefixes, tuple(options)))
    return out


def _used(classes: list[VendorClass]) -> set[int]:
    return {o.code for vc in classes for o in vc.options}


def isc_config(classes: list[VendorClass]) -> str:
    """ISC dhcpd ``class`` declarations (include the file from dhcpd.conf)."""
    lines = ["# Written by `provisor dhcp config --server isc`: one class per phone vendor.", ""]
    for code in sorted(_used(classes)):
        spec = _CODES[code]
        if spec.isc_def:
            lines.append(f"option {spec.isc} code {code} = {spec.isc_def};")
    lines.append("")
    for vc in classes:
        tests = [f"substring(hardware, 1, 3) = {oui}" for oui in vc.ouis]
        tests += [
            f'substring(option vendor-class-identifier, 0, {len(p)}) = "{p}"'
            for p in vc.vendor_prefixes
        ]
        lines.append(f'class "{vc.name}" {{')
        lines.append(f"  match if {' or '.join(tests)};")
        for opt in vc.options:
            lines.append(f"  option {_CODES[opt.code].isc} {opt.isc_value()};")
        lines.extend(["}", ""])
    return "\n".join(lines)


def _kea_data(opt: DhcpOption) -> dict[str, Any]:
    spec = _CODES[opt.code]
    entry: dict[str, Any] = {"name": spec.kea or spec.isc, "code": opt.code}
    if spec.kind == "binary":
        entry.update({"csv-format": False, "data": opt.value.upper()})
    else:
        entry["data"] = opt.value
    return entry


def kea_config(classes: list[VendorClass], *, full: bool = True) -> str:
    """Kea ``client-classes`` (inside a minimal Dhcp4 configuration when ``full``)."""
    client_classes: list[dict[str, Any]] = []
    for vc in classes:
        tests = [f"substring(pkt4.mac,0,3) == 0x{oui.replace(':', '')}" for oui in vc.ouis]
        tests += [f"substring(option[60].hex,0,{len(p)}) == '{p}'" for p in vc.vendor_prefixes]
        entry: dict[str, Any] = {
            "name": vc.name,
            "test": " or ".join(tests),
            "option-data": [_kea_data(o) for o in vc.options],
        }
        if any(o.code == 43 for o in vc.options):
            # Kea lets a class redefine option 43 only: here as raw bytes built above.
            entry["option-def"] = [
                {"name": "vendor-encapsulated-options", "code": 43, "type": "binary"}
            ]
        client_classes.append(entry)
    option_defs = [
        {
            "name": _CODES[code].isc,
            "code": code,
            "space": "dhcp4",
            "type": "ipv4-address" if _CODES[code].kind == "ips" else "string",
            "array": _CODES[code].kind == "ips",
        }
        for code in sorted(_used(classes))
        if _CODES[code].kea is None
    ]
    body: dict[str, Any] = {"client-classes": client_classes}
    if option_defs:
        body = {"option-def": option_defs, **body}
    if not full:
        return json.dumps(body, indent=2)
    config = {
        "Dhcp4": {
            "interfaces-config": {"interfaces": []},
            "lease-database": {"type": "memfile", "persist": False},
            **body,
            "subnet4": [],
        }
    }
    return json.dumps(config, indent=2)
