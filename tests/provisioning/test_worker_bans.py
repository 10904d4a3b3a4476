"""Scan-defence failure counts shared by the phone workers (``provisioning.workers: 2``).

Real servers with two worker processes, real connections (httpx, a new connection a request),
the real ``provisor ban remove`` command. Which worker takes a connection is the kernel's
choice: the tests spread a walk over both by pausing the other worker (SIGSTOP, see
tests/provisioning/test_workers.py) and check in the request trace that both served some.
The main process's count (``srv.pipeline.failures``: the tests run in the main process) is
read to know when the workers' events have arrived before asserting that no ban followed.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy.ext.asyncio import create_async_engine

from provisor.metrics import REGISTRY
from provisor.provisioning.defence import FailureTracker
from provisor.service import Provisor
from provisor.services.bans import BanList
from provisor.store.bans import Ban
from provisor.workers.defence import DefenceHub, WorkerTracker, ban_message
from provisor.workers.link import Link, pair
from tests.conftest import TEST_PLUGINS, Server, make_settings
from tests.provisioning.test_workers import _workers_server, new_device, only, trace, until

THRESHOLD = 6
SCANNER = "203.0.113.7"
PROVISOR = str(Path(sys.executable).parent / "provisor")
UA = "TestPhone-TP100/1.2.3 (00:11:22:33:44:55)"


@pytest.fixture
async def server(tmp_path: Path, database_url: str) -> AsyncIterator[Server]:
    srv = await _workers_server(
        tmp_path,
        database_url,
        **{
            "provisioning.auto_create": False,
            "provisioning.ban_threshold": THRESHOLD,
            "general.http_proxied_trusted_proxies_count": 1,
        },
    )
    try:
        yield srv
    finally:
        await srv.close()


async def get(srv: Server, path: str, ip: str = SCANNER, ua: str = UA) -> httpx.Response:
    """One request from ``ip`` (a trusted proxy's header) on a new connection."""
    async with httpx.AsyncClient(base_url=srv.http_url, timeout=10) as client:
        return await client.get(path, headers={"User-Agent": ua, "X-Forwarded-For": ip})


async def fail_on(srv: Server, worker: int, n: int, ip: str = SCANNER) -> None:
    """A guess of an unknown device's file, served by ``worker``: one failure."""
    with only(srv, worker):
        r = await get(srv, f"/00aabbcc{n:04x}.cfg", ip)
    assert r.status_code == 404


async def counted(srv: Server, ip: str, expected: int) -> None:
    """Wait until the main process has counted ``expected`` failures of ``ip``."""

    async def check() -> bool:
        return bool(srv.pipeline.failures.failures.count(ip) == expected)

    await until(check, f"the main process counts {expected} failures of {ip}")


async def served_by_each(srv: Server) -> list[int]:
    """The real device file's status from each worker, for the scanner's address."""
    statuses = []
    for index in (1, 2):
        with only(srv, index):
            statuses.append((await get(srv, "/001122334455.cfg")).status_code)
    return statuses


async def failures_by_worker(srv: Server, ip: str) -> dict[int, int]:
    out: dict[int, int] = {}
    for e in await trace(srv):
        if e["client_ip"] == ip and e["status"] == 404 and "banned" not in (e["reason"] or ""):
            out[e["worker"]] = out.get(e["worker"], 0) + 1
    return out


async def walk_to_the_ban(srv: Server, *, locked: bool = False) -> None:
    """``THRESHOLD`` failures, alternately on worker 1 and 2: banned on both at the last.

    ``locked``: the last failure, and the check that both workers refuse the address, while the
    ``bans`` table cannot be written (see bans_table_locked)."""
    for n in range(THRESHOLD - 1):
        await fail_on(srv, 1 + n % 2, n)
    await counted(srv, SCANNER, THRESHOLD - 1)
    # one short of the threshold: each worker still serves the address its real file
    assert await served_by_each(srv) == [200, 200]
    assert not srv.pipeline.failures.is_banned(SCANNER)
    async with bans_table_locked(srv) if locked else contextlib.nullcontext():
        await fail_on(srv, 2, THRESHOLD)  # the threshold-th failure
        await until(
            lambda: _true(srv.pipeline.failures.is_banned(SCANNER)), "the main process bans"
        )
        if locked:  # refused by each worker at once, though the ban cannot reach the table
            assert await served_by_each(srv) == [404, 404]
            assert SCANNER in srv.prov.bans._pending  # the main process's write still waits


async def _true(value: bool) -> bool:
    return value


@contextlib.asynccontextmanager
async def bans_table_locked(srv: Server) -> AsyncIterator[None]:
    """Hold the ``bans`` table against writers (another connection): a ban decided meanwhile
    reaches the workers only over their links, not through the table and its change poll."""
    engine = create_async_engine(srv.prov.engine.url)  # the server's driver, its own pool
    try:
        async with engine.connect() as conn:
            trans = await conn.begin()
            if engine.dialect.name == "postgresql":
                await conn.exec_driver_sql("LOCK TABLE bans IN SHARE ROW EXCLUSIVE MODE")
            else:  # SQLite: the first write takes the database's write lock
                await conn.exec_driver_sql("DELETE FROM bans WHERE address = 'none'")
            try:
                yield
            finally:
                await trans.rollback()
    finally:
        await engine.dispose()


async def test_threshold_failures_over_both_workers_ban_on_both(server: Server) -> None:
    srv = server
    await new_device(srv)
    await walk_to_the_ban(srv, locked=True)

    async def by_worker() -> dict[int, int]:
        found = await failures_by_worker(srv, SCANNER)
        return found if sum(found.values()) == THRESHOLD else {}

    spread = await until(by_worker, "the trace holds the walk's failures")
    assert spread == {1: THRESHOLD // 2, 2: THRESHOLD - THRESHOLD // 2}  # both workers served
    # refused by each worker (even its real file), which neither counted up to the threshold
    assert await served_by_each(srv) == [404, 404]

    async def refused_in_trace() -> bool:
        return {
            e["worker"]
            for e in await trace(srv)
            if e["client_ip"] == SCANNER and "banned" in (e["reason"] or "")
        } == {1, 2}

    await until(refused_in_trace, "the trace shows both workers refusing the banned address")
    # decided once, by the main process: one row, one ban counted, one fail2ban line

    async def written() -> list[str]:
        rows = await srv.prov.bans.store.active(now=srv.prov.bans.clock(), limit=10)
        return [b.address for b in rows]

    assert await until(written, "the ban is written once the table is free") == [SCANNER]
    log = srv.prov.settings.security_log.read_text()
    assert log.count(f"Address banned {SCANNER}:") == 1


async def test_fewer_failures_over_both_workers_do_not_ban(server: Server) -> None:
    srv = server
    await new_device(srv)
    other = "203.0.113.8"
    for n in range(2 * (THRESHOLD - 1)):  # a second address: counts are per address
        await fail_on(srv, 1 + n % 2, n, SCANNER if n % 2 else other)
    await counted(srv, SCANNER, THRESHOLD - 1)
    await counted(srv, other, THRESHOLD - 1)
    assert await served_by_each(srv) == [200, 200]
    assert srv.prov.bans.listed() == []
    found = await until(lambda: _spread(srv, other), "the trace holds the other address's failures")
    assert set(found) == {1}  # the other address's walk was all on worker 1, SCANNER's on 2


async def _spread(srv: Server, ip: str) -> dict[int, int]:
    found = await failures_by_worker(srv, ip)
    return found if sum(found.values()) == THRESHOLD - 1 else {}


async def test_probation_return_on_the_other_worker_withdraws_the_creation(
    tmp_path: Path, database_url: str
) -> None:
    srv = await _workers_server(
        tmp_path,
        database_url,
        **{
            "provisioning.auto_create": True,
            "provisioning.ban_threshold": THRESHOLD,
            "general.http_proxied_trusted_proxies_count": 1,
        },
    )
    site = "198.51.100.20"  # new phones behind one NAT
    try:

        async def boot(n: int, first: int) -> None:
            mac = f"00:11:22:77:00:{n:02x}"
            ua = f"TestPhone-TP100/1.2.3 ({mac})"
            path = f"/{mac.replace(':', '')}.cfg"
            with only(srv, first):  # created here: counts until its return
                assert (await get(srv, path, site, ua)).status_code == 200
            await counted(srv, site, n % (THRESHOLD - 1) + 1)

        async def come_back(n: int, worker: int) -> None:
            mac = f"00:11:22:77:00:{n:02x}"
            with only(srv, worker):
                r = await get(srv, f"/{mac.replace(':', '')}.cfg", site, f"TP100 ({mac})")
            assert r.status_code == 200, r.text

        for n in range(THRESHOLD - 1):  # one short of a ban, all created by worker 1
            await boot(n, 1)
        for n in range(THRESHOLD - 1):  # each comes back on worker 2: a phone, not a guess
            await come_back(n, 2)
        await counted(srv, site, 0)
        for n in range(THRESHOLD - 1, 2 * (THRESHOLD - 1)):  # as many again, on worker 2
            await boot(n, 2)
        await counted(srv, site, THRESHOLD - 1)
        assert not srv.pipeline.failures.is_banned(site)  # 2 × (THRESHOLD - 1) creations
        # the next creation, unreturned, is the threshold-th: banned
        mac = "00:11:22:77:01:00"
        with only(srv, 1):
            await get(srv, f"/{mac.replace(':', '')}.cfg", site, f"TestPhone-TP100/1.2.3 ({mac})")
        await until(lambda: _true(srv.pipeline.failures.is_banned(site)), "the creations ban")
    finally:
        await srv.close()


def _config(srv: Server, tmp_path: Path) -> Path:
    settings = srv.prov.settings
    path = tmp_path / "cli.yml"
    path.write_text(
        yaml.safe_dump(
            {
                "general": {
                    "data_dir": str(settings.general.data_dir),
                    "plugin_dirs": [str(TEST_PLUGINS)],
                    "install_bundled_plugins": False,
                },
                "database": {"url": settings.database.url},
            }
        )
    )
    return path


async def test_ban_remove_serves_the_address_again_and_clears_its_count(
    server: Server, tmp_path: Path
) -> None:
    srv = server
    await new_device(srv)
    await walk_to_the_ban(srv)
    assert srv.pipeline.failures.failures.count(SCANNER) == THRESHOLD
    done = await asyncio.to_thread(
        subprocess.run,
        [PROVISOR, "ban", "remove", SCANNER, "--config", str(_config(srv, tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    # another process lifted it: the main process forgets the count when its reload sees it
    await counted(srv, SCANNER, 0)

    async def served() -> bool:
        return await served_by_each(srv) == [200, 200]

    await until(served, "both workers serve the unbanned address")
    # a failure after the unban starts a new count, not a ban
    await fail_on(srv, 1, 99)
    await counted(srv, SCANNER, 1)
    assert await served_by_each(srv) == [200, 200]


# -- the link's two ends in one process ---------------------------------------------------------


async def test_events_cross_a_real_link_and_the_ban_comes_back_held_not_rewritten() -> None:
    """A worker's tracker and the main process's hub on a real socket pair: the worker decides
    nothing, the hub bans at the threshold, and the ban it sends back is held in memory."""
    main_sock, worker_sock = pair()
    main_end, worker_end = Link(main_sock), Link(worker_sock)
    hub_bans = BanList()
    decided: list[tuple[str, str]] = []
    hub = DefenceHub(FailureTracker(3, 60, 600, bans=hub_bans), lambda a, r: decided.append((a, r)))

    def announce(ban: Ban) -> None:
        main_end.send(ban_message(ban))

    hub_bans.on_ban.append(announce)
    worker = WorkerTracker(FailureTracker(3, 60, 600, bans=BanList()), worker_end)
    main_end.listen(lambda m: hub.receive(m[1]), lambda: None)
    worker_end.listen(worker.hold, lambda: None)
    try:
        assert not worker.created("192.0.2.1", "dev-1")  # decided by the hub, never here
        assert not worker.failure("192.0.2.1", "unknown device")
        await until(lambda: _true(hub.tracker.failures.count("192.0.2.1") == 2), "two events")
        assert not worker.failures.count("192.0.2.1")  # not counted in the worker
        worker.returned("dev-1")  # a return withdraws the creation in the hub
        worker.returned("dev-1")  # the second one is not even sent
        await until(lambda: _true(hub.tracker.failures.count("192.0.2.1") == 1), "withdrawn")
        for _ in range(2):
            worker.failure("192.0.2.1", "unknown device")
        await until(lambda: _true(worker.is_banned("192.0.2.1")), "the ban reaches the worker")
        assert decided == [("192.0.2.1", "unknown device")]
        assert worker.bans._held and not worker.bans._pending  # held, not to be written here
    finally:
        main_end.close()
        worker_end.close()


def test_a_return_before_its_creation_withdraws_it() -> None:
    """Two workers' links are read in any order: the creation may arrive after its return."""
    hub = DefenceHub(FailureTracker(2, 60, 600), lambda a, r: None)
    hub.receive([("r", "dev-1", ""), ("c", "192.0.2.9", "dev-1"), ("c", "192.0.2.9", "dev-2")])
    assert hub.tracker.failures.count("192.0.2.9") == 1
    assert not hub.tracker.is_banned("192.0.2.9")


def test_the_link_full_counts_the_event_in_the_worker() -> None:
    """Past MAX_PENDING unsent events the worker counts (and bans) by itself, as before."""
    from provisor.workers import defence

    _main_sock, worker_sock = pair()
    worker = WorkerTracker(FailureTracker(3, 60, 600), Link(worker_sock))
    worker._queue.extend([("f", "x", "")] * defence.MAX_PENDING)
    worker._scheduled = True  # no loop here: nothing flushes
    dropped = REGISTRY.get_sample_value("provisor_defence_dropped_total") or 0.0
    assert not worker.failure("192.0.2.3")
    assert not worker.failure("192.0.2.3")
    assert worker.failure("192.0.2.3")  # the third dropped one bans in the worker
    assert REGISTRY.get_sample_value("provisor_defence_dropped_total") == dropped + 3
    assert worker.is_banned("192.0.2.3")


async def test_a_held_ban_survives_reloads_until_written_and_an_unban_elsewhere_clears_counts(
    tmp_path: Path, database_url: str
) -> None:
    """Three processes' views of one database: the main process (decides and writes), a worker
    (holds what it is told) and ``provisor ban remove`` (lifts it in the table)."""
    main = await Provisor.open(make_settings(tmp_path / "main", database_url))
    worker = await Provisor.open(make_settings(tmp_path / "worker", database_url))
    cli = await Provisor.open(make_settings(tmp_path / "cli", database_url))
    try:
        tracker = FailureTracker(2, 60, 600, bans=main.bans)
        sent: list[Ban] = []
        main.bans.on_ban.append(sent.append)
        assert not tracker.failure("198.51.100.9")
        assert tracker.failure("198.51.100.9")  # banned: announced to the workers
        assert main.bans._flusher is not None
        main.bans._flusher.cancel()  # its background write has not run yet
        worker.bans.hold(sent[0])
        await worker.bans.reload()  # another change: the table has no row yet
        assert worker.bans.is_banned("198.51.100.9")  # still held, not forgotten
        assert worker.bans._pending == {}  # and not for the worker to write
        await main.bans.flush()  # the main process writes it
        await worker.feed.poll_once(worker.reload_changed)
        assert worker.bans._held == {} and worker.bans.is_banned("198.51.100.9")
        assert await cli.bans.remove("198.51.100.9")  # the operator, from another process
        assert "bans" in await main.feed.poll_once(main.reload_changed)
        assert tracker.failures.count("198.51.100.9") == 0  # the counts went with the ban
        assert not tracker.failure("198.51.100.9")  # a new count: one failure, no ban
        await worker.feed.poll_once(worker.reload_changed)
        assert not worker.bans.is_banned("198.51.100.9")
    finally:
        for prov in (main, worker, cli):
            await prov.close()
