"""Which known device a request is, when it does not say: by serial, or by its address.

Step 4 of the pipeline looks a device up by what the request names (MAC, then serial, then
UUID). A request that names none — a TFTP request for a common or firmware file, an HTTP
request without a User-Agent, a User-Agent without a MAC — is the device at its source
address, as in wazo-provd, but only when that cannot be another device:

- the ``NAT`` parameter is off: the operator asserts that one address is one device (with NAT
  on, every phone behind a router shares its address, and an address names nobody);
- exactly one device holds the address (NAT off, an address moves to the last device that
  used it, so two only happen through the API);
- nothing the request says (MAC, vendor, model, serial, UUID) contradicts that device.

Otherwise the request is refused and the trace says which rule refused it. A device file is
never served this way (the pipeline wants a MAC, or a device token, for those), and a tenant
key in the URL still has to be the device's tenant's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "NAT_ON",
    "NOT_IDENTIFIED",
    "address_match",
    "agrees",
    "names_by_serial",
    "names_device",
]

NOT_IDENTIFIED = "device not identified (no MAC in User-Agent or path)"
NAT_ON = "device not identified: NAT is on, so an address does not name one device"
SEVERAL = "device not identified: several devices at this address"

_NAMING = ("mac", "sn", "uuid")


def names_device(info: Mapping[str, str]) -> bool:
    """Does the request name its device (MAC, serial or UUID)?"""
    return any(info.get(key) for key in _NAMING)


def names_by_serial(info: Mapping[str, str]) -> bool:
    """A User-Agent naming vendor, model and serial number but no MAC (older Linksys SPA
    phones) creates its device by serial, as one naming a MAC does."""
    return bool(info.get("sn") and info.get("vendor") and info.get("model") and not info.get("mac"))


def agrees(device: Mapping[str, Any], info: Mapping[str, str]) -> bool:
    """Nothing the request says contradicts the device (a serial number or a UUID is unique per
    vendor only, so a device found by one must not be another vendor's or have another MAC)."""
    for key in ("mac", "vendor", "sn", "uuid"):
        mine, theirs = info.get(key), device.get(key)
        if mine and theirs and str(mine).lower() != str(theirs).lower():
            return False
    return True


def address_match(
    info: Mapping[str, str], candidates: Sequence[Mapping[str, Any]], *, nat: bool
) -> dict[str, Any] | str:
    """The one device the address names, or why there is none (a trace reason)."""
    if nat:
        return NAT_ON
    if not candidates:
        return NOT_IDENTIFIED
    if len(candidates) > 1:
        return SEVERAL
    device = candidates[0]
    for key in ("mac", "vendor", "model", "sn", "uuid"):
        if info.get(key) and device.get(key) and info[key] != device[key]:
            return f"device not identified: the device at this address has another {key}"
    return dict(device)
