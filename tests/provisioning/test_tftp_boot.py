"""Phones that boot over TFTP with no User-Agent (Cisco enterprise phones, analog gateways):
a running provisor, the real tftp-hpa and atftp clients, then curl over HTTP.

Each plugin whose ``tests/plugins/<id>/cases.json`` has a ``tftp_boot`` entry is booted as its
device does: the files of ``boot.files`` in order over TFTP (optional ones answered "file not
found", never counted as a scan), the device created from the MAC in a file name and given to
that plugin; then an administrator's config, and the device file fetched again by both TFTP
clients and by curl over HTTP carries the account, byte for byte the same.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_PLUGINS, Server, make_settings, start_server

CASES = Path(__file__).resolve().parents[1] / "plugins"
PLUGINS = sorted(
    p.name
    for p in CASES.iterdir()
    if (p / "cases.json").is_file() and "tftp_boot" in json.loads((p / "cases.json").read_text())
)
CLIENTS = pytest.mark.skipif(
    not (shutil.which("tftp") and shutil.which("atftp") and shutil.which("curl")),
    reason="needs tftp-hpa's tftp, atftp and curl",
)


@pytest.fixture
async def srv(tmp_path: Path, database_url: str):  # type: ignore[no-untyped-def]
    server = await start_server(
        make_settings(
            tmp_path,
            database_url,
            **{"general.plugin_dirs": [str(REPO_PLUGINS)], "provisioning.tftp_enabled": True},
        )
    )
    yield server
    await server.close()


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)


async def hpa_get(port: int, name: str, out: Path) -> bool:
    """tftp-hpa's client; True when the file came (its exit status is 0 even on an error)."""
    out.unlink(missing_ok=True)
    argv = ["tftp", "127.0.0.1", str(port), "-m", "binary", "-c", "get", name, str(out)]
    r = await asyncio.to_thread(_run, argv)
    return r.returncode == 0 and "Error code" not in r.stdout + r.stderr and out.is_file()


async def atftp_get(port: int, name: str, out: Path) -> bool:
    """atftp's client (with the block-size and size options phones send)."""
    out.unlink(missing_ok=True)
    argv = ["atftp", "--option", "blksize 1432", "--option", "tsize 0"]
    argv += ["-g", "-r", name, "-l", str(out), "127.0.0.1", str(port)]
    r = await asyncio.to_thread(_run, argv)
    return r.returncode == 0 and out.is_file()


async def curl_get(srv: Server, name: str, out: Path) -> int:
    """curl over HTTP without a User-Agent (``-A ''`` sends none); the status code."""
    argv = ["curl", "-sS", "-A", "", "-o", str(out), "-w", "%{http_code}", f"{srv.http_url}/{name}"]
    r = await asyncio.to_thread(_run, argv)
    return int(r.stdout or 0)


async def _configure(srv: Server, device: dict[str, Any], plugin_id: str) -> None:
    raw = {
        "sip_proxy_ip": "192.0.2.10",
        "sip_lines": {
            str(n): {"username": f"port{n}", "password": f"Tftp-Secret-{n}", "display_name": "Desk"}
            for n in (1, 2)
        },
    }
    config = {"config": {"id": f"cfg-{plugin_id}", "parent_ids": ["base"], "raw_config": raw}}
    assert (await srv.api.post("/0.2/cfg_mgr/configs", json=config)).status_code == 201
    device["config"] = f"cfg-{plugin_id}"
    r = await srv.api.put(f"/0.2/dev_mgr/devices/{device['id']}", json={"device": device})
    assert r.status_code == 204


@CLIENTS
@pytest.mark.parametrize("plugin_id", PLUGINS)
async def test_tftp_boot_then_http(srv: Server, plugin_id: str, tmp_path: Path) -> None:
    case = json.loads((CASES / plugin_id / "cases.json").read_text())
    spec = case["tftp_boot"]
    boot = {**case["boot"], **spec}  # a device booting over TFTP may be another family
    port = srv.running.ports["tftp"]
    for name in boot["files"]:
        got = await hpa_get(port, name, tmp_path / "f")
        assert got == (name not in spec.get("misses", [])), name
    [device] = (await srv.api.get("/0.2/dev_mgr/devices")).json()["devices"]
    assert (device["mac"], device["plugin"]) == (boot["mac"], plugin_id)
    assert device.get("vendor") == spec["vendor"]

    await _configure(srv, device, plugin_id)
    secret = boot["secret_file"]
    assert await hpa_get(port, secret, tmp_path / "hpa")
    assert await atftp_get(port, secret, tmp_path / "atftp")
    assert await curl_get(srv, secret, tmp_path / "curl") == 200
    body = (tmp_path / "hpa").read_bytes()
    assert body == (tmp_path / "atftp").read_bytes() == (tmp_path / "curl").read_bytes()
    for text in ("port1", "Tftp-Secret-1", "port2", "Tftp-Secret-2", "192.0.2.10"):
        assert text.encode() in body, text
    doc = (await srv.api.get(f"/0.2/dev_mgr/devices/{device['id']}")).json()["device"]
    assert doc["configured"] is True
    for name in spec.get("misses", []):  # still "file not found", still not a scan
        assert not await atftp_get(port, name, tmp_path / "miss")
    # a new device counts as a guess until it comes back; the misses never count
    assert not srv.pipeline.failures.failures.count("127.0.0.1")
