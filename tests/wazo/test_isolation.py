"""A wazo plugin that hangs or crashes is killed; only its own devices notice."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from provisor.settings import WazoSettings
from provisor.wazo.loading import load_wazo_plugin
from tests.conftest import TEST_PLUGINS, Server
from tests.wazo.conftest import publish_wazo, wazo_source
from tests.wazo.test_wazo_plugins import give_config, install, use_repository, wazo_server

NATIVE_UA = "TestPhone-TP100/1.2.3 (00:11:22:33:44:55)"


def ua(mac: str, extra: str = "") -> str:
    return f"TestWazo TW100 1.2.3 {mac}{extra}"


async def ready(tmp_path: Path, database_url: str, web_root: tuple[Path, str]) -> Server:
    www, url = web_root
    publish_wazo(www, wazo_source(tmp_path))
    # native test plugins too: they must keep serving while the wazo worker misbehaves
    srv = await wazo_server(tmp_path, database_url, **{"general.plugin_dirs": [str(TEST_PLUGINS)]})
    await use_repository(srv, url)
    assert (await install(srv, "wazo-testphone"))["status"].startswith("install|success")
    return srv


async def device_id(srv: Server, mac: str) -> str:
    for doc in (await srv.api.get("/0.2/dev_mgr/devices")).json()["devices"]:
        if doc.get("mac") == mac:
            return str(doc["id"])
    raise AssertionError(f"no device {mac}")


async def until_served(srv: Server, path: str, user_agent: str) -> bytes:
    """The worker comes back after its back-off: poll (bounded) until the file is served."""
    for _ in range(300):
        r = await srv.phone.get(path, headers={"User-Agent": user_agent})
        if r.status_code == 200:
            return r.content
        await asyncio.sleep(0.1)
    raise AssertionError(f"{path} never served again")


async def test_hang_in_configure_kills_only_that_worker(
    tmp_path: Path, database_url: str, web_root: tuple[Path, str]
) -> None:
    srv = await ready(tmp_path, database_url, web_root)
    try:
        plugin = srv.prov.plugins.get("wazo-testphone")
        good, bad = "00:11:22:aa:00:01", "00:11:22:aa:00:02"
        for mac in (good, bad):
            assert (
                await srv.phone.get("/x.cfg", headers={"User-Agent": ua(mac)})
            ).status_code == 404
        await give_config(srv, await device_id(srv, good))
        await give_config(srv, await device_id(srv, bad), X_test_behaviour="hang")
        first_pid = plugin.worker.pid  # type: ignore[union-attr]

        hung = asyncio.create_task(
            srv.phone.get("/twz-001122aa0002.cfg", headers={"User-Agent": ua(bad)})
        )
        await asyncio.sleep(0.5)
        assert not hung.done()
        # meanwhile the REST API and a native plugin's phone answer
        assert (await srv.api.get("/0.2/dev_mgr/devices")).status_code == 200
        native = await srv.phone.get("/tp/common.cfg", headers={"User-Agent": NATIVE_UA})
        assert native.status_code == 200 and not hung.done()
        r = await hung
        assert r.status_code == 500  # that device only; the worker was killed at the deadline
        reasons = [e["reason"] for e in srv.pipeline.trace.query(limit=50)]
        assert any("no answer within 2 s" in reason for reason in reasons), reasons
        # the other device of the plugin is served again once the worker is restarted
        body = await until_served(srv, "/twz-001122aa0001.cfg", ua(good))
        assert b"line1.user = alice" in body
        assert plugin.worker.pid not in (None, first_pid)  # type: ignore[union-attr]
        assert plugin.worker.failures >= 1  # type: ignore[union-attr]
    finally:
        await srv.close()


async def test_crash_in_configure_and_extract(
    tmp_path: Path, database_url: str, web_root: tuple[Path, str]
) -> None:
    srv = await ready(tmp_path, database_url, web_root)
    try:
        plugin = srv.prov.plugins.get("wazo-testphone")
        good, bad = "00:11:22:aa:00:03", "00:11:22:aa:00:04"
        for mac in (good, bad):
            assert (
                await srv.phone.get("/x.cfg", headers={"User-Agent": ua(mac)})
            ).status_code == 404
        await give_config(srv, await device_id(srv, good))
        await give_config(srv, await device_id(srv, bad), X_test_behaviour="crash")
        r = await srv.phone.get("/twz-001122aa0004.cfg", headers={"User-Agent": ua(bad)})
        assert r.status_code == 500
        assert await until_served(srv, "/twz-001122aa0003.cfg", ua(good))

        # an extractor that kills its process: the request is simply not identified by it
        pid = plugin.ident.pid  # type: ignore[union-attr]
        r = await srv.phone.get("/x.cfg", headers={"User-Agent": ua("00:11:22:aa:00:05", " CRASH")})
        assert r.status_code == 404
        assert plugin.ident.pid != pid  # type: ignore[union-attr]
        # an extractor that hangs: the request ends at the deadline, the API never waited
        r = await srv.phone.get("/y.cfg", headers={"User-Agent": ua("00:11:22:aa:00:06", " HANG")})
        assert r.status_code == 404
        assert await until_served(srv, "/twz-001122aa0003.cfg", ua(good))
        native = await srv.phone.get("/tp/common.cfg", headers={"User-Agent": NATIVE_UA})
        assert native.status_code == 200
    finally:
        await srv.close()


def test_worker_environment_carries_no_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Third-party code in a worker cannot read the server's secrets from its environment."""
    monkeypatch.setenv("PROVISOR_DATABASE_URL", "postgresql://u:Very-Secret@db/provisor")
    monkeypatch.setenv("PROVISOR_SYNC__AMI_SECRET", "ami-Secret")
    root = wazo_source(tmp_path)
    (root / "entry.py").write_text(
        (root / "entry.py").read_text()
        + "\nimport os\nassert not any('Secret' in v for v in os.environ.values()), 'leak'\n"
    )
    plugin = load_wazo_plugin(root, WazoSettings(worker_timeout=10))
    try:
        assert plugin.ident.pid is not None  # entry.py ran its check and loaded
    finally:
        plugin.close()
