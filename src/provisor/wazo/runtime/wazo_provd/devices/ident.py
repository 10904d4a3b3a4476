"""Request kinds and the DHCP request shape handed to device-info extractors."""

from __future__ import annotations

from enum import Enum
from typing import TypedDict

__all__ = ["DHCPRequest", "RequestType"]


class RequestType(Enum):
    """Which listener a request came through."""

    HTTP = "http"
    TFTP = "tftp"
    DHCP = "dhcp"


class DHCPRequest(TypedDict):
    """A DHCP lease as extractors see it (options by code, option 60 as text)."""

    ip: str
    mac: str
    options: dict[int, str]
