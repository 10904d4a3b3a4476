"""The core plugins: ``zero`` serves its static folder, ``null`` refuses everything."""

from __future__ import annotations

from tests.plugins.conftest import plugin_by_id, render_path


def test_zero_serves_existing_static_files_only() -> None:
    zero = plugin_by_id("zero")
    assert zero.score({"vendor": "Yealink", "model": "T46S"}) == 0
    assert render_path(zero, "README.txt").startswith(b"Files placed in this folder")
    assert zero.route("missing.cfg") is None
    assert zero.route("../manifest.toml") is None


def test_null_refuses_everything() -> None:
    null = plugin_by_id("null")
    assert null.route("README.txt") is None and null.route("001565112233.cfg") is None
    assert null.score({"vendor": "*"}) == 0
