"""The slot helpers every plugin uses to write a whole-state file."""

from __future__ import annotations

from provisor.domain.raw_config import apply_defaults
from provisor.plugins.contract import ModelInfo
from provisor.plugins.slots import key_slots, line_slots, slot_count
from tests.plugins.conftest import plugin_by_id, render_path, sample_raw_config

SMALL = ModelInfo(name="S", lines=2, function_keys=3, extra={"expansion_keys": 20})
BIG = ModelInfo(name="B", lines=6, function_keys=10)
MODELS = {"S": SMALL, "B": BIG}


def test_slot_count_is_the_models_else_the_largest_listed() -> None:
    assert slot_count(MODELS, SMALL, "lines") == 2
    assert slot_count(MODELS, SMALL, "expansion_keys") == 20  # a count kept in extra
    assert slot_count(MODELS, None, "lines") == 6  # unknown model: nothing left behind
    assert slot_count(MODELS, None, "function_keys", cap=4) == 4
    assert slot_count({}, None, "lines") == 0


def test_line_slots_blank_the_unused_ones() -> None:
    raw = apply_defaults(sample_raw_config(lines=3))
    del raw["sip_lines"]["2"]
    slots = line_slots(raw, 4)
    assert [s["number_index"] for s in slots] == [1, 2, 3, 4]
    assert [s["XX_used"] for s in slots] == [True, False, True, False]
    assert slots[0]["username"] == "user1" and slots[0]["proxy_ip"] == "10.0.0.10"
    # a blank slot carries nothing, not even the global servers, so it is written as cleared
    assert slots[1]["username"] == "" and slots[1]["proxy_ip"] == "" and not slots[1]["password"]
    assert len(line_slots(raw, 1)) == 1  # lines past the model's count are dropped


def test_key_slots_number_every_slot() -> None:
    raw = sample_raw_config()
    slots = key_slots(raw, 5)
    assert [n for n, _ in slots] == [1, 2, 3, 4, 5]
    assert slots[1][1] is not None and slots[1][1]["label"] == "Alice"
    assert slots[3][1] is None and slots[4][1] is None


def test_an_unknown_model_gets_the_plugins_largest_slot_count() -> None:
    # A device whose model is not known yet (or not in the manifest) is still cleared.
    device = {"mac": "00:15:65:11:22:33", "vendor": "Yealink"}
    plugin = plugin_by_id("yealink")
    body = render_path(plugin, "001565112233.cfg", device=device, raw_config=sample_raw_config())
    text = body.decode()
    most = max(m.lines for m in plugin.manifest.models.values())
    assert f"account.{most}.enable = 0" in text and f"account.{most + 1}." not in text
