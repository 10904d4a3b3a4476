"""Accessibility of every console page, in Debian's Chromium: the document has a language and
one h1; every visible form field has a label; every button and link has a name, and buttons
are told apart by it; no positive tabindex; and the Tab key alone reaches every link, button
and field of the page (the main actions included), in document order."""

from __future__ import annotations

from typing import Any

from tests.conftest import Server
from tests.console.conftest import Browser
from tests.console.test_browser import UA, sign_in
from tests.console.test_overrides import TPL
from tests.provisioning.test_http_pipeline import configure

# Marks each focusable element, then reports what a page offers (evaluated in the page).
_AUDIT = """() => {
  const visible = e => !!(e.offsetWidth || e.offsetHeight || e.getClientRects().length);
  const sel = 'a[href], button, input:not([type=hidden]), select, textarea, [tabindex]';
  const focusable = [...document.querySelectorAll(sel)]
    .filter(e => visible(e) && !e.disabled && e.tabIndex >= 0);
  focusable.forEach((e, i) => e.setAttribute('data-a11y', String(i)));
  const name = e => (e.getAttribute('aria-label') || e.textContent || '').trim();
  const fields = [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
    .filter(visible);
  const buttons = [...document.querySelectorAll('button')].filter(visible).map(name);
  return {
    lang: document.documentElement.lang,
    h1: document.querySelectorAll('h1').length,
    unlabeled: fields.filter(e => !(e.labels && e.labels.length)
      && !e.getAttribute('aria-label') && !e.getAttribute('aria-labelledby')).map(e => e.id || e.name),
    nameless: focusable.filter(e => (e.tagName === 'A' || e.tagName === 'BUTTON') && !name(e))
      .map(e => e.outerHTML.slice(0, 80)),
    positive: [...document.querySelectorAll('[tabindex]')].filter(e => e.tabIndex > 0).length,
    buttons,
    count: focusable.length,
    names: focusable.map(name),
  };
}"""


async def audit(b: Browser, url: str, actions: tuple[str, ...]) -> None:
    """Check one page; ``actions`` are names of its main actions, which Tab must reach."""
    page: Any = b.page
    response = await page.goto(url)
    assert response.status == 200, url
    found = await page.evaluate(_AUDIT)
    assert found["lang"] == "en" and found["h1"] == 1, (url, found)
    assert found["unlabeled"] == [], (url, found["unlabeled"])
    assert found["nameless"] == [], (url, found["nameless"])
    assert found["positive"] == 0, url
    dupes = {n for n in found["buttons"] if found["buttons"].count(n) > 1}
    assert not dupes, (url, dupes)  # "Delete" twice: which one?
    for action in actions:
        assert any(action in n for n in found["names"]), (url, action, found["names"])
    reached: list[int] = []
    await page.locator("body").focus()
    for _ in range(found["count"] + 3):
        await page.keyboard.press("Tab")
        mark = await page.evaluate(
            "() => document.activeElement && document.activeElement.getAttribute('data-a11y')"
        )
        if mark is not None and (not reached or int(mark) != reached[-1]):
            reached.append(int(mark))
    missing = sorted(set(range(found["count"])) - set(reached))
    assert missing == [], (url, [found["names"][i] for i in missing])
    # in document order (from wherever focus starts: an autofocused field, then around)
    cycle = reached[: found["count"]]
    start = cycle.index(min(cycle))
    assert cycle[start:] + cycle[:start] == sorted(cycle), (url, cycle)


async def seed_every_page(server: Server) -> dict[str, Any]:
    """Real data on each page: a phone that fetched its files, a sub-tenant, a ban, an override;
    returns the phone's device."""
    r = await server.phone.get("/tp/common.cfg", headers={"User-Agent": UA})
    assert r.status_code == 200
    [device] = (await server.api.get("/0.2/dev_mgr/devices")).json()["devices"]
    await configure(server, device["id"])
    await server.phone.get("/001122334455.cfg", headers={"User-Agent": UA})
    await server.prov.tenants.create("branch-office", parent_uuid=server.master)
    server.prov.bans.add("192.0.2.9", 600, "test")
    r = await server.api.put(
        f"{TPL}/tenant/common.cfg", json={"template": {"source": "custom {{ http_base_url }}\n"}}
    )
    assert r.status_code == 204
    return dict(device)


async def test_every_page_is_labelled_and_reachable_by_keyboard(
    server: Server, browser: Browser
) -> None:
    b = browser
    base = f"{server.rest_url}/console"
    await b.page.goto(f"{base}/signin")  # type: ignore[attr-defined]
    await audit(b, f"{base}/signin", ("Sign in",))
    device = await seed_every_page(server)
    await sign_in(b, server, server.token)
    op = server.prov.operations.start("pg.update", _done, label="update", tenant_uuid=server.master)
    pages = (
        ("/phones", ("Phones", "Filter", "Sign out")),
        (f"/phones/{device['id']}", ("Resync", "Reconfigure", "Rotate device token", "Delete")),
        ("/live", ("Apply", "Pause")),
        ("/plugins", ("Template overrides of testphone", "Firmware packages of testphone")),
        ("/plugins/testphone/firmware", ("Back to the plugins",)),
        ("/plugins/testphone/templates", ("Save override", "Render", "Delete the tenant")),
        ("/tenants", ("Rotate the key of branch-office", "Turn off TFTP for branch-office")),
        ("/health", ("Unban 192.0.2.9",)),
        (f"/operations/pg.update/{op.id}", ("Phones",)),
    )
    for path, actions in pages:
        await audit(b, base + path, actions)
    assert b.errors == [] and b.dialogs == []


async def _done(op: Any) -> None:
    """An operation that ends at once (its page is audited)."""
