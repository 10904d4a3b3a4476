"""``/0.2/pg_mgr`` through real HTTP against repositories served on 127.0.0.1."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import Server, make_settings, start_server
from tests.plugins_mgmt.conftest import plugin_source, publish, publish_unchecked
from tests.support.waiting import until

UA = "TestPhone-TP100/1.2.3 (00:11:22:33:44:55)"


async def _server(tmp_path: Path, database_url: str) -> Server:
    # no plugin_dirs: plugins come only from installs
    return await start_server(make_settings(tmp_path, database_url, **{"general.plugin_dirs": []}))


async def _wait(srv: Server, location: str) -> str:
    async def finished() -> str | None:
        status = (await srv.api.get(location)).json()["status"]
        if "progress" not in status.split("(")[0] and not status.startswith("waiting"):
            return str(status)
        return None

    return await until(finished, f"operation {location} finished")


async def _set_server(srv: Server, url: str) -> None:
    r = await srv.api.put("/0.2/configure/plugin_server", json={"param": {"value": url}})
    assert r.status_code == 204
    r = await srv.api.post("/0.2/pg_mgr/install/update", json={})
    assert r.status_code == 201
    assert (await _wait(srv, r.headers["location"])).startswith("update|success")


async def test_update_install_upgrade_uninstall(
    tmp_path: Path, database_url: str, web_root: tuple[Path, str]
) -> None:
    www, url = web_root
    publish(plugin_source(tmp_path, "1.9.0", marker="v1"), www)
    srv = await _server(tmp_path, database_url)
    try:
        await _set_server(srv, url)
        pkgs = (await srv.api.get("/0.2/pg_mgr/install/installable")).json()["pkgs"]
        assert pkgs["testphone"]["version"] == "1.9.0" and pkgs["testphone"]["dsize"] > 0
        r = await srv.api.post("/0.2/pg_mgr/install/install", json={"id": "testphone"})
        assert r.status_code == 201 and r.headers["location"].startswith(
            "/0.2/pg_mgr/install/install/"
        )
        status = await _wait(srv, r.headers["location"])
        assert status.startswith("install|success(download|success;") and status.endswith(")")
        installed = (await srv.api.get("/0.2/pg_mgr/install/installed")).json()["pkgs"]
        assert installed["testphone"]["version"] == "1.9.0"
        plugins = (await srv.api.get("/0.2/pg_mgr/plugins")).json()["plugins"]
        assert plugins["testphone"]["links"][0]["href"] == "/0.2/pg_mgr/plugins/testphone"
        info = (await srv.api.get("/0.2/pg_mgr/plugins/testphone/info")).json()["plugin_info"]
        assert info["version"] == "1.9.0" and "capabilities" in info
        r = await srv.phone.get("/tp/common.cfg", headers={"User-Agent": UA})
        assert b"marker = v1" in r.content
        # installing again, or an unknown plugin: 400
        assert (
            await srv.api.post("/0.2/pg_mgr/install/install", json={"id": "testphone"})
        ).status_code == 400
        assert (
            await srv.api.post("/0.2/pg_mgr/install/install", json={"id": "nope"})
        ).status_code == 400

        # a broken 1.10.0 (newer as a version, older as a string) fails and 1.9.0 keeps serving
        publish_unchecked(
            plugin_source(tmp_path, "1.10.0", broken=True), www, "testphone", "1.10.0"
        )
        await _set_server(srv, url)
        r = await srv.api.post("/0.2/pg_mgr/install/upgrade", json={"id": "testphone"})
        status = await _wait(srv, r.headers["location"])
        body = (await srv.api.get(r.headers["location"])).json()
        assert status.startswith("upgrade|fail") and "does not load" in body["reason"]
        r = await srv.phone.get("/tp/common.cfg", headers={"User-Agent": UA})
        assert b"marker = v1" in r.content

        # a good 1.10.0 upgrades
        publish(plugin_source(tmp_path, "1.10.0", marker="v2"), www)
        await _set_server(srv, url)
        r = await srv.api.post("/0.2/pg_mgr/install/upgrade", json={"id": "testphone"})
        assert (await _wait(srv, r.headers["location"])).startswith("upgrade|success")
        r = await srv.phone.get("/tp/common.cfg", headers={"User-Agent": UA})
        assert b"marker = v2" in r.content and b"testphone 1.10.0" in r.content

        # uninstall: devices unconfigured, files gone
        assert (
            await srv.api.post("/0.2/pg_mgr/install/uninstall", json={"id": "testphone"})
        ).status_code == 204
        assert (
            await srv.api.post("/0.2/pg_mgr/install/uninstall", json={"id": "testphone"})
        ).status_code == 400
        [device] = (await srv.api.get("/0.2/dev_mgr/devices")).json()["devices"]
        assert device["configured"] is False
        assert (
            await srv.phone.get("/tp/common.cfg", headers={"User-Agent": UA})
        ).status_code == 404
    finally:
        await srv.close()


async def test_tampered_archive_is_refused(
    tmp_path: Path, database_url: str, web_root: tuple[Path, str]
) -> None:
    www, url = web_root
    index = publish(plugin_source(tmp_path, "1.0.0"), www)
    archive = www / index["plugins"]["testphone"]["file"]  # type: ignore[index]
    data = bytearray(archive.read_bytes())
    data[-10] ^= 0xFF
    archive.write_bytes(bytes(data))
    srv = await _server(tmp_path, database_url)
    try:
        await _set_server(srv, url)
        r = await srv.api.post("/0.2/pg_mgr/install/install", json={"id": "testphone"})
        await _wait(srv, r.headers["location"])
        body = (await srv.api.get(r.headers["location"])).json()
        assert body["status"].startswith("install|fail") and "sha256 mismatch" in body["reason"]
        assert "testphone" not in (await srv.api.get("/0.2/pg_mgr/plugins")).json()["plugins"]
    finally:
        await srv.close()


async def test_unknown_plugin_info_is_404_without_auth(server: Server) -> None:
    async with server.client("bad-token") as anon:
        assert (await anon.get("/0.2/pg_mgr/plugins/nope/info")).status_code == 404
        assert (await anon.get("/0.2/pg_mgr/plugins/testphone/info")).status_code == 401


async def test_firmware_package_install_and_range(
    tmp_path: Path, database_url: str, web_root: tuple[Path, str]
) -> None:
    www, url = web_root
    firmware = os.urandom(200_000)
    (www / "TP100-1.2.rom").write_bytes(firmware)
    sources = plugin_source(tmp_path, "1.0.0")
    manifest = sources / "testphone" / "manifest.toml"
    manifest.write_text(
        manifest.read_text()
        + f'\n[firmware.tp100-fw]\nversion = "1.2"\ndescription = "TP100 firmware"\nurl = "{url}/TP100-1.2.rom"\n'
        f'size = {len(firmware)}\nsha256 = "{hashlib.sha256(firmware).hexdigest()}"\n'
        'files = [{src = "TP100-1.2.rom", dest = "firmware/TP100-1.2.rom"}]\n'
    )
    publish(sources, www / "repo")
    srv = await _server(tmp_path, database_url)
    try:
        await _set_server(srv, f"{url}/repo")
        r = await srv.api.post("/0.2/pg_mgr/install/install", json={"id": "testphone"})
        await _wait(srv, r.headers["location"])
        pkgs = (await srv.api.get("/0.2/pg_mgr/plugins/testphone/install/installable")).json()[
            "pkgs"
        ]
        assert pkgs["tp100-fw"]["dsize"] == len(firmware)
        assert (
            await srv.phone.get("/firmware/TP100-1.2.rom", headers={"User-Agent": UA})
        ).status_code == 404
        r = await srv.api.post(
            "/0.2/pg_mgr/plugins/testphone/install/install", json={"id": "tp100-fw"}
        )
        assert r.status_code == 201
        status = await _wait(srv, r.headers["location"])
        assert status == f"install_pkg|success(download|success;{len(firmware)}/{len(firmware)})"
        installed = (await srv.api.get("/0.2/pg_mgr/plugins/testphone/install/installed")).json()[
            "pkgs"
        ]
        assert installed["tp100-fw"]["version"] == "1.2"
        r = await srv.phone.get(
            "/firmware/TP100-1.2.rom", headers={"User-Agent": UA, "Range": "bytes=100-199"}
        )
        assert r.status_code == 206 and r.content == firmware[100:200]
        r = await srv.phone.get("/firmware/TP100-1.2.rom", headers={"User-Agent": UA})
        assert r.content == firmware
        r = await srv.api.post("/0.2/pg_mgr/plugins/testphone/install/install", json={"id": "nope"})
        assert r.status_code == 400
    finally:
        await srv.close()


async def test_template_override_and_sandbox(server: Server) -> None:
    srv = server
    await srv.phone.get("/tp/common.cfg", headers={"User-Agent": UA})
    url = "/0.2/pg_mgr/plugins/testphone/templates/tenant/common.cfg"
    r = await srv.api.put(url, json={"template": {"source": "custom {{ http_base_url }}\n"}})
    assert r.status_code == 204
    r = await srv.phone.get("/tp/common.cfg", headers={"User-Agent": UA})
    assert r.content == b"custom http://127.0.0.1:8667\n"
    listed = (await srv.api.get("/0.2/pg_mgr/plugins/testphone/templates")).json()["templates"]
    assert listed[0]["name"] == "common.cfg" and listed[0]["scope"] == "tenant"
    # a template that does not compile, an unknown template, a bad scope: 400, nothing stored
    assert (await srv.api.put(url, json={"template": {"source": "{% for %}"}})).status_code == 400
    r = await srv.api.put(
        "/0.2/pg_mgr/plugins/testphone/templates/tenant/nope.cfg",
        json={"template": {"source": "x"}},
    )
    assert r.status_code == 400
    r = await srv.api.put(
        "/0.2/pg_mgr/plugins/testphone/templates/galaxy/common.cfg",
        json={"template": {"source": "x"}},
    )
    assert r.status_code == 400
    # reaching Python internals is refused at render: a 500 for this file only
    evil = "{{ ''.__class__.__mro__[1].__subclasses__() }}"
    model_url = "/0.2/pg_mgr/plugins/testphone/templates/model/common.cfg"
    assert (
        await srv.api.put(model_url, json={"template": {"target": "TP100", "source": evil}})
    ).status_code == 204
    r = await srv.phone.get("/tp/common.cfg", headers={"User-Agent": UA})
    assert r.status_code == 500 and b"__subclasses__" not in r.content
    other = "TestPhone-TP200/1.0 (00:11:22:00:00:77)"
    r = await srv.phone.get("/tp/common.cfg", headers={"User-Agent": other})
    assert r.status_code == 200 and r.content.startswith(b"custom ")
    assert (await srv.api.delete(model_url, params={"target": "TP100"})).status_code == 204
    r = await srv.phone.get("/tp/common.cfg", headers={"User-Agent": UA})
    assert r.status_code == 200


def test_cli_build_and_install(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    env = {k: v for k, v in os.environ.items() if k != "PROVISOR_TEST_DATABASE_URL"}
    env["PROVISOR_DATA_DIR"] = str(tmp_path / "data")
    cli = [sys.executable, "-m", "provisor.cli"]
    sources = plugin_source(tmp_path, "2.0.0")
    r = subprocess.run(
        [*cli, "plugin", "build", "--sources", str(sources), "--out", str(repo)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert r.returncode == 0 and "testphone 2.0.0" in r.stdout, r.stderr
    env["PROVISOR_PLUGIN_SERVER"] = str(repo)
    r = subprocess.run(
        [*cli, "plugin", "install", "testphone", "--quiet"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert r.returncode == 0 and "installed testphone" in r.stdout, r.stderr
    assert (tmp_path / "data" / "plugins" / "testphone" / "manifest.toml").is_file()
    r = subprocess.run(
        [*cli, "plugin", "install", "nope"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert r.returncode != 0 and "nope" in r.stdout + r.stderr
