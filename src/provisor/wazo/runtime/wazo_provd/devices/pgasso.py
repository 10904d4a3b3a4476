"""Plugin association: how well a plugin supports a device, on wazo-provd's 0..600 scale."""

from __future__ import annotations

from enum import IntEnum

__all__ = ["BasePgAssociator", "DeviceSupport"]


class DeviceSupport(IntEnum):
    """Support levels; provisor's native plugin scores use the same numbers."""

    NONE = 0
    IMPROBABLE = 100
    UNKNOWN = 200
    PROBABLE = 300
    INCOMPLETE = 400
    COMPLETE = 500
    EXACT = 600


class BasePgAssociator:
    """Subclasses implement ``_do_associate(vendor, model, version)``."""

    def associate(self, dev_info: dict[str, str]) -> int:
        """Score a device; a device without a vendor is UNKNOWN to every plugin."""
        vendor = dev_info.get("vendor")
        if vendor is None:
            return DeviceSupport.UNKNOWN
        return self._do_associate(vendor, dev_info.get("model"), dev_info.get("version"))

    def _do_associate(self, vendor: str, model: str | None, version: str | None) -> int:
        raise NotImplementedError("a plugin associator overrides _do_associate")
