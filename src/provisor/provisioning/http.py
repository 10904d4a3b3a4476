"""The phone-facing HTTP(S) front end: a bare ASGI app around the pipeline.

Phones are the hot path (a boot storm is thousands of requests a second), so this is plain
ASGI, not a framework route: measured here, a framework route costs 3-4x a bare app for the
same cached bytes. It translates HTTP into a FileRequest, and the FileResult back, with
conditional GET (ETag, Last-Modified), HEAD and single-range requests for firmware.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, MutableMapping
from email.utils import formatdate, parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl

from provisor.provisioning.limits import in_networks
from provisor.provisioning.pipeline import Pipeline
from provisor.provisioning.request import FileRequest, FileResult, clean_path

__all__ = ["PhoneApp", "client_address"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_CHUNK = 256 * 1024

# a request with any of these is never answered from the parser callback (see PhoneApp.quick)
_NOT_QUICK = frozenset(
    (
        b"range",
        b"if-range",
        b"if-none-match",
        b"if-modified-since",
        b"content-length",
        b"transfer-encoding",
        b"expect",
        b"upgrade",
    )
)


def client_address(peer: str, forwarded_for: str | None, trusted_proxies: int) -> str:
    """The N-th address from the right of X-Forwarded-For, or the socket peer."""
    if trusted_proxies <= 0 or not forwarded_for:
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    if len(hops) < trusted_proxies:
        return hops[0] if hops else peer
    return hops[-trusted_proxies]


class PhoneApp:
    """ASGI app serving phones' files through the pipeline."""

    def __init__(self, pipeline: Pipeline, *, secure: bool = False) -> None:
        self.pipeline = pipeline
        self.secure = secure
        self.trusted = pipeline.trusted_proxies
        self.proxies = pipeline.proxies
        self._is_proxy: dict[str, bool] = {}  # peer -> in ``proxies`` (few peers: the proxies)
        self._retry_after = str(pipeline.prov.settings.database.retry_after).encode()
        # response headers of whole 200 answers, by what they depend on: a cached file is
        # answered thousands of times a second with the same headers
        self._headers: dict[tuple[Any, ...], list[tuple[bytes, bytes]]] = {}
        # the same, as the bytes of a whole response head (status line to blank line)
        self._heads: dict[tuple[Any, ...], bytes] = {}

    def quick(
        self,
        raw_path: bytes,
        query: bytes | None,
        headers: list[tuple[bytes, bytes]],
        peer: str,
        keep_alive: bool,
    ) -> tuple[bytes, bytes] | None:
        """The head and body of a plain GET's answer when the pipeline has it hot, else None.

        Called by the listener's protocol from its parser callback (``GuardedHttpProtocol``):
        a phone asking again for a file that has not changed is answered without building an
        ASGI scope, task and messages, about a third of such a request's cost. Anything
        out of the ordinary (a query, a body, a conditional or range GET) goes the ASGI way.
        ``headers`` are uvicorn's: lower-case names, the last of duplicates wins as in
        :meth:`__call__`.
        """
        if query:
            return None
        user_agent = forwarded = None
        for name, value in headers:
            if name == b"user-agent":
                user_agent = value
            elif name == b"x-forwarded-for":
                forwarded = value
            elif name in _NOT_QUICK:
                return None
        path = clean_path(raw_path.decode("latin-1"))
        if path is None:
            return None
        ip = self._client(peer, forwarded.decode("latin-1") if forwarded is not None else None)
        req = FileRequest(
            "http",
            path,
            ip,
            user_agent=user_agent.decode("latin-1") if user_agent is not None else None,
            secure=self.secure,
        )
        result = self.pipeline.hot(req)
        if result is None:
            return None
        size = len(result.body)
        key = (result.content_type, result.etag, result.last_modified, size, keep_alive)
        head = self._heads.get(key)
        if head is None:
            lines = [b"HTTP/1.1 200 OK\r\n"]
            lines += [b"%s: %s\r\n" % pair for pair in _headers(result)]
            lines.append(b"content-length: %d\r\n" % size)
            if not keep_alive:
                lines.append(b"connection: close\r\n")
            lines.append(b"\r\n")
            head = b"".join(lines)
            if len(self._heads) >= 10_000:
                self._heads.clear()
            self._heads[key] = head
        return head, result.body

    def _client(self, peer: str, forwarded_for: str | None) -> str:
        """The phone's address: ``X-Forwarded-For`` counts only on a trusted proxy's connection
        (``limits.proxy_addresses``, loopback by default); anyone else's is its own peer."""
        if self.trusted <= 0 or not forwarded_for:
            return peer
        proxy = self._is_proxy.get(peer)
        if proxy is None:
            proxy = in_networks(peer, self.proxies)
            if len(self._is_proxy) >= 4096:
                self._is_proxy.clear()
            self._is_proxy[peer] = proxy
        return client_address(peer, forwarded_for, self.trusted) if proxy else peer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        method = scope["method"]
        if method not in ("GET", "HEAD"):
            await _simple(send, 405, b"Method Not Allowed", [(b"allow", b"GET, HEAD")])
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        raw_path = scope.get("raw_path") or scope["path"].encode("latin-1")
        path = clean_path(raw_path.decode("latin-1"))
        peer = (scope.get("client") or ("", 0))[0]
        ip = self._client(peer, headers.get("x-forwarded-for"))
        if path is None:
            self.pipeline.refuse(ip, "unsafe path (traversal or control characters)")
            await _simple(send, 404, b"Nowhere to route this request.")
            return
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        req = FileRequest(
            "http", path, ip, user_agent=headers.get("user-agent"), query=query, secure=self.secure
        )
        if "range" in headers or "if-none-match" in headers or "if-modified-since" in headers:
            # the trace and metrics record the 304 or 206 the phone gets, not the 200 behind it
            def sent(result: FileResult) -> tuple[int, int]:
                status, start, end = _plan(headers, result)
                return status, 0 if method == "HEAD" else max(end - start + 1, 0)

            result = await self.pipeline.handle(req, sent)
        else:
            result = await self.pipeline.handle(req)
        await self._respond(send, method, headers, result)

    async def _respond(
        self, send: Send, method: str, headers: dict[str, str], result: FileResult
    ) -> None:
        if result.status != 200:
            extra = [(b"retry-after", self._retry_after)] if result.status == 503 else None
            await _simple(send, result.status, result.body, extra)
            return
        if (
            result.file is None
            and method == "GET"
            and "range" not in headers
            and "if-none-match" not in headers
            and "if-modified-since" not in headers
        ):
            key = (result.content_type, result.etag, result.last_modified, len(result.body))
            whole = self._headers.get(key)
            if whole is None:
                whole = _headers(result) + [(b"content-length", str(len(result.body)).encode())]
                if len(self._headers) >= 10_000:
                    self._headers.clear()
                self._headers[key] = whole
            await send({"type": "http.response.start", "status": 200, "headers": whole})
            await send({"type": "http.response.body", "body": result.body})
            return
        out = _headers(result)
        status, start, end = _plan(headers, result)
        if status == 304:
            await send({"type": "http.response.start", "status": 304, "headers": out})
            await send({"type": "http.response.body", "body": b""})
            return
        size = result.size if result.file is not None else len(result.body)
        if status == 416:
            await _simple(
                send,
                416,
                b"Range Not Satisfiable",
                [(b"content-range", f"bytes */{size}".encode())],
            )
            return
        if status == 206:
            out.append((b"content-range", f"bytes {start}-{end}/{size}".encode()))
        length = max(end - start + 1, 0)
        out.append((b"content-length", str(length).encode()))
        await send({"type": "http.response.start", "status": status, "headers": out})
        if method == "HEAD":
            await send({"type": "http.response.body", "body": b""})
            return
        if result.file is None:
            await send({"type": "http.response.body", "body": result.body[start : end + 1]})
            return
        await _send_file(send, str(result.file), start, length)


def _headers(result: FileResult) -> list[tuple[bytes, bytes]]:
    out = [
        (b"content-type", result.content_type.encode("latin-1")),
        (b"cache-control", b"no-cache"),
        (b"accept-ranges", b"bytes"),
    ]
    if result.etag:
        out.append((b"etag", result.etag.encode("latin-1")))
    if result.last_modified:
        out.append((b"last-modified", formatdate(result.last_modified, usegmt=True).encode()))
    return out


def _plan(headers: dict[str, str], result: FileResult) -> tuple[int, int, int]:
    """What a 200 result becomes for these request headers: (status, first, last byte)."""
    if _not_modified(headers, result):
        return 304, 0, -1
    size = result.size if result.file is not None else len(result.body)
    rng = headers.get("range")
    if rng and _if_range_ok(headers, result):
        parsed = _parse_range(rng, size)
        if parsed is None:
            return 416, 0, -1
        return 206, parsed[0], parsed[1]
    return 200, 0, size - 1


def _not_modified(headers: dict[str, str], result: FileResult) -> bool:
    inm = headers.get("if-none-match")
    if inm is not None:
        tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
        return "*" in tags or (result.etag is not None and result.etag in tags)
    ims = headers.get("if-modified-since")
    if ims and result.last_modified:
        try:
            return int(result.last_modified) <= parsedate_to_datetime(ims).timestamp()
        except (TypeError, ValueError):
            return False
    return False


def _if_range_ok(headers: dict[str, str], result: FileResult) -> bool:
    cond = headers.get("if-range")
    return cond is None or cond == result.etag


def _parse_range(value: str, size: int) -> tuple[int, int] | None:
    """One ``bytes=a-b`` range within ``size``; None when unsatisfiable or malformed."""
    unit, _, spec = value.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec or size == 0:
        return None
    first, _, last = spec.strip().partition("-")
    try:
        if first == "":
            n = int(last)
            if n <= 0:
                return None
            return max(size - n, 0), size - 1
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if start < 0 or start >= size or end < start:
        return None
    return start, min(end, size - 1)


async def _send_file(send: Send, path: str, start: int, length: int) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.lseek(fd, start, os.SEEK_SET)
        remaining = length
        while remaining > 0:
            chunk = os.read(fd, min(_CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": remaining > 0})
        if remaining > 0:
            await send({"type": "http.response.body", "body": b""})
    finally:
        os.close(fd)


async def _simple(
    send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [
        (b"content-type", b"text/plain"),
        (b"content-length", str(len(body)).encode()),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
