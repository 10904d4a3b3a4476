"""zero: every existing file of ``static/`` is served as is; nothing is identified or scored."""

from __future__ import annotations

import re
from collections.abc import Mapping

from provisor.plugins.base import Plugin as Base
from provisor.plugins.contract import NONE, FileRoute, FileSpec

_STATIC = FileSpec(pattern=re.compile(".*"), kind="static", template="{file}", name="static file")


class Plugin(Base):
    """Static files for devices an administrator assigns to it."""

    def score(self, info: Mapping[str, str]) -> int:
        """Never chosen automatically."""
        return NONE

    def route(self, path: str) -> FileRoute | None:
        """Any existing file under static/ (no traversal: the path is already normalised)."""
        base = (self.root / "static").resolve()
        target = (base / path).resolve()
        if not target.is_relative_to(base) or not target.is_file():
            return None
        return FileRoute(spec=_STATIC, path=path, params={"file": path})
