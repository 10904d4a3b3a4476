"""The TFTP server against our test client and the real tftp-hpa and atftp clients."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from provisor.provisioning.tftp import TftpLimits, TftpReply, TftpRequest, TftpServer
from provisor.provisioning.tftp_packets import Opcode, encode_ack, encode_request, parse_error
from tests.provisioning.tftp_client import TftpError, TftpStats, tftp_get
from tests.support.waiting import until

FILES = {
    "small.cfg": b"line one\nline two\r\n",
    "big.bin": os.urandom(1_000_000),
    "exact.bin": b"x" * 1024,
    "empty.cfg": b"",
    "dir/nested.cfg": b"nested",
}


class Handler:
    def __init__(self) -> None:
        self.requests: list[TftpRequest] = []
        self.delay = 0.0

    async def __call__(self, req: TftpRequest) -> TftpReply:
        self.requests.append(req)
        if self.delay:
            await asyncio.sleep(self.delay)
        if req.filename == "boom":
            raise RuntimeError("plugin exploded")
        data = FILES.get(req.filename)
        if data is None:
            return TftpReply(error_code=1, error_message="Nowhere to route this request.")
        return TftpReply(data=data)


@pytest.fixture
async def tftp() -> AsyncIterator[tuple[TftpServer, Handler]]:
    handler = Handler()
    server = TftpServer(
        handler, host="127.0.0.1", port=0, limits=TftpLimits(timeout=0.3, max_retries=3)
    )
    await server.start()
    yield server, handler
    await server.stop()


@pytest.fixture
async def patient_tftp() -> AsyncIterator[TftpServer]:
    """A server that resends only after 30 s: in a test of what one packet triggers, a resend
    on timeout (a loaded machine may pause the test longer than the usual 0.3 s) would be
    taken for the packet's doing."""
    limits = TftpLimits(timeout=30, max_timeout=60, unacked_timeout=60)
    server = TftpServer(Handler(), host="127.0.0.1", port=0, limits=limits)
    await server.start()
    yield server
    await server.stop()


def _blocks(packets: list[bytes]) -> list[int]:
    return [int.from_bytes(p[2:4], "big") for p in packets if p[:2] == b"\x00\x03"]


@pytest.mark.parametrize("name", list(FILES))
async def test_octet_files(tftp: tuple[TftpServer, Handler], name: str) -> None:
    server, _ = tftp
    assert await tftp_get("127.0.0.1", server.port, name) == FILES[name]


async def test_options_oack_blksize_tsize_timeout(tftp: tuple[TftpServer, Handler]) -> None:
    server, _ = tftp
    stats = TftpStats()
    data = await tftp_get(
        "127.0.0.1",
        server.port,
        "big.bin",
        blksize=1432,
        tsize=True,
        stats=stats,
        extra_options={"timeout": "2", "unknownopt": "1"},
    )
    assert data == FILES["big.bin"]
    assert stats.oack == {"blksize": "1432", "tsize": "1000000", "timeout": "2"}
    # capped blksize
    stats = TftpStats()
    await tftp_get("127.0.0.1", server.port, "big.bin", blksize=65464, stats=stats)
    assert stats.oack["blksize"] == "1468"
    assert stats.server_port != server.port  # a transfer per ephemeral port


@pytest.mark.parametrize("value", ["abc", "0", "7", "99999999999", "-5"])
async def test_absurd_blksize_is_ignored(tftp: tuple[TftpServer, Handler], value: str) -> None:
    server, _ = tftp
    stats = TftpStats()
    data = await tftp_get(
        "127.0.0.1", server.port, "small.cfg", stats=stats, extra_options={"blksize": value}
    )
    assert data == FILES["small.cfg"] and "blksize" not in stats.oack


async def test_windowsize(tftp: tuple[TftpServer, Handler]) -> None:
    server, _ = tftp
    stats = TftpStats()
    data = await tftp_get(
        "127.0.0.1", server.port, "big.bin", blksize=1432, windowsize=8, stats=stats
    )
    assert data == FILES["big.bin"] and stats.oack["windowsize"] == "8"
    assert stats.duplicates == 0


async def test_block_number_rollover(tftp: tuple[TftpServer, Handler]) -> None:
    server, _ = tftp
    payload = os.urandom(600_000)  # 75 000 blocks of 8 bytes: wraps past 65535
    FILES["roll.bin"] = payload
    try:
        data = await tftp_get(
            "127.0.0.1", server.port, "roll.bin", blksize=8, windowsize=16, timeout=5
        )
        assert data == payload
    finally:
        del FILES["roll.bin"]


async def test_netascii(tftp: tuple[TftpServer, Handler]) -> None:
    server, _ = tftp
    data = await tftp_get("127.0.0.1", server.port, "small.cfg", mode="NetASCII")
    assert data == FILES["small.cfg"]


async def test_lost_ack_is_retransmitted_without_duplicates(
    tftp: tuple[TftpServer, Handler],
) -> None:
    server, _ = tftp
    stats = TftpStats()
    data = await tftp_get("127.0.0.1", server.port, "exact.bin", drop_ack=1, stats=stats)
    assert data == FILES["exact.bin"]
    # block 1 came twice (timeout resend); every later block exactly once
    assert stats.duplicates == 1 and stats.data_packets == 3 + 1


async def test_duplicate_acks_do_not_trigger_resends(patient_tftp: TftpServer) -> None:
    server = patient_tftp
    loop = asyncio.get_running_loop()
    received: list[bytes] = []

    class P(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            received.append(data)
            self.addr = addr

    transport, proto = await loop.create_datagram_endpoint(P, local_addr=("127.0.0.1", 0))
    try:
        transport.sendto(
            encode_request(Opcode.RRQ, "exact.bin", "octet"), ("127.0.0.1", server.port)
        )
        await until(lambda: received, "block 1")
        assert _blocks(received) == [1]
        for _ in range(5):  # ACK block 1 five times
            transport.sendto(encode_ack(1), proto.addr)
        # then ACK block 2: the server reads one socket in order, so once block 3 is here
        # every duplicate ACK was handled before it
        await until(lambda: 2 in _blocks(received), "block 2")
        transport.sendto(encode_ack(2), proto.addr)
        await until(lambda: 3 in _blocks(received), "block 3")
        assert _blocks(received) == [1, 2, 3]  # block 2 sent once, not five times
    finally:
        transport.close()


async def test_another_endpoint_cannot_move_a_transfer(patient_tftp: TftpServer) -> None:
    """A transfer's socket is connected to its client: an ACK from any other port (a stray or
    forged transfer ID) is dropped by the kernel, unanswered, and the transfer goes on."""
    server = patient_tftp
    loop = asyncio.get_running_loop()
    got: list[bytes] = []
    stray: list[bytes] = []

    class P(asyncio.DatagramProtocol):
        def __init__(self, into: list[bytes]) -> None:
            self.into = into

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            self.into.append(data)
            self.addr = addr

    client, cproto = await loop.create_datagram_endpoint(
        lambda: P(got), local_addr=("127.0.0.1", 0)
    )
    intruder, _ = await loop.create_datagram_endpoint(lambda: P(stray), local_addr=("127.0.0.1", 0))
    try:
        client.sendto(encode_request(Opcode.RRQ, "exact.bin", "octet"), ("127.0.0.1", server.port))
        await until(lambda: 1 in _blocks(got), "block 1")
        intruder.sendto(encode_ack(1), cproto.addr)
        await asyncio.sleep(0.3)  # what a forged ACK would have caused had it been taken
        assert stray == [] and _blocks(got) == [1]  # unanswered, and it moved nothing
        client.sendto(encode_ack(1), cproto.addr)
        await until(lambda: 2 in _blocks(got), "block 2 after the client's own ACK")
    finally:
        client.close()
        intruder.close()


async def test_errors(tftp: tuple[TftpServer, Handler]) -> None:
    server, _ = tftp
    with pytest.raises(TftpError) as err:
        await tftp_get("127.0.0.1", server.port, "missing.cfg")
    assert err.value.code == 1 and err.value.message == "Nowhere to route this request."
    with pytest.raises(TftpError) as err:
        await tftp_get("127.0.0.1", server.port, "boom")
    assert err.value.code == 0
    for path in ("../etc/passwd", "/a/../../x", "..\\x", "%2e%2e/x", "..%2fx", "a\x01b"):
        with pytest.raises(TftpError) as err:
            await tftp_get("127.0.0.1", server.port, path)
        assert err.value.code == 2, path
    with pytest.raises(TftpError) as err:
        await tftp_get("127.0.0.1", server.port, "small.cfg", mode="mail")
    assert err.value.code == 4


async def test_garbage_packets_do_not_break_the_server(tftp: tuple[TftpServer, Handler]) -> None:
    server, _ = tftp
    loop = asyncio.get_running_loop()
    answers: list[bytes] = []

    class P(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            answers.append(data)

    transport, _ = await loop.create_datagram_endpoint(P, local_addr=("127.0.0.1", 0))
    try:
        for junk in (
            b"",
            b"\x00",
            b"\x00\x01",
            b"\x00\x09abc",
            b"\x00\x01name",
            b"\x00\x01name\x00octet\x00blksize\x00",
            b"\x00\x01" + b"a" * 600 + b"\x00octet\x00",
            b"\x00\x02f\x00octet\x00",
            b"\xff" * 50,
        ):
            transport.sendto(junk, ("127.0.0.1", server.port))

        def codes() -> list[int]:
            return [parse_error(a)[0] for a in answers if a[:2] == b"\x00\x05"]

        # WRQ refused, malformed requests refused
        await until(lambda: 2 in codes() and 4 in codes(), "errors 2 and 4")
    finally:
        transport.close()
    assert await tftp_get("127.0.0.1", server.port, "small.cfg") == FILES["small.cfg"]


async def test_caps_per_client(tftp: tuple[TftpServer, Handler]) -> None:
    handler = Handler()
    handler.delay = 0.3
    server = TftpServer(
        handler, host="127.0.0.1", port=0, limits=TftpLimits(max_transfers_per_client=2)
    )
    await server.start()
    try:
        results = await asyncio.gather(
            *(tftp_get("127.0.0.1", server.port, "small.cfg") for _ in range(4)),
            return_exceptions=True,
        )
        busy = [r for r in results if isinstance(r, TftpError)]
        assert len(busy) == 2 and all("busy" in e.message for e in busy)
        assert sum(1 for r in results if r == FILES["small.cfg"]) == 2
        # the server finishes on the final ACK, just after the client
        await until(lambda: server.active_transfers == 0, "no transfer left")
    finally:
        await server.stop()


async def test_client_gone_transfer_is_freed(tftp: tuple[TftpServer, Handler]) -> None:
    server, _ = tftp
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
    )
    transport.sendto(encode_request(Opcode.RRQ, "exact.bin", "octet"), ("127.0.0.1", server.port))
    transport.close()
    # gave up after the bounded retries
    await until(lambda: server.active_transfers == 0, "the transfer given up")


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.skipif(
    shutil.which("tftp") is None, reason="tftp-hpa client not installed (Debian tftp-hpa)"
)
async def test_tftp_hpa_client(tftp: tuple[TftpServer, Handler], tmp_path: Path) -> None:
    server, _ = tftp
    for name in ("small.cfg", "big.bin", "exact.bin"):
        r = await asyncio.to_thread(
            _run,
            ["tftp", "127.0.0.1", str(server.port), "-m", "binary", "-c", "get", name, "out"],
            tmp_path,
        )
        assert r.returncode == 0, r.stderr
        assert (tmp_path / "out").read_bytes() == FILES[name]
    r = await asyncio.to_thread(
        _run,
        ["tftp", "127.0.0.1", str(server.port), "-m", "binary", "-c", "get", "nope", "out"],
        tmp_path,
    )
    assert "Nowhere to route this request." in r.stdout + r.stderr


@pytest.mark.skipif(
    shutil.which("atftp") is None, reason="atftp client not installed (Debian atftp)"
)
async def test_atftp_client(tftp: tuple[TftpServer, Handler], tmp_path: Path) -> None:
    server, _ = tftp
    for name in ("small.cfg", "big.bin"):
        for opts in ([], ["--option", "blksize 1432", "--option", "tsize 0"]):
            out = tmp_path / f"a-{name}"
            r = await asyncio.to_thread(
                _run,
                ["atftp", *opts, "-g", "-r", name, "-l", str(out), "127.0.0.1", str(server.port)],
                tmp_path,
            )
            assert r.returncode == 0, r.stderr
            assert out.read_bytes() == FILES[name]
