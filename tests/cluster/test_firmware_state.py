"""Firmware packages recorded in the database and reconciled by each node (in-process nodes on
one database, SQLite or PostgreSQL).

The real-process cluster is in test_firmware_nodes.py; these cover both plugin formats, a
package waiting for its plugin, a download that does not match its record (reported once,
nothing placed), malformed rows written by someone else, credentials in a URL kept out of the
log, and the node's folder lock.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy import select, update

from provisor.errors import InvalidInput
from provisor.plugins.manager import get_manager
from provisor.plugins.reconcile import PluginReconciler, _FolderLock
from provisor.service import Provisor
from provisor.services.operations import Operation
from provisor.store.firmware_state import Download, FirmwareRecord, FirmwareStateStore
from provisor.store.tables import firmware_state
from tests.conftest import Server, make_settings, start_server
from tests.plugins_mgmt.conftest import plugin_source, publish
from tests.wazo.conftest import publish_wazo, wazo_source
from tests.wazo.test_wazo_plugins import install, use_repository, wait_op, wazo_server

UA = "TestPhone-TP100/1.0 (00:11:22:33:44:55)"
ROM = "TP100-1.2.rom"
KEY = "testphone/tp100-fw"


async def _until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    for _ in range(600):  # bounded: 60 s
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not within 60 s: {what}")


def _firmware_plugin(tmp_path: Path, url: str, firmware: bytes, *, sha256: str = "") -> Path:
    """The test plugin declaring one firmware package served at ``url``; returns its sources."""
    sources = plugin_source(tmp_path, "1.0.0")
    manifest = sources / "testphone" / "manifest.toml"
    manifest.write_text(
        manifest.read_text()
        + f'\n[firmware.tp100-fw]\nversion = "1.2"\ndescription = "TP100 firmware"\n'
        f'url = "{url}/{ROM}"\nsize = {len(firmware)}\n'
        f'sha256 = "{sha256 or hashlib.sha256(firmware).hexdigest()}"\n'
        f'files = [{{src = "{ROM}", dest = "firmware/{ROM}"}}]\n'
    )
    return sources


def _record(url: str, firmware: bytes, digest: str = "") -> FirmwareRecord:
    """What a node records after installing the package from ``url``."""
    one = Download(ROM, f"{url}/{ROM}", len(firmware), "sha256", digest or _sha(firmware))
    return FirmwareRecord("testphone", "tp100-fw", True, "1.2", (one,))


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _placed(prov: Provisor) -> Path:
    return prov.settings.data_dir / "firmware" / "testphone" / "firmware" / ROM


def _leftovers(prov: Provisor) -> list[Path]:
    """Half-written files anywhere in a node's firmware folder and download cache."""
    data = prov.settings.data_dir
    return [
        p
        for folder in (data / "firmware", data / "cache")
        if folder.exists()
        for p in folder.rglob("*")
        if p.name.endswith(".part") or p.name.endswith(".download")
    ]


async def _fetch(srv: Server) -> tuple[int, bytes]:
    r = await srv.phone.get(f"/firmware/{ROM}", headers={"User-Agent": UA})
    return r.status_code, r.content


async def test_a_native_package_installed_on_a_reaches_b_and_leaves_with_it(
    tmp_path: Path, database_url: str, web_root: tuple[Path, str]
) -> None:
    www, url = web_root
    firmware = os.urandom(150_000)
    (www / ROM).write_bytes(firmware)
    sources = _firmware_plugin(tmp_path, url, firmware)
    dirs = {"general.plugin_dirs": [str(sources)]}
    a = await start_server(make_settings(tmp_path / "a", database_url, **dirs))
    b = await start_server(make_settings(tmp_path / "b", database_url, **dirs))
    base = "/0.2/pg_mgr/plugins/testphone/install"
    try:
        assert (await _fetch(b))[0] == 404
        r = await a.api.post(f"{base}/install", json={"id": "tp100-fw"})
        assert r.status_code == 201, r.text
        assert (await wait_op(a, r.headers["location"]))["status"].startswith("install_pkg|success")
        async with a.prov.engine.connect() as conn:
            row = (await conn.execute(select(firmware_state))).one()
        assert (row.plugin_id, row.package_id, row.installed, row.version, row.size) == (
            "testphone",
            "tp100-fw",
            True,
            "1.2",
            len(firmware),
        )
        # where to get it, never the file itself
        assert row.downloads == [
            {
                "name": ROM,
                "url": f"{url}/{ROM}",
                "size": len(firmware),
                "algorithm": "sha256",
                "digest": _sha(firmware),
            }
        ]

        async def b_serves() -> bool:
            return await _fetch(b) == (200, firmware)

        await _until(b_serves, "B serves the firmware installed on A")
        installed = (await b.api.get(f"{base}/installed")).json()["pkgs"]
        assert installed == {"tp100-fw": {"version": "1.2", "description": "TP100 firmware"}}

        r = await a.api.post(f"{base}/uninstall", json={"id": "tp100-fw"})
        assert r.status_code == 204
        assert (await _fetch(a))[0] == 404

        async def b_stopped() -> bool:
            return (await _fetch(b))[0] == 404

        await _until(b_stopped, "B stops serving the firmware uninstalled on A")
        assert (await b.api.get(f"{base}/installed")).json()["pkgs"] == {}
        assert not _placed(b.prov).exists()
        # uninstalling what is not installed is still a 400, and records nothing
        r = await b.api.post(f"{base}/uninstall", json={"id": "tp100-fw"})
        assert r.status_code == 400 and "not installed" in r.text
    finally:
        await a.close()
        await b.close()


async def test_a_wazo_package_installed_on_a_reaches_b_and_leaves_with_it(
    tmp_path: Path, database_url: str, web_root: tuple[Path, str]
) -> None:
    www, url = web_root
    firmware = bytes(range(256)) * 2600  # streamed from disk like firmware
    (www / "TW-1.2.3.rom").write_bytes(firmware)
    source = wazo_source(tmp_path)
    (source / "pkgs").mkdir()
    (source / "pkgs" / "pkgs.db").write_text(
        "[pkg_tw-fw]\ndescription: Firmware for TW phones\nversion: 1.2.3\nfiles: tw-fw\n"
        "install: tw-fw\n\n[install_tw-fw]\na-b: cp $FILE1 firmware/\n\n[file_tw-fw]\n"
        f"filename: TW-1.2.3.rom\nurl: {url}/TW-1.2.3.rom\nsize: {len(firmware)}\n"
        f"sha1sum: {hashlib.sha1(firmware).hexdigest()}\n"
    )
    publish_wazo(www, source)
    a = await wazo_server(tmp_path / "a", database_url)
    b = await wazo_server(tmp_path / "b", database_url)
    ua = {"User-Agent": "TestWazo TW200 1.2.3 00:11:22:aa:bb:01"}
    base = "/0.2/pg_mgr/plugins/wazo-testphone/install"
    try:
        await use_repository(a, url)
        assert (await install(a, "wazo-testphone"))["status"].startswith("install|success")

        async def b_has_plugin() -> bool:
            r = await b.api.get("/0.2/pg_mgr/install/installed")
            return "wazo-testphone" in r.json()["pkgs"]

        await _until(b_has_plugin, "B installs the wazo plugin installed on A")
        r = await a.api.post(f"{base}/install", json={"id": "tw-fw"})
        op = await wait_op(a, r.headers["location"])
        assert op["status"].startswith("install_pkg|success"), op
        async with a.prov.engine.connect() as conn:
            row = (await conn.execute(select(firmware_state))).one()
        assert row.downloads[0]["algorithm"] == "sha1" and row.version == "1.2.3"

        async def b_serves() -> bool:
            r = await b.phone.get("/firmware/TW-1.2.3.rom", headers=ua)
            return r.status_code == 200 and r.content == firmware

        await _until(b_serves, "B serves the wazo package installed on A")
        assert (await b.api.get(f"{base}/installed")).json()["pkgs"] == {
            "tw-fw": {"version": "1.2.3", "description": "Firmware for TW phones"}
        }
        assert (await a.api.post(f"{base}/uninstall", json={"id": "tw-fw"})).status_code == 204

        async def b_stopped() -> bool:
            r = await b.phone.get("/firmware/TW-1.2.3.rom", headers=ua)
            return r.status_code == 404

        await _until(b_stopped, "B stops serving the wazo package uninstalled on A")
    finally:
        await a.close()
        await b.close()


async def test_a_package_waits_for_its_plugin_then_comes_with_it(
    tmp_path: Path, database_url: str, web_root: tuple[Path, str]
) -> None:
    www, url = web_root
    firmware = os.urandom(40_000)
    (www / ROM).write_bytes(firmware)
    repo = tmp_path / "repo"
    publish(_firmware_plugin(tmp_path, url, firmware), repo)
    bare = {"general.plugin_dirs": []}
    a = await start_server(make_settings(tmp_path / "a", database_url, **bare))
    b = await Provisor.open(make_settings(tmp_path / "b", database_url, **bare))
    try:
        # the package is recorded before B has the plugin (B was away, say)
        await FirmwareStateStore(a.prov.engine).put(_record(url, firmware), 0.0)
        reconciler = PluginReconciler(b)
        assert await reconciler.reconcile() is False  # not converged: retried with backoff
        assert reconciler.firmware.waiting == {KEY} and reconciler.firmware.failed == {}
        assert not _placed(b).exists()

        await use_repository(a, repo.as_uri())
        assert (await install(a, "testphone"))["status"].startswith("install|success")
        # the plugin and then its package, in one pass
        assert await reconciler.reconcile() is True
        assert reconciler.firmware.waiting == set()
        assert b.plugins.get("testphone") is not None
        assert _placed(b).read_bytes() == firmware
        # A had recorded the package without having it: its own reconciler installs it too
        await _until(lambda: _ready(a), "A installs the recorded package for its new plugin")
    finally:
        await a.close()
        await b.close()


async def _ready(srv: Server) -> bool:
    placed = _placed(srv.prov)
    return placed.is_file() and await _fetch(srv) == (200, placed.read_bytes())


async def test_a_download_that_does_not_match_is_reported_once_and_places_nothing(
    tmp_path: Path,
    database_url: str,
    web_root: tuple[Path, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    www, url = web_root
    firmware = os.urandom(60_000)
    sources = _firmware_plugin(tmp_path, url, firmware)
    b = await Provisor.open(
        make_settings(tmp_path / "b", database_url, **{"general.plugin_dirs": [str(sources)]})
    )
    store = FirmwareStateStore(b.engine)
    try:
        # the vendor's file changed after A installed it: same size, other bytes
        (www / ROM).write_bytes(os.urandom(len(firmware)))
        await store.put(_record(url, firmware), 0.0)
        reconciler = PluginReconciler(b)
        caplog.set_level(logging.INFO, logger="provisor.plugins.firmware_reconcile")
        for _ in range(3):  # retries
            assert await reconciler.reconcile() is False
        assert "sha256 mismatch" in reconciler.firmware.failed[KEY]
        warnings = [r for r in caplog.records if "not installed on this node" in r.message]
        assert len(warnings) == 1, warnings  # once per reason, not per retry
        assert not _placed(b).exists() and _leftovers(b) == []
        assert get_manager(b).installed_packages("testphone") == {}

        (www / ROM).write_bytes(firmware)  # the vendor serves the right file again
        assert await reconciler.reconcile() is True
        assert _placed(b).read_bytes() == firmware
        assert any("now matches the cluster" in r.message for r in caplog.records)
    finally:
        await b.close()


async def test_rows_written_by_someone_else_are_checked_before_any_download(
    tmp_path: Path,
    database_url: str,
    web_root: tuple[Path, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    www, url = web_root
    firmware = os.urandom(1000)
    (www / ROM).write_bytes(firmware)
    secret = (tmp_path / "secret.rom").resolve()
    secret.write_bytes(firmware)
    sources = _firmware_plugin(tmp_path, url, firmware)
    b = await Provisor.open(
        make_settings(tmp_path / "b", database_url, **{"general.plugin_dirs": [str(sources)]})
    )
    store = FirmwareStateStore(b.engine)
    caplog.set_level(logging.INFO)
    try:
        await store.put(_record(url, firmware), 0.0)
        reconciler = PluginReconciler(b)
        bad = {
            # a local file of the node: refused, whatever its digest
            "file": [{"name": ROM, "url": secret.as_uri(), "size": 1000, "algorithm": "sha256",
                      "digest": _sha(firmware)}],
            "digest": [{"name": ROM, "url": f"{url}/{ROM}", "size": 1000, "algorithm": "md5",
                        "digest": "0" * 32}],
            "shape": {"url": f"{url}/{ROM}"},
        }  # fmt: skip
        for problem, downloads in bad.items():
            async with b.engine.begin() as conn:
                await conn.execute(update(firmware_state).values(downloads=downloads))
            assert await reconciler.reconcile() is False, problem
            assert "malformed" in reconciler.firmware.failed[KEY], problem
            assert not _placed(b).exists(), problem
        # a package id that is no file name
        async with b.engine.begin() as conn:
            await conn.execute(update(firmware_state).values(package_id="../../etc"))
        assert await reconciler.reconcile() is False
        assert "package id" in reconciler.firmware.failed["testphone/../../etc"]
        # a control character in an id does not forge a log line
        async with b.engine.begin() as conn:
            await conn.execute(update(firmware_state).values(package_id="x\nforged line"))
        assert await reconciler.reconcile() is False
        assert "'testphone/x\\nforged line'" in reconciler.firmware.failed
        assert "\nforged line" not in caplog.text
        async with b.engine.begin() as conn:
            await conn.execute(update(firmware_state).values(package_id="tp100-fw"))

        # credentials in a vendor URL never reach the log or the health report
        await store.put(_record("http://fwuser:s3cr3t-pw@127.0.0.1:1", firmware), 0.0)
        assert await reconciler.reconcile() is False
        assert "***@127.0.0.1:1" in reconciler.firmware.failed[KEY]
        assert "s3cr3t-pw" not in caplog.text and "s3cr3t-pw" not in str(reconciler.firmware.failed)
        assert not _placed(b).exists()
    finally:
        await b.close()


async def test_the_folder_lock_makes_a_second_process_of_the_node_wait(
    tmp_path: Path, database_url: str, web_root: tuple[Path, str]
) -> None:
    www, url = web_root
    firmware = os.urandom(5000)
    (www / ROM).write_bytes(firmware)
    settings = make_settings(
        tmp_path / "node",
        database_url,
        **{"general.plugin_dirs": [str(_firmware_plugin(tmp_path, url, firmware))]},
    )
    first = await Provisor.open(settings)
    second = await Provisor.open(settings)  # a second process of the same node
    try:
        await FirmwareStateStore(first.engine).put(_record(url, firmware), 0.0)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        with _FolderLock(settings.data_dir / ".plugins.lock"):
            assert await PluginReconciler(second).reconcile() is None  # busy: tried later
            assert not _placed(second).exists()
        assert await PluginReconciler(first).reconcile() is True
        inode = _placed(first).stat().st_ino
        # the other process finds the package in place and writes nothing
        assert await PluginReconciler(second).reconcile() is True
        assert _placed(second).stat().st_ino == inode
    finally:
        await first.close()
        await second.close()


async def test_an_operator_change_waits_for_the_node_folder_lock(
    tmp_path: Path,
    database_url: str,
    web_root: tuple[Path, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from provisor.plugins import firmware as firmware_module
    from provisor.plugins.folder_lock import waiting_for

    www, url = web_root
    firmware = os.urandom(8000)
    (www / ROM).write_bytes(firmware)
    dirs = {"general.plugin_dirs": [str(_firmware_plugin(tmp_path, url, firmware))]}
    srv = await start_server(make_settings(tmp_path / "node", database_url, **dirs))
    lock = srv.prov.settings.data_dir / ".plugins.lock"
    base = "/0.2/pg_mgr/plugins/testphone/install"
    monkeypatch.setattr(firmware_module, "_UNINSTALL_WAIT", 0.5)
    try:
        async with waiting_for(lock):  # another process of this node is in a pass
            r = await srv.api.post(f"{base}/install", json={"id": "tp100-fw"})
            assert r.status_code == 201
            location = r.headers["location"]
            for _ in range(5):
                await asyncio.sleep(0.1)
                status = (await srv.api.get(location)).json()["status"]
                assert not status.startswith("install_pkg|success"), status
                assert not _placed(srv.prov).exists()
        assert (await wait_op(srv, location))["status"].startswith("install_pkg|success")
        assert await _fetch(srv) == (200, firmware)

        async with waiting_for(lock):  # an uninstall does not wait long: 409, nothing changed
            r = await srv.api.post(f"{base}/uninstall", json={"id": "tp100-fw"})
            assert r.status_code == 409 and "try again" in r.text
        assert await _fetch(srv) == (200, firmware)
        assert (await FirmwareStateStore(srv.prov.engine).record("testphone", "tp100-fw")) == (
            _record(url, firmware)
        )
        assert (await srv.api.post(f"{base}/uninstall", json={"id": "tp100-fw"})).status_code == 204
        assert (await _fetch(srv))[0] == 404
    finally:
        await srv.close()


async def test_a_package_no_node_could_get_is_withdrawn_by_an_uninstall(
    tmp_path: Path, database_url: str, web_root: tuple[Path, str]
) -> None:
    www, url = web_root
    firmware = os.urandom(3000)
    (www / ROM).write_bytes(firmware)
    sources = _firmware_plugin(tmp_path, url, firmware)
    b = await Provisor.open(
        make_settings(tmp_path / "b", database_url, **{"general.plugin_dirs": [str(sources)]})
    )
    try:
        store = FirmwareStateStore(b.engine)
        await store.put(_record(url, firmware, digest="ab" * 32), 0.0)  # a wrong record
        reconciler = PluginReconciler(b)
        assert await reconciler.reconcile() is False
        assert KEY in reconciler.firmware.failed
        await get_manager(b).uninstall_firmware("testphone", "tp100-fw")  # not here, recorded
        record = await store.record("testphone", "tp100-fw")
        assert record is not None and not record.installed
        assert await reconciler.reconcile() is True
        assert reconciler.firmware.failed == {}
        with pytest.raises(InvalidInput, match="not installed"):  # now nowhere: refused
            await get_manager(b).uninstall_firmware("testphone", "tp100-fw")
    finally:
        await b.close()


async def test_a_package_from_before_clustering_is_recorded_and_reaches_the_others(
    tmp_path: Path, database_url: str, web_root: tuple[Path, str]
) -> None:
    from sqlalchemy import delete

    www, url = web_root
    firmware = os.urandom(7000)
    (www / ROM).write_bytes(firmware)
    dirs = {"general.plugin_dirs": [str(_firmware_plugin(tmp_path, url, firmware))]}
    a = await Provisor.open(make_settings(tmp_path / "a", database_url, **dirs))
    b = await Provisor.open(make_settings(tmp_path / "b", database_url, **dirs))
    try:
        await get_manager(a).install_firmware("testphone", "tp100-fw", Operation(label="t"))
        async with a.engine.begin() as conn:  # installed before the table existed
            await conn.execute(delete(firmware_state))
        assert await PluginReconciler(a).reconcile() is True
        record = await FirmwareStateStore(a.engine).record("testphone", "tp100-fw")
        assert record == _record(url, firmware)
        assert await PluginReconciler(b).reconcile() is True
        assert _placed(b).read_bytes() == firmware
    finally:
        await a.close()
        await b.close()


async def test_a_package_from_a_local_file_url_stays_on_its_node(
    tmp_path: Path, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    vendor = tmp_path / "vendor"
    vendor.mkdir()
    firmware = os.urandom(2000)
    (vendor / ROM).write_bytes(firmware)
    dirs = {"general.plugin_dirs": [str(_firmware_plugin(tmp_path, vendor.as_uri(), firmware))]}
    a = await Provisor.open(make_settings(tmp_path / "a", database_url, **dirs))
    caplog.set_level(logging.INFO)
    try:
        await get_manager(a).install_firmware("testphone", "tp100-fw", Operation(label="t"))
        assert _placed(a).read_bytes() == firmware  # installed here
        assert await FirmwareStateStore(a.engine).records() == []  # other nodes cannot read it
        reconciler = PluginReconciler(a)
        for _ in range(2):
            assert await reconciler.reconcile() is True
        assert await FirmwareStateStore(a.engine).records() == []
        said = [r for r in caplog.records if "stays on this node only" in r.message]
        assert len(said) == 2, said  # at install, then once by the reconciler (not per pass)
    finally:
        await a.close()
