"""A small asyncio TFTP client for the tests: options, windows, lost ACKs, packet counting."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from provisor.provisioning.tftp_packets import (
    Opcode,
    encode_ack,
    encode_request,
    netascii_encode,
    parse_error,
    parse_oack,
)

__all__ = ["TftpError", "TftpStats", "tftp_get"]


class TftpError(Exception):
    """The server answered an ERROR packet (or did not answer)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass
class TftpStats:
    """What the client saw during a transfer."""

    data_packets: int = 0
    duplicates: int = 0
    oack: dict[str, str] = field(default_factory=dict)
    server_port: int = 0


class _Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.queue.put_nowait((data, addr))


async def tftp_get(
    host: str,
    port: int,
    filename: str | bytes,
    *,
    blksize: int | None = None,
    windowsize: int | None = None,
    tsize: bool = False,
    mode: str = "octet",
    timeout: float = 2.0,
    drop_ack: int | None = None,
    stats: TftpStats | None = None,
    extra_options: dict[str, str] | None = None,
) -> bytes:
    """Fetch a file; ``drop_ack`` skips the first ACK of that block (to force a resend)."""
    stats = stats if stats is not None else TftpStats()
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(_Client, local_addr=("127.0.0.1", 0))
    options: dict[str, str] = dict(extra_options or {})
    if blksize is not None:
        options["blksize"] = str(blksize)
    if windowsize is not None:
        options["windowsize"] = str(windowsize)
    if tsize:
        options["tsize"] = "0"
    try:
        transport.sendto(encode_request(Opcode.RRQ, filename, mode, options), (host, port))
        size = 512
        window = 1
        expected = 1
        received: list[bytes] = []
        dropped = False
        server: tuple[str, int] | None = None
        while True:
            try:
                data, addr = await asyncio.wait_for(proto.queue.get(), timeout)
            except TimeoutError:
                raise TftpError(-1, "timed out") from None
            opcode = int.from_bytes(data[:2], "big")
            if opcode == Opcode.ERROR:
                raise TftpError(*parse_error(data))
            server = server or addr
            stats.server_port = server[1]
            if opcode == Opcode.OACK:
                stats.oack = parse_oack(data)
                size = int(stats.oack.get("blksize", size))
                window = int(stats.oack.get("windowsize", 1))
                transport.sendto(encode_ack(0), server)
                continue
            if opcode != Opcode.DATA:
                raise TftpError(-2, f"unexpected opcode {opcode}")
            stats.data_packets += 1
            block = int.from_bytes(data[2:4], "big")
            payload = data[4:]
            if block != expected & 0xFFFF:
                stats.duplicates += 1
                if block == (expected - 1) & 0xFFFF:
                    transport.sendto(encode_ack(block), server)  # our ACK was lost
                continue
            received.append(payload)
            expected += 1
            last = len(payload) < size
            if last or (expected - 1) % window == 0:
                if drop_ack is not None and expected - 1 == drop_ack and not dropped:
                    dropped = True
                    continue
                transport.sendto(encode_ack(block), server)
            if last:
                break
        body = b"".join(received)
        return body if mode == "octet" else body.replace(b"\r\n", b"\n").replace(b"\r\0", b"\r")
    finally:
        transport.close()


def netascii(data: bytes) -> bytes:
    """What the wire carries for ``data`` in netascii mode."""
    return netascii_encode(data)
