"""A golden file per model, for plugins whose files change with the model (slot counts, key
expansion modules, gateway ports). ``model_goldens`` in tests/plugins/<id>/cases.json is either
a list of paths to render (``{mac}``/``{MAC}`` standing for the device's MAC, the sample config
with as many lines as the model has) or ``true``: render the case's ``secret_file`` with
``golden_lines`` lines (2 by default). Each model of the manifest is compared byte for byte."""

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
    golden_dir = str(HERE / plugin_id / "x")
    if case["model_goldens"] is True:
        raw = sample_raw_config(lines=int(case.get("golden_lines", 2)))
        body = render_path(plugin, case["secret_file"], device=device, raw_config=raw)
        assert b"LineSecret1" in body
        name = f"model-{model}-{case['secret_file']}".replace("/", "_").replace(" ", "_")
        assert_golden(golden_dir, name, body)
        return
    mac = device["mac"].replace(":", "")
    raw = sample_raw_config(lines=plugin.manifest.models[model].lines)
    for path in case["model_goldens"]:
        path = path.format(mac=mac, MAC=mac.upper())
        body = render_path(plugin, path, device=device, raw_config=raw)
        assert b"LineSecret1" in body or not plugin.route(path).spec.sensitive  # type: ignore[union-attr]
        assert_golden(golden_dir, f"models/{model}/{path.replace('/', '_')}", body)
