"""wazo-format plugins end to end: a plugins.db repository, /pg_mgr, phones over HTTP and TFTP."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.conftest import Server, make_settings, start_server
from tests.provisioning.tftp_client import tftp_get
from tests.support.waiting import until
from tests.wazo.conftest import publish_wazo, wazo_source

MAC = "00:11:22:aa:bb:01"
UA = f"TestWazo TW200 1.2.3 {MAC}"
FILE = "twz-001122aabb01.cfg"


async def wazo_server(tmp_path: Path, database_url: str, **extra: Any) -> Server:
    """provisor with no native plugins, TFTP on, a short worker deadline."""
    settings = {
        "general.plugin_dirs": [],
        "provisioning.tftp_enabled": True,
        "wazo.worker_timeout": 2.0,
        **extra,
    }
    return await start_server(make_settings(tmp_path, database_url, **settings))


async def wait_op(srv: Server, location: str) -> dict[str, Any]:
    for _ in range(600):
        body: dict[str, Any] = (await srv.api.get(location)).json()
        status = body["status"]
        if "progress" not in status.split("(")[0] and not status.startswith("waiting"):
            return body
        await asyncio.sleep(0.05)
    raise AssertionError("operation did not finish")


async def use_repository(srv: Server, url: str) -> None:
    r = await srv.api.put("/0.2/configure/plugin_server", json={"param": {"value": url}})
    assert r.status_code == 204
    r = await srv.api.post("/0.2/pg_mgr/install/update", json={})
    assert r.status_code == 201
    assert (await wait_op(srv, r.headers["location"]))["status"].startswith("update|success")


async def install(srv: Server, plugin_id: str, action: str = "install") -> dict[str, Any]:
    r = await srv.api.post(f"/0.2/pg_mgr/install/{action}", json={"id": plugin_id})
    assert r.status_code == 201, r.text
    return await wait_op(srv, r.headers["location"])


async def give_config(srv: Server, device_id: str, **raw: Any) -> None:
    body = {
        "config": {
            "id": f"cfg-{device_id}",
            "parent_ids": ["base"],
            "raw_config": {
                "timezone": "Europe/Paris",
                "X_xivo_phonebook_ip": "10.0.0.5",
                "X_xivo_user_uuid": "u-1",
                "sip_lines": {
                    "1": {"username": "alice", "password": "Secret-1", "proxy_ip": "10.0.0.2"}
                },
                **raw,
            },
        }
    }
    r = await srv.api.post("/0.2/cfg_mgr/configs", json=body)
    assert r.status_code == 201, r.text
    doc = (await srv.api.get(f"/0.2/dev_mgr/devices/{device_id}")).json()["device"]
    doc["config"] = f"cfg-{device_id}"
    assert (
        await srv.api.put(f"/0.2/dev_mgr/devices/{device_id}", json={"device": doc})
    ).status_code == 204


async def test_install_identify_serve_uninstall(
    tmp_path: Path, database_url: str, web_root: tuple[Path, str]
) -> None:
    www, url = web_root
    publish_wazo(www, wazo_source(tmp_path, "wazo-testphone", "1.0.0"))
    srv = await wazo_server(tmp_path, database_url)
    try:
        await use_repository(srv, url)
        pkgs = (await srv.api.get("/0.2/pg_mgr/install/installable")).json()["pkgs"]
        entry = pkgs["wazo-testphone"]
        assert entry["version"] == "1.0.0" and len(entry["sha1sum"]) == 40 and entry["dsize"] > 0
        op = await install(srv, "wazo-testphone")
        assert op["status"].startswith("install|success(download|success;"), op
        installed = (await srv.api.get("/0.2/pg_mgr/install/installed")).json()["pkgs"]
        assert installed["wazo-testphone"]["version"] == "1.0.0"
        assert "TestWazo, TW200, 1.2.3" in installed["wazo-testphone"]["capabilities"]

        # first fetch: the plugin's HTTP extractor identifies it, its associator picks it
        r = await srv.phone.get(f"/{FILE}", headers={"User-Agent": UA})
        assert r.status_code == 200 and "line1.user = anonymous" in r.text  # autoprov config
        [device] = (await srv.api.get("/0.2/dev_mgr/devices")).json()["devices"]
        assert device["mac"] == MAC and device["model"] == "TW200"
        assert device["vendor"] == "TestWazo" and device["plugin"] == "wazo-testphone"
        await give_config(srv, device["id"])

        # configure ran in the worker: TW200.tpl (model template) over base.tpl
        r = await srv.phone.get(f"/{FILE}", headers={"User-Agent": UA})
        assert r.status_code == 200, r.text
        text = r.text
        assert "line1.user = alice" in text and "line1.password = Secret-1" in text
        assert "model_specific = TW200" in text and "tz_hours = 1" in text and "dst = on" in text
        assert (
            "phonebook = http://10.0.0.5:9498/0.1/directories/lookup/default/testwazo?xivo_user_uuid=u-1"
            in text
        )
        # the same bytes over TFTP (identified by the plugin's TFTP extractor)
        data = await tftp_get("127.0.0.1", srv.running.ports["tftp"], FILE)
        assert data == r.content
        # common file written by configure_common from the base config
        common = await srv.phone.get("/twz-common.cfg", headers={"User-Agent": UA})
        assert common.status_code == 200 and b"server_ip = 127.0.0.1" in common.content
        # a path the plugin has no file for, and one that climbs out: the one 404
        assert (await srv.phone.get("/nothing.cfg", headers={"User-Agent": UA})).status_code == 404
        assert (
            await srv.phone.get("/..%2F..%2Fplugin-info", headers={"User-Agent": UA})
        ).status_code == 404
        # another device's file is refused even though the plugin wrote it
        other = await srv.phone.get(
            f"/{FILE}", headers={"User-Agent": "TestWazo TW100 1.2.3 00:11:22:aa:bb:02"}
        )
        assert other.status_code == 404

        # a config change reconfigures the device on its next fetch
        cfg = (await srv.api.get(f"/0.2/cfg_mgr/configs/cfg-{device['id']}")).json()["config"]
        cfg["raw_config"]["sip_lines"]["1"]["username"] = "bob"
        assert (
            await srv.api.put(f"/0.2/cfg_mgr/configs/{cfg['id']}", json={"config": cfg})
        ).status_code == 204
        r = await srv.phone.get(f"/{FILE}", headers={"User-Agent": UA})
        assert "line1.user = bob" in r.text

        # the trigger file taught provisor the device's SIP username (remote state)
        doc = (await srv.api.get(f"/0.2/dev_mgr/devices/{device['id']}")).json()["device"]
        assert doc["remote_state_sip_username"] in ("alice", "bob")
        # the plugin's own synchronize chose the NOTIFY event
        plugin = srv.prov.plugins.get("wazo-testphone")
        assert plugin is not None
        event = await asyncio.to_thread(plugin.sync_event, doc)
        assert event == "testwazo-resync"

        # a per-install template override in var/templates wins, as on wazo-provd
        override = srv.prov.settings.data_dir / "plugins" / "wazo-testphone" / "var" / "templates"
        (override / "TW200.tpl").write_text("overridden {{ XX_lines[0][1].username }}\n")
        cfg["raw_config"]["sip_lines"]["1"]["username"] = "carol"
        assert (
            await srv.api.put(f"/0.2/cfg_mgr/configs/{cfg['id']}", json={"config": cfg})
        ).status_code == 204
        r = await srv.phone.get(f"/{FILE}", headers={"User-Agent": UA})
        assert r.text == "overridden carol"  # Jinja2 drops the final newline

        # a device that moves away from the plugin is deconfigured: its file is removed
        written = srv.prov.settings.data_dir / "plugins" / "wazo-testphone" / "var" / "tftpboot"
        assert (written / FILE).is_file()
        doc = (await srv.api.get(f"/0.2/dev_mgr/devices/{device['id']}")).json()["device"]
        doc["plugin"] = ""
        r = await srv.api.put(f"/0.2/dev_mgr/devices/{device['id']}", json={"device": doc})
        assert r.status_code == 204, r.text
        await until(lambda: not (written / FILE).exists(), f"{FILE} removed")

        # uninstall: the worker stops, its device is unconfigured, nothing is served
        worker_pid = plugin.worker.pid  # type: ignore[attr-defined]
        assert worker_pid is not None
        r = await srv.api.post("/0.2/pg_mgr/install/uninstall", json={"id": "wazo-testphone"})
        assert r.status_code == 204
        assert plugin.worker.pid is None  # type: ignore[attr-defined]
        assert (
            not Path(f"/proc/{worker_pid}").exists()
            or "zombie" in Path(f"/proc/{worker_pid}/status").read_text().lower()
        )
        assert (await srv.phone.get(f"/{FILE}", headers={"User-Agent": UA})).status_code == 404
        doc = (await srv.api.get(f"/0.2/dev_mgr/devices/{device['id']}")).json()["device"]
        assert doc["configured"] is False
    finally:
        await srv.close()


async def test_bad_sha1_is_refused(
    tmp_path: Path, database_url: str, web_root: tuple[Path, str]
) -> None:
    www, url = web_root
    publish_wazo(www, wazo_source(tmp_path), tamper=True)
    srv = await wazo_server(tmp_path, database_url)
    try:
        await use_repository(srv, url)
        op = await install(srv, "wazo-testphone")
        assert op["status"].startswith("install|fail") and "sha1 mismatch" in op["reason"], op
        assert "wazo-testphone" not in (await srv.api.get("/0.2/pg_mgr/plugins")).json()["plugins"]
        assert not (srv.prov.settings.data_dir / "plugins" / "wazo-testphone").exists()
    finally:
        await srv.close()


async def test_wazo_files_need_the_tenant_key(
    tmp_path: Path, database_url: str, web_root: tuple[Path, str]
) -> None:
    www, url = web_root
    publish_wazo(www, wazo_source(tmp_path))
    srv = await wazo_server(tmp_path, database_url, **{"general.http_auth_strategy": "url_key"})
    try:
        await use_repository(srv, url)
        assert (await install(srv, "wazo-testphone"))["status"].startswith("install|success")
        await srv.prov.tenants.set_key(srv.master, "wazo-key-0001")
        headers = {"User-Agent": UA}
        assert (await srv.phone.get(f"/{FILE}", headers=headers)).status_code == 404
        assert (await srv.phone.get("/twz-common.cfg", headers=headers)).status_code == 404
        r = await srv.phone.get(f"/wazo-key-0001/{FILE}", headers=headers)
        assert r.status_code == 200 and "line1.user = anonymous" in r.text
        # the refusals were counted by the scan defence and traced
        reasons = [e["reason"] for e in srv.pipeline.trace.query(limit=10)]
        assert any("key" in reason for reason in reasons), reasons
    finally:
        await srv.close()


async def test_dhcp_lease_identified_by_the_wazo_extractor(
    tmp_path: Path, database_url: str, web_root: tuple[Path, str]
) -> None:
    www, url = web_root
    publish_wazo(www, wazo_source(tmp_path))
    srv = await wazo_server(tmp_path, database_url)
    try:
        await use_repository(srv, url)
        assert (await install(srv, "wazo-testphone"))["status"].startswith("install|success")
        option60 = ".".join(f"{b:02x}" for b in b"TestWazo TW100")
        info = {"op": "commit", "ip": "10.3.0.7", "mac": "00:11:22:aa:cc:01"}
        info["options"] = [f"060.{option60}"]
        r = await srv.api.post("/0.2/dev_mgr/dhcpinfo", json={"dhcp_info": info})
        assert r.status_code == 204, r.text
        [device] = (await srv.api.get("/0.2/dev_mgr/devices")).json()["devices"]
        assert device["vendor"] == "TestWazo" and device["model"] == "TW100"
        assert device["plugin"] == "wazo-testphone" and device["ip"] == "10.3.0.7"
    finally:
        await srv.close()


async def test_synchronize_honours_the_plugin(
    tmp_path: Path, database_url: str, web_root: tuple[Path, str]
) -> None:
    """The plugin's own synchronize runs: TW100 needs no NOTIFY (success, nothing sent)."""
    www, url = web_root
    publish_wazo(www, wazo_source(tmp_path))
    srv = await wazo_server(tmp_path, database_url)
    try:
        await use_repository(srv, url)
        assert (await install(srv, "wazo-testphone"))["status"].startswith("install|success")
        mac = "00:11:22:aa:dd:01"
        await srv.phone.get("/x.cfg", headers={"User-Agent": f"TestWazo TW100 1.2.3 {mac}"})
        [device] = (await srv.api.get("/0.2/dev_mgr/devices")).json()["devices"]
        await give_config(srv, device["id"])
        r = await srv.api.post("/0.2/dev_mgr/synchronize", json={"id": device["id"]})
        assert r.status_code == 201
        op = await wait_op(srv, r.headers["location"])
        assert op["status"].startswith("success"), op
    finally:
        await srv.close()
