"""Template overrides in the console, in Debian's Chromium: a tenant creates an override,
reads its diff against the plugin's template, test-renders one of its phones (secrets
masked), and cannot see, render or delete another tenant's phone or override (crafted POSTs
with a valid CSRF token)."""

from __future__ import annotations

from typing import Any

from tests.conftest import Server, register_secret
from tests.console.conftest import Browser
from tests.console.test_browser import sign_in
from tests.provisioning.test_http_pipeline import configure

TPL = "/0.2/pg_mgr/plugins/testphone/templates"


async def _phone(server: Server, tenant: str, mac: str, password: str) -> str:
    headers = {"Wazo-Tenant": tenant}
    body = {"device": {"mac": mac, "plugin": "testphone", "model": "TP100"}}
    r = await server.api.post("/0.2/dev_mgr/devices", json=body, headers=headers)
    assert r.status_code == 201, r.text
    device_id = str(r.json()["id"])
    await configure(server, device_id, password=password, tenant=tenant)
    return device_id


async def test_tenant_override_diff_and_test_render(server: Server, browser: Browser) -> None:
    b = browser
    page: Any = b.page
    sub_a = await server.prov.tenants.create("tenant-a", parent_uuid=server.master)
    sub_b = await server.prov.tenants.create("tenant-b", parent_uuid=server.master)
    dev_a = await _phone(server, sub_a.uuid, "00:11:22:aa:00:01", "Secret-A-1")
    dev_b = await _phone(server, sub_b.uuid, "00:11:22:bb:00:01", "Secret-B-1")
    token_a = await server.token_for(sub_a.uuid)
    token_b = await server.token_for(sub_b.uuid)
    async with server.client(token_b) as api_b:  # tenant B's own override, over REST
        r = await api_b.put(
            f"{TPL}/model/device.cfg",
            json={"template": {"target": "TP100", "source": "tenant-b-only {{ device.mac }}\n"}},
        )
        assert r.status_code == 204, r.text
    await sign_in(b, server, token_a)
    await page.goto(f"{server.rest_url}/console/plugins")
    await page.get_by_role("link", name="Template overrides of testphone").click()
    await page.wait_for_url("**/console/plugins/testphone/templates")
    assert await page.locator("#no-overrides").count() == 1  # B's override is not listed
    assert "tenant-b-only" not in await page.content()
    # create an override through the form
    await page.get_by_label("Template", exact=True).select_option("device.cfg")
    await page.get_by_label("Scope").select_option("tenant")
    source = (
        "# tenant A <b>file</b> for {{ device.mac }}\n"
        "{% for n, line in sip_lines | dictsort %}pw{{ n }} = {{ line.password }}\n{% endfor %}"
    )
    await page.get_by_label("Template source (Jinja2)").fill(source)
    await page.get_by_role("button", name="Save override").click()
    await page.wait_for_url("**/console/plugins/testphone/templates")
    diff = await page.locator("pre.diff").inner_text()
    assert "+# tenant A <b>file</b> for {{ device.mac }}" in diff  # escaped, shown as text
    assert "-# device file for {{ device.mac }}" in diff
    assert "--- plugin/device.cfg" in diff and "+++ override/device.cfg" in diff
    # stored through the REST API's service: the REST listing shows it for tenant A only
    async with server.client(token_a) as api_a:
        listed = (await api_a.get(TPL)).json()["templates"]
    assert [(t["scope"], t["name"]) for t in listed] == [("tenant", "device.cfg")]
    # test render of A's phone: the override applies, the line password is masked
    await page.get_by_label("Device to render (id)").fill(dev_a)
    await page.get_by_role("button", name="Render").click()
    rendered = await page.locator("#render").inner_text()
    assert "# tenant A <b>file</b> for 00:11:22:aa:00:01" in rendered
    assert "pw1 = " in rendered and "Secret-A-1" not in rendered
    await b.shot("plugin-templates", docs=True)
    # B's phone: a 404 like a missing one, even with this session's CSRF token
    csrf = await page.locator("input[name=csrf]").first.get_attribute("value")
    register_secret(csrf)
    base = f"{server.rest_url}/console/plugins/testphone/templates"
    origin = {"origin": server.rest_url}
    r = await page.request.post(
        f"{base}/render", form={"csrf": csrf, "device": dev_b}, headers=origin
    )
    assert r.status == 404 and "tenant-b-only" not in await r.text()
    assert "Secret-B-1" not in await r.text()
    # B's override cannot be deleted (A's key has no such override): 404, B's still there
    r = await page.request.post(
        f"{base}/delete",
        form={"csrf": csrf, "scope": "model", "target": "TP100", "name": "device.cfg"},
        headers=origin,
    )
    assert r.status == 404
    # nor can A aim a device override at B's phone
    r = await page.request.post(
        f"{base}/save",
        form={
            "csrf": csrf,
            "scope": "device",
            "target": dev_b,
            "name": "device.cfg",
            "source": "x",
        },
        headers=origin,
    )
    assert r.status == 400
    async with server.client(token_b) as api_b:
        kept = (await api_b.get(TPL)).json()["templates"]
    assert [(t["scope"], t["target"]) for t in kept] == [("model", "TP100")]
    # without the CSRF token: refused, nothing written
    r = await page.request.post(
        f"{base}/save",
        form={"scope": "tenant", "name": "common.cfg", "source": "x"},
        headers=origin,
    )
    assert r.status == 403
    # delete A's own override from the page
    await page.get_by_role("button", name="Delete the tenant override of device.cfg").click()
    await page.wait_for_url("**/console/plugins/testphone/templates")
    assert await page.locator("#no-overrides").count() == 1
    async with server.client(token_a) as api_a:
        assert (await api_a.get(TPL)).json()["templates"] == []
    assert b.dialogs == [] and b.errors == []
