"""Snom M-series DECT bases: servers and handsets by index, resync with a reboot."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from tests.plugins.conftest import assert_golden, plugin_by_id, render_path, sample_raw_config

M900 = {"mac": "00:04:13:b6:06:80", "vendor": "Snom", "model": "M900"}


def test_m900_servers_and_handsets() -> None:
    raw = sample_raw_config(lines=3)
    raw["sip_lines"]["3"]["proxy_ip"] = "10.9.9.9"
    body = render_path(plugin_by_id("snom"), "000413B60680.xml", device=M900, raw_config=raw)
    assert_golden(__file__, "000413B60680.xml", body)
    settings = ET.fromstring(body).find("phone-settings")
    assert settings is not None
    values = {(e.tag, e.get("idx")): e.text for e in settings}
    assert values[("user_host", "1")] == "10.0.0.10:5060"
    assert values[("user_host", "2")] == "10.9.9.9:5060"
    assert values[("user_pass", "2")] == "LineSecret2"
    assert values[("subscr_sip_ua_data_server_id", "1")] == "1"
    assert values[("subscr_sip_ua_data_server_id", "3")] == "2"
    assert values[("subscr_dect_ac_code", "3")] == "0003"
    assert ("fkey", "0") not in values  # handsets have no programmable keys here


def test_dect_resyncs_with_a_reboot_and_deskphones_without() -> None:
    plugin = plugin_by_id("snom")
    assert plugin.sync_event(M900) == "check-sync;reboot=true"
    assert plugin.sync_event({"model": "D785"}) == "check-sync;reboot=false"
