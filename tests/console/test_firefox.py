"""The console in Debian's Firefox ESR (headless, driven by Selenium and geckodriver): sign-in by
keyboard, the phone list with search and filters, a phone's timeline after real HTTP fetches,
the Live page fed by server-sent events, a resync through a CSRF-checked form, tenant scoping,
and a script in a User-Agent shown as text (no script runs; Firefox's CSP refusals, which
these tests read over WebDriver BiDi, are proved to be seen). One browser per module; each
test signs in afresh. Screenshots go beside Chromium's, prefixed ``firefox-``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Server, make_settings, register_secret, start_server
from tests.console._firefox import Firefox, Seen, browser_version, launch
from tests.console.test_accessibility import _AUDIT, _done, seed_every_page
from tests.console.test_browser import MAC, UA, many_devices
from tests.provisioning.test_http_pipeline import configure
from tests.support.sip_peer import SipPeer
from tests.support.waiting import until

#: A User-Agent a hostile phone (or anyone reaching the phone port) sends: were it ever parsed
#: as HTML, the script or the image's handler would set the marker.
PWN_UA = (
    f"TestPhone-TP100/1.2.3 ({MAC})<script>window.__pwned='script'</script>"
    "<img src=x onerror=\"window.__pwned='img'\">"
)
PWN_TEXT = "<script>window.__pwned='script'</script>"
PWN_MODEL = '"><svg onload="window.__pwned=\'model\'"></svg>'


@pytest.fixture(scope="module")
def firefox_window(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Seen]]:
    """One headless Firefox for the whole module (starting one costs seconds)."""
    log = tmp_path_factory.mktemp("geckodriver") / "geckodriver.log"
    with launch(log) as (driver, seen):
        yield driver, seen


@pytest.fixture
async def firefox(firefox_window: tuple[Any, Seen]) -> AsyncIterator[Firefox]:
    """The module's Firefox, with what earlier tests' pages said forgotten."""
    driver, seen = firefox_window
    seen.clear()
    ff = Firefox(driver, seen)
    try:
        yield ff
    finally:
        # leave the page (closes a live stream); a failed test's leftover (an open alert,
        # which WebDriver reports once) must not fail the next test's setup too
        with contextlib.suppress(Exception):
            await ff.call(lambda: driver.get("about:blank"))


async def sign_in(ff: Firefox, server: Server, token: str) -> None:
    """Sign in through the form, as a new visitor (earlier tests' session cookie dropped)."""
    await ff.goto(f"{server.rest_url}/console/signin")
    await ff.clear_cookies()
    await ff.goto(f"{server.rest_url}/console/signin")
    await ff.fill("API token", token)
    await ff.click("Sign in")
    await ff.wait_url("/console/phones", path=True)


async def no_script_ran(ff: Firefox) -> None:
    """Nothing injected ran: no marker, no alert (WebDriver would raise), no script error or
    CSP refusal (Firefox reports each as an error, read over BiDi)."""
    assert await ff.js("return window.__pwned === undefined") is True
    assert ff.seen.errors == [], ff.seen.errors
    assert not any(m.startswith("error") for m in ff.seen.console), ff.seen.console


async def test_firefox_signin_by_keyboard_and_phone_list(server: Server, firefox: Firefox) -> None:
    ff = firefox
    assert int(browser_version(ff.driver).split(".")[0]) >= 115  # an ESR still supported
    await many_devices(server, 120, server.master)
    await ff.goto(f"{server.rest_url}/console/signin")
    await ff.clear_cookies()
    await ff.goto(f"{server.rest_url}/console/phones")
    await ff.wait_url("/console/signin")  # not signed in: to the sign-in form
    await ff.shot("signin")
    # a wrong token is refused on the page
    await ff.fill("API token", "wrong-token")
    await ff.click("Sign in")
    assert "unknown token" in await ff.text("[role=alert]")
    # the keyboard alone: from the page's first stop (the skip link), Tab reaches the token
    # field, then the submit button; the token is typed and Enter submits
    await ff.js("document.querySelector('a.skip').focus()")
    assert await ff.js("return document.activeElement.textContent") == "Skip to content"
    reached: list[str] = []
    for _ in range(6):
        await ff.press("\ue004")  # Tab
        here = await ff.js(
            "const e = document.activeElement; return e.id || e.textContent.trim() || e.tagName"
        )
        reached.append(str(here))
        if here == "token":
            await ff.press(server.token)
        if here == "Sign in":
            break
    assert "token" in reached and reached[-1] == "Sign in", reached
    assert reached.index("token") < reached.index("Sign in")
    await ff.press("\ue007")  # Enter on the focused submit button
    await ff.wait_url("/console/phones")
    # the list: 50 rows a page, by MAC; the next page by keyset
    assert await ff.count("#phones tbody tr") == 50
    assert (await ff.texts("#phones tbody tr td:first-child"))[0] == "02:00:00:00:00:01"
    await ff.shot("phones")
    await ff.click("Next page")
    await ff.wait_url("after=")
    assert (await ff.texts("#phones tbody tr td:first-child"))[0] == "02:00:00:00:32:01"
    # search by id prefix
    await ff.goto(f"{server.rest_url}/console/phones")
    await ff.fill("Search (MAC, IP or id prefix)", "d00010")
    await ff.click("Filter")
    await ff.wait_url("q=d00010")
    ids = await ff.js(
        "return [...document.querySelectorAll('#phones tbody tr td:first-child a')]"
        ".map(a => a.getAttribute('href'))"
    )
    assert sorted(ids) == [f"/console/phones/d{n:06d}" for n in range(100, 110)]
    # filter and sort
    await ff.goto(f"{server.rest_url}/console/phones")
    await ff.fill("Vendor", "Snom")
    await ff.select("Sort by", "ip")
    await ff.select("Order", "desc")
    await ff.click("Filter")
    await ff.wait_url("vendor=Snom")
    vendors = await ff.texts("#phones tbody tr td:nth-child(2)")
    assert len(vendors) == 50 and set(vendors) == {"Snom"}
    ips = await ff.texts("#phones tbody tr td:nth-child(8)")
    assert ips == sorted(ips, reverse=True)
    await no_script_ran(ff)


async def test_firefox_timeline_and_user_agent_xss(server: Server, firefox: Firefox) -> None:
    ff = firefox
    # a phone boots: real HTTP requests to the phone listener, then a hostile User-Agent
    r = await server.phone.get("/tp/common.cfg", headers={"User-Agent": UA})
    assert r.status_code == 200
    [device] = (await server.api.get("/0.2/dev_mgr/devices")).json()["devices"]
    await configure(server, device["id"], password="Line-Secret-55")
    r = await server.phone.get("/001122334455.cfg", headers={"User-Agent": PWN_UA})
    assert r.status_code == 200
    r = await server.phone.get("/tp/nothing-here.cfg", headers={"User-Agent": PWN_UA})
    assert r.status_code == 404
    # a device field set through the API (the list shows the model)
    doc = (await server.api.get(f"/0.2/dev_mgr/devices/{device['id']}")).json()["device"]
    doc["model"] = PWN_MODEL
    r = await server.api.put(f"/0.2/dev_mgr/devices/{device['id']}", json={"device": doc})
    assert r.status_code == 204
    await sign_in(ff, server, server.token)
    assert PWN_MODEL in await ff.text("#phones tbody")  # the list shows the payload as text
    await ff.click(MAC)
    await ff.wait_url(f"/console/phones/{device['id']}")
    text = await ff.text("#timeline")
    assert await ff.count("#timeline tbody tr") == 3, text
    assert "nothing-here.cfg\t404\tthe plugin has no such file" in text
    assert "001122334455.cfg\t200\trendered" in text
    assert PWN_TEXT in text and "onerror" in text  # escaped, visible
    assert await ff.count("#timeline img, #phones img") == 0  # no element made of it
    raw = await ff.text("#raw-config")
    assert "Line-Secret-55" not in raw and "••••••" in raw
    await ff.shot("phone")
    await no_script_ran(ff)
    # the check above can fail: an inline script added to this very page is refused by
    # Firefox's CSP, and the refusal reaches the test as an error
    await ff.js(
        "const s = document.createElement('script');"
        "s.textContent = \"window.__pwned = 'inline'\"; document.body.append(s);"
    )
    assert await ff.js("return window.__pwned === undefined") is True

    def refused() -> bool:
        return any("Content-Security-Policy" in e and "inline" in e for e in ff.seen.errors)

    await until(refused, "Firefox reporting the CSP refusal")


async def test_firefox_live_page_gets_server_sent_events(server: Server, firefox: Firefox) -> None:
    ff = firefox
    await sign_in(ff, server, server.token)
    await ff.goto(f"{server.rest_url}/console/live")

    async def connected() -> bool:
        return await ff.text("#live-status") == "connected"

    await until(connected, "the EventSource connected in Firefox")
    r = await server.phone.get("/no/such/file.cfg", headers={"User-Agent": PWN_UA})
    assert r.status_code == 404

    async def rows(count: int) -> list[str]:
        async def enough() -> bool:
            return await ff.count("#live-table tbody tr") >= count

        await until(enough, f"{count} live rows")
        return await ff.texts("#live-table tbody tr")

    [row] = await rows(1)
    assert "no/such/file.cfg" in row and "404" in row and PWN_TEXT in row
    await ff.shot("live")
    # Pause and Resume (what a paused table drops is Chromium's test): the stream goes on
    await ff.click("Pause")
    assert await ff.text("#live-status") == "paused"
    assert await ff.js("return document.getElementById('live-pause').ariaPressed") == "true"
    await ff.click("Resume")
    await server.phone.get("/no/second.cfg", headers={"User-Agent": UA})
    shown = await rows(2)
    assert "no/second.cfg" in shown[0]  # newest first
    await no_script_ran(ff)


@pytest.fixture
async def peer() -> AsyncIterator[SipPeer]:
    p = await SipPeer().start()
    yield p
    await p.stop()


async def test_firefox_resync_through_a_csrf_checked_form(
    tmp_path: Path, database_url: str, peer: SipPeer, firefox: Firefox
) -> None:
    ff = firefox
    srv = await start_server(
        make_settings(
            tmp_path, database_url, **{"sync.sip_port": peer.udp_port, "sync.timeout": 1.5}
        )
    )
    try:
        await srv.phone.get("/tp/common.cfg", headers={"User-Agent": UA})
        [device] = (await srv.api.get("/0.2/dev_mgr/devices")).json()["devices"]
        await configure(srv, device["id"])
        await sign_in(ff, srv, srv.token)
        phone = f"{srv.rest_url}/console/phones/{device['id']}"
        # a POST without the session's CSRF token, from the signed-in page: refused
        await ff.goto(phone)
        assert await ff.status_of(f"{phone}/resync", {}) == 403
        assert peer.events() == []
        # the form carries it: the resync runs, and the operation page (a meta refresh each
        # second) follows it to the end in Firefox too
        await ff.click("Resync")
        await ff.wait_url("/console/operations/synchronize/")

        async def done() -> bool:
            try:
                return await ff.text("#op-state") in ("success", "fail")
            except Exception:  # between two reloads
                return False

        await until(done, "the resync's end")
        assert await ff.text("#op-state") == "success"
        assert peer.events() == ["check-sync"]
        await ff.shot("resync")
        await no_script_ran(ff)
        csrf = await ff.js("return document.querySelector('input[name=csrf]').value")
        register_secret(csrf)
    finally:
        await srv.close()


async def test_firefox_sub_tenant_sees_its_own_phones_only(
    server: Server, firefox: Firefox
) -> None:
    ff = firefox
    sub_a = await server.prov.tenants.create("tenant-a", parent_uuid=server.master)
    sub_b = await server.prov.tenants.create("tenant-b", parent_uuid=server.master)
    await many_devices(server, 3, sub_a.uuid, prefix="a")
    await many_devices(server, 3, sub_b.uuid, prefix="bb")
    token_a = await server.token_for(sub_a.uuid)
    await sign_in(ff, server, token_a)
    ids = await ff.js(
        "return [...document.querySelectorAll('#phones tbody tr td:first-child a')]"
        ".map(a => a.getAttribute('href'))"
    )
    assert sorted(ids) == [f"/console/phones/a{n:06d}" for n in range(3)]
    await ff.shot("phones-sub-tenant")
    # another tenant's phone by crafted URL: the 404 page, like a missing one
    await ff.goto(f"{server.rest_url}/console/phones/bb000001")
    assert await ff.text("h1") == "Cannot do that"
    assert await ff.status_of(f"{server.rest_url}/console/phones/bb000001") == 404
    assert await ff.status_of(f"{server.rest_url}/console/phones?tenant={sub_b.uuid}") == 400
    # a crafted POST with this session's valid CSRF token still cannot delete it
    await ff.goto(f"{server.rest_url}/console/phones/a000001")
    csrf = str(await ff.js("return document.querySelector('input[name=csrf]').value"))
    register_secret(csrf)
    r = await ff.status_of(
        f"{server.rest_url}/console/phones/bb000001/delete", {"csrf": csrf, "confirm": "yes"}
    )
    assert r == 404
    assert await server.prov.devices.store.get("bb000001") is not None
    # its own phone: deleted through the page (confirm ticked, the form's CSRF token)
    await ff.check("confirm")
    await ff.click("Delete")
    await ff.wait_url("/console/phones", path=True)

    async def deleted() -> bool:
        return await server.prov.devices.store.get("a000001") is None

    await until(deleted, "a000001 deleted")
    await no_script_ran(ff)


async def audit(ff: Firefox, url: str, name: str, actions: tuple[str, ...]) -> None:
    """One page in Firefox: served (200), one h1, every field labelled, the main actions
    present, and the Tab key alone reaching every link, button and field in document order;
    then its screenshot."""
    assert await ff.status_of(url) == 200, url
    await ff.goto(url)
    found = await ff.js(f"return ({_AUDIT})()")
    assert found["lang"] == "en" and found["h1"] == 1, (url, found)
    assert found["unlabeled"] == [] and found["nameless"] == [], (url, found)
    assert found["positive"] == 0, url
    for action in actions:
        assert any(action in n for n in found["names"]), (url, action, found["names"])
    reached: list[int] = []
    await ff.js("document.activeElement && document.activeElement.blur()")
    for _ in range(found["count"] + 3):
        await ff.press("\ue004")  # Tab
        mark = await ff.js(
            "return document.activeElement && document.activeElement.getAttribute('data-a11y')"
        )
        if mark is not None and (not reached or int(mark) != reached[-1]):
            reached.append(int(mark))
    missing = sorted(set(range(found["count"])) - set(reached))
    assert missing == [], (url, [found["names"][i] for i in missing])
    cycle = reached[: found["count"]]
    start = cycle.index(min(cycle))
    assert cycle[start:] + cycle[:start] == sorted(cycle), (url, cycle)
    await ff.shot(name)


async def test_firefox_every_page_renders_and_is_reachable_by_keyboard(
    server: Server, firefox: Firefox
) -> None:
    ff = firefox
    device = await seed_every_page(server)
    await sign_in(ff, server, server.token)
    op = server.prov.operations.start("pg.update", _done, label="update", tenant_uuid=server.master)
    base = f"{server.rest_url}/console"
    pages = (
        ("/phones", "phones-one", ("Phones", "Filter", "Sign out")),
        (f"/phones/{device['id']}", "phone-actions", ("Resync", "Rotate device token", "Delete")),
        ("/live", "live-empty", ("Apply", "Pause")),
        ("/plugins", "plugins", ("Template overrides of testphone",)),
        ("/plugins/testphone/firmware", "firmware", ("Back to the plugins",)),
        ("/plugins/testphone/templates", "plugin-templates", ("Save override", "Render")),
        ("/tenants", "tenants", ("Rotate the key of branch-office",)),
        ("/health", "health", ("Unban 192.0.2.9",)),
        (f"/operations/pg.update/{op.id}", "operation", ("Phones",)),
    )
    for path, name, actions in pages:
        await audit(ff, base + path, name, actions)
    await no_script_ran(ff)
