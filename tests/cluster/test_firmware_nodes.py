"""Firmware packages across real ``provisor serve`` nodes on one PostgreSQL.

A package installed through node A's REST API is served by node B to a phone (B downloads it
from the vendor's URL itself: a local HTTP server on 127.0.0.1, the edge of the world), and
stops being served once uninstalled on A. A vendor file that no longer matches what A recorded
is refused by B: logged, reported by ``/health/ready``, nothing half-written served, and
fetched on a later retry once the vendor serves the right file again. Every wait is a bounded
poll, never a timed assertion.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.cluster._nodes import Node, eventually
from tests.cluster.test_real_nodes import Cluster, _cluster, _operation, needs_postgresql
from tests.plugins_mgmt.conftest import plugin_source

ROM = "TP100-1.2.rom"
UA = {"User-Agent": "TestPhone-TP100/1.0 (00:11:22:00:00:42)"}
BASE = "/0.2/pg_mgr/plugins/testphone/install"

pytestmark = needs_postgresql


@pytest.fixture
def firmware(web_root: tuple[Path, str]) -> bytes:
    """The vendor's firmware file, on the vendor's site."""
    data = os.urandom(300_000)
    (web_root[0] / ROM).write_bytes(data)
    return data


@pytest.fixture
def plugin_dir(tmp_path: Path, web_root: tuple[Path, str], firmware: bytes) -> Path:
    """A folder holding the test plugin, which declares the firmware package (both nodes
    read it, so the plugin is on both)."""
    sources = plugin_source(tmp_path, "1.0.0")
    manifest = sources / "testphone" / "manifest.toml"
    manifest.write_text(
        manifest.read_text()
        + f'\n[firmware.tp100-fw]\nversion = "1.2"\ndescription = "TP100 firmware"\n'
        f'url = "{web_root[1]}/{ROM}"\nsize = {len(firmware)}\n'
        f'sha256 = "{hashlib.sha256(firmware).hexdigest()}"\n'
        f'files = [{{src = "{ROM}", dest = "firmware/{ROM}"}}]\n'
    )
    return sources


@pytest.fixture
async def two(tmp_path: Path, database_url: str, plugin_dir: Path) -> AsyncIterator[Cluster]:
    """Nodes A and B, both serving the plugin."""
    async for cluster in _cluster(tmp_path, database_url, [str(plugin_dir)], "ab"):
        yield cluster


@pytest.fixture
async def only_a(tmp_path: Path, database_url: str, plugin_dir: Path) -> AsyncIterator[Cluster]:
    """Node A alone (B joins later)."""
    async for cluster in _cluster(tmp_path, database_url, [str(plugin_dir)], "a"):
        yield cluster


async def _fetch(node: Node) -> tuple[int, bytes]:
    async with node.phone() as phone:
        r = await phone.get(f"/firmware/{ROM}", headers=UA)
    return r.status_code, r.content


async def _install_on(node: Node, token: str) -> None:
    async with node.api(token) as api:
        r = await api.post(f"{BASE}/install", json={"id": "tp100-fw"})
        assert r.status_code == 201, r.text
        assert (await _operation(api, r.headers["location"])).startswith("install_pkg|success")


async def _logged(node: Node, line: str) -> bool:
    return line in (node.folder / f"node-{node.name}.log").read_text()


def _half_written(node: Node) -> list[Path]:
    data = node.folder / "data"
    return [p for p in data.rglob("*") if p.name.endswith(".part")]


async def test_firmware_installed_on_a_is_served_by_b_until_uninstalled(
    two: Cluster, firmware: bytes
) -> None:
    a, b = two.nodes["a"], two.nodes["b"]
    assert (await _fetch(b))[0] == 404
    await _install_on(a, two.token)
    assert await _fetch(a) == (200, firmware)

    async def b_serves() -> bool:
        return await _fetch(b) == (200, firmware)

    await eventually(b_serves, "B serves the firmware installed on A")
    async with b.api(two.token) as api:
        installed = (await api.get(f"{BASE}/installed")).json()["pkgs"]
    assert installed == {"tp100-fw": {"version": "1.2", "description": "TP100 firmware"}}
    await eventually(
        lambda: _logged(b, "firmware package testphone/tp100-fw 1.2 installed"), "B logs it"
    )

    async with a.api(two.token) as api:
        r = await api.post(f"{BASE}/uninstall", json={"id": "tp100-fw"})
        assert r.status_code == 204, r.text
    assert (await _fetch(a))[0] == 404

    async def b_stopped() -> bool:
        return (await _fetch(b))[0] == 404

    await eventually(b_stopped, "B stops serving the firmware uninstalled on A")
    assert not (b.folder / "data" / "firmware" / "testphone" / "firmware" / ROM).exists()


async def test_a_vendor_file_that_no_longer_matches_is_refused_by_b_then_fetched_on_retry(
    only_a: Cluster, web_root: tuple[Path, str], firmware: bytes
) -> None:
    a = only_a.nodes["a"]
    await _install_on(a, only_a.token)
    www, _url = web_root
    (www / ROM).write_bytes(os.urandom(len(firmware)))  # the vendor's file changed since
    b = only_a.add("b")  # joins now: downloads from the recorded URL, checks the digest

    async def reported() -> bool:
        async with b.api(only_a.token) as api:
            r = await api.get("/health/ready")
        lagging = r.json().get("firmware_not_converged", {}) if r.status_code == 200 else {}
        return "sha256 mismatch" in lagging.get("testphone/tp100-fw", "")

    await eventually(reported, "B reports the package it cannot verify, and stays ready")
    failure = "firmware package testphone/tp100-fw not installed on this node"
    await eventually(lambda: _logged(b, failure), "B logs the failure")
    assert (await _fetch(b))[0] == 404  # nothing served, nothing half-written
    assert _half_written(b) == []
    assert not (b.folder / "data" / "firmware" / "testphone" / "firmware" / ROM).exists()
    assert await _fetch(a) == (200, firmware)  # A keeps what it verified

    (www / ROM).write_bytes(firmware)  # the vendor serves the right file again

    async def b_serves() -> bool:
        return await _fetch(b) == (200, firmware)

    await eventually(b_serves, "B fetches the firmware on a retry")
    matched = "firmware package testphone/tp100-fw now matches the cluster"
    await eventually(lambda: _logged(b, matched), "B logs that it caught up")
    log = (b.folder / "node-b.log").read_text()
    assert log.count(failure) == 1 and "sha256 mismatch" in log  # once, not per retry
