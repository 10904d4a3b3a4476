"""``/0.2/dev_mgr/bans``: list and lift the bans of the scan defence over REST (an extension)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.conftest import make_settings, start_server

UA = "TestPhone-TP100/1.2.3 (00:11:22:33:44:55)"


async def test_a_ban_is_listed_and_lifted_over_rest(
    tmp_path: Path, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    srv = await start_server(
        make_settings(tmp_path, database_url, **{"provisioning.ban_threshold": 3})
    )
    try:
        assert (await srv.api.get("/0.2/dev_mgr/bans")).json() == {"bans": []}
        for n in range(6):  # a scanner's guesses: unknown phones' files
            await srv.phone.get(f"/0011220000{n:02d}.cfg", headers={"User-Agent": "scan/1"})
        r = await srv.phone.get("/tp/common.cfg", headers={"User-Agent": UA})
        assert r.status_code == 404  # banned: refused like a missing file
        [ban] = (await srv.api.get("/0.2/dev_mgr/bans")).json()["bans"]
        assert ban["address"] == "127.0.0.1" and ban["until"].endswith("+00:00") and ban["reason"]

        sub = await srv.prov.tenants.create("customer")
        sub_token = await srv.token_for(sub.uuid)
        for method, url in (
            ("GET", "/0.2/dev_mgr/bans"),
            ("DELETE", "/0.2/dev_mgr/bans/127.0.0.1"),
        ):
            r = await srv.api.request(method, url, headers={"X-Auth-Token": sub_token})
            assert r.status_code == 401 and "master tenant" in r.text  # other tenants' phones
        r = await srv.api.delete("/0.2/dev_mgr/bans/not-an-address")
        assert r.status_code == 400 and "not-an-address" in r.text

        with caplog.at_level(logging.WARNING, logger="provisor.api.bans"):
            assert (await srv.api.delete("/0.2/dev_mgr/bans/127.0.0.1")).status_code == 204
        assert "lifted the ban of 127.0.0.1" in caplog.text and srv.token not in caplog.text
        assert (await srv.api.get("/0.2/dev_mgr/bans")).json() == {"bans": []}
        r = await srv.phone.get("/tp/common.cfg", headers={"User-Agent": UA})
        assert r.status_code == 200  # served again, its failures forgotten too
        r = await srv.api.delete("/0.2/dev_mgr/bans/127.0.0.1")
        assert r.status_code == 404 and "not banned" in r.text
    finally:
        await srv.close()
