"""Htek line keys: the three runs of P-values, lines first, every key written."""

from __future__ import annotations

import importlib.util

from tests.plugins.conftest import PLUGINS_DIR, plugin_by_id, render_path, sample_raw_config

spec = importlib.util.spec_from_file_location("htek_plugin", PLUGINS_DIR / "htek" / "plugin.py")
assert spec is not None and spec.loader is not None
htek = importlib.util.module_from_spec(spec)
spec.loader.exec_module(htek)


def test_p_value_runs() -> None:
    assert htek.key_pvalues(1) == (
        {"type": 41200, "value": 41300, "label": 41400, "account": 41500, "extension": 41600},
        20600,
    )
    assert htek.key_pvalues(4)[0]["extension"] == 41603
    assert htek.key_pvalues(5) == (
        {"type": 20200, "value": 20201, "label": 20202, "account": 20203, "extension": 20204},
        20604,
    )
    assert htek.key_pvalues(36)[0]["type"] == 20355 and htek.key_pvalues(36)[1] == 20635
    assert htek.key_pvalues(37) == (
        {"type": 23000, "value": 23001, "label": 23002, "account": 23003, "extension": 23004},
        None,
    )


def test_model_keys_are_all_written_and_blf_carries_the_pickup() -> None:
    raw = sample_raw_config(lines=1)
    raw["funckeys"]["30"] = {"type": "blf", "value": "1030", "label": "Eve", "line": 1}
    device = {"mac": "00:1f:c1:1c:22:a9", "vendor": "Htek", "model": "UC926"}
    body = render_path(
        plugin_by_id("htek"), "cfg001fc11c22a9.xml", device=device, raw_config=raw
    ).decode()
    assert "<P41200>1</P41200>" in body  # key 1: the line
    assert "<P41201>3</P41201>" in body and "<P41601>*81002</P41601>" in body  # key 2: BLF
    base = 20200 + 5 * (30 - 5)
    assert f"<P{base}>3</P{base}>" in body and f"<P{base + 4}>*81030</P{base + 4}>" in body
    assert "<P20375>0</P20375>" not in body  # UC926 has 36 keys: nothing past 20355
    assert body.count("<P20355>0</P20355>") == 1  # key 36, empty: cleared
    unknown = dict(device, model="UC902")
    body = render_path(
        plugin_by_id("htek"), "cfg001fc11c22a9.xml", device=unknown, raw_config=raw
    ).decode()
    assert "<P41200>" not in body
    unknown = dict(device, model="")  # not identified yet: every key any model has is cleared
    body = render_path(
        plugin_by_id("htek"), "cfg001fc11c22a9.xml", device=unknown, raw_config=raw
    ).decode()
    assert body.count("<P20355>0</P20355>") == 1 and "<P20360>" not in body
