"""The console in a real browser (Debian's Chromium, headless): sign-in, the phone list at
scale, a phone's timeline after a real HTTP fetch, resync against a SIP peer, tenant scoping,
XSS through the User-Agent and device fields, keyboard and labels. Screenshots are artefacts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Server, make_settings, register_secret, start_server
from tests.console.conftest import Browser
from tests.provisioning.test_http_pipeline import configure
from tests.support.sip_peer import SipPeer

XSS_UA = 'TestPhone-TP100/1.2.3 (00:11:22:33:44:55)<script>alert("ua")</script>'
MAC = "00:11:22:33:44:55"
UA = f"TestPhone-TP100/1.2.3 ({MAC})"


async def sign_in(b: Browser, server: Server, token: str) -> None:
    page: Any = b.page
    await page.goto(f"{server.rest_url}/console")
    await page.get_by_label("API token").fill(token)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/console/phones")


async def many_devices(server: Server, count: int, tenant: str, prefix: str = "d") -> None:
    """``count`` devices written straight through the store (fast)."""
    docs = []
    for n in range(count):
        mac = f"02:00:{n >> 16 & 255:02x}:{n >> 8 & 255:02x}:{n & 255:02x}:{len(prefix):02x}"
        docs.append(
            {
                "id": f"{prefix}{n:06d}",
                "tenant_uuid": tenant,
                "mac": mac,
                "ip": f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}",
                "vendor": "Yealink" if n % 2 else "Snom",
                "model": "T46S" if n % 2 else "D785",
                "version": "66.86.0.15",
                "is_new": False,
                "configured": False,
            }
        )
    await server.prov.devices.store.insert_many(docs)


async def test_signin_phone_list_at_scale_and_keyboard(server: Server, browser: Browser) -> None:
    b = browser
    page: Any = b.page
    await many_devices(server, 3000, server.master)
    await page.goto(f"{server.rest_url}/console/phones")
    await page.wait_for_url("**/console/signin")  # not signed in: to the sign-in form
    await b.shot("signin", docs=True)
    # a wrong token is refused on the page
    await page.get_by_label("API token").fill("wrong-token")
    await page.get_by_role("button", name="Sign in").click()
    assert "unknown token" in await page.locator("[role=alert]").inner_text()
    await sign_in(b, server, server.token)
    rows = page.locator("#phones tbody tr")
    assert await rows.count() == 50
    first = await rows.nth(0).locator("td").nth(0).inner_text()
    assert first == "02:00:00:00:00:01"  # by MAC
    await b.shot("phones", docs=True)
    # next page by keyset, then a filter
    await page.get_by_role("link", name="Next page").click()
    assert await page.locator("#phones tbody tr").nth(0).locator("td").nth(0).inner_text() == (
        "02:00:00:00:32:01"
    )
    await page.goto(f"{server.rest_url}/console/phones")
    await page.get_by_label("Vendor").fill("Snom")
    await page.get_by_label("Sort by").select_option("ip")
    await page.get_by_label("Order").select_option("desc")
    await page.get_by_role("button", name="Filter").click()
    vendors = await page.locator("#phones tbody tr td:nth-child(2)").all_inner_texts()
    assert len(vendors) == 50 and set(vendors) == {"Snom"}
    ips = await page.locator("#phones tbody tr td:nth-child(8)").all_inner_texts()
    assert ips == sorted(ips, reverse=True)  # text order, highest first
    # accessibility: every visible input and select has a label; Tab reaches the main actions
    unlabeled = await page.evaluate(
        """() => [...document.querySelectorAll('input:not([type=hidden]), select')]
             .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
             .map(e => e.name)"""
    )
    assert unlabeled == []
    reached = []
    for _ in range(30):
        await page.keyboard.press("Tab")
        reached.append(
            await page.evaluate(
                "() => document.activeElement.textContent.trim() || "
                "document.activeElement.name || ''"
            )
        )
    for wanted in ("Phones", "Live", "Sign out", "Filter"):
        assert wanted in reached, reached
    assert b.errors == [] and b.dialogs == []


async def test_timeline_after_real_fetch_and_no_xss(server: Server, browser: Browser) -> None:
    b = browser
    page: Any = b.page
    # a phone boots: real HTTP requests to the phone listener, one User-Agent carrying a script
    r = await server.phone.get("/tp/common.cfg", headers={"User-Agent": UA})
    assert r.status_code == 200
    [device] = (await server.api.get("/0.2/dev_mgr/devices")).json()["devices"]
    await configure(server, device["id"], password="Line-Secret-77")
    r = await server.phone.get("/001122334455.cfg", headers={"User-Agent": XSS_UA})
    r = await server.phone.get("/tp/nothing-here.cfg", headers={"User-Agent": XSS_UA})
    assert r.status_code == 404
    # device fields an attacker could set (through a phone's User-Agent or the API)
    doc = (await server.api.get(f"/0.2/dev_mgr/devices/{device['id']}")).json()["device"]
    doc["description"] = '<img src=x onerror=alert("desc")>'
    doc["model"] = '"><script>alert("model")</script>'
    r = await server.api.put(f"/0.2/dev_mgr/devices/{device['id']}", json={"device": doc})
    assert r.status_code == 204
    await sign_in(b, server, server.token)
    assert "<script>" in await page.locator("#phones tbody").inner_text()  # shown as text
    await page.get_by_role("link", name=MAC).click()
    await page.wait_for_url(f"**/console/phones/{device['id']}")
    timeline = page.locator("#timeline tbody tr")
    text = await page.locator("#timeline").inner_text()
    # the unknown path is this phone's too: its User-Agent names its MAC (a failing request)
    assert await timeline.count() == 3, text
    assert "nothing-here.cfg\t404\tthe plugin has no such file" in text
    assert "001122334455.cfg\t200\trendered" in text
    assert '<script>alert("ua")</script>' in text  # the User-Agent, escaped and visible
    raw = await page.locator("#raw-config").inner_text()
    assert "Line-Secret-77" not in raw and "••••••" in raw
    assert f"password\t••••••\tcfg-{device['id']}" in raw  # which config set what
    assert "\tbase\n" in raw  # inherited from the parent config "base"
    files = await page.locator("pre.file").all_inner_texts()
    assert files and all("Line-Secret-77" not in f for f in files)
    await b.shot("phone", docs=True)
    # reveal: the secret appears on explicit request only
    await page.get_by_role("button", name="Reveal secrets").click()
    assert "Line-Secret-77" in await page.locator("#raw-config").inner_text()
    await page.reload()  # a reload is a GET: masked again (the POST is not repeated)
    assert b.dialogs == [] and b.errors == []
    assert not any("alert" in m for m in b.messages)


@pytest.fixture
async def peer() -> AsyncIterator[SipPeer]:
    p = await SipPeer().start()
    yield p
    await p.stop()


async def test_resync_against_a_sip_peer(
    tmp_path: Path, database_url: str, peer: SipPeer, browser: Browser
) -> None:
    srv = await start_server(
        make_settings(
            tmp_path, database_url, **{"sync.sip_port": peer.udp_port, "sync.timeout": 1.5}
        )
    )
    try:
        b = browser
        page: Any = b.page
        await srv.phone.get("/tp/common.cfg", headers={"User-Agent": UA})
        [device] = (await srv.api.get("/0.2/dev_mgr/devices")).json()["devices"]
        await configure(srv, device["id"])
        await sign_in(b, srv, srv.token)
        await page.goto(f"{srv.rest_url}/console/phones/{device['id']}")
        await page.get_by_role("button", name="Resync").click()
        await page.wait_for_url("**/console/operations/synchronize/**")
        state = page.locator("#op-state")
        for _ in range(100):  # the page reloads itself each second until the end
            if await state.inner_text() in ("success", "fail"):
                break
            await asyncio.sleep(0.1)
        assert await state.inner_text() == "success"
        assert peer.events() == ["check-sync"]
        await b.shot("resync", docs=True)
        # the phone refuses: the page says why
        peer.code, peer.reason = 486, "Busy Here"
        await page.goto(f"{srv.rest_url}/console/phones/{device['id']}")
        await page.get_by_role("button", name="Resync").click()
        await page.wait_for_url("**/console/operations/synchronize/**")
        for _ in range(100):
            if await page.locator("#op-state").inner_text() in ("success", "fail"):
                break
            await asyncio.sleep(0.1)
        assert await page.locator("#op-state").inner_text() == "fail"
        assert "486" in await page.locator("#op-reason").inner_text()
    finally:
        await srv.close()


async def test_sub_tenant_sees_and_acts_on_its_subtree_only(
    server: Server, browser: Browser
) -> None:
    b = browser
    page: Any = b.page
    sub_a = await server.prov.tenants.create("tenant-a", parent_uuid=server.master)
    sub_b = await server.prov.tenants.create("tenant-b", parent_uuid=server.master)
    await many_devices(server, 3, sub_a.uuid, prefix="a")
    await many_devices(server, 3, sub_b.uuid, prefix="bb")
    token_a = await server.token_for(sub_a.uuid)
    await sign_in(b, server, token_a)
    ids = await page.locator("#phones tbody tr td:first-child a").evaluate_all(
        "links => links.map(a => a.getAttribute('href'))"
    )
    assert sorted(ids) == [f"/console/phones/a{n:06d}" for n in range(3)]
    # crafted URLs: another tenant's phone is a 404, like a missing one
    r = await page.goto(f"{server.rest_url}/console/phones/bb000001")
    assert r.status == 404
    r = await page.goto(f"{server.rest_url}/console/phones?tenant={sub_b.uuid}")
    assert r.status == 400
    # a crafted POST with this session's valid CSRF token still cannot touch it
    await page.goto(f"{server.rest_url}/console/phones/a000001")
    csrf = await page.locator("input[name=csrf]").first.get_attribute("value")
    for action in ("delete", "rotate-token", "resync", "reconfigure", "reveal"):
        r = await page.request.post(
            f"{server.rest_url}/console/phones/bb000001/{action}",
            form={"csrf": csrf, "confirm": "yes"},
            headers={"origin": server.rest_url},
        )
        assert r.status in (400, 404), (action, r.status)
    assert await server.prov.devices.store.get("bb000001") is not None
    # and its own phone: deleted through the page
    await page.get_by_label("confirm").check()
    await page.get_by_role("button", name="Delete").click()
    await page.wait_for_url("**/console/phones")
    assert await server.prov.devices.store.get("a000001") is None
    # a POST without the CSRF token, from the browser: refused
    r = await page.request.post(
        f"{server.rest_url}/console/phones/a000002/delete",
        form={"confirm": "yes"},
        headers={"origin": server.rest_url},
    )
    assert r.status == 403
    assert await server.prov.devices.store.get("a000002") is not None
    register_secret(csrf)
