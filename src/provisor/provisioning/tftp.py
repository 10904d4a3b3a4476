"""provisor's TFTP server: read-only, dynamic content, asyncio.

Written here because no maintained asyncio TFTP library supports RFC 2347/2348/2349/7440 and
lets a request be answered by code (the pipeline renders each file per device): tftpy is
select-based, py3tftp is file-centric and unmaintained, fbtftp forks a process per transfer.

One listening socket takes requests; each transfer gets its own ephemeral socket (its TID), an
in-memory reply, a sliding window (RFC 7440, 1 by default) and a retransmission timer with
exponential backoff. Duplicate ACKs never trigger resends (no sorcerer's apprentice); an ACK
for an earlier block inside the window rewinds the window to it. A transfer whose first packet
is never acknowledged (a flood of requests, spoofed addresses) is dropped after
``unacked_timeout`` instead of after the whole backoff (31 s by default). Slots are given by
:mod:`provisor.provisioning.tftp_slots`: caps in total and per address, fair under a flood,
counted exactly; refusals are logged at most once per interval, without the file name (a path
may carry a tenant key or a device token).
The wire format lives in :mod:`provisor.provisioning.tftp_packets`.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

from provisor.metrics import TFTP_BYTES, TFTP_TRANSFERS
from provisor.provisioning.limits import RefusalLog
from provisor.provisioning.tftp_packets import (
    DEFAULT_BLKSIZE,
    ErrorCode,
    MalformedPacket,
    Negotiated,
    Opcode,
    data_header,
    encode_error,
    encode_oack,
    negotiate,
    netascii_encode,
    normalise_path,
    parse_request,
)
from provisor.provisioning.tftp_slots import Slot, SlotPolicy, SlotTable

__all__ = [
    "TftpHandler",
    "TftpLimits",
    "TftpReply",
    "TftpRequest",
    "TftpServer",
    "normalise_path",
]

log = logging.getLogger(__name__)

# bound once: a transfer's end costs one increment
TFTP_TRANSFERS_COMPLETE = TFTP_TRANSFERS.labels("complete")
TFTP_TRANSFERS_ABORTED = TFTP_TRANSFERS.labels("aborted")
TFTP_TRANSFERS_TIMEOUT = TFTP_TRANSFERS.labels("timeout")


@dataclass(frozen=True, slots=True)
class TftpRequest:
    """A read request after parsing and path normalisation."""

    filename: str
    client: tuple[str, int]
    mode: str
    options: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TftpReply:
    """The file to send, or the error to answer."""

    data: bytes | None = None
    error_code: int = 0
    error_message: str = ""


TftpHandler = Callable[[TftpRequest], Awaitable[TftpReply]]


@dataclass(frozen=True)
class TftpLimits:
    """Negotiation caps, retransmission policy and concurrency caps."""

    max_blksize: int = 1468
    max_windowsize: int = 64
    timeout: float = 1.0
    max_timeout: float = 8.0
    max_retries: int = 5
    max_transfers: int = 2000
    max_transfers_per_client: int = 64
    reserved_transfers: int = 200
    reserved_per_client: int = 4
    unacked_timeout: float = 3.0
    busy_grace: float = 0.2
    max_file_size: int = 64 * 1024 * 1024
    refusal_log_interval: float = 10.0

    def slot_policy(self) -> SlotPolicy:
        """The admission caps of these limits."""
        return SlotPolicy(
            max_transfers=self.max_transfers,
            max_per_client=self.max_transfers_per_client,
            reserved=self.reserved_transfers,
            reserved_per_client=self.reserved_per_client,
            grace=self.busy_grace,
        )


class _Transfer(asyncio.DatagramProtocol):
    """One RRQ being served from its own socket."""

    def __init__(
        self,
        server: TftpServer,
        slot: Slot,
        data: bytes,
        neg: Negotiated,
        oack: bool,
    ) -> None:
        self.server = server
        self.slot = slot
        self.client = slot.endpoint
        self.data = memoryview(data)
        self.blksize = neg.blksize
        self.window = neg.windowsize
        self.timeout = neg.timeout or server.limits.timeout
        self.fixed_timeout = neg.timeout is not None
        self.blocks = len(data) // self.blksize + 1
        self.oack = encode_oack(neg.acked) if oack else None
        self.base = 0 if oack else 1  # first block not yet acknowledged (0 = the OACK)
        self.retries = 0
        self.transport: asyncio.DatagramTransport | None = None
        self.loop = asyncio.get_running_loop()
        self.timer: asyncio.TimerHandle | None = None
        self.deadline = 0.0
        self.acked = False  # until the first ACK, the client may not exist at all
        self.abandon_at = self.loop.time() + server.limits.unacked_timeout
        slot.on_abort = self._finish

    # -- sending -------------------------------------------------------------------------------

    def _block(self, n: int) -> bytes:
        start = (n - 1) * self.blksize
        return data_header(n) + self.data[start : start + self.blksize]

    def _send_window(self) -> None:
        assert self.transport is not None
        if self.base == 0:
            assert self.oack is not None
            self.transport.sendto(self.oack)
        else:
            for n in range(self.base, min(self.base + self.window, self.blocks + 1)):
                self.transport.sendto(self._block(n))
        self._arm()

    def _arm(self) -> None:
        # One timer per transfer, moved lazily: an ACK only pushes the deadline back, and the
        # timer, when it fires early, sleeps again until it (rescheduling a timer on every
        # packet costs more than the packet).
        self.deadline = self.loop.time() + self.timeout
        if not self.acked and self.deadline > self.abandon_at:
            self.deadline = self.abandon_at
        if self.timer is None:
            self.timer = self.loop.call_at(self.deadline, self._tick)

    def _tick(self) -> None:
        self.timer = None
        if self.loop.time() < self.deadline:
            self.timer = self.loop.call_at(self.deadline, self._tick)
            return
        self._expired()

    def _expired(self) -> None:
        if not self.acked and self.loop.time() >= self.abandon_at:
            log.debug("tftp: transfer to %s:%s never acknowledged, dropped", *self.client)
            TFTP_TRANSFERS_TIMEOUT.inc()
            self._finish()
            return
        self.retries += 1
        if self.retries > self.server.limits.max_retries:
            log.info("tftp: transfer to %s:%s timed out", *self.client)
            TFTP_TRANSFERS_TIMEOUT.inc()
            self._finish()
            return
        if not self.fixed_timeout:
            self.timeout = min(self.timeout * 2, self.server.limits.max_timeout)
        self._send_window()

    def _finish(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.transport is not None:
            self.transport.close()
        self.server._transfers.discard(self)
        self.slot.release()

    # -- protocol ------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.slot.released:  # dropped before its socket was open
            transport.close()
            return
        self._send_window()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if addr[:2] != self.client[:2]:  # pragma: no cover - the connected socket filters them
            return
        if len(data) < 4:
            return
        opcode = int.from_bytes(data[:2], "big")
        if opcode == Opcode.ERROR:
            TFTP_TRANSFERS_ABORTED.inc()
            self._finish()
            return
        if opcode != Opcode.ACK:
            assert self.transport is not None
            self.transport.sendto(encode_error(ErrorCode.ILLEGAL_OPERATION, "expected an ACK"))
            self._finish()
            return
        acked = self._absolute(int.from_bytes(data[2:4], "big"))
        if acked is None:
            return  # a duplicate or stale ACK: never resend on it
        if acked >= self.blocks:
            TFTP_TRANSFERS_COMPLETE.inc()
            TFTP_BYTES.inc(len(self.data))
            self._finish()
            return
        self.base = acked + 1
        self.retries = 0
        if not self.acked:
            self.acked = self.slot.progressed = True
        if not self.fixed_timeout:
            self.timeout = self.server.limits.timeout
        self._send_window()

    def _absolute(self, block16: int) -> int | None:
        """The absolute block an ACK refers to, if it moves the window forward."""
        top = min(self.base + self.window - 1, self.blocks) if self.base else 0
        for candidate in range(top, self.base - 1, -1):
            if candidate & 0xFFFF == block16:
                return candidate
        return None

    def error_received(self, exc: Exception) -> None:
        log.debug("tftp: transfer to %s:%s: %s", *self.client, exc)


class _Listener(asyncio.DatagramProtocol):
    def __init__(self, server: TftpServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            self.server._request(data, addr)
        except Exception:  # a bug must not close the listening socket (uvloop would)
            log.exception("tftp: request from %s failed", addr[0])

    def error_received(self, exc: Exception) -> None:
        log.debug("tftp listener: %s", exc)


class TftpServer:
    """The TFTP listener and its transfers."""

    def __init__(
        self,
        handler: TftpHandler,
        *,
        host: str = "127.0.0.1",
        port: int = 69,
        limits: TftpLimits = TftpLimits(),
        sock: socket.socket | None = None,
    ) -> None:
        self.handler = handler
        self._sock = sock  # a socket bound by the main process (phone workers share it)
        self.host = host
        self._port = port
        self.limits = limits
        self._listener: _Listener | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._transfers: set[_Transfer] = set()
        self.slots: SlotTable[TftpRequest] = SlotTable(
            limits.slot_policy(), self._admit, self._refuse
        )
        self.refusals = RefusalLog(log, "tftp", limits.refusal_log_interval)

    @property
    def port(self) -> int:
        """The bound port."""
        return self._port

    @property
    def active_transfers(self) -> int:
        """Transfers in progress (including requests being answered)."""
        return self.slots.active

    async def start(self) -> None:
        """Bind the listening socket (or start reading the one given)."""
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        if self._sock is not None:
            transport, proto = await loop.create_datagram_endpoint(
                lambda: _Listener(self), sock=self._sock
            )
        else:
            transport, proto = await loop.create_datagram_endpoint(
                lambda: _Listener(self), local_addr=(self.host, self._port), family=family
            )
        self._listener = proto
        self._port = transport.get_extra_info("sockname")[1]

    async def stop(self) -> None:
        """Close the listener and every transfer."""
        if self._listener is not None and self._listener.transport is not None:
            self._listener.transport.close()
        self.slots.close()
        self.refusals.close()
        for transfer in list(self._transfers):
            transfer._finish()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _reply_error(self, addr: tuple[str, int], code: int, message: str) -> None:
        if self._listener is not None and self._listener.transport is not None:
            self._listener.transport.sendto(encode_error(code, message), addr)

    def _request(self, data: bytes, addr: tuple[str, int]) -> None:
        # Synchronous up to the admission, so that slots are counted in the order packets are
        # read (see tftp_slots); only admitted requests cost a task.
        if len(data) >= 2 and int.from_bytes(data[:2], "big") == Opcode.WRQ:
            self._reply_error(
                addr,
                ErrorCode.ACCESS_VIOLATION,
                "write requests are refused; this server is read-only",
            )
            return
        try:
            req = parse_request(data)
        except MalformedPacket as exc:
            self._reply_error(addr, exc.code, exc.message)
            return
        if req.mode not in ("octet", "netascii"):
            self._reply_error(
                addr, ErrorCode.ILLEGAL_OPERATION, f"mode {req.mode!r} is not supported"
            )
            return
        try:
            filename = normalise_path(req.filename)
        except ValueError as exc:
            self._reply_error(addr, ErrorCode.ACCESS_VIOLATION, f"access violation: {exc}")
            return
        self.slots.request(addr, data, TftpRequest(filename, addr, req.mode, dict(req.options)))

    def _admit(self, slot: Slot, req: TftpRequest) -> None:
        self._spawn(self._serve(slot, req))

    def _refuse(self, addr: tuple[str, int], reason: str) -> None:
        # no file name here: it may carry a tenant key or a device token
        self.refusals.note(f"busy: {reason}", addr[0])
        self._reply_error(addr, ErrorCode.UNDEFINED, "server busy, try again later")

    async def _serve(self, slot: Slot, req: TftpRequest) -> None:
        transfer: _Transfer | None = None
        try:
            try:
                reply = await self.handler(req)
            except Exception:
                log.exception("tftp: handler failed for a request from %s", req.client[0])
                self._reply_error(req.client, ErrorCode.UNDEFINED, "internal error")
                return
            data = self._payload(slot, req, reply)
            if data is None:
                return
            neg = negotiate(
                req.options,
                len(data),
                max_blksize=self.limits.max_blksize,
                max_windowsize=self.limits.max_windowsize,
                max_timeout=int(self.limits.max_timeout),
            )
            if not neg.acked and neg.blksize != DEFAULT_BLKSIZE:  # pragma: no cover - defensive
                neg = Negotiated()
            family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
            transfer = _Transfer(self, slot, data, neg, oack=bool(neg.acked))
            self._transfers.add(transfer)
            try:
                await asyncio.get_running_loop().create_datagram_endpoint(
                    lambda: transfer,
                    local_addr=(self.host, 0),
                    # connected to the client: the kernel keeps its route and drops datagrams
                    # from any other endpoint (a stray or forged transfer ID) before they wake us
                    remote_addr=req.client[:2],
                    family=family,
                )
            except OSError as exc:  # out of descriptors or ports: this request only
                log.warning("tftp: cannot open a transfer socket: %s", exc)
                transfer._finish()
                self._reply_error(req.client, ErrorCode.UNDEFINED, "server busy, try again later")
        finally:
            if transfer is None:  # answered without a transfer (error, refusal, stop)
                slot.release()

    def _payload(self, slot: Slot, req: TftpRequest, reply: TftpReply) -> bytes | None:
        """The bytes to send, or None once an error has been answered."""
        if slot.released:
            return None  # dropped while rendering (the client moved on, or the server stops)
        if reply.data is None:
            self._reply_error(req.client, reply.error_code, reply.error_message or "not found")
            return None
        data = netascii_encode(reply.data) if req.mode == "netascii" else reply.data
        if len(data) > self.limits.max_file_size:
            self._reply_error(req.client, ErrorCode.DISK_FULL, "file too large for TFTP here")
            return None
        return data
