"""Phones over HTTPS with certificate checking, on a pair made by ``provisor tls self-signed``."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest

from provisor.errors import StartupError
from provisor.tls import write_self_signed
from tests.conftest import make_settings, start_server
from tests.provisioning.test_http_pipeline import UA


async def test_https_with_certificate_checking(tmp_path: Path, database_url: str) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    write_self_signed(cert, key, ["127.0.0.1", "localhost"])
    srv = await start_server(
        make_settings(
            tmp_path,
            database_url,
            **{
                "provisioning.https_enabled": True,
                "provisioning.https_port": 0,
                "provisioning.tls_certfile": str(cert),
                "provisioning.tls_keyfile": str(key),
            },
        )
    )
    try:
        url = f"https://127.0.0.1:{srv.running.ports['https']}"
        context = ssl.create_default_context(cafile=str(cert))
        async with httpx.AsyncClient(base_url=url, verify=context) as phone:
            r = await phone.get("/tp/common.cfg", headers={"User-Agent": UA})
            assert r.status_code == 200 and b"server = " in r.content
            http = await srv.phone.get("/tp/common.cfg", headers={"User-Agent": UA})
            # the same file, but over HTTPS it sends the phone back to HTTPS (never downgrades)
            https_base = srv.prov.settings.advertised_https_url.encode()
            assert b"server = " + https_base in r.content
            assert r.content.replace(https_base, b"http://127.0.0.1:8667") == http.content
            # asked again over the same TLS connection: answered from the parser callback,
            # the same bytes, the HTTPS variant still (TLS is part of what a hot answer is for)
            guard = srv.running.guards["https"]
            before = guard.quick_answers
            again = await phone.get("/tp/common.cfg", headers={"User-Agent": UA})
            assert again.content == r.content and guard.quick_answers == before + 1
        # a client that checks certificates against the system CAs refuses ours
        async with httpx.AsyncClient(base_url=url) as strict:
            with pytest.raises(httpx.ConnectError):
                await strict.get("/tp/common.cfg")
    finally:
        await srv.close()


async def test_https_without_certificate_is_a_clear_error(
    tmp_path: Path, database_url: str
) -> None:
    settings = make_settings(tmp_path, database_url, **{"provisioning.https_enabled": True})
    with pytest.raises(StartupError, match="https listener: .*tls_certfile"):
        await start_server(settings)
