"""Devices and configs one tenant may create (``rest_api.tenant_max_*``), and a config's size."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import make_settings, start_server


def _config(config_id: str, **raw: object) -> dict[str, object]:
    return {"config": {"id": config_id, "parent_ids": [], "raw_config": dict(raw)}}


async def test_a_tenant_past_its_limits_is_refused_and_others_are_not(
    tmp_path: Path, database_url: str
) -> None:
    overrides = {"rest_api.tenant_max_devices": 3, "rest_api.tenant_max_configs": 2}
    srv = await start_server(make_settings(tmp_path, database_url, **overrides))
    try:
        greedy = {"X-Auth-Token": await srv.token_for((await srv.prov.tenants.create("g")).uuid)}
        other = {"X-Auth-Token": await srv.token_for((await srv.prov.tenants.create("o")).uuid)}
        for n in range(3):
            body = {"device": {"id": f"g{n}"}}
            r = await srv.api.post("/0.2/dev_mgr/devices", json=body, headers=greedy)
            assert r.status_code == 201, r.text
        r = await srv.api.post(
            "/0.2/dev_mgr/devices", json={"device": {"id": "g3"}}, headers=greedy
        )
        assert r.status_code == 403
        assert "holds 3 devices" in r.text and "rest_api.tenant_max_devices (3)" in r.text
        assert (await srv.api.get("/0.2/dev_mgr/devices/g3", headers=greedy)).status_code == 404
        # another tenant is not held to the first one's count
        r = await srv.api.post("/0.2/dev_mgr/devices", json={"device": {"id": "o0"}}, headers=other)
        assert r.status_code == 201
        # a deletion makes room at once (near the limit every creation counts again)
        assert (await srv.api.delete("/0.2/dev_mgr/devices/g0", headers=greedy)).status_code == 204
        r = await srv.api.post(
            "/0.2/dev_mgr/devices", json={"device": {"id": "g3"}}, headers=greedy
        )
        assert r.status_code == 201

        for n in range(2):
            r = await srv.api.post("/0.2/cfg_mgr/configs", json=_config(f"c{n}"), headers=greedy)
            assert r.status_code == 201, r.text
        r = await srv.api.post("/0.2/cfg_mgr/configs", json=_config("c2"), headers=greedy)
        assert r.status_code == 403 and "rest_api.tenant_max_configs (2)" in r.text
        r = await srv.api.post("/0.2/cfg_mgr/configs", json=_config("o-c0"), headers=other)
        assert r.status_code == 201
    finally:
        await srv.close()


async def test_a_config_over_one_mebibyte_is_400(tmp_path: Path, database_url: str) -> None:
    srv = await start_server(make_settings(tmp_path, database_url))
    try:
        big = _config("big", X_blob="x" * (1024 * 1024))
        r = await srv.api.post("/0.2/cfg_mgr/configs", json=big)
        assert r.status_code == 400 and "config: larger than 1048576 bytes" in r.text
        assert (await srv.api.get("/0.2/cfg_mgr/configs/big")).status_code == 404
        fits = _config("fits", X_blob="x" * 500_000)
        assert (await srv.api.post("/0.2/cfg_mgr/configs", json=fits)).status_code == 201
    finally:
        await srv.close()
