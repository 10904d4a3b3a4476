"""REST template overrides for wazo plugins: per tenant, model and device, as for native ones.

A tenant's override applies to its own devices' files only (the worker gets the device's
tenant's overrides for that device's ``configure``), renders in the budgeted sandbox, and a
hostile or runaway override fails its own file while the other tenants' phones keep being
served by the same worker. Common files (shared by every tenant) take no REST override.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.conftest import Server
from tests.wazo.conftest import publish_wazo, wazo_source
from tests.wazo.test_wazo_plugins import install, use_repository, wazo_server

PLUGIN = "wazo-testphone"
TPL = f"/0.2/pg_mgr/plugins/{PLUGIN}/templates"


def _phone(n: int) -> tuple[str, str, str]:
    mac = f"00:11:22:aa:dd:{n:02x}"
    return mac, f"TestWazo TW200 1.2.3 {mac}", f"twz-{mac.replace(':', '')}.cfg"


async def _tenant_phone(srv: Server, name: str, n: int) -> tuple[httpx.AsyncClient, str, str]:
    """A sub-tenant with its token's client, one config and one TW200 device of the plugin."""
    tenant = (await srv.prov.tenants.create(name, parent_uuid=srv.master)).uuid
    client = srv.client(await srv.token_for(tenant))
    mac, ua, filename = _phone(n)
    raw: dict[str, Any] = {
        "sip_lines": {"1": {"username": f"user-{name}", "password": f"Secret-{name}"}}
    }
    r = await client.post(
        "/0.2/cfg_mgr/configs",
        json={"config": {"id": f"cfg-{name}", "parent_ids": ["base"], "raw_config": raw}},
    )
    assert r.status_code == 201, r.text
    device = {
        "id": f"dev-{name}",
        "mac": mac,
        "vendor": "TestWazo",
        "model": "TW200",
        "version": "1.2.3",
        "plugin": PLUGIN,
        "config": f"cfg-{name}",
    }
    r = await client.post("/0.2/dev_mgr/devices", json={"device": device})
    assert r.status_code == 201, r.text
    return client, ua, filename


async def _fetch(srv: Server, ua: str, filename: str) -> httpx.Response:
    return await srv.phone.get(f"/{filename}", headers={"User-Agent": ua})


async def test_tenant_overrides_apply_to_their_own_devices_only(
    tmp_path: Path, database_url: str, web_root: tuple[Path, str]
) -> None:
    www, url = web_root
    publish_wazo(www, wazo_source(tmp_path))
    srv = await wazo_server(
        tmp_path, database_url, **{"wazo.worker_timeout": 20.0, "render.cpu_seconds": 0.3}
    )
    try:
        await use_repository(srv, url)
        assert (await install(srv, PLUGIN))["status"].startswith("install|success")
        alpha, ua_a, file_a = await _tenant_phone(srv, "alpha", 1)
        beta, ua_b, file_b = await _tenant_phone(srv, "beta", 2)
        r = await _fetch(srv, ua_a, file_a)
        assert r.status_code == 200 and "line1.user = user-alpha" in r.text, r.text
        original_b = await _fetch(srv, ua_b, file_b)
        assert original_b.status_code == 200 and "model_specific = TW200" in original_b.text

        # alpha overrides the model template for its tenant: its device only
        source = "alpha {{ XX_lines[0][1].username }} {{ model_specific | default('') }}\n"
        r = await alpha.put(f"{TPL}/tenant/TW200.tpl", json={"template": {"source": source}})
        assert r.status_code == 204, r.text
        r = await _fetch(srv, ua_a, file_a)
        assert r.status_code == 200 and r.text.startswith("alpha user-alpha"), r.text
        assert (await _fetch(srv, ua_b, file_b)).content == original_b.content
        listed = (await alpha.get(TPL)).json()["templates"]
        assert [t["name"] for t in listed] == ["TW200.tpl"]
        assert (await beta.get(TPL)).json()["templates"] == []

        # beta: a device-scope override of base.tpl (TW200.tpl extends nothing of it here)
        # and a model override for another model leave its TW200 file as it was, then a
        # device override of TW200.tpl for its own device applies
        body = {"template": {"target": "TW100", "source": "beta TW100\n"}}
        assert (await beta.put(f"{TPL}/model/TW200.tpl", json=body)).status_code == 204
        assert (await _fetch(srv, ua_b, file_b)).content == original_b.content
        body = {"template": {"target": "dev-beta", "source": "beta device {{ ip }}\n"}}
        assert (await beta.put(f"{TPL}/device/TW200.tpl", json=body)).status_code == 204
        r = await _fetch(srv, ua_b, file_b)
        assert r.text.startswith("beta device "), r.text
        assert (await _fetch(srv, ua_a, file_a)).text.startswith("alpha user-alpha")
        # beta cannot aim a device override at alpha's device
        body = {"template": {"target": "dev-alpha", "source": "stolen\n"}}
        assert (await beta.put(f"{TPL}/device/TW200.tpl", json=body)).status_code == 400

        # the common file, shared by every tenant's phones, takes no tenant override
        body = {"template": {"source": "alpha common\n"}}
        assert (await alpha.put(f"{TPL}/tenant/common.tpl", json=body)).status_code == 204
        common = await srv.phone.get("/twz-common.cfg", headers={"User-Agent": ua_b})
        assert common.status_code == 200 and b"alpha common" not in common.content

        # a hostile override renders in the sandbox: alpha's file fails, beta's is served
        plugin = srv.prov.plugins.get(PLUGIN)
        assert plugin is not None
        pid = plugin.worker.pid  # type: ignore[attr-defined]
        hostile = "{{ ''.__class__.__mro__[1].__subclasses__() }}\n"
        body = {"template": {"source": hostile}}
        assert (await alpha.put(f"{TPL}/tenant/TW200.tpl", json=body)).status_code == 204
        r = await _fetch(srv, ua_a, file_a)
        assert r.status_code in (404, 500) and b"subclasses" not in r.content
        assert "unsafe" in srv.pipeline.trace.query(limit=1)[0]["reason"]
        assert (await _fetch(srv, ua_b, file_b)).text.startswith("beta device ")

        # a runaway override is stopped by the render budget, not by killing the worker
        runaway = "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}"
        body = {"template": {"source": runaway}}
        assert (await alpha.put(f"{TPL}/tenant/TW200.tpl", json=body)).status_code == 204
        r = await _fetch(srv, ua_a, file_a)
        assert r.status_code in (404, 500)
        assert "CPU budget" in srv.pipeline.trace.query(limit=1)[0]["reason"]
        assert plugin.worker.pid == pid  # type: ignore[attr-defined]
        assert (await _fetch(srv, ua_b, file_b)).text.startswith("beta device ")

        # deleting alpha's override gives its device the plugin's own template again
        assert (await alpha.delete(f"{TPL}/tenant/TW200.tpl")).status_code == 204
        r = await _fetch(srv, ua_a, file_a)
        assert r.status_code == 200 and "model_specific = TW200" in r.text
        assert "line1.user = user-alpha" in r.text
        await alpha.aclose()
        await beta.aclose()
    finally:
        await srv.close()
