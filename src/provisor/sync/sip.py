"""Send one SIP NOTIFY (``Event: check-sync``…) to a phone and report its final answer.

A resync is a single out-of-dialog NOTIFY: no SIP stack is needed, only RFC 3261's client
transaction rules (UDP retransmission from 500 ms doubling to 4 s until a final response or the
timeout; provisional answers stop retransmission). TCP and TLS send once and read the answer.
Written here because no maintained asyncio SIP library fits a one-shot request.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import ssl
from dataclasses import dataclass

__all__ = ["NotifyResult", "build_notify", "parse_status", "send_notify"]

T1 = 0.5
T2 = 4.0


@dataclass(frozen=True, slots=True)
class NotifyResult:
    """The phone's final answer (or why there was none)."""

    ok: bool
    code: int | None
    reason: str


def build_notify(
    *,
    host: str,
    port: int,
    event: str,
    transport: str,
    local_host: str,
    local_port: int,
    user: str = "anonymous",
) -> tuple[bytes, str]:
    """A NOTIFY request and its branch id."""
    branch = "z9hG4bK" + secrets.token_hex(8)
    call_id = secrets.token_hex(12)
    tag = secrets.token_hex(4)
    target = f"[{host}]" if ":" in host else host
    lines = [
        f"NOTIFY sip:{user}@{target}:{port} SIP/2.0",
        f"Via: SIP/2.0/{transport.upper()} {local_host}:{local_port};branch={branch};rport",
        "Max-Forwards: 70",
        f"From: <sip:provisor@{local_host}>;tag={tag}",
        f"To: <sip:{user}@{target}:{port}>",
        f"Call-ID: {call_id}@{local_host}",
        "CSeq: 1 NOTIFY",
        f"Contact: <sip:provisor@{local_host}:{local_port}>",
        f"Event: {event}",
        "Subscription-State: terminated;reason=timeout",
        "User-Agent: provisor",
        "Content-Length: 0",
        "",
        "",
    ]
    return "\r\n".join(lines).encode("utf-8"), branch


def parse_status(data: bytes, branch: str | None = None) -> tuple[int, str] | None:
    """(code, reason) of a SIP response to our request; None for anything else."""
    try:
        text = data.decode("utf-8", errors="replace")
    except Exception:  # pragma: no cover - decode with replace does not raise
        return None
    first, _, rest = text.partition("\r\n")
    parts = first.split(" ", 2)
    if len(parts) < 2 or parts[0] != "SIP/2.0" or not parts[1].isdigit():
        return None
    if branch is not None and branch not in rest:
        return None
    return int(parts[1]), parts[2] if len(parts) > 2 else ""


class _UdpClient(asyncio.DatagramProtocol):
    def __init__(self, branch: str) -> None:
        self.branch = branch
        self.final: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()
        self.provisional = False

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        status = parse_status(data, self.branch)
        if status is None or self.final.done():
            return
        if status[0] < 200:
            self.provisional = True
        else:
            self.final.set_result(status)

    def error_received(self, exc: Exception) -> None:
        if not self.final.done():
            self.final.set_exception(exc)


async def send_notify(
    host: str,
    port: int,
    event: str,
    *,
    transport: str = "udp",
    local_host: str = "127.0.0.1",
    timeout: float = 4.0,
    verify_tls: bool = False,
) -> NotifyResult:
    """Send the NOTIFY and wait for the final response."""
    try:
        if transport == "udp":
            return await _send_udp(host, port, event, local_host, timeout)
        return await _send_stream(host, port, event, transport, local_host, timeout, verify_tls)
    except OSError as exc:
        return NotifyResult(False, None, f"network error: {exc}")


def _result(status: tuple[int, str]) -> NotifyResult:
    code, reason = status
    return NotifyResult(200 <= code < 300, code, f"{code} {reason}".strip())


async def _send_udp(
    host: str, port: int, event: str, local_host: str, timeout: float
) -> NotifyResult:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(
        lambda: _UdpClient(""), remote_addr=(host, port)
    )
    try:
        local_port = transport.get_extra_info("sockname")[1]
        data, branch = build_notify(
            host=host,
            port=port,
            event=event,
            transport="udp",
            local_host=local_host,
            local_port=local_port,
        )
        proto.branch = branch
        deadline = loop.time() + timeout
        interval = T1
        while True:
            if not proto.provisional:
                transport.sendto(data)
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                status = await asyncio.wait_for(
                    asyncio.shield(proto.final), min(interval, remaining)
                )
                return _result(status)
            except TimeoutError:
                interval = min(interval * 2, T2)
            except OSError as exc:
                return NotifyResult(False, None, f"network error: {exc}")
        return NotifyResult(False, None, f"no answer within {timeout:g} s (retransmitted)")
    finally:
        transport.close()


async def _send_stream(
    host: str, port: int, event: str, transport: str, local_host: str, timeout: float, verify: bool
) -> NotifyResult:
    context = None
    if transport == "tls":
        context = ssl.create_default_context()
        if not verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=context), timeout
        )
    except TimeoutError:
        return NotifyResult(False, None, f"could not connect within {timeout:g} s")
    try:
        local_port = writer.get_extra_info("sockname")[1]
        data, branch = build_notify(
            host=host,
            port=port,
            event=event,
            transport=transport,
            local_host=local_host,
            local_port=local_port,
        )
        writer.write(data)
        await writer.drain()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return NotifyResult(False, None, f"no answer within {timeout:g} s")
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), remaining)
            except TimeoutError:
                return NotifyResult(False, None, f"no answer within {timeout:g} s")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
                return NotifyResult(False, None, f"connection closed: {exc}")
            status = parse_status(head, branch)
            if status is not None and status[0] >= 200:
                return _result(status)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
