"""``/metrics`` on a real server: phone requests over HTTP and TFTP, REST calls, then a scrape
parsed with prometheus_client's own parser; the counters move by what was asked, and nothing in
the exposition is a key, token, MAC, device id or tenant uuid."""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import make_settings, register_secret, start_server
from tests.provisioning.test_http_pipeline import UA
from tests.provisioning.tftp_client import tftp_get

KEY = "metrics-key-7301"
WRONG = "wrong-key-882211"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(client: httpx.AsyncClient) -> tuple[Samples, str]:
    """Every sample of /metrics by (name, sorted labels), and the raw text."""
    r = await client.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    out: Samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out, r.text


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


async def test_counters_move_and_expose_no_secret(tmp_path: Path, database_url: str) -> None:
    register_secret(KEY, WRONG)
    srv = await start_server(
        make_settings(
            tmp_path,
            database_url,
            **{"provisioning.tftp_enabled": True, "general.http_auth_strategy": "url_key"},
        )
    )
    try:
        tenant = (await srv.prov.tenants.create("metrics")).uuid
        await srv.prov.tenants.set_key(tenant, KEY)
        anonymous = httpx.AsyncClient(base_url=srv.rest_url, timeout=10)  # no token
        before, _ = await scrape(anonymous)

        # a new phone: created, rendered (miss), then the same file again (hit)
        for _ in range(2):
            r = await srv.phone.get(f"/{KEY}/tp/common.cfg", headers={"User-Agent": UA})
            assert r.status_code == 200
        etag = r.headers["etag"]
        # a wrong key: one refusal, a 404 with no plugin
        r = await srv.phone.get(f"/{WRONG}/001122334455.cfg", headers={"User-Agent": UA})
        assert r.status_code == 404
        # the device file over TFTP: rendered once
        data = await tftp_get("127.0.0.1", srv.running.ports["tftp"], f"{KEY}/001122334455.cfg")
        assert b"device file for 00:11:22:33:44:55" in data
        # REST: one known route (with an id in its path), one unknown path
        [device] = (
            await srv.api.get("/0.2/dev_mgr/devices", headers={"Wazo-Tenant": tenant})
        ).json()["devices"]
        r = await srv.api.get(
            f"/0.2/dev_mgr/devices/{device['id']}", headers={"Wazo-Tenant": tenant}
        )
        assert r.status_code == 200
        assert (await srv.api.get("/0.2/nothing/here")).status_code == 404
        # a conditional GET answered 304 from the hot cache: counted as sent
        r = await srv.phone.get(
            f"/{KEY}/tp/common.cfg", headers={"User-Agent": UA, "If-None-Match": etag}
        )
        assert r.status_code == 304
        # a long operation that fails (no synchronize service in the tests)
        r = await srv.api.post(
            "/0.2/dev_mgr/synchronize", json={"id": device["id"]}, headers={"Wazo-Tenant": tenant}
        )
        assert r.status_code == 201, r.text
        op = (await srv.api.get(r.headers["location"], headers={"Wazo-Tenant": tenant})).json()
        assert "fail" in op["status"]

        after, text = await scrape(anonymous)
        await anonymous.aclose()
    finally:
        await srv.close()

    req = "provisor_phone_requests_total"
    ok = {"status": "2xx", "plugin": "testphone"}
    assert delta(before, after, req, protocol="http", cache="miss", **ok) == 1
    assert delta(before, after, req, protocol="http", cache="hit", **ok) == 1
    assert delta(before, after, req, protocol="tftp", cache="miss", **ok) == 1
    assert (
        delta(before, after, req, protocol="http", status="4xx", plugin="none", cache="none") == 1
    )
    assert delta(before, after, "provisor_devices_auto_created_total") == 1
    assert delta(before, after, "provisor_phone_refusals_total") == 1
    assert delta(before, after, "provisor_tftp_transfers_total", outcome="complete") == 1
    assert delta(before, after, "provisor_tftp_bytes_total") == len(data)
    assert delta(before, after, "provisor_render_seconds_count", plugin="testphone") == 2
    rest = "provisor_rest_requests_total"
    route = "/0.2/dev_mgr/devices/{device_id}"
    assert delta(before, after, rest, route=route, method="GET", status="2xx") == 1
    assert delta(before, after, rest, route="unmatched", method="GET", status="4xx") == 1
    # the first scrape itself was counted by the time of the second
    assert delta(before, after, rest, route="/metrics", method="GET", status="2xx") == 1
    assert after[("provisor_database_up", ())] == 1
    assert (
        delta(before, after, req, protocol="http", status="3xx", cache="hit", plugin="testphone")
        == 1
    )
    assert (
        delta(before, after, "provisor_operations_total", kind="synchronize", outcome="fail") == 1
    )
    assert delta(before, after, "provisor_auth_seconds_count", backend="builtin") >= 4
    assert delta(before, after, "provisor_database_query_seconds_count") >= 1  # device created
    for secret in (
        KEY,
        WRONG,
        srv.token,
        device["id"],
        tenant,
        "001122334455",
        "00:11:22:33:44:55",
    ):
        assert secret not in text
    assert "127.0.0.1" not in text


async def test_metrics_can_be_turned_off(tmp_path: Path, database_url: str) -> None:
    srv = await start_server(
        make_settings(tmp_path, database_url, **{"observability.metrics_enabled": False})
    )
    try:
        async with httpx.AsyncClient(base_url=srv.rest_url, timeout=10) as client:
            assert (await client.get("/metrics")).status_code == 404
            assert (await client.get("/health/live")).status_code == 200
    finally:
        await srv.close()


async def test_refusals_and_a_ban_are_counted(tmp_path: Path, database_url: str) -> None:
    register_secret(WRONG)
    settings = make_settings(
        tmp_path,
        database_url,
        **{"general.http_auth_strategy": "url_key", "provisioning.ban_threshold": 3},
    )
    srv = await start_server(settings)
    try:
        anonymous = httpx.AsyncClient(base_url=srv.rest_url, timeout=10)
        before, _ = await scrape(anonymous)
        for _ in range(4):  # three refusals ban the address; the fourth meets the ban
            r = await srv.phone.get(f"/{WRONG}/001122334455.cfg", headers={"User-Agent": UA})
            assert r.status_code == 404
        after, text = await scrape(anonymous)
        await anonymous.aclose()
    finally:
        await srv.close()
    assert delta(before, after, "provisor_phone_refusals_total") == 3
    assert delta(before, after, "provisor_phone_bans_total") == 1
    req = "provisor_phone_requests_total"
    assert (
        delta(before, after, req, protocol="http", status="4xx", plugin="none", cache="none") == 4
    )
    assert WRONG not in text and "127.0.0.1" not in text
