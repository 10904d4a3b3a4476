"""null: a device assigned to it gets "Nowhere to route this request." for every file."""

from __future__ import annotations

from collections.abc import Mapping

from provisor.plugins.base import Plugin as Base
from provisor.plugins.contract import NONE, FileRoute


class Plugin(Base):
    """Refuses every request."""

    def score(self, info: Mapping[str, str]) -> int:
        """Never chosen automatically."""
        return NONE

    def route(self, path: str) -> FileRoute | None:
        """Nothing is ever served."""
        return None
