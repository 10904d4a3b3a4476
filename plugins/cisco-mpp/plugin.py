"""Cisco MPP: XML flat profiles; shared maps in provisor.plugins.cisco_profile."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provisor.plugins.base import Plugin as Base
from provisor.plugins.cisco_profile import cisco_score, cisco_variables, whole_state
from provisor.plugins.contract import RenderContext


class Plugin(Base):
    """Cisco 68xx/78xx/88xx 3PCC."""

    def score(self, info: Mapping[str, str]) -> int:
        """Models of other Cisco families are improbable here."""
        return cisco_score(self.manifest.models, info, super().score(info))

    def variables(self, ctx: RenderContext, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Flat-profile variables."""
        models = self.manifest.models
        model = models.get(str(ctx.device.get("model") or ctx.route.params.get("model") or ""))
        return whole_state(cisco_variables(raw, None), raw, models, model)
