"""Grandstream function keys: classic MPK 1-7 and the virtual block for every key."""

from __future__ import annotations

from tests.plugins.conftest import plugin_by_id, render_path, sample_raw_config


def test_keys_past_seven_and_gaps_keep_their_number() -> None:
    raw = sample_raw_config(lines=1)
    raw["funckeys"] = {
        "2": {"type": "speeddial", "value": "1234", "label": "Bob", "line": 1},
        "40": {"type": "blf", "value": "1040", "label": "Zoe", "line": 1},
        "101": {"type": "blf", "value": "1101", "label": "Too far", "line": 1},
        "5": {"type": "unknown-kind", "value": "x", "label": "x", "line": 1},
    }
    device = {"mac": "c0:74:ad:2b:d8:59", "vendor": "Grandstream", "model": "GXP2170"}
    body = render_path(
        plugin_by_id("grandstream"),
        "Grandstream/cfgc074ad2bd859.xml",
        device=device,
        raw_config=raw,
    ).decode()
    assert "<P324>0</P324>" in body and "<P305>Bob</P305>" in body  # key 2 in the classic block
    assert "<P23005>0</P23005>" in body and "<P23008>1234</P23008>" in body
    base = 23000 + 5 * 39
    assert f"<P{base}>1</P{base}>" in body and f"<P{base + 3}>1040</P{base + 3}>" in body
    assert "1101" not in body  # past the bound
    assert "<P327>-1</P327>" in body and "<P23020>-1</P23020>" in body  # unknown type: cleared
    assert "<P23495>-1</P23495>" in body  # the last of the 100 virtual keys, unused: cleared
