"""Identification classes of issue 12 end to end: a phone's request over real HTTP to a running
provisor with every shipped plugin, then the device it created (or the trace's reason)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_PLUGINS, Server, make_settings, start_server

UPDATER = "FileTransport PolycomVVX-VVX_411-UA/6.1.0.1234 Type/Updater"
APPLICATION = "FileTransport PolycomVVX-VVX_411-UA/6.4.6.1234 Type/Application"


@pytest.fixture
async def srv(tmp_path: Path, database_url: str):  # type: ignore[no-untyped-def]
    server = await start_server(
        make_settings(tmp_path, database_url, **{"general.plugin_dirs": [str(REPO_PLUGINS)]})
    )
    yield server
    await server.close()


async def only_device(srv: Server) -> dict[str, Any]:
    [device] = (await srv.api.get("/0.2/dev_mgr/devices")).json()["devices"]
    return dict(device)


async def test_poly_updater_creates_the_device_without_its_version(srv: Server) -> None:
    await srv.phone.get("/0004f2aabbcc.cfg", headers={"User-Agent": UPDATER})
    device = await only_device(srv)
    assert (device["mac"], device["model"], device["plugin"]) == (
        "00:04:f2:aa:bb:cc",
        "VVX411",
        "poly",
    )
    assert not device.get("version")  # the updater's own version is not the firmware's
    r = await srv.phone.get("/0004f2aabbcc-user.cfg", headers={"User-Agent": APPLICATION})
    assert r.status_code == 200
    assert (await only_device(srv))["version"] == "6.4.6.1234"
    await srv.phone.get("/0004f2aabbcc.cfg", headers={"User-Agent": UPDATER})
    await srv.phone.put("/0004f2aabbcc-boot.log", headers={"User-Agent": APPLICATION})
    assert (await only_device(srv))["version"] == "6.4.6.1234"


async def test_snom_firmware_with_mac_query_is_snom(srv: Server) -> None:
    ua = "Mozilla/4.0 (compatible; snomD785-SIP 10.1.33.33)"
    await srv.phone.get(
        "/firmware/snomD785-10.1.46.16-SIP-r.bin",
        params={"mac": "000413922D24"},
        headers={"User-Agent": ua},
    )
    device = await only_device(srv)
    assert (device["vendor"], device["model"], device["plugin"]) == ("Snom", "D785", "snom")
    assert device["mac"] == "00:04:13:92:2d:24"


async def test_plugin_tie_is_in_the_trace(srv: Server) -> None:
    await srv.phone.get("/firmware/a.bin", params={"mac": "0004139a2d24"})
    [entry] = srv.pipeline.trace.query(client_ip="127.0.0.1", limit=1)
    tie = entry["identified"]["tie"]
    assert "alcatel:" in tie and "snom:" in tie and "Alcatel-Lucent" in tie
    assert entry["identified"]["vendor"] == "Snom"  # the MAC's OUI is Snom's


async def test_quoted_gigaset_user_agent(srv: Server) -> None:
    ua = '"Gigaset N870 IP PRO/83.V2.11.0+build.a546b91;7C2F80E0D605"'
    await srv.phone.get("/7c2f80e0d605.xml", headers={"User-Agent": ua})
    device = await only_device(srv)
    assert (device["model"], device["version"], device["plugin"]) == (
        "N870 IP PRO",
        "83.V2.11.0",
        "gigaset",
    )


async def test_cisco_serial_only_user_agent_takes_the_mac_of_its_file(srv: Server) -> None:
    ua = "Cisco/SPA504G-7.5.5 (CCQ16110ABC)"
    r = await srv.phone.get("/e05fb9a1b2c3.xml", headers={"User-Agent": ua})
    assert r.status_code == 200
    device = await only_device(srv)
    assert (device["mac"], device["sn"], device["plugin"]) == (
        "e0:5f:b9:a1:b2:c3",
        "CCQ16110ABC",
        "cisco-spa",
    )


async def test_no_user_agent_mac_file_with_vendor_oui(srv: Server) -> None:
    r = await srv.phone.get("/0002fdff2103.xml")  # a Cisco SPA's own file, a Cisco OUI
    assert r.status_code == 200
    device = await only_device(srv)
    assert (device["mac"], device["vendor"], device["plugin"]) == (
        "00:02:fd:ff:21:03",
        "Cisco",
        "cisco-spa",
    )


async def test_no_user_agent_mac_file_of_no_known_oui_creates_nothing(srv: Server) -> None:
    r = await srv.phone.get("/a0b1c2001122.cfg")
    assert r.status_code == 404
    assert (await srv.api.get("/0.2/dev_mgr/devices")).json()["devices"] == []
    [entry] = srv.pipeline.trace.query(client_ip="127.0.0.1", limit=1)
    assert entry["reason"]


async def test_mac_less_common_file_with_full_model_is_the_device_at_its_address(
    srv: Server,
) -> None:
    r = await srv.phone.get(
        "/config.3c28a620089e.xml", headers={"User-Agent": "ALE M5 2.13.02.2012 3c28a620089e"}
    )
    assert r.status_code == 200
    device = await only_device(srv)
    r = await srv.phone.get("/config.M5.xml", headers={"User-Agent": "ALE M5 2.13.02.2012"})
    assert r.status_code == 200
    [entry] = srv.pipeline.trace.query(client_ip="127.0.0.1", limit=1)
    assert entry["device_id"] == device["id"]
    assert entry["identified"] == {
        "vendor": "Alcatel-Lucent",
        "model": "M5",
        "version": "2.13.02.2012",
    }


async def test_mac_less_common_file_of_an_unknown_phone_says_why(srv: Server) -> None:
    r = await srv.phone.get("/config.M5.xml", headers={"User-Agent": "ALE M5 2.13.02.2012"})
    assert r.status_code == 404
    [entry] = srv.pipeline.trace.query(client_ip="127.0.0.1", limit=1)
    assert entry["identified"]["model"] == "M5"
    assert entry["reason"] == "device not identified (no MAC in User-Agent or path)"


TRIO_UPDATER = "FileTransport PolycomRealPresenceTrio-Trio_8800-UA/7.0.0.1000 Type/Updater"
TRIO = "FileTransport PolycomRealPresenceTrio-Trio_8800-UA/7.2.2.1094 Type/Application"


async def test_trio_is_polyos_and_a_vvx_stays_poly(srv: Server) -> None:
    r = await srv.phone.get("/64167fa0b1c2.cfg", headers={"User-Agent": TRIO_UPDATER})
    assert r.status_code == 200 and b'CONFIG_FILES="64167fa0b1c2-ucs.cfg"' in r.content
    device = await only_device(srv)
    assert (device["plugin"], device["vendor"], device["model"]) == ("polyos", "Poly", "Trio8800")
    assert not device.get("version")  # the updater's own version is not the firmware's
    r = await srv.phone.get("/64167fa0b1c2-ucs.cfg", headers={"User-Agent": TRIO})
    assert r.status_code == 200 and (await only_device(srv))["version"] == "7.2.2.1094"
    await srv.phone.get("/0004f2aabbcc-user.cfg", headers={"User-Agent": APPLICATION})
    devices = (await srv.api.get("/0.2/dev_mgr/devices")).json()["devices"]
    assert {d["mac"]: d["plugin"] for d in devices} == {
        "64:16:7f:a0:b1:c2": "polyos",
        "00:04:f2:aa:bb:cc": "poly",
    }


async def test_poly_mac_cfg_without_user_agent_creates_nothing(srv: Server) -> None:
    r = await srv.phone.get("/64167fa0b1c2.cfg", headers={"User-Agent": ""})
    assert r.status_code == 404
    assert (await srv.api.get("/0.2/dev_mgr/devices")).json()["devices"] == []


async def test_grandstream_ht818_and_panasonic_regional_model(srv: Server) -> None:
    ua = "Grandstream Model HW HT818 V1.0A SW 1.0.33.4 DevId c074ad0a1f2e"
    r = await srv.phone.get("/cfgc074ad0a1f2e.xml", headers={"User-Agent": ua})
    assert r.status_code == 200 and b"<P4067></P4067>" in r.content  # port 8, free: cleared
    ua = "Panasonic_KX-HDV230NE/08.100 (0080F0A1B2C3)"
    r = await srv.phone.get("/Panasonic/Config0080F0A1B2C3.cfg", headers={"User-Agent": ua})
    assert r.status_code == 200 and r.content.startswith(b"# PCC Standard Format File")
    devices = (await srv.api.get("/0.2/dev_mgr/devices")).json()["devices"]
    assert {d["mac"]: (d["plugin"], d["model"]) for d in devices} == {
        "c0:74:ad:0a:1f:2e": ("grandstream", "HT818"),
        "00:80:f0:a1:b2:c3": ("panasonic", "KX-HDV230"),
    }


LINKSYS = "Linksys/SPA-942-6.1.5(a) (88019FA42805)"


async def test_linksys_serial_only_user_agent_creates_and_finds_the_device_by_serial(
    srv: Server,
) -> None:
    """An older Linksys-branded SPA names its serial number and no MAC: its first request
    creates the device by serial, the next ones find it by serial, and the MAC in its own
    profile's name completes it (one device throughout)."""
    r = await srv.phone.get("/spa942.cfg", headers={"User-Agent": LINKSYS})
    assert r.status_code == 200
    device = await only_device(srv)
    assert (device["sn"], device["model"], device["plugin"]) == (
        "88019FA42805",
        "SPA942",
        "cisco-spa",
    )
    assert not device.get("mac")
    # NAT on: an address names no device, so what finds it again is its serial number
    r = await srv.api.put("/0.2/configure/NAT", json={"param": {"value": "1"}})
    assert r.status_code == 204
    r = await srv.phone.get("/spa942.cfg", headers={"User-Agent": LINKSYS})
    assert r.status_code == 200
    [entry] = srv.pipeline.trace.query(client_ip="127.0.0.1", limit=1)
    assert entry["device_id"] == device["id"] and not entry["created"]
    r = await srv.phone.get("/000e08a1b2c3.xml", headers={"User-Agent": LINKSYS})
    found = await only_device(srv)
    assert (found["id"], found["mac"], found["sn"]) == (
        device["id"],
        "00:0e:08:a1:b2:c3",
        "88019FA42805",
    )


async def test_a_serial_with_another_mac_is_another_device(srv: Server) -> None:
    """A device found by its serial number must agree with the MAC the request names."""
    ua = "Cisco/SPA504G-7.5.5 ({mac})(CCQ16110ABC)"
    r = await srv.phone.get(
        "/e05fb9a1b2c3.xml", headers={"User-Agent": ua.format(mac="e05fb9a1b2c3")}
    )
    assert r.status_code == 200
    first = await only_device(srv)
    r = await srv.phone.get(
        "/e05fb9a1b2c4.xml", headers={"User-Agent": ua.format(mac="e05fb9a1b2c4")}
    )
    assert r.status_code == 200
    devices = (await srv.api.get("/0.2/dev_mgr/devices")).json()["devices"]
    assert sorted(d["mac"] for d in devices) == ["e0:5f:b9:a1:b2:c3", "e0:5f:b9:a1:b2:c4"]
    assert (await srv.api.get(f"/0.2/dev_mgr/devices/{first['id']}")).json()["device"]["mac"] == (
        "e0:5f:b9:a1:b2:c3"
    )
