"""Identification across every shipped plugin at once, as the pipeline runs it.

Each plugin's ``tests/plugins/<id>/identify.json`` lists requests (``ua``, ``path``, ``query``,
``protocol``) and the device info expected once every plugin has had its say: the most specific
match wins (a generic rule of one plugin never outvotes another's specific one), and a tie
between plugins is reported with both candidates (``tie``). ``note`` says a vector's format is
unverified against a real device.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from provisor.errors import PluginError
from provisor.plugins.contract import SPECIFICITY, ProbeRequest, clean_user_agent
from provisor.plugins.loader import PluginSet
from provisor.plugins.manifest import parse_manifest
from tests.plugins.conftest import PLUGINS_DIR, plugin_by_id

HERE = Path(__file__).parent
TABLES = sorted(p.parent.name for p in HERE.glob("*/identify.json"))


@pytest.fixture(scope="module")
def plugins() -> PluginSet:
    found = PluginSet.from_folders([PLUGINS_DIR])
    assert found.errors == []
    return found


def vectors() -> list[tuple[str, int, dict[str, Any]]]:
    out = []
    for plugin_id in TABLES:
        table = json.loads((HERE / plugin_id / "identify.json").read_text())
        out += [(plugin_id, i, vec) for i, vec in enumerate(table["vectors"])]
    return out


@pytest.mark.parametrize(("plugin_id", "index", "vector"), vectors())
def test_vector(plugins: PluginSet, plugin_id: str, index: int, vector: dict[str, Any]) -> None:
    found = plugins.identify_request(
        vector.get("protocol", "http"), vector["path"], vector.get("ua"), vector.get("query")
    )
    tie = found.pop("tie", None)
    assert found == vector["expect"], f"{plugin_id} vector {index}: {vector['class']}"
    if "tie" in vector:
        assert tie is not None
        for candidate in vector["tie"]:
            assert candidate in tie
    else:
        assert tie is None


def test_every_affected_plugin_has_a_table() -> None:
    wanted = {"alcatel", "cisco-spa", "gigaset", "poly", "snom", "yealink"}
    assert wanted <= set(TABLES)


def test_generic_rule_loses_to_specific_one_in_either_order(plugins: PluginSet) -> None:
    # same request, the plugins in both orders: the ranking, not the order, decides
    ua = "Mozilla/4.0 (compatible; snomD785-SIP 10.1.33.33)"
    req = ProbeRequest("http", "", ua, {"mac": "000413922D24"}, request_path="x.bin")
    forward = plugins.identify(req)
    backward = PluginSet(reversed(list(plugins))).identify(req)
    assert forward.info["vendor"] == backward.info["vendor"] == "Snom"
    assert forward.rank == SPECIFICITY["ua"]
    assert forward.ties == ()


def test_tie_names_both_candidates(plugins: PluginSet) -> None:
    req = ProbeRequest("http", "firmware/a.bin", None, {"mac": "0004139a2d24"})
    result = plugins.identify(req)
    assert result.rank == SPECIFICITY["query"]
    assert len(result.ties) == 2
    assert any(t.startswith("alcatel:") for t in result.ties)
    assert any(t.startswith("snom:") for t in result.ties)


def test_declared_specificity_outranks_derived_one() -> None:
    base = {"id": "x", "version": "1.0", "vendor": "X"}
    rule = {"source": "query:mac", "regex": "(?P<mac>.+)", "specificity": "ua-full"}
    manifest = parse_manifest({**base, "identify": [rule]})
    assert manifest.identify[0].rank({}) == SPECIFICITY["ua-full"]
    with pytest.raises(PluginError, match="specificity"):
        parse_manifest({**base, "identify": [{**rule, "specificity": "very"}]})
    with pytest.raises(PluginError, match="specificity"):
        parse_manifest({**base, "identify": [{**rule, "specificity": True}]})


def test_ua_rank_depends_on_what_the_match_found() -> None:
    yealink = plugin_by_id("yealink")
    full = yealink.identify(
        ProbeRequest("http", "", "Yealink SIP-T46S 66.86.0.15 00:15:65:11:22:33")
    )
    short = yealink.identify(ProbeRequest("http", "", "Yealink SIP-T46S 66.86.0.15"))
    assert full is not None and full[1] == SPECIFICITY["ua-full"]
    assert short is not None and short[1] == SPECIFICITY["ua"]


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ('"Gigaset N870"', "Gigaset N870"),
        ('  "Gigaset N870"  ', "Gigaset N870"),
        ('"Gigaset N870', '"Gigaset N870'),
        ('"', '"'),
        ('""', ""),
        ("plain", "plain"),
        (None, None),
    ],
)
def test_clean_user_agent(raw: str | None, clean: str | None) -> None:
    assert clean_user_agent(raw) == clean
