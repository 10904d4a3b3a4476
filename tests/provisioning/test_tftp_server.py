"""The TFTP server against our test client and the real tftp-hpa and atftp clients."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from provisor.provisioning.tftp import TftpLimits, TftpReply, TftpRequest, TftpServer
from provisor.provisioning.tftp_packets import Opcode, encode_ack, encode_request, parse_error
from tests.provisioning.tftp_client import TftpError, TftpStats, tftp_get

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


async def test_duplicate_acks_do_not_trigger_resends(tftp: tuple[TftpServer, Handler]) -> None:
    server, _ = tftp
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
        await asyncio.sleep(0.1)
        assert len(received) == 1
        for _ in range(5):  # ACK block 1 five times
            transport.sendto(encode_ack(1), proto.addr)
        await asyncio.sleep(0.1)
        blocks = [int.from_bytes(p[2:4], "big") for p in received]
        assert blocks == [1, 2]  # block 2 sent once, not five times
    finally:
        transport.close()


async def test_another_endpoint_cannot_move_a_transfer(
    tftp: tuple[TftpServer, Handler],
) -> None:
    """A transfer's socket is connected to its client: an ACK from any other port (a stray or
    forged transfer ID) is dropped by the kernel, unanswered, and the transfer goes on."""
    server, _ = tftp
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

    async def until(check: Callable[[], bool]) -> None:
        for _ in range(300):
            if check():
                return
            await asyncio.sleep(0.01)
        raise AssertionError("nothing came")

    def block(n: int) -> bool:
        return any(p[:2] == b"\x00\x03" and int.from_bytes(p[2:4], "big") == n for p in got)

    try:
        client.sendto(encode_request(Opcode.RRQ, "exact.bin", "octet"), ("127.0.0.1", server.port))
        await until(lambda: block(1))
        intruder.sendto(encode_ack(1), cproto.addr)
        await asyncio.sleep(0.3)  # what a forged ACK would have caused had it been taken
        assert stray == [] and not block(2)
        client.sendto(encode_ack(1), cproto.addr)
        await until(lambda: block(2))
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
        await asyncio.sleep(0.2)
    finally:
        transport.close()
    codes = [parse_error(a)[0] for a in answers if a[:2] == b"\x00\x05"]
    assert 2 in codes and 4 in codes  # WRQ refused, malformed requests refused
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
        for _ in range(50):  # the server finishes on the final ACK, just after the client
            if server.active_transfers == 0:
                break
            await asyncio.sleep(0.02)
        assert server.active_transfers == 0
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
    for _ in range(100):
        await asyncio.sleep(0.1)
        if server.active_transfers == 0:
            break
    assert server.active_transfers == 0  # gave up after the bounded retries


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
