"""Cisco SPA/ATA: XML flat profiles; shared maps in provisor.plugins.cisco_profile."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provisor.plugins.base import Plugin as Base
from provisor.plugins.cisco_profile import cisco_score, cisco_variables, whole_state
from provisor.plugins.contract import DeviceInfo, ProbeRequest, RenderContext


class Plugin(Base):
    """Cisco SPA phones and ATAs."""

    def extract(self, req: ProbeRequest) -> DeviceInfo | None:
        """Also the two path cases a regex group cannot name (init.cfg, ATA<MAC>)."""
        info = super().extract(req)
        if info is None:
            return None
        path = req.path
        if path == "init.cfg":
            info.setdefault("model", "PAP2T")
        elif path.startswith("ATA") and path.endswith(".cnf.xml"):
            info.setdefault("model", "ATA190")
        return info

    def normalise_info(self, info: DeviceInfo) -> DeviceInfo:
        """``SPA-942``/``942``/``spa525g`` → ``SPA942``/``SPA525G``."""
        model = info.get("model")
        if model:
            model = model.upper().replace("-", "")
            if model[0].isdigit():
                model = "SPA" + model
            info["model"] = model
        return info

    def score(self, info: Mapping[str, str]) -> int:
        """Models of other Cisco families are improbable here."""
        return cisco_score(self.manifest.models, info, super().score(info), self.manifest.ouis)

    def variables(self, ctx: RenderContext, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Flat-profile variables."""
        models = self.manifest.models
        model = models.get(str(ctx.device.get("model") or ""))
        out = whole_state(cisco_variables(raw, None), raw, models, model)
        out["XX_ata"] = bool(model and model.type == "ata")
        return out
