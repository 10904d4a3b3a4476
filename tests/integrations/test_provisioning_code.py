"""Provisioning codes: the phone dials a code, the AGI script calls provisor, the phone is
given the config and resynced. The test drives the endpoint as the AGI script does, and runs
the AGI script itself against a scripted Asterisk AGI conversation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import Server, make_settings, start_server
from tests.provisioning.test_http_pipeline import UA
from tests.support.sip_peer import SipPeer
from tests.support.waiting import until

AGI = Path(__file__).resolve().parents[2] / "contrib" / "provisor-autoprov.agi"


async def _setup(srv: Server) -> tuple[str, str]:
    tenant = (await srv.prov.tenants.create("acme")).uuid
    body = {
        "config": {
            "id": "alice",
            "parent_ids": ["base"],
            "provisioning_code": "1234",
            "raw_config": {"sip_lines": {"1": {"username": "alice", "password": "Alice-pw-1"}}},
        }
    }
    assert (
        await srv.api.post("/0.2/cfg_mgr/configs", json=body, headers={"Wazo-Tenant": tenant})
    ).status_code == 201
    await srv.phone.get("/tp/common.cfg", headers={"User-Agent": UA})
    [device] = (await srv.api.get("/0.2/dev_mgr/devices")).json()["devices"]
    return tenant, device["id"]


async def test_code_moves_device_and_resyncs(tmp_path: Path, database_url: str) -> None:
    peer = await SipPeer().start()
    srv = await start_server(
        make_settings(tmp_path, database_url, **{"sync.sip_port": peer.udp_port})
    )
    try:
        tenant, device_id = await _setup(srv)
        r = await srv.api.post(
            "/0.2/dev_mgr/provisioning_code", json={"code": "9999", "ip": "127.0.0.1"}
        )
        assert r.status_code == 404 and "unknown provisioning code" in r.text
        r = await srv.api.post(
            "/0.2/dev_mgr/provisioning_code", json={"code": "12a", "ip": "127.0.0.1"}
        )
        assert r.status_code == 400
        r = await srv.api.post(
            "/0.2/dev_mgr/provisioning_code", json={"code": "1234", "ip": "127.0.0.1"}
        )
        assert r.status_code == 200, r.text
        result = r.json()
        assert (
            result["device"] == device_id and result["config"] == "alice" and result["synchronize"]
        )
        async with srv.client(await srv.token_for(tenant)) as acme:
            got = await acme.get(f"/0.2/dev_mgr/devices/{device_id}")
            assert got.status_code == 200, got.text
            doc = got.json()["device"]
        assert (
            doc["tenant_uuid"] == tenant and doc["config"] == "alice" and doc["configured"] is True
        )
        await until(peer.events, "the phone's check-sync NOTIFY")
        assert peer.events() == ["check-sync"]
        r = await srv.phone.get("/001122334455.cfg", headers={"User-Agent": UA})
        assert b"Alice-pw-1" in r.content
    finally:
        await srv.close()
        await peer.stop()


async def test_wrong_codes_are_rate_limited(tmp_path: Path, database_url: str) -> None:
    srv = await start_server(
        make_settings(tmp_path, database_url, **{"provisioning.ban_threshold": 3})
    )
    try:
        await _setup(srv)
        codes = [
            (
                await srv.api.post(
                    "/0.2/dev_mgr/provisioning_code", json={"code": f"99{n}", "ip": "127.0.0.1"}
                )
            ).status_code
            for n in range(5)
        ]
        assert codes == [404] * 5
        r = await srv.api.post(
            "/0.2/dev_mgr/provisioning_code", json={"code": "1234", "ip": "127.0.0.1"}
        )
        assert r.status_code == 404 and "refused" in r.text
    finally:
        await srv.close()


async def test_agi_script(server: Server) -> None:
    await _setup(server)
    # the AGI conversation: environment, then answers to GET VARIABLE and SET VARIABLE
    stdin = "\n".join(
        [
            "agi_request: provisor-autoprov.agi",
            "agi_callerid: anonymous",
            "agi_arg_1: 1234",
            "",
            "200 result=1 (anonymous)",
            "200 result=1 (127.0.0.1:5060)",
            "200 result=1",
            "",
        ]
    )
    env = {**os.environ, "PROVISOR_URL": server.rest_url, "PROVISOR_TOKEN": server.token}
    import asyncio

    r = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, str(AGI), "1234"],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert "SET VARIABLE PROVISOR_RESULT ok" in r.stdout
    [device] = (await server.api.get("/0.2/dev_mgr/devices", params={"recurse": "true"})).json()[
        "devices"
    ]
    assert device["config"] == "alice"
    assert json.dumps(device)
