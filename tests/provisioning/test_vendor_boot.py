"""A simulated phone of each shipped vendor boots against a running provisor.

Each phone fetches its boot sequence (tests/plugins/<id>/cases.json ``boot``) with its real
User-Agent; after an administrator gives it a config, its credentials file carries its SIP
account and servers, and an optional miss of its boot is not counted as a scan.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import REPO_PLUGINS, Server, make_settings, start_server

CASES = Path(__file__).resolve().parents[1] / "plugins"
VENDORS = sorted(p.name for p in CASES.iterdir() if (p / "cases.json").is_file())


@pytest.fixture
async def vendor_server(tmp_path: Path, database_url: str):  # type: ignore[no-untyped-def]
    srv = await start_server(
        make_settings(tmp_path, database_url, **{"general.plugin_dirs": [str(REPO_PLUGINS)]})
    )
    yield srv
    await srv.close()


@pytest.mark.parametrize("vendor", VENDORS)
async def test_phone_boots(vendor_server: Server, vendor: str) -> None:
    srv = vendor_server
    boot = json.loads((CASES / vendor / "cases.json").read_text())["boot"]
    ua = {"User-Agent": boot["user_agent"]}
    for path in boot["files"]:  # the first boot: the device is created on the way
        r = await srv.phone.get("/" + path, headers=ua)
        assert r.status_code in (200, 404), (path, r.status_code)
    devices = (await srv.api.get("/0.2/dev_mgr/devices")).json()["devices"]
    [device] = [d for d in devices if d.get("mac") == boot["mac"]]
    assert device["plugin"] == vendor
    config = {
        "config": {
            "id": f"cfg-{vendor}",
            "parent_ids": ["base"],
            "raw_config": {
                "sip_proxy_ip": "192.0.2.10",
                "sip_lines": {
                    "1": {
                        "username": "phone1001",
                        "password": "Boot-Secret-1",
                        "display_name": "Desk",
                    }
                },
            },
        }
    }
    assert (await srv.api.post("/0.2/cfg_mgr/configs", json=config)).status_code == 201
    device["config"] = f"cfg-{vendor}"
    assert (
        await srv.api.put(f"/0.2/dev_mgr/devices/{device['id']}", json={"device": device})
    ).status_code == 204
    for path in boot["files"]:
        r = await srv.phone.get("/" + path, headers=ua)
        assert r.status_code in (200, 404), (path, r.status_code)
    secret = await srv.phone.get("/" + boot["secret_file"], headers=ua)
    assert secret.status_code == 200
    assert b"Boot-Secret-1" in secret.content and b"192.0.2.10" in secret.content
    assert b"phone1001" in secret.content
    assert not srv.pipeline.failures.failures.count("127.0.0.1")
    doc = (await srv.api.get(f"/0.2/dev_mgr/devices/{device['id']}")).json()["device"]
    assert doc["configured"] is True and doc["remote_state_sip_username"] == "phone1001"
