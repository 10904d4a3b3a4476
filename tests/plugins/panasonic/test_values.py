"""Panasonic text files: a value can never add a key, and regional model names are one model."""

from __future__ import annotations

from provisor.plugins.contract import ProbeRequest
from tests.plugins.conftest import plugin_by_id, render_path, sample_raw_config

DEVICE = {"mac": "00:80:f0:a1:b2:c3", "vendor": "Panasonic", "model": "KX-HDV130"}


def test_a_value_cannot_inject_a_line() -> None:
    raw = sample_raw_config(lines=1)
    raw["sip_lines"]["1"]["display_name"] = 'Evil"\r\nADMIN_PASS="owned'
    body = render_path(
        plugin_by_id("panasonic"), "Config0080F0A1B2C3.cfg", device=DEVICE, raw_config=raw
    ).decode()
    assert [line for line in body.splitlines() if line.startswith("ADMIN_PASS=")] == [
        'ADMIN_PASS="AdminSecret9"'
    ]
    assert "DISPLAY_NAME_1=\"Evil'  ADMIN_PASS='owned\"" in body


def test_regional_variant_is_the_listed_model_and_unknown_stays_as_sent() -> None:
    plugin = plugin_by_id("panasonic")
    ua = "Panasonic_KX-HDV330X/08.100 (0080f0a1b2c3)"
    assert (plugin.extract(ProbeRequest("http", user_agent=ua)) or {})["model"] == "KX-HDV330"
    ua = "Panasonic_KX-HDV999/08.100 (0080f0a1b2c3)"
    assert (plugin.extract(ProbeRequest("http", user_agent=ua)) or {})["model"] == "KX-HDV999"
