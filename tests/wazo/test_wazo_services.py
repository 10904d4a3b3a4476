"""The folder a wazo plugin serves over each protocol is the plugin's choice, as on wazo-provd.

``wazo-testsplit`` writes its files in ``var/tftpboot/phones`` and serves that folder over HTTP
(``HTTPNoListingFileService``), and nothing over TFTP (``TFTPNullService``). provisor serves its
files from there through its one pipeline, and nothing else of the plugin folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.provisioning.tftp_client import TftpError, tftp_get
from tests.wazo.conftest import publish_wazo, wazo_source
from tests.wazo.test_wazo_plugins import (
    FILE,
    MAC,
    UA,
    give_config,
    install,
    use_repository,
    wazo_server,
)


async def test_http_from_the_plugins_folder_and_nothing_over_tftp(
    tmp_path: Path, database_url: str, web_root: tuple[Path, str]
) -> None:
    www, url = web_root
    publish_wazo(www, wazo_source(tmp_path, "wazo-testsplit", variant="wazo-testsplit"))
    srv = await wazo_server(tmp_path, database_url)
    try:
        await use_repository(srv, url)
        assert (await install(srv, "wazo-testsplit"))["status"].startswith("install|success")
        plugin = srv.prov.plugins.get("wazo-testsplit")
        assert plugin is not None
        assert plugin.services == {"http": "var/tftpboot/phones"}  # type: ignore[attr-defined]
        r = await srv.phone.get(f"/{FILE}", headers={"User-Agent": UA})
        assert r.status_code == 200, r.text
        [device] = (await srv.api.get("/0.2/dev_mgr/devices")).json()["devices"]
        assert device["mac"] == MAC and device["plugin"] == "wazo-testsplit"
        await give_config(srv, device["id"])

        # configure wrote the device file in the plugin's own folder, served from there
        r = await srv.phone.get(f"/{FILE}", headers={"User-Agent": UA})
        assert r.status_code == 200 and "line1.user = alice" in r.text
        root = srv.prov.settings.data_dir / "plugins" / "wazo-testsplit" / "var" / "tftpboot"
        assert (root / "phones" / FILE).is_file() and not (root / FILE).exists()
        # configure_common wrote twz-common.cfg there too
        r = await srv.phone.get("/twz-common.cfg", headers={"User-Agent": UA})
        assert r.status_code == 200 and b"server_ip = 127.0.0.1" in r.content
        assert (root / "phones" / "twz-common.cfg").is_file()
        # a file of that folder is served; one of var/tftpboot outside it is not
        (root / "phones" / "logo.txt").write_bytes(b"served logo\n")
        (root / "outside.txt").write_bytes(b"not served\n")
        r = await srv.phone.get("/logo.txt", headers={"User-Agent": UA})
        assert r.status_code == 200 and r.content == b"served logo\n"
        assert (await srv.phone.get("/outside.txt", headers={"User-Agent": UA})).status_code == 404
        r = await srv.phone.get("/..%2Foutside.txt", headers={"User-Agent": UA})
        assert r.status_code == 404

        # TFTPNullService: the device file and the common file are not served over TFTP
        port = srv.running.ports["tftp"]
        for name in (FILE, "twz-common.cfg", "logo.txt"):
            with pytest.raises(TftpError):
                await tftp_get("127.0.0.1", port, name)
        # the device file's request identified the phone, then found no TFTP file to route to
        trace = (await srv.api.get("/0.2/dev_mgr/requests", params={"limit": 3})).json()
        [entry] = [e for e in trace["requests"] if e["path"] == FILE]
        assert entry["protocol"] == "tftp" and entry["reason"] == "the plugin has no such file"
    finally:
        await srv.close()


async def test_testphone_serves_var_tftpboot_over_both(
    tmp_path: Path, database_url: str, web_root: tuple[Path, str]
) -> None:
    """The plugin that serves ``var/tftpboot`` over HTTP and TFTP: both folders reported."""
    www, url = web_root
    publish_wazo(www, wazo_source(tmp_path))
    srv = await wazo_server(tmp_path, database_url)
    try:
        await use_repository(srv, url)
        assert (await install(srv, "wazo-testphone"))["status"].startswith("install|success")
        plugin = srv.prov.plugins.get("wazo-testphone")
        assert plugin is not None
        assert plugin.services == {  # type: ignore[attr-defined]
            "http": "var/tftpboot",
            "tftp": "var/tftpboot",
        }
        assert (await srv.phone.get(f"/{FILE}", headers={"User-Agent": UA})).status_code == 200
        [device] = (await srv.api.get("/0.2/dev_mgr/devices")).json()["devices"]
        await give_config(srv, device["id"])
        r = await srv.phone.get(f"/{FILE}", headers={"User-Agent": UA})
        assert r.status_code == 200 and "line1.user = alice" in r.text
        assert await tftp_get("127.0.0.1", srv.running.ports["tftp"], FILE) == r.content
    finally:
        await srv.close()
