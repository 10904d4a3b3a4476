"""Optional: real wazo plugins, built with wazo-provd-plugins' own pgbuild.py, through provisor.

Set PROVISOR_WAZO_PLUGINS_DIR to a wazo repository folder (``plugins.db`` + ``.tar.bz2``) built
from https://github.com/wazo-platform/wazo-provd-plugins (for instance
``pgbuild.py --build`` / ``--package`` / ``--db`` of wazo_yealink v86, wazo_cisco_spa 7.5.5,
wazo_polycom 5.9.2, wazo_snom 10.1.54.13, wazo_grandstream 1.0.11.85, wazo_fanvil serie-x).
Those plugins are GPL and never committed here. Each plugin found is installed through /pg_mgr;
each case below whose plugin is present is identified from a real User-Agent/path and its device
file is rendered by the plugin's own configure, with the account written in it.
"""

from __future__ import annotations

import functools
import http.server
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import Server
from tests.plugins_mgmt.conftest import Quiet
from tests.wazo.test_wazo_plugins import give_config, install, use_repository, wazo_server

BUILT = os.environ.get("PROVISOR_WAZO_PLUGINS_DIR")

pytestmark = pytest.mark.skipif(
    not BUILT, reason="PROVISOR_WAZO_PLUGINS_DIR names no folder of built wazo plugins"
)


@dataclass(frozen=True)
class Case:
    plugin_prefix: str
    user_agent: str
    mac: str
    vendor: str
    model: str
    device_file: str
    expected: tuple[str, ...]


CASES = (
    Case(
        "wazo-yealink-v86",
        "Yealink SIP-T46S 66.86.0.15 80:5e:c0:11:22:33",
        "80:5e:c0:11:22:33",
        "Yealink",
        "T46S",
        "805ec0112233.cfg",
        ("account.1.user_name = alice", "account.1.password = Secret-1"),
    ),
    Case(
        "wazo-cisco-spa-7.5.5",
        "Cisco/SPA508G-7.5.5 (0002FD112233)(CBT141400UK)",
        "00:02:fd:11:22:33",
        "Cisco",
        "SPA508G",
        "0002fd112233.xml",
        ("alice", "Secret-1"),
    ),
    Case(
        "wazo-polycom-5.9.2",
        "FileTransport PolycomVVX-VVX_400-UA/5.9.2.1234 Type/Application",
        "00:04:f2:11:22:33",
        "Polycom",
        "VVX400",
        "0004f2112233-user.cfg",
        ("alice", "Secret-1"),
    ),
    Case(
        "wazo-snom-10.1.54.13",
        "Mozilla/4.0 (compatible; snomD785-SIP 10.1.54.13 1.1.5-IS 000413112233)",
        "00:04:13:11:22:33",
        "Snom",
        "D785",
        "000413112233.xml",
        ("alice", "Secret-1"),
    ),
    Case(
        "wazo-grandstream-1.0.11.85",
        "Grandstream Model HW GXP2170 SW 1.0.11.85 DevId 000b82112233",
        "00:0b:82:11:22:33",
        "Grandstream",
        "GXP2170",
        "Grandstream/cfg000b82112233.xml",
        ("alice", "Secret-1"),
    ),
    Case(
        "wazo-fanvil-serie-x",
        "Fanvil X4U 2.12.1 0c383e112233",
        "0c:38:3e:11:22:33",
        "Fanvil",
        "X4U",
        "Fanvil/0c383e112233.cfg",
        ("alice", "Secret-1"),
    ),
)


#: What wazo-confd writes for a user's line (the keys those plugins read).
WAZO_RAW = {
    "sip_proxy_ip": "10.0.0.2",
    "sip_registrar_ip": "10.0.0.2",
    "sip_dtmf_mode": "RTP-out-of-band",
    "locale": "fr_FR",
    "exten_voicemail": "*98",
    "exten_pickup_call": "*8",
    "funckeys": {},
    "sip_lines": {
        "1": {
            "username": "alice",
            "auth_username": "alice",
            "password": "Secret-1",
            "display_name": "Alice A",
            "number": "1001",
            "proxy_ip": "10.0.0.2",
            "registrar_ip": "10.0.0.2",
        }
    },
}


@pytest.fixture
def built_repository() -> Iterator[str]:
    """The built repository served on 127.0.0.1."""
    assert BUILT is not None
    root = Path(BUILT)
    assert (root / "plugins.db").is_file(), f"{root} has no plugins.db"
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def test_real_plugins_identify_and_render(
    tmp_path: Path, database_url: str, built_repository: str
) -> None:
    srv: Server = await wazo_server(tmp_path, database_url, **{"wazo.worker_timeout": 20.0})
    try:
        await use_repository(srv, built_repository)
        pkgs = (await srv.api.get("/0.2/pg_mgr/install/installable")).json()["pkgs"]
        for plugin_id in sorted(pkgs):
            op = await install(srv, plugin_id)
            assert op["status"].startswith("install|success"), (plugin_id, op)
        ran = 0
        for case in CASES:
            if case.plugin_prefix not in pkgs:
                continue
            ran += 1
            headers = {"User-Agent": case.user_agent}
            await srv.phone.get(f"/{case.device_file}", headers=headers)
            found = [
                d
                for d in (await srv.api.get("/0.2/dev_mgr/devices")).json()["devices"]
                if d.get("mac") == case.mac
            ]
            assert found, (case.plugin_prefix, "not identified")
            device = found[0]
            assert device["vendor"] == case.vendor, device
            assert device["model"] == case.model, device
            assert device["plugin"] == case.plugin_prefix, device
            await give_config(srv, device["id"], **WAZO_RAW)
            r = await srv.phone.get(f"/{case.device_file}", headers=headers)
            why = [e["reason"] for e in srv.pipeline.trace.query(device_id=device["id"], limit=1)]
            assert r.status_code == 200, (case.plugin_prefix, r.status_code, why)
            for text in case.expected:
                assert text in r.text, (case.plugin_prefix, text)
        assert ran > 0, "no known plugin in the built repository"
    finally:
        await srv.close()
