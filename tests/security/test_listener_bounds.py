"""What an anonymous client can make the HTTP listeners spend: bytes of a head, time, connections.

Real server, real sockets on 127.0.0.1 (and loopback aliases 127.0.0.x as other source
addresses). Counts and waits are bounded; no assertion is about speed.
"""

from __future__ import annotations

import asyncio
import os
import re
import resource
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from provisor.provisioning.limits import fd_budget
from provisor.tls import write_self_signed
from tests.conftest import TEST_PLUGINS, Server, make_settings, start_server
from tests.security._bounds import (
    RssPeak,
    close_all,
    closed_by_server,
    open_raw,
    wait_until,
)

MiB = 1024 * 1024


async def _server(tmp_path: Path, database_url: str, **overrides: Any) -> Server:
    return await start_server(make_settings(tmp_path, database_url, **overrides))


def _port(srv: Server, listener: str) -> int:
    return int(srv.running.ports[listener])


async def _ask(port: int, request: bytes, source: str = "127.0.0.1") -> bytes:
    reader, writer = await open_raw(port, source)
    try:
        writer.write(request)
        await writer.drain()
        return await closed_by_server(reader)
    finally:
        await close_all([writer])


@pytest.mark.parametrize("listener", ["http", "rest"])
async def test_oversized_request_line_and_head_are_refused(
    tmp_path: Path, database_url: str, listener: str
) -> None:
    srv = await _server(tmp_path, database_url)
    try:
        port = _port(srv, listener)
        long_target = b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
        answer = await _ask(port, long_target)
        assert answer.startswith(b"HTTP/1.1 414 ")
        headers = b"".join(b"X-Pad-%d: %s\r\n" % (i, b"v" * 1000) for i in range(40))
        answer = await _ask(port, b"GET / HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
        assert answer.startswith(b"HTTP/1.1 431 ")
        # on a kept-alive connection, after a first answer, too
        reader, writer = await open_raw(port)
        try:
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            first = await reader.readuntil(b"\r\n\r\n")
            assert first.startswith(b"HTTP/1.1 ")
            length = int(re.search(rb"content-length: (\d+)", first.lower()).group(1))  # type: ignore[union-attr]
            await reader.readexactly(length)
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
            assert (await closed_by_server(reader)).startswith(b"HTTP/1.1 431 ")
        finally:
            await close_all([writer])
        # a head just under the caps is served
        headers = b"".join(b"X-Pad-%d: %s\r\n" % (i, b"v" * 1000) for i in range(20))
        r = await (srv.phone if listener == "http" else srv.api).get(
            "/" if listener == "http" else "/0.2/dev_mgr/devices",
            headers={f"X-Pad-{i}": "v" * 1000 for i in range(20)},
        )
        assert r.status_code in (200, 404)
        assert r.status_code == (404 if listener == "http" else 200)
        assert srv.running.guards[listener].refusals.counts == {
            "uri too long": 1,
            "request header fields too large": 2,
        }
    finally:
        await srv.close()


async def _flood_unfinished_head(port: int, budget: int) -> bytes:
    """Send an endless header (up to ``budget`` bytes) until the server gives up on it."""
    reader, writer = await open_raw(port)
    chunk = b"v" * 65536
    try:
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nX-Endless: ")
        sent = 0
        while sent < budget:
            try:
                writer.write(chunk)
                await writer.drain()
            except (ConnectionResetError, BrokenPipeError):
                break
            sent += len(chunk)
            if reader.at_eof() or reader._buffer:  # type: ignore[attr-defined]
                break  # the server answered: stop sending
        return await closed_by_server(reader)
    finally:
        await close_all([writer])


async def test_unfinished_headers_keep_memory_bounded(tmp_path: Path, database_url: str) -> None:
    srv = await _server(tmp_path, database_url)
    try:
        port = _port(srv, "http")
        await srv.phone.get("/")
        # 20 connections x 16 MiB: 320 MiB of header bytes if the server kept them (with the
        # caps lifted, this process peaked 167 MiB above its start before the deadline)
        async with RssPeak() as rss:
            answers = await asyncio.gather(
                *(_flood_unfinished_head(port, 16 * MiB) for _ in range(20))
            )
        grown = rss.grown
        # the answer is 431, unless the client's own unread bytes made the close a reset
        assert all(a == b"" or a.startswith(b"HTTP/1.1 431 ") for a in answers), answers
        refusals = srv.running.guards["http"].refusals.counts
        assert refusals["request header fields too large"] == 20
        assert grown < 64 * MiB, f"server grew by {grown / MiB:.0f} MiB"
        assert (await srv.phone.get("/")).status_code == 404
    finally:
        await srv.close()


async def test_silent_connection_and_slow_head_are_closed(
    tmp_path: Path, database_url: str
) -> None:
    srv = await _server(
        tmp_path,
        database_url,
        **{
            "limits.phone.idle_timeout": 1.0,
            "limits.phone.header_timeout": 1.5,
            "limits.rest.idle_timeout": 1.0,
            "limits.rest.body_timeout": 1.0,
            "limits.phone.max_header_bytes": 2048,
            "limits.phone.max_request_line": 512,
        },
    )
    try:
        # the caps are the settings': a 3 KiB head and a 600-byte target are refused here
        pad = b"X-Pad: " + b"v" * 3000 + b"\r\n"
        answer = await _ask(_port(srv, "http"), b"GET / HTTP/1.1\r\nHost: x\r\n" + pad + b"\r\n")
        assert answer.startswith(b"HTTP/1.1 431 ")
        answer = await _ask(_port(srv, "http"), b"GET /" + b"a" * 600 + b" HTTP/1.1\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 414 ")
        # a body that never ends is cut at body_timeout
        reader, writer = await open_raw(_port(srv, "rest"))
        writer.write(
            b"POST /0.2/dev_mgr/devices HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
            b"X-Auth-Token: " + srv.token.encode() + b"\r\n"
            b'Content-Type: application/json\r\n\r\n{"device": '
        )
        assert (await closed_by_server(reader)).startswith(b"HTTP/1.1 408 ")
        await close_all([writer])
        # a connection that never sends a byte is closed, without an answer
        for listener in ("http", "rest"):
            reader, writer = await open_raw(_port(srv, listener))
            assert await closed_by_server(reader) == b""
            await close_all([writer])
        # slow loris: a head trickled byte by byte must end within header_timeout
        reader, writer = await open_raw(_port(srv, "http"))
        trickled = 0

        async def trickle() -> None:
            nonlocal trickled
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            for _ in range(400):  # 40 s at most, far beyond the 1.5 s deadline
                writer.write(b"v")
                trickled += 1
                await asyncio.sleep(0.1)

        task = asyncio.create_task(trickle())
        try:
            answer = await closed_by_server(reader)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await close_all([writer])
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert trickled < 400
        # a connection kept alive after an answer is closed once idle, too
        reader, writer = await open_raw(_port(srv, "http"))
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = await closed_by_server(reader)
        assert answer.startswith(b"HTTP/1.1 404 ")
        await close_all([writer])
    finally:
        await srv.close()


async def _hold(port: int, source: str, n: int) -> list[asyncio.StreamWriter]:
    writers = []
    for _ in range(n):
        _, writer = await open_raw(port, source)
        writers.append(writer)
    return writers


async def test_per_address_cap_leaves_other_addresses_and_rest(
    tmp_path: Path, database_url: str
) -> None:
    srv = await _server(tmp_path, database_url, **{"limits.phone.max_connections_per_address": 5})
    port = _port(srv, "http")
    limiter = srv.running.guards["http"].limiter
    held: list[asyncio.StreamWriter] = []
    try:
        held += await _hold(port, "127.0.0.2", 5)
        await wait_until(lambda: limiter.per_address["127.0.0.2"] == 5)
        reader, writer = await open_raw(port, "127.0.0.2")
        held.append(writer)
        assert await closed_by_server(reader) == b""  # over the cap: closed at once, no answer
        assert limiter.per_address["127.0.0.2"] == 5
        transport = httpx.AsyncHTTPTransport(local_address="127.0.0.3")
        async with httpx.AsyncClient(transport=transport, timeout=10) as other:
            r = await other.get(f"http://127.0.0.1:{port}/")
            assert r.status_code == 404  # another address is answered
        assert (await srv.api.get("/0.2/dev_mgr/devices")).status_code == 200
        assert srv.running.guards["http"].refusals.counts["per-address connection cap"] == 1
    finally:
        await close_all(held)
        await srv.close()


async def test_listener_cap_does_not_take_the_other_listener_down(
    tmp_path: Path, database_url: str
) -> None:
    srv = await _server(
        tmp_path,
        database_url,
        **{
            "limits.phone.max_connections": 12,
            "limits.phone.max_connections_per_address": 6,
            "limits.rest.max_connections": 8,
            "limits.rest.max_connections_per_address": 4,
        },
    )
    held: list[asyncio.StreamWriter] = []
    try:
        http, rest = _port(srv, "http"), _port(srv, "rest")
        phone_limiter = srv.running.guards["http"].limiter
        rest_limiter = srv.running.guards["rest"].limiter
        # the phone listener saturated: a new phone connection is dropped, REST answers
        held += await _hold(http, "127.0.0.2", 6) + await _hold(http, "127.0.0.3", 6)
        await wait_until(lambda: phone_limiter.total == 12)
        reader, writer = await open_raw(http, "127.0.0.4")
        held.append(writer)
        assert await closed_by_server(reader) == b""
        async with srv.client(srv.token) as api:  # a new REST connection
            assert (await api.get("/0.2/dev_mgr/devices")).status_code == 200
        # and the other way round
        held += await _hold(rest, "127.0.0.5", 4) + await _hold(rest, "127.0.0.6", 4)
        await wait_until(lambda: rest_limiter.total >= 8)
        reader, writer = await open_raw(rest, "127.0.0.7")
        held.append(writer)
        assert await closed_by_server(reader) == b""
        await close_all(held)
        held = []
        await wait_until(lambda: phone_limiter.total == 0 and rest_limiter.total == 0)
        async with httpx.AsyncClient(timeout=10) as phone:
            assert (await phone.get(f"http://127.0.0.1:{http}/")).status_code == 404
        assert srv.running.guards["http"].refusals.counts["listener connection cap"] == 1
    finally:
        await close_all(held)
        await srv.close()


async def test_trusted_proxy_is_held_only_to_the_listener_cap(
    tmp_path: Path, database_url: str
) -> None:
    srv = await _server(
        tmp_path,
        database_url,
        **{
            "general.http_proxied_trusted_proxies_count": 1,
            "limits.proxy_addresses": ["127.0.0.5/32"],
            "limits.phone.max_connections_per_address": 3,
            "limits.phone.max_connections": 10,
        },
    )
    held: list[asyncio.StreamWriter] = []
    try:
        port = _port(srv, "http")
        limiter = srv.running.guards["http"].limiter
        held += await _hold(port, "127.0.0.5", 6)  # the proxy: many phones on its connections
        await wait_until(lambda: limiter.per_address["127.0.0.5"] == 6)
        held += await _hold(port, "127.0.0.6", 3)
        await wait_until(lambda: limiter.per_address["127.0.0.6"] == 3)
        reader, writer = await open_raw(port, "127.0.0.6")  # not a proxy: capped
        held.append(writer)
        assert await closed_by_server(reader) == b""
        held += await _hold(port, "127.0.0.5", 1)  # the proxy's 7th: total 10, the cap
        await wait_until(lambda: limiter.total == 10)
        reader, writer = await open_raw(port, "127.0.0.5")
        held.append(writer)
        assert await closed_by_server(reader) == b""  # the listener's cap holds for it too
    finally:
        await close_all(held)
        await srv.close()


async def test_tls_handshakes_are_counted_and_timed(tmp_path: Path, database_url: str) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    write_self_signed(cert, key, ["127.0.0.1"])
    srv = await _server(
        tmp_path,
        database_url,
        **{
            "provisioning.https_enabled": True,
            "provisioning.https_port": 0,
            "provisioning.tls_certfile": str(cert),
            "provisioning.tls_keyfile": str(key),
            "limits.phone.max_connections_per_address": 3,
            "limits.phone.header_timeout": 1.0,
            "limits.phone.idle_timeout": 1.0,
        },
    )
    held: list[asyncio.StreamWriter] = []
    try:
        port = _port(srv, "https")
        limiter = srv.running.guards["https"].limiter
        readers = []
        for _ in range(3):  # TCP connections that never start their handshake
            reader, writer = await open_raw(port, "127.0.0.2")
            readers.append(reader)
            held.append(writer)
        await wait_until(lambda: limiter.per_address["127.0.0.2"] == 3)
        reader, writer = await open_raw(port, "127.0.0.2")
        held.append(writer)
        assert await closed_by_server(reader) == b""  # counted before any handshake
        for reader in readers:  # and dropped when the handshake does not come
            assert await closed_by_server(reader) == b""
        await wait_until(lambda: limiter.total == 0)
        import ssl

        context = ssl.create_default_context(cafile=str(cert))
        async with httpx.AsyncClient(verify=context, timeout=10) as phone:
            assert (await phone.get(f"https://127.0.0.1:{port}/")).status_code == 404
    finally:
        await close_all(held)
        await srv.close()


async def test_default_caps_share_the_descriptor_limit(tmp_path: Path, database_url: str) -> None:
    srv = await _server(tmp_path, database_url)
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        budget = fd_budget(soft)
        guards = srv.running.guards
        assert guards["http"].bounds.max_connections == budget.phone
        assert guards["rest"].bounds.max_connections == budget.rest
        assert budget.phone + budget.rest < soft // 2
    finally:
        await srv.close()


# -- the production stack: `provisor serve` on uvloop, in its own process --------------------


def _serve(
    tmp_path: Path, database_url: str, nofile: int
) -> tuple[subprocess.Popen[str], dict[str, int]]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    write_self_signed(cert, key, ["127.0.0.1"])
    config = tmp_path / "provisor.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "general": {"data_dir": str(tmp_path / "data"), "plugin_dirs": [str(TEST_PLUGINS)]},
                "database": {"url": database_url},
                "rest_api": {"port": 0},
                "provisioning": {
                    "http_port": 0,
                    "https_enabled": True,
                    "https_port": 0,
                    "tls_certfile": str(cert),
                    "tls_keyfile": str(key),
                    "tftp_enabled": False,
                },
                "limits": {"phone": {"idle_timeout": 1.0, "header_timeout": 1.0}},
            }
        )
    )

    def limit_fds() -> None:  # a small descriptor limit: the caps are a share of it
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    proc = subprocess.Popen(
        [sys.executable, "-m", "provisor.cli", "serve", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=limit_fds,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    ports: dict[str, int] = {}
    for line in proc.stdout:
        if "provisor listening on" in line:
            ports = {m[0]: int(m[1]) for m in re.findall(r"(\w+) [\d.]+:(\d+)", line)}
            break
    if not ports:
        proc.kill()
        raise AssertionError("provisor serve did not start")
    return proc, ports


async def test_serve_on_uvloop_bounds_heads_time_and_connections(
    tmp_path: Path, database_url: str
) -> None:
    proc, ports = await asyncio.to_thread(_serve, tmp_path, database_url, 400)
    held: list[asyncio.StreamWriter] = []
    try:
        http, https, rest = ports["http"], ports["https"], ports["rest"]
        async with httpx.AsyncClient(timeout=10) as client:
            assert (await client.get(f"http://127.0.0.1:{http}/")).status_code == 404
            async with RssPeak(proc.pid) as rss:
                answers = await asyncio.gather(
                    *(_flood_unfinished_head(http, 16 * MiB) for _ in range(20))
                )
            assert all(a == b"" or a.startswith(b"HTTP/1.1 431 ") for a in answers)
            grown = rss.grown
            assert grown < 64 * MiB, f"server grew by {grown / MiB:.0f} MiB"
            # silent connections: plain and TLS (no handshake) are both closed
            for port in (http, https):
                reader, writer = await open_raw(port)
                assert await closed_by_server(reader) == b""
                await close_all([writer])
            # saturate the REST listener (10 % of 400 descriptors: 40): phones still served
            held += await _hold(rest, "127.0.0.2", 40)
            reader, writer = await open_raw(rest, "127.0.0.3")
            held.append(writer)
            assert await closed_by_server(reader) == b""
            assert (await client.get(f"http://127.0.0.1:{http}/")).status_code == 404
    finally:
        await close_all(held)
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(proc.wait, 30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        output = proc.stdout.read()
        proc.stdout.close()
    # the refusals were logged (rate-limited), without a path
    assert "rest: refused 1 connection(s)/request(s) (listener connection cap)" in output
    assert "http: refused" in output and "request header fields too large" in output
    assert "X-Endless" not in output


def test_refusal_log_is_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from provisor.provisioning.limits import RefusalLog

    refusals = RefusalLog(logging.getLogger("provisor.test"), "http", interval=3600)
    with caplog.at_level(logging.WARNING, logger="provisor.test"):
        for n in range(1000):
            refusals.note("per-address connection cap", f"192.0.2.{n % 200}")
        refusals.note("uri too long", "192.0.2.7")
    assert refusals.counts == {"per-address connection cap": 1000, "uri too long": 1}
    assert len(caplog.records) == 2  # one line per reason within the interval


async def test_the_end_of_a_burst_is_logged_when_its_interval_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Refusals held back by the interval are reported when it ends, with nothing after them."""
    import logging

    from provisor.provisioning.limits import RefusalLog
    from tests.support.waiting import until

    refusals = RefusalLog(logging.getLogger("provisor.test"), "tftp", interval=0.3)
    with caplog.at_level(logging.WARNING, logger="provisor.test"):
        for n in range(50):
            refusals.note("busy: per-client cap", f"192.0.2.{n}")
        await until(lambda: len(caplog.records) == 2, "the held-back refusals logged")
        refusals.note("busy: per-client cap", "192.0.2.99")
        refusals.close()  # a closing listener writes what it still holds
    lines = [r.getMessage() for r in caplog.records]
    assert "refused 1 connection(s)/request(s) (busy: per-client cap)" in lines[0]
    assert "refused 49 connection(s)/request(s)" in lines[1] and "192.0.2.49" in lines[1]
    assert "refused 1 connection(s)/request(s)" in lines[2] and "192.0.2.99" in lines[2]
    assert len(lines) == 3 and refusals.counts["busy: per-client cap"] == 51
