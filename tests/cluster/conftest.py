"""A plugin repository served on 127.0.0.1 (the vendor site: the edge of the world)."""

from __future__ import annotations

from tests.plugins_mgmt.conftest import web_root  # noqa: F401 - the served folder fixture
