"""DHCP out (ISC and Kea configuration, checked by the real servers) and in (lease events)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from provisor.dhcp.config import isc_config, kea_config, vendor_classes
from provisor.errors import InvalidInput
from provisor.plugins.loader import PluginSet
from tests.conftest import REPO_PLUGINS, make_settings, start_server

KEA = shutil.which("kea-dhcp4") or (
    "/usr/sbin/kea-dhcp4" if Path("/usr/sbin/kea-dhcp4").exists() else None
)
DHCPD = shutil.which("dhcpd") or ("/usr/sbin/dhcpd" if Path("/usr/sbin/dhcpd").exists() else None)


@pytest.fixture(scope="module")
def classes():  # type: ignore[no-untyped-def]
    return vendor_classes(
        PluginSet.from_folders([REPO_PLUGINS]), "http://192.0.2.1:8667/tenant-key-1"
    )


def test_classes_cover_vendors(classes) -> None:  # type: ignore[no-untyped-def]
    names = {c.name for c in classes}
    assert {"provisor-yealink", "provisor-cisco-mpp", "provisor-poly", "provisor-mitel"} <= names
    yealink = next(c for c in classes if c.name == "provisor-yealink")
    assert "00:15:65" in yealink.ouis
    assert [(o.code, o.value) for o in yealink.options] == [
        (66, "http://192.0.2.1:8667/tenant-key-1")
    ]
    poly = next(c for c in classes if c.name == "provisor-poly")
    assert (
        poly.option(66)
        == poly.option(160)
        == ("http://192.0.2.1:8667/tenant-key-1/000000000000.cfg")
    )
    cisco = next(c for c in classes if c.name == "provisor-cisco-mpp")
    assert cisco.option(150) == "192.0.2.1"
    fanvil = next(c for c in classes if c.name == "provisor-fanvil")
    assert bytes.fromhex(fanvil.option(43) or "") == b"http://192.0.2.1:8667/tenant-key-1/Fanvil"


def test_option_43_sub_options_are_code_length_value(classes) -> None:  # type: ignore[no-untyped-def]
    mitel = next(c for c in classes if c.name == "provisor-mitel")
    raw = bytes.fromhex(mitel.option(43) or "")
    url = b"http://192.0.2.1:8667/tenant-key-1/Aastra"
    assert raw == bytes([2, len(url)]) + url + bytes([3, 1, 0])


def test_option_150_is_left_out_for_a_host_name() -> None:
    named = vendor_classes(PluginSet.from_folders([REPO_PLUGINS]), "http://prov.example:8667")
    cisco = next(c for c in named if c.name == "provisor-cisco-mpp")
    assert cisco.option(150) is None and cisco.option(66) == "http://prov.example:8667"


def test_values_that_cannot_be_quoted_are_refused() -> None:
    with pytest.raises(InvalidInput, match="cannot be quoted"):
        vendor_classes(PluginSet.from_folders([REPO_PLUGINS]), 'http://192.0.2.1/"x')


@pytest.mark.skipif(KEA is None, reason="kea-dhcp4 not installed (Debian kea-dhcp4-server)")
def test_kea_accepts_the_configuration(classes, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    conf = tmp_path / "kea.json"
    conf.write_text(kea_config(classes))
    data = json.loads(conf.read_text())
    assert any(
        c["name"] == "provisor-cisco-mpp" and "option[60].hex" in c["test"]
        for c in data["Dhcp4"]["client-classes"]
    )
    assert {d["code"] for d in data["Dhcp4"]["option-def"]} == {150, 160}
    r = subprocess.run(
        [KEA, "-t", str(conf)], capture_output=True, text=True, timeout=60, check=False
    )  # type: ignore[list-item]
    assert r.returncode == 0, r.stdout + r.stderr
    broken = tmp_path / "broken.json"
    broken.write_text(conf.read_text().replace("substring(pkt4.mac,0,3)", "substring(pkt4.mac,0,"))
    assert (
        subprocess.run(
            [KEA, "-t", str(broken)], capture_output=True, timeout=60, check=False
        ).returncode
        != 0
    )  # type: ignore[list-item]


@pytest.mark.skipif(DHCPD is None, reason="dhcpd not installed (Debian isc-dhcp-server)")
def test_isc_dhcpd_accepts_the_configuration(classes, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    include = tmp_path / "provisor.conf"
    include.write_text(isc_config(classes))
    main = tmp_path / "dhcpd.conf"
    main.write_text(f'ddns-update-style none;\ninclude "{include}";\n')
    assert "option provisor-tftp-servers code 150 = array of ip-address;" in include.read_text()
    r = subprocess.run(
        [DHCPD, "-t", "-cf", str(main)], capture_output=True, text=True, timeout=60, check=False
    )  # type: ignore[list-item]
    assert r.returncode == 0, r.stdout + r.stderr


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "provisor.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_cli_config_with_tenant_key(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PROVISOR_TEST_DATABASE_URL"}
    env.update(
        PROVISOR_DATA_DIR=str(tmp_path),
        PROVISOR_GENERAL__PLUGIN_DIRS=json.dumps([str(REPO_PLUGINS)]),
        PROVISOR_ADVERTISED_HTTP_URL="http://192.0.2.1:8667",
    )
    r = _cli("dhcp", "config", "--server", "isc", env=env)
    assert (
        r.returncode == 0
        and 'class "provisor-yealink"' in r.stdout
        and "http://192.0.2.1:8667" in r.stdout
    )
    tenant = _cli("tenant", "create", "acme", env=env).stdout.strip()
    r = _cli("dhcp", "config", "--server", "kea", "--tenant", tenant, env=env)
    assert r.returncode != 0  # no key yet: refused with a reason
    assert _cli("dhcp", "config", "--server", "bind", env=env).returncode == 2


async def test_notify_sends_a_lease_that_identifies_the_phone(
    tmp_path: Path, database_url: str
) -> None:
    srv = await start_server(make_settings(tmp_path, database_url))
    try:
        env = {k: v for k, v in os.environ.items() if k != "PROVISOR_TEST_DATABASE_URL"}
        env.update(
            PROVISOR_URL=srv.rest_url,
            PROVISOR_TOKEN=srv.token,
            LEASES4_AT0_ADDRESS="10.3.0.9",
            LEASES4_AT0_HWADDR="00:11:22:0a:0b:0c",
        )
        import asyncio

        r = await asyncio.to_thread(
            _cli, "dhcp", "notify", "--kea-env", "--option", "60=TestPhone-TP200", env=env
        )
        assert r.returncode == 0, r.stderr
        [device] = (await srv.api.get("/0.2/dev_mgr/devices")).json()["devices"]
        assert (
            device["ip"] == "10.3.0.9"
            and device["model"] == "TP200"
            and device["plugin"] == "testphone"
        )
        env["PROVISOR_TOKEN"] = "wrong"
        r = await asyncio.to_thread(_cli, "dhcp", "notify", "--kea-env", env=env)
        assert r.returncode == 1 and "401" in r.stderr
        # As Kea's run_script calls it: the hook point first, the token from a file.
        del env["PROVISOR_TOKEN"]
        token_file = tmp_path / "dhcp.token"
        token_file.write_text(srv.token + "\n")
        env.update(
            PROVISOR_TOKEN_FILE=str(token_file),
            LEASES4_SIZE="1",
            LEASES4_AT0_ADDRESS="10.3.0.10",
            LEASES4_AT0_HWADDR="00:11:22:0a:0b:0d",
        )
        r = await asyncio.to_thread(
            _cli, "dhcp", "notify", "--kea-hook", "leases4_committed", env=env
        )
        assert r.returncode == 0, r.stderr
        query = {"q": json.dumps({"mac": "00:11:22:0a:0b:0d"})}
        found = (await srv.api.get("/0.2/dev_mgr/devices", params=query)).json()
        [device] = found["devices"]
        assert device["ip"] == "10.3.0.10" and device["vendor"] == "TestVendor"  # by OUI
        # Hook points with no lease to report do nothing, even without a token.
        for hook, extra in (("pkt4_receive", {}), ("leases4_committed", {"LEASES4_SIZE": "0"})):
            r = await asyncio.to_thread(
                _cli, "dhcp", "notify", "--kea-hook", hook,
                env={**env, **extra, "PROVISOR_TOKEN_FILE": "/nonexistent"},
            )  # fmt: skip
            assert r.returncode == 0 and r.stderr == ""
        r = await asyncio.to_thread(
            _cli, "dhcp", "notify", "--kea-hook", "leases4_committed",
            env={**env, "PROVISOR_TOKEN_FILE": str(tmp_path / "missing")},
        )  # fmt: skip
        assert r.returncode == 2 and "cannot read the token file" in r.stderr
        # a release is accepted and changes nothing (wazo's dhcpinfo semantics)
        r = await asyncio.to_thread(
            _cli, "dhcp", "notify", "--kea-hook", "lease4_release",
            env={**env, "LEASE4_ADDRESS": "10.3.0.11", "LEASE4_HWADDR": "00:11:22:0a:0b:0e",
                 "LEASES4_AT0_ADDRESS": "", "LEASES4_AT0_HWADDR": ""},
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        total = (await srv.api.get("/0.2/dev_mgr/devices")).json()["devices"]
        assert len(total) == 2
    finally:
        await srv.close()
