"""Every shipped vendor plugin against its own cases: identification vectors, scores, routes,
golden files, secrets, minimal and huge configs, time zones.

Each plugin's cases live in ``tests/plugins/<id>/cases.json``:

- ``vectors``: requests (``ua``, ``path``, ``dhcp60``, ``protocol``) and the device info expected
  (vendors.md §5, with the upstream bug rows corrected);
- ``device``: a typical device; ``files``: paths rendered and compared with ``golden/``;
- ``secret_file`` and ``expect_in_secret_file``: what the file holding credentials carries;
- ``tz``: for a zone, strings the secret file must hold in the vendor's time format;
- ``boot``: a User-Agent and the boot sequence a phone fetches (used end to end too).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from provisor.plugins.contract import COMPLETE, EXACT, NONE, PROBABLE, ProbeRequest
from tests.plugins.conftest import (
    PLUGINS_DIR,
    assert_golden,
    plugin_by_id,
    render_path,
    sample_raw_config,
)

HERE = Path(__file__).parent
VENDORS = sorted(p.name for p in HERE.iterdir() if (p / "cases.json").is_file())


def cases(plugin_id: str) -> dict[str, Any]:
    return dict(json.loads((HERE / plugin_id / "cases.json").read_text()))


def probe(vector: dict[str, Any]) -> ProbeRequest:
    options = {60: vector["dhcp60"].encode("latin-1")} if "dhcp60" in vector else {}
    return ProbeRequest(
        protocol=vector.get("protocol", "dhcp" if options else "http"),
        path=vector.get("path", "").lstrip("/"),
        user_agent=vector.get("ua"),
        dhcp_options=options,
    )


def all_vectors() -> list[tuple[str, int, dict[str, Any]]]:
    return [(v, i, vec) for v in VENDORS for i, vec in enumerate(cases(v).get("vectors", []))]


def test_every_shipped_plugin_has_cases() -> None:
    shipped = sorted(p.name for p in PLUGINS_DIR.iterdir() if (p / "manifest.toml").is_file())
    missing = [p for p in shipped if p not in VENDORS and p not in ("zero", "null")]
    assert missing == []
    assert len(VENDORS) >= 1


@pytest.mark.parametrize(("plugin_id", "index", "vector"), all_vectors())
def test_identification_vector(plugin_id: str, index: int, vector: dict[str, Any]) -> None:
    info = plugin_by_id(plugin_id).extract(probe(vector))
    assert (info or {}) == vector["expect"], f"vector {index}"


@pytest.mark.parametrize("plugin_id", VENDORS)
def test_scores(plugin_id: str) -> None:
    plugin = plugin_by_id(plugin_id)
    device = cases(plugin_id)["device"]
    vendor = plugin.manifest.vendor
    assert plugin.score({"vendor": vendor}) == PROBABLE
    assert plugin.score({"vendor": vendor, "model": device["model"]}) >= COMPLETE
    model = plugin.manifest.models[device["model"]]
    if model.firmware_version and device.get("version"):
        assert (
            plugin.score({"vendor": vendor, "model": device["model"], "version": device["version"]})
            == EXACT
        )
    assert plugin.score({"vendor": "SomeoneElse", "model": device["model"]}) == NONE


@pytest.mark.parametrize("plugin_id", VENDORS)
def test_routes_and_goldens(plugin_id: str) -> None:
    plugin = plugin_by_id(plugin_id)
    case = cases(plugin_id)
    device = case["device"]
    for path in case["files"]:
        route = plugin.route(path)
        assert route is not None, path
        if route.mac is not None:
            assert route.mac == device["mac"]
        body = render_path(plugin, path, device=device, raw_config=sample_raw_config())
        assert_golden(str(HERE / plugin_id / "x"), path.replace("/", "_"), body)
    assert plugin.route("definitely/not/a/phone/file.bin") is None
    secret = plugin.route(case["secret_file"])
    assert secret is not None and secret.spec.sensitive
    assert any(spec.trigger for spec in plugin.manifest.files)


@pytest.mark.parametrize("plugin_id", VENDORS)
def test_secret_file_content_and_redaction(plugin_id: str) -> None:
    plugin = plugin_by_id(plugin_id)
    case = cases(plugin_id)
    raw = sample_raw_config()
    body = render_path(plugin, case["secret_file"], device=case["device"], raw_config=raw).decode(
        "utf-8"
    )
    for text in ["LineSecret1", "user1", "10.0.0.10", *case.get("expect_in_secret_file", [])]:
        assert text in body, text
    blank = render_path(
        plugin, case["secret_file"], device=case["device"], raw_config=raw, with_secrets=False
    ).decode("utf-8")
    for secret in ("LineSecret1", "LineSecret2", "AdminSecret9", "UserSecret8"):
        assert secret not in blank
    assert "user1" in blank  # the bootstrap file still says who the phone is


@pytest.mark.parametrize("plugin_id", VENDORS)
def test_minimal_and_huge_configs_render(plugin_id: str) -> None:
    plugin = plugin_by_id(plugin_id)
    case = cases(plugin_id)
    minimal = {
        "http_base_url": "http://10.0.0.1:8667",
        "sip_lines": {"1": {"username": "u", "password": "p"}},
    }
    for path in case["files"]:
        assert render_path(plugin, path, device=case["device"], raw_config=minimal)
    huge = sample_raw_config(lines=1024)
    body = render_path(plugin, case["secret_file"], device=case["device"], raw_config=huge)
    assert b"LineSecret1" in body


@pytest.mark.parametrize("plugin_id", VENDORS)
def test_time_zones(plugin_id: str) -> None:
    plugin = plugin_by_id(plugin_id)
    case = cases(plugin_id)
    for zone, expected in case.get("tz", {}).items():
        raw = dict(sample_raw_config(), timezone=zone)
        body = render_path(
            plugin, case["secret_file"], device=case["device"], raw_config=raw
        ).decode()
        for text in expected:
            if text.startswith("re:"):
                assert re.search(text[3:], body), (zone, text)
            else:
                assert text in body, (zone, text)


@pytest.mark.parametrize("plugin_id", VENDORS)
def test_boot_sequence_routes(plugin_id: str) -> None:
    plugin = plugin_by_id(plugin_id)
    boot = cases(plugin_id)["boot"]
    info = plugin.extract(ProbeRequest("http", user_agent=boot["user_agent"])) or {}
    macs = {info.get("mac")} | {
        (plugin.extract(ProbeRequest("http", path=p)) or {}).get("mac") for p in boot["files"]
    }
    # as the pipeline probes it: the User-Agent with the path it came with (Poly's UA has no
    # MAC; its <mac>.cfg names the phone only beside that UA)
    ua = boot["user_agent"]
    macs |= {
        (plugin.extract(ProbeRequest("http", "", ua, request_path=p)) or {}).get("mac")
        for p in boot["files"]
    }
    assert boot["mac"] in macs  # the phone is identified by its UA or by a file it asks for
    for path in boot["files"]:
        assert plugin.route(path) is not None or plugin.is_expected_miss(path), path
