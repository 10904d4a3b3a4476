"""Plugins recorded in the database and reconciled by each node (in-process nodes, any database).

The real-process cluster is in test_real_nodes.py; these cover the formats and the bounds: a
wazo-format plugin converges like a native one, a folder from before clustering is recorded,
the bundled plugins at a node's first start follow the database, a kept archive that does not
match its record is refused, and an archive too big to keep is refused before it is installed.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy import select, update

from provisor.plugins.reconcile import PluginReconciler
from provisor.service import Provisor
from provisor.store.tables import plugin_state
from tests.conftest import TEST_PLUGINS, Server, make_settings, start_server
from tests.plugins_mgmt.conftest import plugin_source, publish
from tests.wazo.conftest import publish_wazo, wazo_source
from tests.wazo.test_wazo_plugins import install, use_repository, wazo_server


async def _until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    for _ in range(600):  # bounded: 60 s
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not within 60 s: {what}")


async def _installed(srv: Server) -> dict[str, str]:
    pkgs = (await srv.api.get("/0.2/pg_mgr/install/installed")).json()["pkgs"]
    return {pid: p["version"] for pid, p in pkgs.items()}


async def test_a_wazo_plugin_installed_on_a_reaches_b_and_leaves_with_it(
    tmp_path: Path, database_url: str, web_root: tuple[Path, str]
) -> None:
    www, url = web_root
    publish_wazo(www, wazo_source(tmp_path, "wazo-testphone", "1.0.0"))
    a = await wazo_server(tmp_path / "a", database_url)
    b = await wazo_server(tmp_path / "b", database_url)
    try:
        await use_repository(a, url)
        assert (await install(a, "wazo-testphone"))["status"].startswith("install|success")

        async def b_has() -> bool:
            return (await _installed(b)).get("wazo-testphone") == "1.0.0"

        await _until(b_has, "B installs the wazo plugin installed on A")
        r = await b.phone.get(
            "/twz-001122aabb01.cfg",
            headers={"User-Agent": "TestWazo TW200 1.2.3 00:11:22:aa:bb:01"},
        )
        assert r.status_code == 200 and "line1.user" in r.text
        r = await a.api.post("/0.2/pg_mgr/install/uninstall", json={"id": "wazo-testphone"})
        assert r.status_code == 204

        async def b_without() -> bool:
            return "wazo-testphone" not in await _installed(b)

        await _until(b_without, "B removes the wazo plugin removed on A")
    finally:
        await a.close()
        await b.close()


async def test_a_folder_from_before_clustering_is_recorded_and_reaches_the_others(
    tmp_path: Path, database_url: str
) -> None:
    settings_a = make_settings(tmp_path / "a", database_url, **{"general.plugin_dirs": []})
    shutil.copytree(TEST_PLUGINS / "testphone", settings_a.data_dir / "plugins" / "testphone")
    a = await Provisor.open(settings_a)
    b = await Provisor.open(
        make_settings(tmp_path / "b", database_url, **{"general.plugin_dirs": []})
    )
    try:
        assert await PluginReconciler(a).reconcile() is True
        async with a.engine.connect() as conn:
            row = (await conn.execute(select(plugin_state))).one()
        assert (row.id, row.installed, row.version, row.url) == ("testphone", True, "1.0.0", None)
        assert await PluginReconciler(b).reconcile() is True
        assert b.plugins.get("testphone") is not None
        assert (b.settings.data_dir / "plugins" / "testphone" / "manifest.toml").is_file()
    finally:
        await a.close()
        await b.close()


async def test_a_kept_archive_that_does_not_match_its_record_is_refused(
    tmp_path: Path, database_url: str
) -> None:
    settings_a = make_settings(tmp_path / "a", database_url, **{"general.plugin_dirs": []})
    shutil.copytree(TEST_PLUGINS / "testphone", settings_a.data_dir / "plugins" / "testphone")
    a = await Provisor.open(settings_a)
    b = await Provisor.open(
        make_settings(tmp_path / "b", database_url, **{"general.plugin_dirs": []})
    )
    try:
        assert await PluginReconciler(a).reconcile() is True
        async with a.engine.begin() as conn:
            data: bytes = (await conn.execute(select(plugin_state.c.archive))).scalar_one()
            forged = bytes(data[:-8]) + b"\x00" * 8  # same size, other bytes
            await conn.execute(update(plugin_state).values(archive=forged))
        reconciler = PluginReconciler(b)
        assert await reconciler.reconcile() is False
        assert "does not match" in reconciler.failed["testphone"]
        assert b.plugins.get("testphone") is None
        assert not (b.settings.data_dir / "plugins" / "testphone").exists()
    finally:
        await a.close()
        await b.close()


async def test_an_archive_too_big_to_keep_is_refused_before_it_is_installed(
    tmp_path: Path, database_url: str
) -> None:
    repo = tmp_path / "repo"
    publish(plugin_source(tmp_path, "1.0.0"), repo)
    settings = make_settings(
        tmp_path,
        database_url,
        **{"general.plugin_dirs": [], "plugins.stored_archive_max_bytes": 1024},
    )
    srv = await start_server(settings)
    try:
        await use_repository(srv, repo.as_uri())
        op = await install(srv, "testphone")
        assert op["status"].startswith("install|fail"), op
        assert "plugins.stored_archive_max_bytes" in str(op)
        assert await _installed(srv) == {}
        async with srv.prov.engine.connect() as conn:
            assert (await conn.execute(select(plugin_state))).all() == []
    finally:
        await srv.close()


async def test_bundled_plugins_at_a_new_node_follow_the_database(
    tmp_path: Path, database_url: str
) -> None:
    bundled = {"general.install_bundled_plugins": True, "general.plugin_dirs": []}
    a = await start_server(make_settings(tmp_path / "a", database_url, **bundled))
    try:
        assert {"snom", "yealink"} <= set(await _installed(a))
        r = await a.api.post("/0.2/pg_mgr/install/uninstall", json={"id": "snom"})
        assert r.status_code == 204
        b = await start_server(make_settings(tmp_path / "b", database_url, **bundled))
        try:

            async def b_matches() -> bool:
                return await _installed(b) == await _installed(a)

            await _until(b_matches, "B has the plugins A has")
            assert "snom" not in await _installed(b)  # the operator's removal holds on B
        finally:
            await b.close()
    finally:
        await a.close()


async def test_processes_sharing_a_data_directory_take_turns_and_install_once(
    tmp_path: Path, database_url: str
) -> None:
    from provisor.plugins.reconcile import _FolderLock

    source = make_settings(tmp_path / "src", database_url, **{"general.plugin_dirs": []})
    shutil.copytree(TEST_PLUGINS / "testphone", source.data_dir / "plugins" / "testphone")
    origin = await Provisor.open(source)
    shared = make_settings(tmp_path / "node", database_url, **{"general.plugin_dirs": []})
    first = await Provisor.open(shared)
    second = await Provisor.open(shared)  # a second worker process of the same node
    try:
        assert await PluginReconciler(origin).reconcile() is True  # recorded from its folder
        folder = shared.data_dir / "plugins" / "testphone"
        folder.parent.mkdir(parents=True, exist_ok=True)
        with _FolderLock(shared.data_dir / ".plugins.lock"):
            assert await PluginReconciler(first).reconcile() is None  # busy: tried again later
        assert await PluginReconciler(first).reconcile() is True
        inode = folder.stat().st_ino
        assert await PluginReconciler(second).reconcile() is True
        assert second.plugins.get("testphone") is not None
        assert folder.stat().st_ino == inode  # loaded from the folder, not installed again
    finally:
        await origin.close()
        await first.close()
        await second.close()


async def test_a_folder_too_big_to_keep_stays_on_its_node(
    tmp_path: Path, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(
        tmp_path,
        database_url,
        **{"general.plugin_dirs": [], "plugins.stored_archive_max_bytes": 1024},
    )
    shutil.copytree(TEST_PLUGINS / "testphone", settings.data_dir / "plugins" / "testphone")
    prov = await Provisor.open(settings)
    try:
        reconciler = PluginReconciler(prov)
        assert await reconciler.reconcile() is True
        assert await reconciler.reconcile() is True  # said once, not at every pass
        async with prov.engine.connect() as conn:
            assert (await conn.execute(select(plugin_state))).all() == []
        assert prov.plugins.get("testphone") is not None  # still served here
        said = [r for r in caplog.records if "stays on this node only" in r.getMessage()]
        assert len(said) == 1
    finally:
        await prov.close()
