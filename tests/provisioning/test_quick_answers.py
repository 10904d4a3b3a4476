"""Hot answers written from the listener's parser callback (``PhoneApp.quick``), over real
sockets: the same bytes and headers as the ASGI path, in order on a pipelined connection,
HTTP/1.0 closed, and every request that is not a plain repeat sent the ASGI way."""

from __future__ import annotations

import asyncio

from tests.conftest import Server
from tests.provisioning.test_http_pipeline import UA, configure, devices

PATH = "/tp/001122334455.cfg"


def _request(path: str = PATH, *, version: str = "1.1", extra: str = "") -> bytes:
    return (
        f"GET {path} HTTP/{version}\r\nHost: 127.0.0.1\r\nUser-Agent: {UA}\r\n{extra}\r\n"
    ).encode()


async def _read_answer(reader: asyncio.StreamReader) -> tuple[str, dict[str, str], bytes]:
    """One HTTP answer: status line, headers (lower-case names), body by content-length."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    status, *lines = head.decode("latin-1").split("\r\n")[:-2]
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        assert name.lower() not in headers, f"header {name} twice"
        headers[name.lower()] = value.strip()
    body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), 10)
    return status, headers, body


async def _connect(server: Server) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    port = server.running.ports["http"]
    return await asyncio.open_connection("127.0.0.1", port)


async def test_a_repeat_is_answered_with_the_same_bytes_and_headers(server: Server) -> None:
    first = await server.phone.get(PATH, headers={"User-Agent": UA})
    assert first.status_code == 200
    guard = server.running.guards["http"]
    before = guard.quick_answers
    reader, writer = await _connect(server)
    try:
        answers = []
        for _ in range(3):
            writer.write(_request())
            answers.append(await _read_answer(reader))
    finally:
        writer.close()
    assert guard.quick_answers == before + 3  # from the parser callback, not through ASGI
    for status, headers, body in answers:
        assert status == "HTTP/1.1 200 OK"
        assert body == first.content
        assert headers == {k.lower(): v for k, v in first.headers.items()}
    hot = server.pipeline.trace.query(client_ip="127.0.0.1", limit=3)
    assert [e["cache"] for e in hot] == ["hit"] * 3
    assert all(e["status"] == 200 and e["device_id"] for e in hot)


async def test_pipelined_requests_are_answered_in_order(server: Server) -> None:
    """A repeat queued behind a request still being worked out waits its turn."""
    await server.phone.get(PATH, headers={"User-Agent": UA})
    reader, writer = await _connect(server)
    try:
        # a miss (a file never asked for), then the hot one, then a 404, in one write
        writer.write(_request("/tp/common.cfg") + _request() + _request("/nothing/here.cfg"))
        answers = [await _read_answer(reader) for _ in range(3)]
    finally:
        writer.close()
    assert [a[0] for a in answers] == [
        "HTTP/1.1 200 OK",
        "HTTP/1.1 200 OK",
        "HTTP/1.1 404 Not Found",
    ]
    assert b"server = http://127.0.0.1" in answers[0][2]  # common.cfg, not the device file
    assert answers[1][2] == (await server.phone.get(PATH, headers={"User-Agent": UA})).content


async def test_http_1_0_gets_its_answer_and_the_connection_closed(server: Server) -> None:
    await server.phone.get(PATH, headers={"User-Agent": UA})
    reader, writer = await _connect(server)
    try:
        writer.write(_request(version="1.0"))
        status, headers, body = await _read_answer(reader)
        assert await asyncio.wait_for(reader.read(), 10) == b""  # closed by the server
    finally:
        writer.close()
    assert status == "HTTP/1.1 200 OK" and headers["connection"] == "close" and body
    assert server.pipeline.trace.query(client_ip="127.0.0.1", limit=1)[0]["cache"] == "hit"


async def test_a_change_is_served_at_once(server: Server) -> None:
    await server.phone.get(PATH, headers={"User-Agent": UA})
    [device] = await devices(server)
    await configure(server, device["id"], password="First-pw1")
    reader, writer = await _connect(server)
    try:
        writer.write(_request())
        _, _, first = await _read_answer(reader)
        writer.write(_request())
        _, _, again = await _read_answer(reader)
        config = f"cfg-{device['id']}"
        doc = (await server.api.get(f"/0.2/cfg_mgr/configs/{config}")).json()["config"]
        doc["raw_config"]["sip_lines"]["1"]["password"] = "Second-pw2"
        r = await server.api.put(f"/0.2/cfg_mgr/configs/{config}", json={"config": doc})
        assert r.status_code == 204, r.text
        writer.write(_request())
        _, _, changed = await _read_answer(reader)
    finally:
        writer.close()
    assert b"First-pw1" in first and again == first
    assert b"Second-pw2" in changed and b"First-pw1" not in changed


async def test_what_is_not_a_plain_repeat_goes_the_asgi_way(server: Server) -> None:
    """Conditional, ranged, HEAD and query requests keep their own answers after a hot one."""
    first = await server.phone.get(PATH, headers={"User-Agent": UA})
    etag = first.headers["etag"]
    reader, writer = await _connect(server)
    try:
        writer.write(_request(extra=f"If-None-Match: {etag}\r\n"))
        not_modified = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        writer.write(_request(extra="Range: bytes=0-9\r\n"))
        status, headers, ranged = await _read_answer(reader)
        writer.write(_request(PATH + "?x=1"))
        q_status, _, with_query = await _read_answer(reader)
        writer.write(f"HEAD {PATH} HTTP/1.1\r\nHost: a\r\nUser-Agent: {UA}\r\n\r\n".encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    finally:
        writer.close()
    assert not_modified.startswith(b"HTTP/1.1 304 ")
    assert status == "HTTP/1.1 206 Partial Content" and ranged == first.content[:10]
    assert headers["content-range"] == f"bytes 0-9/{len(first.content)}"
    assert q_status == "HTTP/1.1 200 OK" and with_query == first.content
    assert (
        head.startswith(b"HTTP/1.1 200 ")
        and f"content-length: {len(first.content)}".encode() in head
    )
    assert server.running.guards["http"].quick_answers == 0  # none of them
    # newest first: HEAD, the query, the range, the 304: each recorded as what was sent
    assert [e["status"] for e in server.pipeline.trace.query(client_ip="127.0.0.1", limit=4)] == [
        200,
        200,
        206,
        304,
    ]


async def test_a_banned_address_gets_no_hot_answer(server: Server) -> None:
    await server.phone.get(PATH, headers={"User-Agent": UA})
    server.pipeline.failures.bans.add("127.0.0.1", 60, "test")
    try:
        r = await server.phone.get(PATH, headers={"User-Agent": UA})
    finally:
        await server.pipeline.failures.unban("127.0.0.1")
    assert r.status_code == 404
    assert (await server.phone.get(PATH, headers={"User-Agent": UA})).status_code == 200


def test_hot_answers_are_bounded_in_entries_and_bytes() -> None:
    """A kept answer holds its body after the render cache dropped it: bytes are bounded too."""
    from provisor.provisioning.hot import HotAnswers
    from provisor.provisioning.request import FileRequest, FileResult
    from provisor.provisioning.trace import TraceEntry

    hot = HotAnswers(cap=100, max_bytes=3 * 2**20)
    for n in range(10):
        req = FileRequest("http", f"{n:012x}.cfg", "192.0.2.1", user_agent="UA")
        origin = TraceEntry("http", "192.0.2.1", req.path, user_agent="UA")
        origin.device_id, origin.hot_stamp = f"dev{n}", (1, 2, 3)
        key = hot.key(req)
        assert key is not None
        hot.keep(key, FileResult(200, bytes(2**20)), origin, born=0.0)  # a distinct 1 MiB body
    kept = [n for n in range(10) if hot.get(("http", f"{n:012x}.cfg", "UA", "192.0.2.1", False))]
    assert kept == [7, 8, 9] and hot.bytes == 3 * 2**20  # the newest three, counted exactly
    hot.drop(("http", f"{9:012x}.cfg", "UA", "192.0.2.1", False))
    assert hot.bytes == 2 * 2**20
    with_query = FileRequest("http", "a.cfg", "192.0.2.1", query={"mac": "x"})
    assert hot.key(with_query) is None  # never kept: identification may read the query
