"""DHCP server configuration out: send each vendor's phones to provisor.

Each plugin's manifest says how its phones are recognised by a DHCP server (its MAC prefixes
with ``ouis = true``, and/or literal prefixes of the vendor class, option 60) and which options
they need (66 for most, with the vendor's path). This module writes that as client classes for
ISC dhcpd (``class … { match if …; option tftp-server-name …; }``) or Kea
(``client-classes`` with ``test`` expressions and ``option-data``), built from the advertised
URL — with a tenant's provisioning key in it when asked.

Only literal prefixes are used because Kea's expressions have no regular expressions; the
values may carry the phones' own macros (``$PSN``, ``$MAC``) which the DHCP server passes on.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from provisor.errors import InvalidInput
from provisor.plugins.base import Plugin

__all__ = ["VendorClass", "isc_config", "kea_config", "vendor_classes"]

#: DHCP options provisor knows how to write, by code: (ISC name, Kea name).
_OPTIONS = {"66": ("tftp-server-name", "tftp-server-name")}


@dataclass(frozen=True, slots=True)
class VendorClass:
    """How one plugin's phones are matched and what they are sent."""

    name: str
    ouis: tuple[str, ...]
    vendor_prefixes: tuple[str, ...]
    options: tuple[tuple[str, str], ...]


def _quote(value: str) -> str:
    if any(c in value for c in '"\\\n'):
        raise InvalidInput(f"dhcp: value {value!r} cannot be quoted safely")
    return value


def vendor_classes(plugins: Iterable[Plugin], http_url: str) -> list[VendorClass]:
    """The classes of every plugin that declares DHCP matching."""
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
        prefixes = tuple(str(p) for p in dhcp.get("vendor_class_prefixes", ()))
        if not ouis and not prefixes:
            continue
        options = []
        for code, template in sorted(dict(dhcp.get("options", {})).items()):
            if str(code) not in _OPTIONS:
                continue
            options.append((str(code), _quote(str(template).format(**values))))
        if options:
            out.append(VendorClass(f"provisor-{plugin.id}", ouis, prefixes, tuple(options)))
    return out


def isc_config(classes: list[VendorClass]) -> str:
    """ISC dhcpd ``class`` declarations (include the file from dhcpd.conf)."""
    lines = ["# Written by `provisor dhcp config --server isc`: one class per phone vendor.", ""]
    for vc in classes:
        tests = [f"substring(hardware, 1, 3) = {oui}" for oui in vc.ouis]
        tests += [
            f'substring(option vendor-class-identifier, 0, {len(p)}) = "{_quote(p)}"'
            for p in vc.vendor_prefixes
        ]
        lines.append(f'class "{vc.name}" {{')
        lines.append(f"  match if {' or '.join(tests)};")
        for code, value in vc.options:
            lines.append(f'  option {_OPTIONS[code][0]} "{value}";')
        lines.extend(["}", ""])
    return "\n".join(lines)


def kea_config(classes: list[VendorClass], *, full: bool = True) -> str:
    """Kea ``client-classes`` (inside a minimal Dhcp4 configuration when ``full``)."""
    client_classes: list[dict[str, Any]] = []
    for vc in classes:
        tests = [f"substring(pkt4.mac,0,3) == 0x{oui.replace(':', '')}" for oui in vc.ouis]
        tests += [
            f"substring(option[60].hex,0,{len(p)}) == '{_quote(p)}'" for p in vc.vendor_prefixes
        ]
        client_classes.append(
            {
                "name": vc.name,
                "test": " or ".join(tests),
                "option-data": [
                    {"name": _OPTIONS[code][1], "data": value} for code, value in vc.options
                ],
            }
        )
    if not full:
        return json.dumps({"client-classes": client_classes}, indent=2)
    config = {
        "Dhcp4": {
            "interfaces-config": {"interfaces": []},
            "lease-database": {"type": "memfile", "persist": False},
            "client-classes": client_classes,
            "subnet4": [],
        }
    }
    return json.dumps(config, indent=2)
