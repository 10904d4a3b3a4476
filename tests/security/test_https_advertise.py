"""A file fetched over HTTPS sends the phone back to HTTPS, never to plain HTTP.

The real HTTPS listener (a pair from ``provisor tls self-signed``, verified by the client), the
real Yealink plugin, whose file names the provisioning URL (``static.auto_provision.server.url``)
with the tenant key and the device token in it. The URL is ``general.advertised_https_url``, or
``https://<provisioning host>:<https port>`` when it is unset; HTTP and TFTP keep the HTTP one.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from provisor.tls import write_self_signed
from tests.conftest import REPO_PLUGINS, Server, make_settings, start_server
from tests.provisioning.test_http_pipeline import configure
from tests.support.ports import start_on_free_port_async

KEY = "https-site-key-01"
MAC = "00:15:65:aa:bb:01"
UA = {"User-Agent": f"Yealink SIP-T46S 66.86.0.15 {MAC}"}
FILE = MAC.replace(":", "") + ".cfg"
PASSWORD = "Https-Line-Secret-5"
URL_LINE = re.compile(rb"static\.auto_provision\.server\.url = (\S+)")


async def open_server(tmp_path: Path, database_url: str, advertised: str | None) -> Server:
    """The derived URL names the configured port, so the port is chosen before the start
    (not 0); a port taken meanwhile makes the start fail and another is tried."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    write_self_signed(cert, key, ["127.0.0.1", "localhost"])
    return await start_on_free_port_async(
        lambda port: _start(tmp_path, database_url, advertised, cert, key, port)
    )


async def _start(
    tmp_path: Path, database_url: str, advertised: str | None, cert: Path, key: Path, port: int
) -> Server:
    overrides: dict[str, object] = {
        "general.plugin_dirs": [str(REPO_PLUGINS)],
        "general.http_auth_strategy": "device_token",
        "provisioning.https_enabled": True,
        "provisioning.https_port": port,
        "provisioning.tls_certfile": str(cert),
        "provisioning.tls_keyfile": str(key),
    }
    if advertised is not None:
        overrides["general.advertised_https_url"] = advertised.format(port=port)
    return await start_server(make_settings(tmp_path, database_url, **overrides))


@pytest.fixture(params=["derived", "explicit"])
async def srv(
    request: pytest.FixtureRequest, tmp_path: Path, database_url: str
) -> AsyncIterator[Server]:
    # "localhost" is in the certificate too: an explicit URL differs from the derived one
    advertised = None if request.param == "derived" else "https://localhost:{port}/"
    server = await open_server(tmp_path, database_url, advertised)
    try:
        yield server
    finally:
        await server.close()


async def test_https_file_advertises_https(srv: Server, tmp_path: Path) -> None:
    port = srv.running.ports["https"]
    settings = srv.prov.settings
    expected_base = (
        settings.general.advertised_https_url.rstrip("/")
        if settings.general.advertised_https_url
        else f"https://127.0.0.1:{port}"
    )
    assert settings.advertised_https_url == expected_base
    tenant = str((await srv.prov.tenants.create("site")).uuid)
    await srv.prov.tenants.set_key(tenant, KEY)
    verify = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))
    async with httpx.AsyncClient(base_url=f"https://127.0.0.1:{port}", verify=verify) as tls:
        # bootstrap over HTTPS: the device is created, its file names its token URL
        r = await tls.get(f"/{KEY}/{FILE}", headers=UA)
        assert r.status_code == 200
        [device] = (await srv.api.get("/0.2/dev_mgr/devices", params={"recurse": "true"})).json()[
            "devices"
        ]
        await configure(srv, device["id"], password=PASSWORD, tenant=tenant)
        token = (
            await srv.api.get(f"/0.2/dev_mgr/devices/{device['id']}/provisioning_token")
        ).json()["provisioning_token"]

        over_http = await srv.phone.get(f"/{KEY}/{token}/{FILE}", headers=UA)
        over_https = await tls.get(f"/{KEY}/{token}/{FILE}", headers=UA)
        again_http = await srv.phone.get(f"/{KEY}/{token}/{FILE}", headers=UA)
        assert over_http.status_code == over_https.status_code == again_http.status_code == 200

        [https_url] = URL_LINE.findall(over_https.content)
        assert https_url.decode() == f"{expected_base}/{KEY}/{token}"
        assert b"http://" not in over_https.content  # no URL in the file downgrades
        assert PASSWORD.encode() in over_https.content

        # the same phone over HTTP keeps the HTTP URL; each protocol has its own cached copy
        for plain in (over_http, again_http):
            [http_url] = URL_LINE.findall(plain.content)
            assert http_url.decode() == f"{settings.advertised_http_url}/{KEY}/{token}"

    # the advertised URL works: the phone follows it over verified TLS and gets its file
    follow = https_url.decode().replace("localhost", "127.0.0.1") + "/" + FILE
    async with httpx.AsyncClient(verify=verify) as phone:
        r = await phone.get(follow, headers=UA)
    assert r.status_code == 200 and PASSWORD.encode() in r.content
