"""Phones served by several worker processes (``provisioning.workers``), with real sockets,
httpx, tftp-hpa's ``tftp`` and ``atftp``.

Which worker takes a connection is the kernel's choice; to prove that each worker serves, the
tests pause the other workers (SIGSTOP): a paused process takes nothing from the shared
sockets, so every request goes to the one left running, and the trace names it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Server, make_settings, start_server
from tests.ops._serve import serve
from tests.provisioning.test_http_pipeline import configure
from tests.support.waiting import until as wait_until

MAC = "00:11:22:33:44:55"
UA = f"TestPhone-TP100/1.2.3 ({MAC})"
FILE = "001122334455.cfg"


async def _workers_server(tmp_path: Path, database_url: str, **overrides: Any) -> Server:
    settings = make_settings(
        tmp_path,
        database_url,
        **{"provisioning.workers": 2, "provisioning.tftp_enabled": True, **overrides},
    )
    return await start_server(settings)


@pytest.fixture
async def server(tmp_path: Path, database_url: str) -> AsyncIterator[Server]:
    srv = await _workers_server(tmp_path, database_url, **{"provisioning.auto_create": False})
    try:
        yield srv
    finally:
        await srv.close()


@contextlib.contextmanager
def only(srv: Server, index: int) -> Iterator[int]:
    """Pause every worker but ``index`` (whose pid is given) for the block."""
    pids = srv.running.workers.pids()
    paused = [pid for i, pid in pids.items() if i != index]
    for pid in paused:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield pids[index]
    finally:
        for pid in paused:
            os.kill(pid, signal.SIGCONT)


async def fetch(srv: Server, path: str = f"/{FILE}") -> httpx.Response:
    """One request on a new connection (a kept-alive one stays with its worker)."""
    async with httpx.AsyncClient(base_url=srv.http_url, timeout=10) as client:
        return await client.get(path, headers={"User-Agent": UA})


async def trace(srv: Server, **params: str) -> list[dict[str, Any]]:
    r = await srv.api.get("/0.2/dev_mgr/requests", params={"limit": "1000", **params})
    assert r.status_code == 200, r.text
    return list(r.json()["requests"])


async def until(check: Any, what: str, within: float = 30.0) -> Any:
    """Poll ``check`` (bounded: the workers' trace and metrics arrive every 50 ms / 1 s)."""
    return await wait_until(check, what, within=within)


async def new_device(srv: Server) -> str:
    body = {"device": {"mac": MAC, "plugin": "testphone"}}
    r = await srv.api.post("/0.2/dev_mgr/devices", json=body)
    assert r.status_code == 201, r.text
    device_id = str(r.json()["id"])
    await configure(srv, device_id, password="Pw-workers")
    return device_id


def _tftp_hpa(port: int, name: str, out: Path) -> subprocess.CompletedProcess[str]:
    cmd = ["tftp", "127.0.0.1", str(port), "-m", "binary", "-c", "get", name, str(out)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)


def _atftp(port: int, name: str, out: Path) -> subprocess.CompletedProcess[str]:
    cmd = ["atftp", "--option", "blksize 1432", "-g", "-r", name, "-l", str(out)]
    cmd += ["127.0.0.1", str(port)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)


async def test_device_created_through_rest_is_served_by_every_worker(server: Server) -> None:
    srv = server
    assert set(srv.running.workers.pids()) == {1, 2}
    # each worker first learns that the device does not exist (a cached miss)
    for index in (1, 2):
        with only(srv, index):
            assert (await fetch(srv)).status_code == 404
    device_id = await new_device(srv)
    # created and configured through REST in the main process: every worker serves it now,
    # not after its device cache's time-to-live
    for index in (1, 2):
        with only(srv, index):
            r = await fetch(srv)
            assert r.status_code == 200, r.text
            assert b"line1.password = Pw-workers" in r.content

    async def both() -> bool:
        served = await trace(srv, device=device_id)
        return {e["worker"] for e in served if e["status"] == 200} == {1, 2}

    await until(both, "the REST trace shows the device served by worker 1 and worker 2")
    pids = srv.running.workers.pids()
    assert len(set(pids.values())) == 2 and os.getpid() not in pids.values()


@pytest.mark.skipif(
    shutil.which("tftp") is None or shutil.which("atftp") is None,
    reason="tftp-hpa and atftp clients needed (Debian tftp-hpa, atftp)",
)
async def test_tftp_served_by_both_workers_with_real_clients(
    server: Server, tmp_path: Path
) -> None:
    srv = server
    await new_device(srv)
    port = srv.running.ports["tftp"]
    for index in (1, 2):
        for client in (_tftp_hpa, _atftp):
            out = tmp_path / f"{client.__name__}-{index}.cfg"
            with only(srv, index):
                done = await asyncio.to_thread(client, port, FILE, out)
            assert done.returncode == 0, done.stderr
            assert b"line1.password = Pw-workers" in out.read_bytes()

    async def both() -> bool:
        served = [e for e in await trace(srv) if e["protocol"] == "tftp" and e["status"] == 200]
        return len(served) == 4 and {e["worker"] for e in served} == {1, 2}

    await until(both, "four TFTP transfers in the REST trace, from both workers")


def _served_http(text: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("provisor_phone_requests_total{")
        and 'protocol="http"' in line
        and 'status="2xx"' in line
    )


async def test_metrics_add_up_the_workers(server: Server) -> None:
    srv = server
    await new_device(srv)
    anonymous = httpx.AsyncClient(base_url=srv.rest_url, timeout=10)
    # the registry is the process's: other servers of this test process counted before
    before = _served_http((await anonymous.get("/metrics")).text)
    for index in (1, 2):
        with only(srv, index):
            for _ in range(3):
                assert (await fetch(srv)).status_code == 200

    async def counted() -> bool:
        return _served_http((await anonymous.get("/metrics")).text) - before == 6

    try:
        await until(counted, "/metrics counts the six requests of both workers")
    finally:
        await anonymous.aclose()


async def test_killed_worker_is_restarted_and_the_listener_keeps_answering(
    server: Server,
) -> None:
    srv = server
    await new_device(srv)
    pool = srv.running.workers
    old = pool.pids()
    os.kill(old[1], signal.SIGKILL)
    # the other worker answers meanwhile
    for _ in range(5):
        assert (await fetch(srv)).status_code == 200

    async def replaced() -> bool:
        pids = pool.pids()
        # the replacement is listed once it serves; the restart is counted a loop turn later
        return set(pids) == {1, 2} and pids[1] != old[1] and pool.restarts == 1

    await until(replaced, "worker 1 restarted", within=60)
    assert pool.pids()[2] == old[2] and pool.restarts == 1
    with only(srv, 1) as pid:
        assert pid != old[1]
        assert (await fetch(srv)).status_code == 200

    async def served_by_new() -> bool:
        return any(e["worker"] == 1 for e in await trace(srv) if e["status"] == 200)

    await until(served_by_new, "the restarted worker's request in the trace")
    health = await srv.api.get("/health/ready")
    assert health.status_code == 200, health.text


def _children(pid: int) -> set[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return {int(p) for p in path.read_text().split()} if path.exists() else set()


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


@contextlib.asynccontextmanager
async def serving(
    tmp_path: Path, database_url: str, *, workers: str | None, cpus: str | None = None
) -> AsyncIterator[tuple[subprocess.Popen[str], set[int]]]:
    """``provisor serve`` (under ``taskset -c cpus`` if given): the process and its workers."""
    cfg = tmp_path / "provisor.yml"
    cfg.write_text(
        "database:\n"
        f"  url: {database_url}\n"
        "provisioning:\n"
        + (f"  workers: {workers}\n" if workers is not None else "")
        + "  tftp_enabled: true\n"
        "general:\n"
        "  install_bundled_plugins: false\n"
        "  sync_service_type: none\n"
    )
    cmd = [str(Path(sys.executable).parent / "provisor"), "serve", "--config", str(cfg)]
    cmd += ["--data-dir", str(tmp_path / "data"), "--host", "127.0.0.1"]
    cmd += ["--rest-port", "0", "--http-port", "0", "--tftp-port", "0"]
    if cpus is not None:
        cmd = ["taskset", "-c", cpus, *cmd]
    # the listening line is logged (stderr); serve() keeps draining it so nothing blocks
    served = await asyncio.to_thread(serve, cmd, env=dict(os.environ), cwd=tmp_path, deadline=120)
    proc = served.proc
    try:
        workers_now = {
            child
            for child in _children(proc.pid)
            if "provisor.workers.child" in Path(f"/proc/{child}/cmdline").read_text()
        }
        yield proc, workers_now
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
async def test_no_worker_outlives_the_main_process(
    tmp_path: Path, database_url: str, sig: signal.Signals
) -> None:
    """SIGTERM stops every worker; even a main process killed outright leaves no orphan."""
    async with serving(tmp_path, database_url, workers="2") as (proc, workers):
        assert len(workers) == 2
        proc.send_signal(sig)
        assert await asyncio.to_thread(proc.wait, 60) == (0 if sig == signal.SIGTERM else -sig)

        async def gone() -> bool:
            return not any(_alive(pid) for pid in workers)

        await until(gone, "every worker ended", within=30)


@pytest.mark.skipif(shutil.which("taskset") is None, reason="taskset (util-linux) needed")
@pytest.mark.parametrize("cpus", ["0", "0,1"])
async def test_the_default_is_a_worker_per_usable_core(
    tmp_path: Path, database_url: str, cpus: str
) -> None:
    """``auto`` (the default) counts the cores the process may run on, not the machine's."""
    usable = os.sched_getaffinity(0)
    if not {int(c) for c in cpus.split(",")} <= usable:
        pytest.skip(f"cpus {cpus} not usable here")
    async with serving(tmp_path, database_url, workers=None, cpus=cpus) as (proc, workers):
        expected = len(cpus.split(","))
        assert len(workers) == (expected if expected > 1 else 0)  # one core: one process
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 60) == 0


async def test_a_worker_that_cannot_start_is_one_line(tmp_path: Path, database_url: str) -> None:
    """A worker that cannot open the store: start-up fails with one line naming the worker."""
    from provisor.errors import StartupError
    from provisor.server import Running
    from provisor.service import Provisor

    settings = make_settings(
        tmp_path, database_url, **{"provisioning.workers": 2, "provisioning.tftp_enabled": True}
    )
    prov = await Provisor.open(settings)  # the main process's store is fine...
    unreachable = settings.model_copy(deep=True)  # ...the workers' is not
    (tmp_path / "a-file").write_text("not a folder")
    unreachable.database.url = f"sqlite+aiosqlite:///{tmp_path}/a-file/provisor.db"
    with pytest.raises(StartupError) as caught:
        await Running.start(unreachable, prov=prov)
    message = caught.value.message
    assert message.startswith("phone worker ") and "a-file" in message, message
    assert "\n" not in message
    assert not [
        child
        for child in _children(os.getpid())
        if "provisor.workers.child" in Path(f"/proc/{child}/cmdline").read_text()
    ]


def _ask(port: int) -> tuple[socket.socket, bool]:
    """A new connection and one request on it: (the socket, whether it was answered)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        sock.sendall(b"GET /nothing.cfg HTTP/1.1\r\nHost: x\r\n\r\n")
        answered = sock.recv(64).startswith(b"HTTP/1.1 ")
    except OSError:  # reset at accept: over a cap
        answered = False
    return sock, answered


async def test_connection_caps_hold_in_total_across_workers(
    tmp_path: Path, database_url: str
) -> None:
    """limits.phone caps are divided among the workers: 4 per address with 2 workers is 2 in
    each, so one address never holds more than 4 connections whichever worker takes them."""
    srv = await _workers_server(
        tmp_path, database_url, **{"limits.phone.max_connections_per_address": 4}
    )
    held: list[socket.socket] = []
    try:
        port = srv.running.ports["http"]
        answered = 0
        for index in (1, 2):
            with only(srv, index):
                for _ in range(4):
                    sock, ok = await asyncio.to_thread(_ask, port)
                    held.append(sock)
                    answered += ok
            # each worker alone: its half of the cap, the rest refused
            assert answered == 2 * index
        for _ in range(4):  # both running: the address is at its total already
            sock, ok = await asyncio.to_thread(_ask, port)
            held.append(sock)
            assert not ok
    finally:
        for sock in held:
            sock.close()
        await srv.close()


async def test_tftp_totals_are_divided_and_the_per_client_cap_is_each_workers(
    tmp_path: Path, database_url: str
) -> None:
    from provisor.provisioning.tftp_front import start_tftp

    settings = make_settings(
        tmp_path,
        database_url,
        **{"provisioning.tftp_max_transfers": 101, "provisioning.tftp_reserved_transfers": 21},
    )
    srv = await start_server(settings)
    tftp = await start_tftp(srv.pipeline, settings, share=2)
    try:
        limits = tftp.limits
        assert (limits.max_transfers, limits.reserved_transfers) == (50, 10)
        assert (
            limits.max_transfers_per_client == settings.provisioning.tftp_max_transfers_per_client
        )
    finally:
        await tftp.stop()
        await srv.close()


async def test_https_served_by_both_workers(tmp_path: Path, database_url: str) -> None:
    """Each worker loads the certificate and serves the HTTPS socket the main process bound."""
    import ssl

    from provisor.tls import write_self_signed

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    write_self_signed(cert, key, ["127.0.0.1"])
    srv = await _workers_server(
        tmp_path,
        database_url,
        **{
            "provisioning.auto_create": False,
            "provisioning.https_enabled": True,
            "provisioning.https_port": 0,
            "provisioning.tls_certfile": str(cert),
            "provisioning.tls_keyfile": str(key),
        },
    )
    try:
        device_id = await new_device(srv)
        url = f"https://127.0.0.1:{srv.running.ports['https']}"
        context = ssl.create_default_context(cafile=str(cert))
        for index in (1, 2):
            with only(srv, index):
                async with httpx.AsyncClient(base_url=url, verify=context, timeout=10) as phone:
                    r = await phone.get(f"/{FILE}", headers={"User-Agent": UA})
                assert r.status_code == 200 and b"line1.password = Pw-workers" in r.content

        async def both() -> bool:
            served = await trace(srv, device=device_id)
            return {e["worker"] for e in served if e["status"] == 200} == {1, 2}

        await until(both, "HTTPS requests of both workers in the REST trace")
    finally:
        await srv.close()


async def test_a_ban_decided_by_one_worker_holds_on_the_other(
    tmp_path: Path, database_url: str
) -> None:
    """A ban reached through one worker's failures is shared (sent by the main process to every
    worker, and through the `bans` table), so every worker refuses the scanner.
    tests/provisioning/test_worker_bans.py counts failures spread over both workers."""
    srv = await _workers_server(
        tmp_path,
        database_url,
        **{"provisioning.auto_create": False, "provisioning.ban_threshold": 5},
    )
    try:
        device_id = await new_device(srv)
        with only(srv, 2):
            assert (await fetch(srv)).status_code == 200  # worker 2 serves the address
        with only(srv, 1):
            for n in range(8):  # walking unknown MACs: failures, then a ban on worker 1
                await fetch(srv, f"/00112233{n:04x}.cfg")
            assert (await fetch(srv)).status_code == 404  # banned: even the real file

        async def refused_by_2() -> bool:
            with only(srv, 2):
                return (await fetch(srv)).status_code == 404

        await until(refused_by_2, "worker 2 refuses the address worker 1 banned")

        async def traced() -> bool:
            return any(
                e["worker"] == 2 and "banned" in (e["reason"] or "") for e in await trace(srv)
            )

        await until(traced, "the trace says worker 2 refused a banned address")
        assert device_id
    finally:
        await srv.close()
