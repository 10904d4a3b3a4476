"""Three Cisco plugins, one vendor name: each device goes to the family that serves its files.

A Cisco device known only by its MAC asked for ``SEP<MAC>.cnf.xml`` (enterprise firmware),
unless the MAC is one of the SPA plugin's own prefixes (a SPA fetching ``<mac>.xml`` without
a User-Agent); a model name picks its family (``CP-7841`` enterprise, ``7841`` 3PCC).
"""

from __future__ import annotations

import pytest

from provisor.plugins.loader import PluginSet
from tests.plugins.conftest import PLUGINS_DIR, plugin_by_id, render_path, sample_raw_config


@pytest.fixture(scope="module")
def plugins() -> PluginSet:
    return PluginSet.from_folders([PLUGINS_DIR])


@pytest.mark.parametrize(
    ("info", "plugin_id"),
    [
        ({"vendor": "Cisco", "mac": "00:02:fd:ff:21:03"}, "cisco-spa"),
        ({"vendor": "Cisco", "mac": "00:56:2b:04:36:15"}, "cisco-enterprise"),
        ({"vendor": "Cisco", "mac": "a4:b2:39:00:00:01"}, "cisco-enterprise"),
        ({"vendor": "Cisco", "model": "CP-7841", "mac": "00:56:2b:04:36:15"}, "cisco-enterprise"),
        ({"vendor": "Cisco", "model": "7841", "mac": "d0:ec:35:aa:bb:cc"}, "cisco-mpp"),
        ({"vendor": "Cisco", "model": "SPA504G"}, "cisco-spa"),
    ],
)
def test_cisco_device_goes_to_its_family(
    plugins: PluginSet, info: dict[str, str], plugin_id: str
) -> None:
    best = plugins.best_for(info)
    assert best is not None and best.id == plugin_id


def test_a_line_holds_its_button_and_keys_fill_the_others() -> None:
    plugin = plugin_by_id("cisco-enterprise")
    raw = sample_raw_config(lines=2)  # keys 1, 2, 3: buttons 1 and 2 hold the lines
    raw["funckeys"]["12"] = {"type": "speeddial", "value": "4321", "label": "Kem"}
    device = {"mac": "00:56:2b:04:36:15", "model": "CP-8851"}
    body = render_path(plugin, "SEP00562B043615.cnf.xml", device=device, raw_config=raw).decode()
    assert '<line button="1" lineIndex="1">' in body and '<line button="2" lineIndex="2">' in body
    assert "<speedDialNumber>1234</speedDialNumber>" not in body  # key 1: line 1's button
    assert '<line button="3">' in body and "<speedDialNumber>700</speedDialNumber>" in body
    assert '<line button="12">' in body  # the second key of the first expansion module
    small = {"mac": "00:56:2b:04:36:15", "model": "CP-7841"}  # 4 buttons, no module
    body = render_path(plugin, "SEP00562B043615.cnf.xml", device=small, raw_config=raw).decode()
    assert '<line button="12">' not in body
