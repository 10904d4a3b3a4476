"""The Live, Health and Tenants pages in Debian's Chromium: a live stream of real phone
requests (filtered, pausable, no script from a User-Agent), bans lifted, charts drawn from the
counters, a tenant's key rotated and its TFTP turned off; a sub-tenant kept out of Health."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from tests.conftest import Server, make_settings, register_secret, start_server
from tests.console.conftest import Browser
from tests.console.test_browser import UA, XSS_UA, sign_in
from tests.plugins_mgmt.conftest import plugin_source, publish
from tests.support.waiting import until


async def _rows(page: Any, count: int) -> list[str]:
    rows = page.locator("#live-table tbody tr")

    async def enough() -> bool:
        return bool(await rows.count() >= count)

    with contextlib.suppress(AssertionError):  # the caller's assertion says what is missing
        await until(enough, f"{count} rows")
    return list(await rows.all_inner_texts())


async def test_live_stream_filters_and_pauses(server: Server, browser: Browser) -> None:
    page: Any = browser.page
    await sign_in(browser, server, server.token)
    await page.goto(f"{server.rest_url}/console/live")
    await page.get_by_label("Failures only").check()
    await page.get_by_role("button", name="Apply").click()
    await page.wait_for_url("**/console/live?failures=1*")
    status = page.locator("#live-status")

    async def connected() -> bool:
        return bool(await status.inner_text() == "connected")

    await until(connected, "the live stream connected")
    assert (await server.phone.get("/tp/common.cfg", headers={"User-Agent": UA})).status_code == 200
    r = await server.phone.get("/no/such/file.cfg", headers={"User-Agent": XSS_UA})
    assert r.status_code == 404
    rows = await _rows(page, 1)
    assert len(rows) == 1 and "no/such/file.cfg" in rows[0] and "404" in rows[0]
    assert '<script>alert("ua")</script>' in rows[0]  # as text
    await browser.shot("live", docs=True)
    await page.get_by_role("button", name="Pause").click()
    await server.phone.get("/no/other.cfg", headers={"User-Agent": UA})
    await asyncio.sleep(0.5)
    assert len(await _rows(page, 1)) == 1  # paused: nothing added
    await page.get_by_role("button", name="Resume").click()
    await server.phone.get("/no/third.cfg", headers={"User-Agent": UA})
    assert len(await _rows(page, 2)) == 2
    assert browser.dialogs == [] and browser.errors == []
    r = await page.goto(f"{server.rest_url}/console/live?ip=not-an-ip")
    assert r.status == 400


async def test_health_bans_and_charts(server: Server, browser: Browser) -> None:
    page: Any = browser.page
    failures = server.pipeline.failures
    for _ in range(server.prov.settings.provisioning.ban_threshold):
        failures.failure("192.0.2.7")
    assert failures.is_banned("192.0.2.7")
    for _ in range(3):
        await server.phone.get("/tp/common.cfg", headers={"User-Agent": UA})
    await sign_in(browser, server, server.token)
    app_state = _rest_app(server).state
    app_state.console_sampler.sample()
    await server.phone.get("/tp/common.cfg", headers={"User-Agent": UA})
    app_state.console_sampler.sample()
    await page.goto(f"{server.rest_url}/console/health")
    checks = await page.locator("#checks").inner_text()
    assert "database\tok" in checks and "listener rest\trunning" in checks
    assert "192.0.2.7" in await page.locator("#bans").inner_text()
    assert await page.locator("svg.chart polyline").count() == 4
    await browser.shot("health", docs=True)
    await page.get_by_role("button", name="Unban 192.0.2.7").click()
    await page.wait_for_url("**/console/health")
    assert not failures.is_banned("192.0.2.7")
    assert "No address is banned" in await page.locator("main").inner_text()


def _rest_app(server: Server) -> Any:
    """The REST listener's ASGI app (the FastAPI app behind uvicorn)."""
    for srv in server.running._servers:
        app = srv.config.app
        if getattr(app, "state", None) is not None and hasattr(app.state, "console"):
            return app
    raise AssertionError("no console app")


async def test_tenants_key_rotation_tftp_and_scoping(server: Server, browser: Browser) -> None:
    page: Any = browser.page
    sub = await server.prov.tenants.create("branch-office", parent_uuid=server.master)
    await sign_in(browser, server, server.token)
    await page.goto(f"{server.rest_url}/console/tenants")
    row = page.locator("#tenants tbody tr", has_text="branch-office")
    await row.get_by_role("button", name="Rotate").click()
    shown = await page.locator("#new-key").inner_text()
    register_secret(shown)
    assert server.prov.tenants.get(sub.uuid).provisioning_key == shown
    assert shown not in await page.locator("#tenants").inner_text()  # masked in the table
    await page.goto(f"{server.rest_url}/console/tenants")
    row = page.locator("#tenants tbody tr", has_text="branch-office")
    await row.get_by_role("button", name="Turn off").click()
    await page.wait_for_url("**/console/tenants")
    assert server.prov.tenants.get(sub.uuid).tftp_enabled is False
    await browser.shot("tenants", docs=True)
    # a bad key is a 400 naming the rule
    row = page.locator("#tenants tbody tr", has_text="branch-office")
    await row.get_by_label("New key for branch-office").fill("short")
    await row.get_by_role("button", name="Set").click()
    assert "8 to 256" in await page.locator("[role=alert]").inner_text()
    # a sub-tenant: its own tenant only, no Health, no other tenant's key
    other = await server.prov.tenants.create("other", parent_uuid=server.master)
    token = await server.token_for(sub.uuid)
    await page.context.clear_cookies()
    await sign_in(browser, server, token)
    await page.goto(f"{server.rest_url}/console/tenants")
    text = await page.locator("#tenants").inner_text()
    assert "branch-office" in text and "other" not in text
    r = await page.goto(f"{server.rest_url}/console/health")
    assert r.status == 403
    csrf = await page.locator("input[name=csrf]").first.get_attribute("value")
    register_secret(csrf)
    r = await page.request.post(
        f"{server.rest_url}/console/tenants/{other.uuid}/key",
        form={"csrf": csrf, "action": "rotate"},
        headers={"origin": server.rest_url},
    )
    assert r.status == 404
    assert server.prov.tenants.get(other.uuid).provisioning_key is None


async def test_plugin_install_with_progress(
    tmp_path: Path, database_url: str, web_root: tuple[Path, str], browser: Browser
) -> None:
    www, url = web_root
    publish(plugin_source(tmp_path, "1.9.0", marker="v1"), www)
    srv = await start_server(make_settings(tmp_path, database_url, **{"general.plugin_dirs": []}))
    try:
        page: Any = browser.page
        r = await srv.api.put("/0.2/configure/plugin_server", json={"param": {"value": url}})
        assert r.status_code == 204
        await sign_in(browser, srv, srv.token)
        await page.goto(f"{srv.rest_url}/console/plugins")
        assert "No plugin installed" in await page.locator("#installed").inner_text()
        await page.get_by_role("button", name="Update the repository index").click()
        await page.wait_for_url("**/console/operations/pg.update/**")
        await _until_done(page)
        assert await page.locator("#op-state").inner_text() == "success"
        await page.get_by_role("link", name="Back to the plugins").click()
        await page.get_by_role("button", name="Install testphone").click()
        await page.wait_for_url("**/console/operations/pg.install/**")
        await _until_done(page)
        assert await page.locator("#op-state").inner_text() == "success"
        assert "download|success" in await page.locator("#op-status").inner_text()
        await browser.shot("plugin-install", docs=True)
        await page.get_by_role("link", name="Back to the plugins").click()
        assert "1.9.0" in await page.locator("#installed").inner_text()
        assert srv.prov.plugins.get("testphone") is not None
        await browser.shot("plugins", docs=True)
        # a sub-tenant sees the list but may not change it, even by a crafted POST
        sub = await srv.prov.tenants.create("sub", parent_uuid=srv.master)
        token = await srv.token_for(sub.uuid)
        await page.context.clear_cookies()
        await sign_in(browser, srv, token)
        await page.goto(f"{srv.rest_url}/console/plugins")
        assert await page.get_by_role("button", name="Uninstall testphone").count() == 0
        csrf = await page.locator("input[name=csrf]").first.get_attribute("value")
        register_secret(csrf)
        r = await page.request.post(
            f"{srv.rest_url}/console/plugins/uninstall",
            form={"csrf": csrf, "id": "testphone"},
            headers={"origin": srv.rest_url},
        )
        assert r.status == 403
        assert srv.prov.plugins.get("testphone") is not None
    finally:
        await srv.close()


async def _until_done(page: Any) -> None:
    for _ in range(300):  # the operation page reloads itself every second
        with contextlib.suppress(Exception):  # between two reloads
            if await page.locator("#op-state").inner_text() in ("success", "fail"):
                return
        await asyncio.sleep(0.1)
    raise AssertionError("the operation did not end")
