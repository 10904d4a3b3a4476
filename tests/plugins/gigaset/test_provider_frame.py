"""Gigaset N510/N720: the ProviderFrame format (the shared cases cover the Nx70 format)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from tests.plugins.conftest import assert_golden, plugin_by_id, render_path, sample_raw_config

N720 = {"mac": "7c:2f:80:ca:21:e4", "vendor": "Gigaset", "model": "N720 DM PRO"}


def items(body: bytes) -> dict[str, str]:
    root = ET.fromstring(body)
    return {e.get("ID", ""): e.get("value", "") for e in root.iter("SYMB_ITEM")}


def test_n720_golden_and_values() -> None:
    raw = sample_raw_config(lines=3)
    raw["admin_password"] = "1234"
    body = render_path(plugin_by_id("gigaset"), "7C2F80CA21E4.xml", device=N720, raw_config=raw)
    assert_golden(__file__, "7C2F80CA21E4.xml", body)
    found = items(body)
    assert ET.fromstring(body).find("Provider/MAC_ADDRESS").get("value") == "7C2F80CA21E4"  # type: ignore[union-attr]
    # account 1 has no suffix, the next ones _<n>; strings quoted, numbers hexadecimal
    assert found["BS_IP_Data1.aucS_SIP_USER_ID"] == '"user1"'
    assert found["BS_IP_Data1.aucS_SIP_PASSWORD_3"] == '"LineSecret3"'
    assert found["BS_IP_Data3.aucS_SIP_LOGIN_ID_2"] == '"auth2"'
    assert found["BS_IP_Data1.aucS_SIP_ACCOUNT_NAME_1"] == '"1001"'
    assert found["BS_IP_Data1.uiI_SIP_SERVER_PORT_2"] == "0x13c4"
    assert found["BS_IP_Data1.ucI_DTMF_TX_MODE_BITS"] == "2"
    assert found["BS_IP_Data1.uiI_VLAN_ID"] == "0x14"
    assert found["BS_IP_Data1.uiI_TIME_TIMEZONE"] == "0x1b"  # GMT+1
    assert found["BS_IP_Data1.ucB_TIME_USE_AUTOMATIC_DST"] == "0x1"
    assert found["BS_IP_Data1.ucI_HTTPLANGUAGE"] == "0x9"  # French
    assert found["BS_CUSTOM.aucKdsPin[0]"] == "0x12,0x34"


def test_unknown_model_takes_the_format_of_the_name_it_asked_for() -> None:
    plugin = plugin_by_id("gigaset")
    device = {"mac": "7c:2f:80:ca:21:e4", "vendor": "Gigaset"}
    upper = render_path(plugin, "7C2F80CA21E4.xml", device=device, raw_config=sample_raw_config())
    lower = render_path(plugin, "7c2f80ca21e4.xml", device=device, raw_config=sample_raw_config())
    assert b"<ProviderFrame>" in upper and b"<provisioning " in lower


def test_values_are_escaped_and_odd_time_zones_left_out() -> None:
    raw = sample_raw_config(lines=1)
    raw["sip_lines"]["1"]["password"] = "a'b\"<c>&"
    raw["timezone"] = "Asia/Kolkata"  # +05:30: no code in the base's table
    raw["admin_password"] = "not-a-pin"
    body = render_path(plugin_by_id("gigaset"), "7C2F80CA21E4.xml", device=N720, raw_config=raw)
    found = items(body)
    assert found["BS_IP_Data1.aucS_SIP_PASSWORD"] == '"a\'b"<c>&"'
    assert "BS_IP_Data1.uiI_TIME_TIMEZONE" not in found
    assert "BS_CUSTOM.aucKdsPin[0]" not in found


def test_nx70_groups_lines_by_server() -> None:
    raw = sample_raw_config(lines=3)
    raw["sip_lines"]["3"]["proxy_ip"] = "10.9.9.9"
    device = {"mac": "7c:2f:80:e0:d6:05", "vendor": "Gigaset", "model": "N870 IP PRO"}
    body = render_path(plugin_by_id("gigaset"), "7c2f80e0d605.xml", device=device, raw_config=raw)
    params = {e.get("name"): e.get("value") for e in ET.fromstring(body).iter("param")}
    assert params["SipProvider.1.ProxyServerAddress"] == "10.9.9.9"
    assert params["SipAccount.00001.ProviderId"] == params["SipAccount.00002.ProviderId"] == "0"
    assert params["SipAccount.00003.ProviderId"] == "1"
