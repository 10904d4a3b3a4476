"""Importing a wazo-provd storage directory (fixture written in its layout)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from provisor.migrate_wazo import import_wazo_provd, map_plugin
from tests.conftest import REPO_PLUGINS, Server, make_settings, start_server

SUB = "11111111-2222-4333-8444-555555555555"


def wazo_dir(root: Path, master: str) -> Path:
    (root / "jsondb" / "devices").mkdir(parents=True)
    (root / "jsondb" / "configs").mkdir(parents=True)
    devices = {
        "dev-yealink": {
            "id": "dev-yealink",
            "mac": "00:15:65:11:22:33",
            "ip": "10.0.0.5",
            "vendor": "Yealink",
            "model": "T46S",
            "plugin": "wazo-yealink-v86",
            "config": "dev-yealink",
            "tenant_uuid": SUB,
            "configured": True,
            "is_new": False,
            "options": {"switchboard": False},
        },
        "dev-gigaset": {
            "id": "dev-gigaset",
            "mac": "7c:2f:80:00:00:01",
            "plugin": "wazo-gigaset-N720-DM-PRO",
            "tenant_uuid": master,
            "added": "auto",
        },
        "dev-badmac": {"id": "dev-badmac", "mac": "zz:zz", "tenant_uuid": master},
    }
    for name, doc in devices.items():
        (root / "jsondb" / "devices" / name).write_text(json.dumps(doc))
    (root / "jsondb" / "devices" / "corrupt").write_text("{not json")
    configs = {
        "dev-yealink": {
            "id": "dev-yealink",
            "parent_ids": ["base", "defaultconfigdevice"],
            "X_type": "device",
            "configdevice": "defaultconfigdevice",
            "deletable": True,
            "raw_config": {
                "sip_lines": {
                    "1": {"username": "alice", "password": "s3cret", "display_name": "Alice"}
                },
                "X_xivo_user_uuid": "u-1",
                "XX_plugin_key": 1,
                "ntp_ip": None,
            },
        },
        "broken": {"id": "broken", "raw_config": {}},
        "unused-line": {
            "id": "unused-line",
            "parent_ids": ["base"],
            "raw_config": {"sip_lines": {"1": {"username": "bob", "password": "b0bsecret"}}},
        },
    }
    for name, doc in configs.items():
        (root / "jsondb" / "configs" / name).write_text(json.dumps(doc))
    (root / "app.json").write_text(
        json.dumps(
            {
                "plugin_server": "http://provd.wazo.community/plugins/2/stable/",
                "NAT": 1,
                "locale": "fr_FR",
                "tenants": {
                    SUB: {"provisioning_key": "sub-key-12345"},
                    master: {"provisioning_key": None},
                },
            }
        )
    )
    return root


async def test_import_is_complete_and_idempotent(tmp_path: Path, database_url: str) -> None:
    server = await start_server(
        make_settings(tmp_path, database_url, **{"general.plugin_dirs": [str(REPO_PLUGINS)]})
    )
    try:
        await _check_import(server, tmp_path)
    finally:
        await server.close()


async def _check_import(server: Server, tmp_path: Path) -> None:
    root = wazo_dir(tmp_path / "wazo", server.master)
    report = await import_wazo_provd(server.prov, root)
    assert (report.devices, report.configs, report.keys) == (2, 2, 1)
    text = "\n".join(report.lines())
    assert "wazo-gigaset-N720-DM-PRO" in text and "dev-badmac" in text and "corrupt" in text
    assert "config 'broken'" in text and "plugin_server" in text
    again = await import_wazo_provd(server.prov, root)
    assert (again.devices, again.configs, again.tenants) == (2, 2, 0)
    token = await server.token_for(SUB)
    async with server.client(token) as sub:
        device = (await sub.get("/0.2/dev_mgr/devices/dev-yealink")).json()["device"]
        assert device["plugin"] == "yealink" and device["mac"] == "00:15:65:11:22:33"
        assert device["configured"] is True
        raw = (await sub.get("/0.2/cfg_mgr/configs/dev-yealink/raw")).json()["raw_config"]
        assert raw["sip_lines"]["1"]["username"] == "alice" and "XX_plugin_key" not in raw
        # a config no sub-tenant's device uses is the master's: sub-tenants never read it
        assert (await sub.get("/0.2/cfg_mgr/configs/unused-line")).status_code == 404
    owned = await server.prov.configs.store.get("unused-line")
    assert owned is not None and owned["tenant_uuid"] == server.master
    # the per-device config went to its device's tenant: another tenant cannot read it
    other = await server.token_for((await server.prov.tenants.create("other")).uuid)
    async with server.client(other) as c:
        assert (await c.get("/0.2/cfg_mgr/configs/dev-yealink")).status_code == 404
    assert server.prov.tenants.by_key("sub-key-12345").uuid == SUB  # type: ignore[union-attr]
    assert (await server.api.get("/0.2/configure/NAT")).json()["param"]["value"] == 1
    # the imported phone is served with its credentials under its tenant's key
    r = await server.phone.get(
        "/sub-key-12345/001565112233.cfg",
        headers={"User-Agent": "Yealink SIP-T46S 66.86.0.15 00:15:65:11:22:33"},
    )
    assert r.status_code == 200 and b"account.1.password = s3cret" in r.content


def test_plugin_map() -> None:
    assert map_plugin("wazo-yealink-v87") == "yealink"
    assert map_plugin("wazo-cisco-sip-12.0.1") == "cisco-mpp"
    assert map_plugin("wazo-cisco-sccp-9.4") is None
    assert map_plugin("wazo-patton-6.11") == "patton"
    assert map_plugin(None) is None


def test_cli_import(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PROVISOR_TEST_DATABASE_URL"}
    env["PROVISOR_DATA_DIR"] = str(tmp_path / "data")
    root = wazo_dir(tmp_path / "wazo", "00000000-0000-4000-8000-000000000000")
    r = subprocess.run(
        [sys.executable, "-m", "provisor.cli", "import", "wazo-provd", str(root)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert "devices: 2" in r.stdout
    r = subprocess.run(
        [sys.executable, "-m", "provisor.cli", "import", "wazo-provd", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert r.returncode != 0 and "not a wazo-provd storage directory" in r.stdout + r.stderr
