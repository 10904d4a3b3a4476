"""A simulated phone of each vendor that boots over TFTP (``boot.tftp`` in tests/plugins/<id>/
cases.json) boots against a running provisor with the real TFTP clients, tftp-hpa and atftp.

TFTP carries no User-Agent: the first file the phone asks for must name it (its MAC in the
path), the device is created with the right plugin, and once an administrator gives it a config
its credentials file, fetched by both real clients, carries its SIP account.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO_PLUGINS, Server, make_settings, start_server
from tests.provisioning.tftp_client import tftp_get

CASES = Path(__file__).resolve().parents[1] / "plugins"
VENDORS = sorted(
    p.name
    for p in CASES.iterdir()
    if (p / "cases.json").is_file()
    and "tftp" in json.loads((p / "cases.json").read_text()).get("boot", {})
)


@pytest.fixture
async def tftp_server(tmp_path: Path, database_url: str):  # type: ignore[no-untyped-def]
    srv = await start_server(
        make_settings(
            tmp_path,
            database_url,
            **{"general.plugin_dirs": [str(REPO_PLUGINS)], "provisioning.tftp_enabled": True},
        )
    )
    yield srv
    await srv.close()


def _client_get(argv: list[str], out: Path) -> bytes:
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    assert r.returncode == 0 and out.is_file(), (argv[0], r.stdout, r.stderr)
    return out.read_bytes()


async def real_clients_get(port: int, name: str, tmp: Path) -> list[bytes]:
    """The file as tftp-hpa and atftp fetch it."""
    got = []
    hpa, at = tmp / "hpa.out", tmp / "atftp.out"
    for out in (hpa, at):
        out.unlink(missing_ok=True)
    got.append(
        await asyncio.to_thread(
            _client_get,
            ["tftp", "127.0.0.1", str(port), "-m", "binary", "-c", "get", name, str(hpa)],
            hpa,
        )
    )
    got.append(
        await asyncio.to_thread(
            _client_get,
            ["atftp", "-g", "-r", name, "-l", str(at), "127.0.0.1", str(port)],
            at,
        )
    )
    return got


def test_some_vendor_boots_over_tftp() -> None:
    assert VENDORS  # the parametrised test below is not empty


@pytest.mark.skipif(not (shutil.which("tftp") and shutil.which("atftp")), reason="no clients")
@pytest.mark.parametrize("vendor", VENDORS)
async def test_phone_boots_over_tftp(tftp_server: Server, vendor: str, tmp_path: Path) -> None:
    srv = tftp_server
    port = srv.running.ports["tftp"]
    boot = json.loads((CASES / vendor / "cases.json").read_text())["boot"]
    first, *rest = boot["tftp"]
    await tftp_get("127.0.0.1", port, first)  # the first boot: the device is created by it
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
                    "1": {"username": "phone1001", "password": "Tftp-Secret-1", "number": "1001"}
                },
            },
        }
    }
    assert (await srv.api.post("/0.2/cfg_mgr/configs", json=config)).status_code == 201
    device["config"] = f"cfg-{vendor}"
    r = await srv.api.put(f"/0.2/dev_mgr/devices/{device['id']}", json={"device": device})
    assert r.status_code == 204
    for name in rest:
        assert await tftp_get("127.0.0.1", port, name)
    secret = await tftp_get("127.0.0.1", port, boot["secret_file"])
    assert b"Tftp-Secret-1" in secret and b"192.0.2.10" in secret and b"phone1001" in secret
    assert await real_clients_get(port, boot["secret_file"], tmp_path) == [secret, secret]
    doc = (await srv.api.get(f"/0.2/dev_mgr/devices/{device['id']}")).json()["device"]
    assert doc["configured"] is True and doc["remote_state_sip_username"] == "phone1001"
    assert not srv.pipeline.failures.failures.count("127.0.0.1")
