"""A golden file per model for plugins whose files differ by model (``model_goldens`` in
tests/plugins/<id>/cases.json: the paths to render, ``{mac}`` standing for the device's MAC):
each model of the manifest renders its own slots (lines, keys), compared byte for byte."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.plugins.conftest import assert_golden, plugin_by_id, render_path, sample_raw_config

HERE = Path(__file__).parent


def _cases() -> list[Any]:
    out = []
    for folder in sorted(HERE.iterdir()):
        if not (folder / "cases.json").is_file():
            continue
        case = json.loads((folder / "cases.json").read_text())
        if "model_goldens" not in case:
            continue
        for model in plugin_by_id(folder.name).manifest.models:
            out.append(pytest.param(folder.name, model, case, id=f"{folder.name}-{model}"))
    return out


@pytest.mark.parametrize(("plugin_id", "model", "case"), _cases())
def test_model_golden(plugin_id: str, model: str, case: dict[str, Any]) -> None:
    plugin = plugin_by_id(plugin_id)
    device = {**case["device"], "model": model}
    mac = device["mac"].replace(":", "")
    raw = sample_raw_config(lines=plugin.manifest.models[model].lines)
    for path in case["model_goldens"]:
        path = path.format(mac=mac, MAC=mac.upper())
        body = render_path(plugin, path, device=device, raw_config=raw)
        assert b"LineSecret1" in body or not plugin.route(path).spec.sensitive  # type: ignore[union-attr]
        assert_golden(str(HERE / plugin_id / "x"), f"models/{model}/{path.replace('/', '_')}", body)
