"""Resync: SIP NOTIFY to a user agent on 127.0.0.1 and PJSIPNotify through an AMI endpoint."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from provisor.sync.sip import send_notify
from tests.conftest import Server, make_settings, start_server
from tests.provisioning.test_http_pipeline import UA, configure
from tests.support.sip_peer import AmiPeer, SipPeer
from tests.support.waiting import until


@pytest.fixture
async def peer() -> AsyncIterator[SipPeer]:
    p = await SipPeer().start()
    yield p
    await p.stop()


async def test_udp_notify_ok(peer: SipPeer) -> None:
    result = await send_notify("127.0.0.1", peer.udp_port, "check-sync", timeout=10)
    assert result.ok and result.code == 200
    assert peer.events() == ["check-sync"]
    first = peer.requests[0].decode()
    assert first.startswith(f"NOTIFY sip:anonymous@127.0.0.1:{peer.udp_port} SIP/2.0\r\n")
    assert "Subscription-State: terminated" in first


async def test_udp_error_response_is_a_failure(peer: SipPeer) -> None:
    peer.code, peer.reason = 481, "Call/Transaction Does Not Exist"
    result = await send_notify("127.0.0.1", peer.udp_port, "check-sync", timeout=10)
    assert not result.ok and result.code == 481 and "481" in result.reason


async def test_udp_no_answer_retransmits_then_fails(peer: SipPeer) -> None:
    peer.code = None
    result = await send_notify("127.0.0.1", peer.udp_port, "check-sync", timeout=1.6)
    assert not result.ok and "no answer" in result.reason
    assert len(peer.requests) >= 2  # 0 s, 0.5 s, 1.5 s


async def test_provisional_then_final(peer: SipPeer) -> None:
    peer.provisional_first = True
    result = await send_notify("127.0.0.1", peer.udp_port, "check-sync;reboot=true", timeout=10)
    assert result.ok and peer.events() == ["check-sync;reboot=true"]


async def test_tcp_notify(peer: SipPeer) -> None:
    result = await send_notify(
        "127.0.0.1", peer.tcp_port, "check-sync", transport="tcp", timeout=10
    )
    assert result.ok and "SIP/2.0/TCP" in peer.requests[0].decode()
    closed = await send_notify("127.0.0.1", 1, "check-sync", transport="tcp", timeout=1)
    assert not closed.ok and "network error" in closed.reason


async def _poll(server: Server, location: str) -> dict[str, str]:
    async def finished() -> dict[str, str] | None:
        body: dict[str, str] = (await server.api.get(location)).json()
        if not body["status"].startswith(("progress", "waiting", "synchronize|progress")):
            return body
        return None

    return await until(finished, f"operation {location} finished")


async def _phone(server: Server) -> str:
    await server.phone.get("/tp/common.cfg", headers={"User-Agent": UA})
    [device] = (await server.api.get("/0.2/dev_mgr/devices")).json()["devices"]
    await configure(server, device["id"])
    return str(device["id"])


async def test_synchronize_over_sip_end_to_end(
    tmp_path: Path, database_url: str, peer: SipPeer
) -> None:
    srv = await start_server(
        make_settings(
            tmp_path, database_url, **{"sync.sip_port": peer.udp_port, "sync.timeout": 1.5}
        )
    )
    try:
        device_id = await _phone(srv)
        r = await srv.api.post("/0.2/dev_mgr/synchronize", json={"id": device_id})
        assert r.status_code == 201
        body = await _poll(srv, r.headers["location"])
        assert body["status"].startswith("success"), body
        assert peer.events() == ["check-sync"]
        # the phone refuses: the operation says so
        peer.code, peer.reason = 486, "Busy Here"
        r = await srv.api.post("/0.2/dev_mgr/synchronize", json={"id": device_id})
        body = await _poll(srv, r.headers["location"])
        assert body["status"].startswith("fail") and "486" in body["reason"]
        # the phone never answers
        peer.code = None
        r = await srv.api.post("/0.2/dev_mgr/synchronize", json={"id": device_id})
        body = await _poll(srv, r.headers["location"])
        assert body["status"].startswith("fail") and "no answer" in body["reason"]
    finally:
        await srv.close()


async def test_synchronize_many_with_progress(
    tmp_path: Path, database_url: str, peer: SipPeer
) -> None:
    srv = await start_server(
        make_settings(tmp_path, database_url, **{"sync.sip_port": peer.udp_port, "sync.rate": 50})
    )
    try:
        device_id = await _phone(srv)
        config = (await srv.api.get(f"/0.2/dev_mgr/devices/{device_id}")).json()["device"]["config"]
        r = await srv.api.post("/0.2/dev_mgr/synchronize", json={"config": config})
        assert r.status_code == 201
        body = await _poll(srv, r.headers["location"])
        assert body["status"] == "synchronize|success;1/1(failed|success;0)"
        r = await srv.api.post("/0.2/dev_mgr/synchronize", json={"config": config, "id": "x"})
        assert r.status_code == 400
    finally:
        await srv.close()


async def test_synchronize_through_ami(tmp_path: Path, database_url: str) -> None:
    ami = await AmiPeer().start()
    srv = await start_server(
        make_settings(
            tmp_path,
            database_url,
            **{
                "sync.ami_host": "127.0.0.1",
                "sync.ami_port": ami.port,
                "sync.ami_username": "provisor",
                "sync.ami_secret": "s3cret",
            },
        )
    )
    try:
        device_id = await _phone(srv)
        await srv.phone.get(
            "/001122334455.cfg", headers={"User-Agent": UA}
        )  # trigger: learns alice
        r = await srv.api.post("/0.2/dev_mgr/synchronize", json={"id": device_id})
        body = await _poll(srv, r.headers["location"])
        assert body["status"].startswith("success"), body
        notify = [a for a in ami.actions if a.get("Action") == "PJSIPNotify"]
        assert notify[0]["Endpoint"] == "alice" and notify[0]["Variable"] == "Event=check-sync"
        ami.secret = "changed"
        r = await srv.api.post("/0.2/dev_mgr/synchronize", json={"id": device_id})
        body = await _poll(srv, r.headers["location"])
        assert body["status"].startswith("fail") and "login refused" in body["reason"]
    finally:
        await srv.close()
        await ami.stop()


async def test_tls_notify(tmp_path: Path) -> None:
    """The TLS route: a NOTIFY over TLS to a SIP peer with a self-signed certificate."""
    import ssl

    from provisor.tls import write_self_signed

    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    write_self_signed(cert, key, ["127.0.0.1"])
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    received: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.readuntil(b"\r\n\r\n")
        received.append(data)
        via = next(ln for ln in data.decode().split("\r\n") if ln.startswith("Via:"))
        writer.write(f"SIP/2.0 200 OK\r\n{via}\r\nContent-Length: 0\r\n\r\n".encode())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    try:
        result = await send_notify("127.0.0.1", port, "check-sync", transport="tls", timeout=10)
        assert result.ok and "SIP/2.0/TLS" in received[0].decode()
        strict = await send_notify(
            "127.0.0.1", port, "check-sync", transport="tls", timeout=10, verify_tls=True
        )
        assert not strict.ok  # a self-signed peer is refused when verification is on
    finally:
        server.close()
        await server.wait_closed()
