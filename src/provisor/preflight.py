"""Checks made before the listeners open: settings that would leave every phone without files.

A server bound to ``0.0.0.0`` with no advertised URL used to write ``http://0.0.0.0:8667``
into every phone's file and DHCP option; a loopback URL on a server reachable from the network
does the same harm more quietly. Both are refused at start with one line that names the
setting, unless ``general.check_advertised_url`` is off.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from provisor.errors import InvalidInput
from provisor.settings import Settings

__all__ = ["check_advertised_urls"]


def _kind(host: str) -> str | None:
    """'wildcard', 'loopback' or None (a usable address or a name)."""
    if host in ("", "localhost") or host.endswith(".localhost"):
        return "loopback" if host else "wildcard"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if address.is_unspecified:
        return "wildcard"
    return "loopback" if address.is_loopback else None


def check_advertised_urls(settings: Settings) -> None:
    """Raise InvalidInput naming the setting when phones could not reach the advertised URL."""
    if not settings.general.check_advertised_url:
        return
    listen = _kind(settings.phone_host)
    urls = [("general.advertised_http_url", settings.advertised_http_url)]
    if settings.provisioning.https_enabled:
        urls.append(("general.advertised_https_url", settings.advertised_https_url))
    for name, url in urls:
        host = urlsplit(url).hostname or ""
        kind = _kind(host)
        if kind == "wildcard":
            raise InvalidInput(
                f"{name}: {url} names a wildcard address phones cannot reach; set {name} to the"
                " address or name phones use (or general.check_advertised_url: false)"
            )
        if kind == "loopback" and listen != "loopback":
            raise InvalidInput(
                f"{name}: {url} is a loopback address but the phone listeners bind"
                f" {settings.phone_host}; set {name} to the address or name phones use"
                " (or general.check_advertised_url: false)"
            )
