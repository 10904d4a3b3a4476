"""A cluster of real ``provisor serve`` processes on one database.

Plugins installed, upgraded and removed through node A reach node B (and a node that joins
later); a scanner banned through A is refused by B, and the ban lifted by the CLI is lifted
everywhere; phones keep being served by A while B restarts. Every wait is a bounded poll,
never a timed assertion.

Nodes of a cluster share PostgreSQL (docs/operations.md, "Adding a node"): those tests run when
the test database is PostgreSQL. Several processes on one SQLite file is what one node with
the CLI (or several worker processes) does, so the ban test also runs on SQLite.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from provisor.service import Provisor
from provisor.store.tables import plugin_state
from tests.cluster._nodes import Node, cli, eventually, node_config
from tests.conftest import PG_URL, TEST_PLUGINS, make_settings, register_secret
from tests.plugins_mgmt.conftest import plugin_source, publish

needs_postgresql = pytest.mark.skipif(
    not PG_URL,
    reason="nodes of a cluster share PostgreSQL (docs/operations.md); this run's database is"
    " SQLite (set PROVISOR_TEST_DATABASE_URL)",
)

SCANNER = "198.51.100.7"
PHONE_IP = "203.0.113.20"


def _ua(mac: str) -> dict[str, str]:
    return {"User-Agent": f"TestPhone-T1/1.0 ({mac})"}


async def _token(tmp_path: Path, database_url: str) -> tuple[Provisor, str]:
    """A master token, made by a process of its own on the cluster's database."""
    from provisor.auth.builtin import BuiltinAuthBackend

    ctl = await Provisor.open(make_settings(tmp_path / "ctl", database_url))
    backend = BuiltinAuthBackend(ctl.tokens, ctl.tenants)
    token = await backend.create_token(ctl.tenants.master.uuid, ["provd.#"], "cluster tests")  # type: ignore[union-attr]
    register_secret(token)
    return ctl, token


class Cluster:
    """Nodes on one database and a master token."""

    def __init__(self, tmp_path: Path, database_url: str, plugin_dirs: list[str]) -> None:
        self.tmp_path = tmp_path
        self.database_url = database_url
        self.plugin_dirs = plugin_dirs
        self.nodes: dict[str, Node] = {}
        self.token = ""

    def add(self, name: str) -> Node:
        """Start one more node."""
        folder = self.tmp_path / f"node-{name}"
        node = Node(name, folder, node_config(folder, self.database_url, self.plugin_dirs))
        self.nodes[name] = node
        node.start()
        return node

    def stop(self) -> None:
        """Stop every node."""
        for node in self.nodes.values():
            node.stop()


async def _cluster(
    tmp_path: Path, database_url: str, plugin_dirs: list[str], names: str
) -> AsyncIterator[Cluster]:
    ctl, token = await _token(tmp_path, database_url)
    await ctl.close()
    cluster = Cluster(tmp_path, database_url, plugin_dirs)
    cluster.token = token
    try:
        for name in names:
            cluster.add(name)
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
async def bare(tmp_path: Path, database_url: str) -> AsyncIterator[Cluster]:
    """Nodes A and B with no plugin."""
    async for cluster in _cluster(tmp_path, database_url, [], "ab"):
        yield cluster


@pytest.fixture
async def serving(tmp_path: Path, database_url: str) -> AsyncIterator[Cluster]:
    """Nodes A and B serving the test plugin (from a folder both read)."""
    async for cluster in _cluster(tmp_path, database_url, [str(TEST_PLUGINS)], "ab"):
        yield cluster


async def _operation(api: httpx.AsyncClient, location: str) -> str:
    async def done() -> bool:
        status: str = (await api.get(location)).json()["status"]
        return "progress" not in status.split("(")[0] and not status.startswith("waiting")

    await eventually(done, f"operation {location}")
    return str((await api.get(location)).json()["status"])


async def _installed(node: Node, token: str) -> dict[str, str]:
    async with node.api(token) as api:
        pkgs = (await api.get("/0.2/pg_mgr/install/installed")).json()["pkgs"]
    return {pid: p["version"] for pid, p in pkgs.items()}


async def _common(node: Node, mac: str, ip: str = PHONE_IP) -> tuple[int, bytes]:
    async with node.phone() as phone:
        r = await phone.get("/tp/common.cfg", headers={**_ua(mac), "X-Forwarded-For": ip})
    return r.status_code, r.content


@needs_postgresql
async def test_plugin_installed_upgraded_removed_on_a_reaches_every_node(
    bare: Cluster, tmp_path: Path, web_root: tuple[Path, str]
) -> None:
    a, b = bare.nodes["a"], bare.nodes["b"]
    token = bare.token
    local_repo = tmp_path / "local-repo"  # a folder only: B gets the archive from the database
    publish(plugin_source(tmp_path, "1.0.0", marker="one"), local_repo)
    async with a.api(token) as api:
        r = await api.put(
            "/0.2/configure/plugin_server", json={"param": {"value": local_repo.as_uri()}}
        )
        assert r.status_code == 204, r.text
        r = await api.post("/0.2/pg_mgr/install/update", json={})
        assert (await _operation(api, r.headers["location"])).startswith("update|success")
        r = await api.post("/0.2/pg_mgr/install/install", json={"id": "testphone"})
        assert r.status_code == 201, r.text
        assert (await _operation(api, r.headers["location"])).startswith("install|success")

    async def b_serves(marker: bytes) -> bool:
        status, body = await _common(b, "00:11:22:00:00:01")
        return status == 200 and marker in body

    await eventually(lambda: b_serves(b"marker = one"), "B serves the plugin installed on A")
    assert await _installed(b, token) == {"testphone": "1.0.0"}
    ctl = await Provisor.open(make_settings(tmp_path / "ctl", bare.database_url))
    try:
        async with ctl.engine.connect() as conn:
            row = (await conn.execute(select(plugin_state))).one()
        assert row.url is None and row.archive is not None and len(row.archive) == row.size
    finally:
        await ctl.close()

    # upgrade from an HTTP repository: B downloads from the recorded URL and checks the digest
    www, url = web_root
    publish(plugin_source(tmp_path, "1.1.0", marker="two"), www)
    async with a.api(token) as api:
        await api.put("/0.2/configure/plugin_server", json={"param": {"value": url}})
        r = await api.post("/0.2/pg_mgr/install/update", json={})
        assert (await _operation(api, r.headers["location"])).startswith("update|success")
        r = await api.post("/0.2/pg_mgr/install/upgrade", json={"id": "testphone"})
        assert (await _operation(api, r.headers["location"])).startswith("upgrade|success")
    await eventually(lambda: b_serves(b"marker = two"), "B serves the upgrade made on A")
    assert await _installed(b, token) == {"testphone": "1.1.0"}

    c = bare.add("c")  # a node joining later gets what the database records
    await eventually(lambda: _has(c, token, "1.1.0"), "C, joining later, installs 1.1.0")
    status, body = await _common(c, "00:11:22:00:00:02")
    assert status == 200 and b"marker = two" in body

    async with a.api(token) as api:
        r = await api.post("/0.2/pg_mgr/install/uninstall", json={"id": "testphone"})
        assert r.status_code == 204, r.text

    async def removed(node: Node) -> bool:
        return await _installed(node, token) == {}

    await eventually(lambda: removed(b), "B removes the plugin uninstalled on A")
    await eventually(lambda: removed(c), "C removes the plugin uninstalled on A")
    assert not (b.folder / "data" / "plugins" / "testphone").exists()
    status, _ = await _common(b, "00:11:22:00:00:01")
    assert status == 404


async def _has(node: Node, token: str, version: str) -> bool:
    return (await _installed(node, token)).get("testphone") == version


@needs_postgresql
async def test_a_node_that_cannot_fetch_keeps_serving_reports_and_retries(
    bare: Cluster, tmp_path: Path, web_root: tuple[Path, str]
) -> None:
    import hashlib
    import shutil

    from provisor.store.plugin_state import PluginRecord, PluginStateStore

    b = bare.nodes["b"]
    www, url = web_root
    staged = tmp_path / "staged"
    index = publish(plugin_source(tmp_path, "1.0.0", marker="late"), staged)
    name = str(index["plugins"]["testphone"]["file"])  # type: ignore[index]
    data = (staged / name).read_bytes()
    # what a node records after installing from that repository, whose archive is not there yet
    ctl = await Provisor.open(make_settings(tmp_path / "ctl", bare.database_url))
    try:
        record = PluginRecord(
            "testphone",
            True,
            "1.0.0",
            f"{url}/{name}",
            len(data),
            "sha256",
            hashlib.sha256(data).hexdigest(),
        )
        await PluginStateStore(ctl.engine).put(record, None, 0.0)
        await ctl.feed.bump("plugins")
    finally:
        await ctl.close()
    async with b.api(bare.token) as api:

        async def reported() -> bool:
            r = await api.get("/health/ready")
            return r.status_code == 200 and "testphone" in r.json().get("plugins_not_converged", {})

        await eventually(reported, "B reports the plugin it cannot fetch, and stays ready")
        assert (await api.get("/0.2/pg_mgr/install/installed")).json()["pkgs"] == {}
    log = (b.folder / "node-b.log").read_text()
    assert "plugin testphone not installed on this node" in log
    shutil.copy(staged / name, www / name)  # the repository has it now: the retry gets it
    await eventually(lambda: _has(b, bare.token, "1.0.0"), "B installs it on a retry")
    status, body = await _common(b, "00:11:22:00:00:03")
    assert status == 200 and b"marker = late" in body


async def test_a_scanner_banned_through_a_is_refused_by_b_until_unbanned(
    serving: Cluster,
) -> None:
    a, b = serving.nodes["a"], serving.nodes["b"]
    assert (await _common(b, "00:11:22:00:00:10", SCANNER))[0] == 200  # not banned yet
    async with a.phone() as phone:
        for i in range(40):  # a MAC walk: each guess of an unknown device counts
            r = await phone.get(f"/0011ee{i:06x}.cfg", headers={"X-Forwarded-For": SCANNER})
            assert r.status_code == 404
    assert (await _common(a, "00:11:22:00:00:10", SCANNER))[0] == 404  # banned on A at once

    async def refused_by_b() -> bool:
        return (await _common(b, "00:11:22:00:00:10", SCANNER))[0] == 404

    await eventually(refused_by_b, "B refuses the scanner banned on A")
    assert (await _common(b, "00:11:22:00:00:11", PHONE_IP))[0] == 200  # others are served
    listed = cli(b.config, "ban", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert SCANNER in listed.stdout

    done = cli(b.config, "ban", "remove", SCANNER)  # a process of its own, on node B's settings
    assert done.returncode == 0, done.stderr

    async def served_by(node: Node) -> bool:
        return (await _common(node, "00:11:22:00:00:10", SCANNER))[0] == 200

    await eventually(lambda: served_by(a), "A serves the unbanned address again")
    await eventually(lambda: served_by(b), "B serves the unbanned address again")
    again = cli(b.config, "ban", "remove", SCANNER)
    assert again.returncode == 1 and "not banned" in again.stderr


@needs_postgresql
async def test_phones_are_served_by_a_while_b_restarts(serving: Cluster) -> None:
    a, b = serving.nodes["a"], serving.nodes["b"]
    macs = [f"00:11:22:00:01:{i:02x}" for i in range(5)]
    for mac in macs:
        assert (await _common(a, mac))[0] == 200
    stopping = asyncio.get_running_loop().run_in_executor(None, b.stop)
    answered: list[int] = []
    while not stopping.done():  # every request while B stops and is away
        for mac in macs:
            answered.append((await _common(a, mac))[0])
        await asyncio.sleep(0.05)
    await stopping
    starting = asyncio.get_running_loop().run_in_executor(None, b.start)
    while not starting.done():  # and while it starts again
        for mac in macs:
            answered.append((await _common(a, mac))[0])
        await asyncio.sleep(0.05)
    await starting
    assert answered and set(answered) == {200}, answered
    for mac in macs:
        assert (await _common(b, mac))[0] == 200  # B is back, with the same devices
