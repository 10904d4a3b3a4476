"""Raw config errors a plugin raises when it cannot use a configuration."""

from __future__ import annotations

__all__ = ["RawConfigError"]


class RawConfigError(Exception):
    """The raw config lacks something the plugin needs (the device is left unconfigured)."""
