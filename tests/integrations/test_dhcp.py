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
    assert "00:15:65" in yealink.ouis and yealink.options == (
        ("66", "http://192.0.2.1:8667/tenant-key-1"),
    )
    poly = next(c for c in classes if c.name == "provisor-poly")
    assert poly.options[0][1].endswith("/tenant-key-1/000000000000.cfg")


@pytest.mark.skipif(KEA is None, reason="kea-dhcp4 not installed (Debian kea-dhcp4-server)")
def test_kea_accepts_the_configuration(classes, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    conf = tmp_path / "kea.json"
    conf.write_text(kea_config(classes))
    data = json.loads(conf.read_text())
    assert any(
        c["name"] == "provisor-cisco-mpp" and "option[60].hex" in c["test"]
        for c in data["Dhcp4"]["client-classes"]
    )
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
    finally:
        await srv.close()
