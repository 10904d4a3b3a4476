"""Bounds on what one HTTP connection may make a listener spend, enforced where bytes arrive.

uvicorn's httptools protocol caps neither the request line nor the headers (llhttp parses a
head of any size and httptools buffers each header until it ends: 100 connections sending
32 MiB of unfinished headers took the server to 3.4 GiB), and it starts no timer until a first
response has been sent, so a connection that never sends a byte stays open for ever. uvicorn
has no setting for either, so :class:`GuardedHttpProtocol` subclasses its protocol and adds:

- a cap on connections per listener and per source address, checked on accept, before any TLS
  handshake or parsing (an over-cap connection is aborted at once);
- caps on the request target (414) and on the whole head (431), counted as bytes arrive, so
  memory per connection stays within the cap plus one read;
- deadlines: silence before a request (``idle_timeout``, also for a connection that never sent
  a byte), the head from its first byte (``header_timeout``, also the TLS handshake: headers
  trickled byte by byte must still end in time), the body (``body_timeout``) and a client that
  stops reading its answer (``idle_timeout``). One sweep per listener checks them, so a request
  costs a few float assignments instead of timers;
- TLS started after the connection is counted (``loop.start_tls``), so handshakes are capped
  and timed like everything else.

It relies on uvicorn's parser callbacks (``on_message_begin``, ``on_headers_complete``…),
which the tests in ``tests/security/test_listener_bounds.py`` exercise through real sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from asyncio import sslproto
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from provisor.provisioning.limits import ConnectionLimiter, RefusalLog

__all__ = ["GuardedHttpProtocol", "ListenerBounds", "ListenerGuard"]

log = logging.getLogger(__name__)

_REASONS = {
    408: b"Request Timeout",
    414: b"URI Too Long",
    431: b"Request Header Fields Too Large",
}


@dataclass(frozen=True, slots=True)
class ListenerBounds:
    """The resolved limits of one listener."""

    max_connections: int
    max_connections_per_address: int
    max_request_line: int
    max_header_bytes: int
    idle_timeout: float
    header_timeout: float
    body_timeout: float


Quick = Callable[
    [bytes, bytes | None, list[tuple[bytes, bytes]], str, bool], tuple[bytes, bytes] | None
]
"""(path, query, headers, peer, keep-alive) -> (head, body) of an answer ready at once, or None
(``PhoneApp.quick``)."""


class _Refused(Exception):
    """Raised inside a parser callback to stop parsing a refused request."""


class ListenerGuard:
    """One listener's connection counts, live connections and deadline sweep."""

    def __init__(
        self,
        name: str,
        bounds: ListenerBounds,
        limiter: ConnectionLimiter,
        refusals: RefusalLog,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.name = name
        self.bounds = bounds
        self.limiter = limiter
        self.refusals = refusals
        self.ssl_context = ssl_context
        self.live: set[GuardedHttpProtocol] = set()
        # answers a plain GET from the parser callback when it can (set by the server)
        self.quick: Quick | None = None
        self.quick_answers = 0  # how many went that way (tests, debugging)
        self._timer: asyncio.TimerHandle | None = None
        shortest = min(bounds.idle_timeout, bounds.header_timeout, bounds.body_timeout)
        self.sweep_interval = min(1.0, max(0.05, shortest / 4))

    def protocol_class(self) -> type[GuardedHttpProtocol]:
        """A protocol class bound to this guard, for ``uvicorn.Config(http=...)``."""
        return type(f"Guarded{self.name.title()}Protocol", (GuardedHttpProtocol,), {"guard": self})

    def start(self) -> None:
        """Start the deadline sweep on the running loop."""
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self.sweep_interval, self._sweep, loop)

    def stop(self) -> None:
        """Stop the sweep and drop connections still in their TLS handshake."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for conn in list(self.live):
            if conn.transport is None:
                conn.abort()
        self.refusals.close()

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        for conn in list(self.live):
            conn.check_deadlines(now)
        self._timer = loop.call_later(self.sweep_interval, self._sweep, loop)


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with connection caps, head caps and deadlines."""

    guard: ClassVar[ListenerGuard]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._address = ""
        self._admitted = False
        self._raw: asyncio.Transport | None = None
        self._early: list[bytes] = []
        # deadlines' start times (loop time); 0.0 when that phase is not running
        self._idle_since = 0.0
        self._head_since = 0.0
        self._body_since = 0.0
        self._stall_since = 0.0
        self._between = True  # no request in progress in the parser
        self._head_bytes = 0
        self._chunk = 0
        self._refusal = 0
        self._quick: tuple[bytes, bytes, bool] | None = None

    # -- connection ----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        guard = self.guard
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple | list) and peer else ""
        refused = guard.limiter.acquire(address)
        if refused is not None:
            guard.refusals.note(refused, address)
            transport.abort()
            return
        self._admitted = True
        self._address = address
        guard.live.add(self)
        self._idle_since = self.loop.time()
        if guard.ssl_context is not None:
            self._raw = transport
            self._start_tls(transport, guard.ssl_context)
            return
        super().connection_made(transport)

    def _start_tls(self, raw: asyncio.Transport, context: ssl.SSLContext) -> None:
        """Put the TLS layer under this protocol now, before the transport reads a byte.

        ``loop.start_tls`` cannot be used: it must be awaited, so it runs in a task after
        ``connection_made`` returns, and uvloop starts reading the socket in between: a
        ClientHello arriving then reached this protocol as "early data" and the handshake
        waited for it until its timeout (1 handshake in 5 under ``provisor serve``). The SSL
        protocol is asyncio's own (what ``start_tls`` builds), installed synchronously.
        """
        waiter: asyncio.Future[None] = self.loop.create_future()
        tls = sslproto.SSLProtocol(
            self.loop,
            self,
            context,
            waiter,
            server_side=True,
            ssl_handshake_timeout=self.guard.bounds.header_timeout,  # type: ignore[arg-type]
            call_connection_made=False,
        )
        raw.set_protocol(tls)
        tls.connection_made(raw)
        self.loop.create_task(self._tls_ready(raw, tls, waiter))

    async def _tls_ready(
        self, raw: asyncio.Transport, tls: sslproto.SSLProtocol, waiter: asyncio.Future[None]
    ) -> None:
        try:
            await waiter
        except (OSError, RuntimeError, ValueError, ConnectionError, asyncio.CancelledError):
            # a failed or timed-out handshake, or a peer gone: nothing else to do
            raw.abort()
            self._release()
            return
        app = tls._app_transport  # what start_tls returns
        if app is None or not self._admitted:  # pragma: no cover - closed meanwhile
            raw.abort()
            self._release()
            return
        self._raw = None
        super().connection_made(app)
        early, self._early = self._early, []
        for data in early:
            self.data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._admitted:
            return
        self._release()
        if self.transport is None:  # the TLS handshake never completed
            self.parser = None
            return
        super().connection_lost(exc)

    def _release(self) -> None:
        if self._admitted:
            self._admitted = False
            self.guard.limiter.release(self._address)
            self.guard.live.discard(self)

    def abort(self) -> None:
        """Drop the connection at once."""
        transport = self.transport or self._raw
        if transport is not None:
            transport.abort()

    # -- bytes in ------------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.transport is None:  # application data that came with the TLS handshake
            self._early.append(data)
            if sum(map(len, self._early)) > self.guard.bounds.max_header_bytes:
                self.guard.refusals.note("request header fields too large", self._address)
                self.abort()
            return
        # A head that begins with this chunk (or continues) counts all of it; one that begins
        # in the middle (pipelining) counts from the next chunk: the bound stays cap + a read.
        whole = self._between or self._head_since != 0.0
        self._chunk = len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self._refusal:
                self._refuse(self._refusal)
                return
            self.guard.refusals.note("malformed request", self._address)
            self.send_400_response("Invalid HTTP request received.")
            return
        except httptools.HttpParserUpgrade:
            return  # no protocol upgrade here; the request was answered as plain HTTP
        if self._head_since != 0.0:
            if whole:
                self._head_bytes += len(data)
            bounds = self.guard.bounds
            if len(self.url) > bounds.max_request_line:
                self._refuse(414)
            elif self._head_bytes > bounds.max_header_bytes:
                self._refuse(414 if not self.headers else 431)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_since = self.loop.time()
        self._idle_since = 0.0
        self._head_bytes = 0
        self._between = False

    def on_headers_complete(self) -> None:
        self._head_since = 0.0
        bounds = self.guard.bounds
        if len(self.url) > bounds.max_request_line:
            self._refusal = 414
            raise _Refused
        if self._head_bytes + self._chunk > bounds.max_header_bytes:
            size = len(self.url) + sum(len(k) + len(v) + 4 for k, v in self.headers)
            if size > bounds.max_header_bytes:
                self._refusal = 431
                raise _Refused
        self._body_since = self.loop.time()
        if self.guard.quick is not None and self._try_quick(self.guard.quick):
            return
        super().on_headers_complete()

    def _try_quick(self, quick: Quick) -> bool:
        """Take the answer of a GET that is ready at once, to write when the request ends.

        Only when nothing is in flight on this connection (no ASGI cycle running, nothing
        queued: answers stay in order) and the client reads what it was sent (no write backlog:
        a client pipelining without reading gets the ASGI path, which waits for it).
        """
        cycle = self.cycle
        if (
            (cycle is not None and not cycle.response_complete)
            or self.pipeline
            or self.flow.write_paused
            or self.parser.get_method() != b"GET"
        ):
            return False
        try:
            url = httptools.parse_url(self.url)
        except httptools.HttpParserInvalidURLError:
            return False  # uvicorn's path answers it
        keep_alive = self.parser.get_http_version() != "1.0" and self.parser.should_keep_alive()
        peer = self.client[0] if self.client else ""
        answer = quick(url.path, url.query, self.headers, peer, keep_alive)
        if answer is None:
            return False
        self._quick = (answer[0], answer[1], keep_alive)
        return True

    def on_message_complete(self) -> None:
        self._body_since = 0.0
        self._between = True
        quick = self._quick
        if quick is None:
            super().on_message_complete()
            return
        self._quick = None
        self.server_state.total_requests += 1
        self.guard.quick_answers += 1
        transport = self.transport
        if transport.is_closing():
            return
        head, body, keep_alive = quick
        transport.writelines((head, body))
        if keep_alive:
            self._idle_since = self.loop.time()
        else:
            transport.close()

    def on_response_complete(self) -> None:
        # uvicorn's, without its keep-alive timer: the listener's sweep holds that deadline
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        elif self._between:
            self._idle_since = self.loop.time()

    # -- bytes out -----------------------------------------------------------------------------

    def pause_writing(self) -> None:
        self._stall_since = self.loop.time()
        super().pause_writing()

    def resume_writing(self) -> None:
        self._stall_since = 0.0
        super().resume_writing()

    # -- deadlines and refusals ----------------------------------------------------------------

    def check_deadlines(self, now: float) -> None:
        """Close the connection if the phase it is in has lasted too long."""
        bounds = self.guard.bounds
        if self._head_since and now - self._head_since > bounds.header_timeout:
            self._refuse(408, "header timeout")
        elif self._body_since and now - self._body_since > bounds.body_timeout:
            self._refuse(408, "body timeout", in_body=True)
        elif self._stall_since and now - self._stall_since > bounds.idle_timeout:
            self.guard.refusals.note("client not reading", self._address)
            self.abort()
        elif self._idle_since and now - self._idle_since > bounds.idle_timeout:
            if self.transport is None:
                self.guard.refusals.note("TLS handshake timeout", self._address)
                self.abort()
            elif not self.transport.is_closing():
                self.transport.close()  # a normal end of an idle connection: not logged
            self._idle_since = 0.0

    def _refuse(self, status: int, reason: str | None = None, *, in_body: bool = False) -> None:
        self._refusal = 0
        self._head_since = self._body_since = self._idle_since = 0.0
        self.guard.refusals.note(reason or _REASONS[status].decode().lower(), self._address)
        transport = self.transport
        if transport is None or transport.is_closing():
            self.abort()
            return
        cycle = self.cycle
        # the head of a new request: answer if the previous one is done; the body of the
        # current one: answer if the application has not
        free = cycle is None or (not cycle.response_started if in_body else cycle.response_complete)
        if free:
            text = _REASONS[status]
            with contextlib.suppress(RuntimeError):
                transport.write(
                    b"HTTP/1.1 %d %s\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n"
                    b"connection: close\r\n\r\n%s" % (status, text, len(text), text)
                )
        transport.close()
