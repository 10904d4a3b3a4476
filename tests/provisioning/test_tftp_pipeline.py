"""Phones over TFTP: the same pipeline and the same bytes as HTTP, real clients included."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import make_settings, start_server
from tests.provisioning.test_http_pipeline import UA, configure
from tests.provisioning.tftp_client import TftpError, tftp_get


async def test_tftp_serves_identical_bytes(tmp_path: Path, database_url: str) -> None:
    srv = await start_server(
        make_settings(tmp_path, database_url, **{"provisioning.tftp_enabled": True})
    )
    try:
        port = srv.running.ports["tftp"]
        # an unknown device asking by file name: identified by the MAC in the path
        data = await tftp_get("127.0.0.1", port, "001122334455.cfg", blksize=1432)
        [device] = (await srv.api.get("/0.2/dev_mgr/devices")).json()["devices"]
        assert device["mac"] == "00:11:22:33:44:55" and device["plugin"] == "testphone"
        await configure(srv, device["id"])
        data = await tftp_get("127.0.0.1", port, "001122334455.cfg")
        http = await srv.phone.get("/001122334455.cfg", headers={"User-Agent": UA})
        assert data == http.content and b"line1.password = Pw-line1" in data
        with pytest.raises(TftpError) as err:
            await tftp_get("127.0.0.1", port, "nothing-here.bin")
        assert err.value.code == 1 and err.value.message == "Nowhere to route this request."
        with pytest.raises(TftpError) as err:
            await tftp_get("127.0.0.1", port, "../../etc/passwd")
        assert err.value.code == 2
        if shutil.which("tftp"):
            out = tmp_path / "hpa.cfg"
            r = await asyncio.to_thread(
                subprocess.run,
                [
                    "tftp",
                    "127.0.0.1",
                    str(port),
                    "-m",
                    "binary",
                    "-c",
                    "get",
                    "001122334455.cfg",
                    str(out),
                ],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            assert r.returncode == 0 and out.read_bytes() == http.content
    finally:
        await srv.close()


async def test_tftp_off_for_a_tenant_and_keys(tmp_path: Path, database_url: str) -> None:
    srv = await start_server(
        make_settings(
            tmp_path,
            database_url,
            **{"provisioning.tftp_enabled": True, "general.http_auth_strategy": "url_key"},
        )
    )
    try:
        port = srv.running.ports["tftp"]
        tenant = (await srv.prov.tenants.create("t")).uuid
        await srv.prov.tenants.set_key(tenant, "tftp-key-01")
        with pytest.raises(TftpError):
            await tftp_get("127.0.0.1", port, "001122334455.cfg")  # url_key: no key, nothing
        data = await tftp_get("127.0.0.1", port, "tftp-key-01/001122334455.cfg")
        assert b"device file for 00:11:22:33:44:55" in data
        await srv.prov.tenants.set_tftp(tenant, False)
        with pytest.raises(TftpError) as err:
            await tftp_get("127.0.0.1", port, "tftp-key-01/001122334455.cfg")
        assert err.value.code == 1
    finally:
        await srv.close()
