"""Poly VVX: XML ``<polycomConfig>`` attribute files; the UC Software values are shared with
the polyos plugin (``provisor.plugins.polycom``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provisor.plugins.base import Plugin as Base
from provisor.plugins.contract import RenderContext
from provisor.plugins.polycom import ucs_variables


class Plugin(Base):
    """Poly VVX phones."""

    def normalise_info(self, info: dict[str, str]) -> dict[str, str]:
        """``VVX_400`` → ``VVX400``."""
        if "model" in info:
            info["model"] = info["model"].replace("_", "")
        return info

    def variables(self, ctx: RenderContext, raw: Mapping[str, Any]) -> dict[str, Any]:
        """XX_ variables for the common and per-phone files."""
        return ucs_variables(self.manifest, ctx, raw)
