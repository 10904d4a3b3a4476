"""A golden file per model, for plugins whose file changes with the model (slot counts, key
expansion modules, gateway ports): ``"model_goldens": true`` in the plugin's ``cases.json``
renders its ``secret_file`` for every model its manifest lists, with the sample config, and
compares each with ``golden/model-<model>-<file>``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.plugins.conftest import assert_golden, plugin_by_id, render_path, sample_raw_config

HERE = Path(__file__).parent


def _cases() -> list[Any]:
    out = []
    for folder in sorted(p for p in HERE.iterdir() if (p / "cases.json").is_file()):
        case = json.loads((folder / "cases.json").read_text())
        if not case.get("model_goldens"):
            continue
        for model in plugin_by_id(folder.name).manifest.models:
            out.append(pytest.param(folder.name, model, case, id=f"{folder.name}-{model}"))
    return out


@pytest.mark.parametrize(("plugin_id", "model", "case"), _cases())
def test_model_golden(plugin_id: str, model: str, case: dict[str, Any]) -> None:
    plugin = plugin_by_id(plugin_id)
    device = {**case["device"], "model": model}
    raw = sample_raw_config(lines=int(case.get("golden_lines", 2)))
    body = render_path(plugin, case["secret_file"], device=device, raw_config=raw)
    assert b"LineSecret1" in body
    name = f"model-{model}-{case['secret_file']}".replace("/", "_").replace(" ", "_")
    assert_golden(str(HERE / plugin_id / "x"), name, body)
