"""The phone access log (``provisor.access``): one line per request with device, tenant, file,
status, bytes, duration and cache outcome, no key in it, off by default, and rate-limited."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from pathlib import Path

import pytest

from tests.conftest import make_settings, register_secret, start_server
from tests.provisioning.test_http_pipeline import UA

KEY = "access-key-5521"
WRONG = "wrong-key-66aa77"


def access_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "provisor.access"]


async def test_one_line_per_request_without_a_key(
    tmp_path: Path, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    register_secret(KEY, WRONG)
    caplog.set_level(logging.INFO, logger="provisor.access")
    srv = await start_server(
        make_settings(
            tmp_path,
            database_url,
            **{
                "general.http_auth_strategy": "url_key",
                "observability.access_log": True,
                "observability.access_log_per_second": 0,
            },
        )
    )
    try:
        tenant = (await srv.prov.tenants.create("access")).uuid
        await srv.prov.tenants.set_key(tenant, KEY)
        sizes = []
        for _ in range(2):
            r = await srv.phone.get(f"/{KEY}/001122334455.cfg", headers={"User-Agent": UA})
            assert r.status_code == 200
            sizes.append(len(r.content))
        r = await srv.phone.get(f"/{WRONG}/001122334455.cfg", headers={"User-Agent": UA})
        assert r.status_code == 404
        [device] = (
            await srv.api.get("/0.2/dev_mgr/devices", headers={"Wazo-Tenant": tenant})
        ).json()["devices"]
    finally:
        await srv.close()
    lines = access_lines(caplog)
    assert len(lines) == 3, lines
    first, second, refused = lines
    common = f"device={device['id']} tenant={tenant} file=device.cfg"  # the plugin file spec
    assert first.startswith("http 127.0.0.1 001122334455.cfg status=200 ")
    assert f"bytes={sizes[0]} " in first and "cache=miss" in first and common in first
    assert f"bytes={sizes[1]} " in second and "cache=hit" in second and common in second
    # the wrong key never shows: the path is redacted, the request identified nothing
    assert refused.startswith("http 127.0.0.1 *") and "status=404" in refused
    assert "device=- tenant=- file=-" in refused and "cache=none" in refused
    for line in lines:
        assert KEY not in line and WRONG not in line
        assert " ms=" in line


async def test_off_by_default(
    tmp_path: Path, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="provisor.access")
    srv = await start_server(make_settings(tmp_path, database_url))
    try:
        r = await srv.phone.get("/001122334455.cfg", headers={"User-Agent": UA})
        assert r.status_code == 200
    finally:
        await srv.close()
    assert access_lines(caplog) == []


async def test_a_flood_is_cut_to_the_rate_and_the_cut_is_said(
    tmp_path: Path, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="provisor.access")
    srv = await start_server(
        make_settings(
            tmp_path,
            database_url,
            **{"observability.access_log": True, "observability.access_log_per_second": 2},
        )
    )
    requests = 30
    try:
        started = time.monotonic()
        for _ in range(requests):
            await srv.phone.get("/001122334455.cfg", headers={"User-Agent": UA})
        seconds = int(time.monotonic()) - int(started) + 1  # whole seconds the burst touched
        burst = len(access_lines(caplog))
        await asyncio.sleep(1.1)  # a new second: the next line says how many were left out
        await srv.phone.get("/001122334455.cfg", headers={"User-Agent": UA})
    finally:
        await srv.close()
    assert 1 <= burst <= 2 * seconds
    # every request is either a line or counted in the "left out" note of a later line (a burst
    # spanning two seconds says its first second's cut on the second's first line)
    lines = access_lines(caplog)
    left_out = sum(
        int(m)
        for m in re.findall(r"\(after (\d+) lines left out over the rate\)", "\n".join(lines))
    )
    assert len(lines) + left_out == requests + 1, lines
    assert left_out > 0  # 30 requests in at most a few seconds at 2 lines a second
