"""Poly Trio, Edge E and CCX: UC Software 7/8 and PolyOS ``<polycomConfig>`` files, the values
shared with the VVX plugin (``provisor.plugins.polycom``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provisor.plugins.base import Plugin as Base
from provisor.plugins.contract import DeviceInfo, ProbeRequest, RenderContext, clean_user_agent
from provisor.plugins.polycom import ucs_variables


class Plugin(Base):
    """Poly Trio, Edge E and CCX phones."""

    def extract(self, req: ProbeRequest) -> DeviceInfo | None:
        """The manifest's rules, except that over HTTP a request needs this plugin's User-Agent:
        the phones always send it there, so a ``<mac>.cfg`` of a Poly prefix without it is a
        scanner's guess (tests/security/test_scan_defence.py); over TFTP phones send none."""
        if req.protocol == "http" and not self._our_user_agent(req):
            return None
        return super().extract(req)

    def _our_user_agent(self, req: ProbeRequest) -> bool:
        ua = clean_user_agent(req.user_agent) or ""
        return any(r.source == "ua" and r.regex.search(ua) for r in self.manifest.identify)

    def normalise_info(self, info: DeviceInfo) -> DeviceInfo:
        """``Trio_8800`` → ``Trio8800``, ``Edge_E450`` → ``EdgeE450``, ``CCX_500`` → ``CCX500``."""
        if "model" in info:
            info["model"] = info["model"].replace("_", "")
        return info

    def variables(self, ctx: RenderContext, raw: Mapping[str, Any]) -> dict[str, Any]:
        """XX_ variables of the per-phone file."""
        return ucs_variables(self.manifest, ctx, raw)
