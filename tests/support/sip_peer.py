"""A SIP user agent on 127.0.0.1 that answers NOTIFYs (UDP and TCP), for resync tests."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


def _response(request: bytes, code: int, reason: str) -> bytes:
    lines = request.decode("utf-8", "replace").split("\r\n")
    keep = [
        ln
        for ln in lines
        if ln.split(":", 1)[0].lower() in ("via", "from", "to", "call-id", "cseq")
    ]
    return ("\r\n".join([f"SIP/2.0 {code} {reason}", *keep, "Content-Length: 0", "", ""])).encode()


@dataclass
class SipPeer:
    """Answers NOTIFY with ``code`` (None = never answers); records what it received."""

    code: int | None = 200
    reason: str = "OK"
    provisional_first: bool = False
    requests: list[bytes] = field(default_factory=list)
    udp_port: int = 0
    tcp_port: int = 0
    _udp: asyncio.DatagramTransport | None = None
    _tcp: asyncio.Server | None = None

    def events(self) -> list[str]:
        """The Event header of every request received."""
        out = []
        for req in self.requests:
            for line in req.decode("utf-8", "replace").split("\r\n"):
                if line.lower().startswith("event:"):
                    out.append(line.split(":", 1)[1].strip())
        return out

    async def start(self) -> SipPeer:
        loop = asyncio.get_running_loop()
        peer = self

        class Udp(asyncio.DatagramProtocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = transport  # type: ignore[assignment]

            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                peer.requests.append(data)
                if peer.code is None:
                    return
                if peer.provisional_first:
                    self.transport.sendto(_response(data, 100, "Trying"), addr)  # type: ignore[attr-defined]
                self.transport.sendto(_response(data, peer.code, peer.reason), addr)  # type: ignore[attr-defined]

        self._udp, _ = await loop.create_datagram_endpoint(Udp, local_addr=("127.0.0.1", 0))
        self.udp_port = self._udp.get_extra_info("sockname")[1]

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                data = await reader.readuntil(b"\r\n\r\n")
                peer.requests.append(data)
                if peer.code is not None:
                    writer.write(_response(data, peer.code, peer.reason))
                    await writer.drain()
                    await asyncio.sleep(0.05)
                else:
                    await asyncio.sleep(30)
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        self._tcp = await asyncio.start_server(handle, "127.0.0.1", 0)
        self.tcp_port = self._tcp.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()


@dataclass
class AmiPeer:
    """An AMI endpoint on 127.0.0.1: checks the login, answers PJSIPNotify, records actions."""

    username: str = "provisor"
    secret: str = "s3cret"
    fail_notify: str | None = None
    actions: list[dict[str, str]] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None

    async def start(self) -> AmiPeer:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"Asterisk Call Manager/5.0.1\r\n")
            logged_in = False
            try:
                while True:
                    raw = await reader.readuntil(b"\r\n\r\n")
                    msg = {}
                    for line in raw.decode().split("\r\n"):
                        k, sep, v = line.partition(":")
                        if sep:
                            msg[k.strip()] = v.strip()
                    self.actions.append(msg)
                    aid = msg.get("ActionID", "")
                    action = msg.get("Action", "").lower()
                    if action == "login":
                        ok = (
                            msg.get("Username") == self.username
                            and msg.get("Secret") == self.secret
                        )
                        logged_in = ok
                        text = (
                            "Response: Success\r\nMessage: Authentication accepted"
                            if ok
                            else "Response: Error\r\nMessage: Authentication failed"
                        )
                    elif action == "pjsipnotify":
                        if not logged_in:
                            text = "Response: Error\r\nMessage: Permission denied"
                        elif self.fail_notify:
                            text = f"Response: Error\r\nMessage: {self.fail_notify}"
                        else:
                            text = "Response: Success\r\nMessage: NOTIFY sent"
                    elif action == "logoff":
                        writer.write(f"Response: Goodbye\r\nActionID: {aid}\r\n\r\n".encode())
                        await writer.drain()
                        break
                    else:
                        text = "Response: Error\r\nMessage: Invalid action"
                    writer.write(f"{text}\r\nActionID: {aid}\r\n\r\n".encode())
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        self._server = await asyncio.start_server(handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
