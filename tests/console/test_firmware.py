"""A plugin's Firmware page: its packages listed (escaped), a package installed with live
progress and uninstalled by a master-tenant operator, through the same calls and rules as
``/0.2/pg_mgr/plugins/{id}/install/*``; a sub-tenant sees no button and is refused on a crafted
POST; a bad package id is a 400 naming it. Over httpx, then in Debian's Chromium."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import TEST_PLUGINS, Server, make_settings, register_secret, start_server
from tests.console._console import csrf_of, signed_in
from tests.console.conftest import Browser
from tests.console.test_accessibility import audit
from tests.console.test_browser import UA, sign_in
from tests.console.test_pages import _until_done

XSS = "<script>alert('pkg')</script> & TP100 \"firmware\""
FW_SIZE = 200_000
ROM = "/firmware/TP100-1.2.rom"
PAGE = "/console/plugins/testphone/firmware"
REST = "/0.2/pg_mgr/plugins/testphone/install"
_STATE = re.compile(r'id="op-state"[^>]*>([^<]*)<')


@pytest.fixture
async def fw_server(
    tmp_path: Path, database_url: str, web_root: tuple[Path, str]
) -> AsyncIterator[tuple[Server, bytes]]:
    """A server whose test plugin lists two firmware packages, served from 127.0.0.1."""
    www, url = web_root
    firmware = os.urandom(FW_SIZE)
    (www / "TP100-1.2.rom").write_bytes(firmware)
    plugins = tmp_path / "plugins"
    shutil.copytree(TEST_PLUGINS / "testphone", plugins / "testphone")
    manifest = plugins / "testphone" / "manifest.toml"
    manifest.write_text(
        manifest.read_text()
        + f"\n[firmware.tp100-fw]\nversion = \"1.2\"\ndescription = '''{XSS}'''\n"
        f'url = "{url}/TP100-1.2.rom"\nsize = {FW_SIZE}\n'
        f'sha256 = "{hashlib.sha256(firmware).hexdigest()}"\n'
        'files = [{src = "TP100-1.2.rom", dest = "firmware/TP100-1.2.rom"}]\n'
        '\n[firmware.tp200-fw]\nversion = "2.0"\ndescription = "TP200 firmware"\n'
        f'url = "{url}/TP200-2.0.rom"\nsize = 10\nsha256 = "{"0" * 64}"\n'
    )
    srv = await start_server(
        make_settings(tmp_path, database_url, **{"general.plugin_dirs": [str(plugins)]})
    )
    try:
        yield srv, firmware
    finally:
        await srv.close()


async def _wait_op(client: httpx.AsyncClient, location: str) -> str:
    """Follow the operation page (as the browser's reloads do) until the operation ends."""
    for _ in range(200):
        r = await client.get(location)
        assert r.status_code == 200, r.text
        match = _STATE.search(r.text)
        assert match is not None, r.text[:500]
        if match.group(1) in ("success", "fail"):
            return r.text
        await asyncio.sleep(0.05)
    raise AssertionError("the firmware install did not end")


async def _installed(srv: Server) -> dict[str, Any]:
    r = await srv.api.get(f"{REST}/installed")
    assert r.status_code == 200
    pkgs: dict[str, Any] = r.json()["pkgs"]
    return pkgs


async def test_firmware_list_install_uninstall_and_refusals(
    fw_server: tuple[Server, bytes],
) -> None:
    srv, firmware = fw_server
    client = await signed_in(srv, srv.token)
    try:
        plugins = await client.get("/console/plugins")
        assert f'href="{PAGE}"' in plugins.text
        page = await client.get(PAGE)
        assert page.status_code == 200
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert "<script>alert" not in page.text
        assert "&lt;script&gt;alert(&#39;pkg&#39;)&lt;/script&gt; &amp; TP100" in page.text
        assert "200,000 bytes" in page.text and "TP200 firmware" in page.text
        assert "No firmware package installed." in page.text
        csrf = csrf_of(page.text)
        register_secret(csrf)

        # CSRF as on every console form; the package id checked as REST checks it
        r = await client.post(f"{PAGE}/install", data={"id": "tp100-fw"})
        assert r.status_code == 403 and "CSRF" in r.text
        for bad in ("../../etc/passwd", "", "a/b", ".hidden"):
            r = await client.post(f"{PAGE}/install", data={"csrf": csrf, "id": bad})
            assert r.status_code == 400, (bad, r.text)
            assert "id:" in r.text and "not a valid package id" in r.text, bad
        r = await client.post(f"{PAGE}/uninstall", data={"csrf": csrf, "id": "../x"})
        assert r.status_code == 400 and "not a valid package id" in r.text
        r = await client.post(f"{PAGE}/install", data={"csrf": csrf, "id": "nope"})
        assert r.status_code == 400 and "no firmware package &#39;nope&#39;" in r.text
        r = await client.post(f"{PAGE}/reinstall", data={"csrf": csrf, "id": "tp100-fw"})
        assert r.status_code == 400
        assert (await client.get("/console/plugins/nope/firmware")).status_code == 404
        r = await client.post(
            "/console/plugins/nope/firmware/install", data={"csrf": csrf, "id": "tp100-fw"}
        )
        assert r.status_code == 404
        assert await _installed(srv) == {}

        # install: the operation page until it ends, then the phone gets the file
        r = await client.post(f"{PAGE}/install", data={"csrf": csrf, "id": "tp100-fw"})
        assert r.status_code == 303, r.text
        location = r.headers["location"]
        assert location.startswith("/console/operations/pkg.testphone/")
        done = await _wait_op(client, location)
        assert f"install_pkg|success(download|success;{FW_SIZE}/{FW_SIZE})" in done
        assert f'href="{PAGE}"' in done  # back to this plugin's packages
        assert (await _installed(srv))["tp100-fw"]["version"] == "1.2"
        r = await srv.phone.get(ROM, headers={"User-Agent": UA})
        assert r.status_code == 200 and r.content == firmware
        page = await client.get(PAGE)
        installed = page.text.split('id="pkg-installed"')[1].split("</table>")[0]
        assert "tp100-fw" in installed and 'aria-label="Uninstall tp100-fw"' in installed
        assert "No firmware package installed." not in page.text

        # a sub-tenant: the list, no button, a crafted POST refused, the master's operation hidden
        sub = await srv.prov.tenants.create("sub", parent_uuid=srv.master)
        token = await srv.token_for(sub.uuid)
        register_secret(token)
        other = await signed_in(srv, token)
        try:
            seen = await other.get(PAGE)
            assert seen.status_code == 200 and "tp100-fw" in seen.text
            assert "<button" not in seen.text.split("<main")[1].split("</main>")[0]
            sub_csrf = csrf_of(seen.text)
            register_secret(sub_csrf)
            for action in ("install", "uninstall"):
                r = await other.post(f"{PAGE}/{action}", data={"csrf": sub_csrf, "id": "tp100-fw"})
                assert r.status_code == 403, (action, r.text)
                assert "master tenant" in r.text
            assert (await other.get(location)).status_code == 404
        finally:
            await other.aclose()
        assert "tp100-fw" in await _installed(srv)

        # uninstall: back to the page, the files gone; a second one names the problem
        r = await client.post(f"{PAGE}/uninstall", data={"csrf": csrf, "id": "tp100-fw"})
        assert r.status_code == 303 and r.headers["location"] == PAGE
        assert await _installed(srv) == {}
        assert (await srv.phone.get(ROM, headers={"User-Agent": UA})).status_code == 404
        r = await client.post(f"{PAGE}/uninstall", data={"csrf": csrf, "id": "tp100-fw"})
        assert r.status_code == 400 and "is not installed" in r.text
        # the operation page knows plugin kinds only as valid plugin ids
        assert (await client.get("/console/operations/pkg..x/1")).status_code == 404
    finally:
        await client.aclose()


async def test_firmware_install_in_the_browser(
    fw_server: tuple[Server, bytes], browser: Browser
) -> None:
    srv, _ = fw_server
    page: Any = browser.page
    await sign_in(browser, srv, srv.token)
    await page.goto(f"{srv.rest_url}/console/plugins")
    await page.get_by_role("link", name="Firmware packages of testphone").click()
    await page.wait_for_url(f"**{PAGE}")
    await audit(browser, f"{srv.rest_url}{PAGE}", ("Install tp100-fw", "Install tp200-fw"))
    await page.get_by_role("button", name="Install tp100-fw").click()
    await page.wait_for_url("**/console/operations/pkg.testphone/**")
    await _until_done(page)
    assert await page.locator("#op-state").inner_text() == "success"
    assert "download|success" in await page.locator("#op-status").inner_text()
    await browser.shot("firmware-install", docs=True)
    await page.get_by_role("link", name="Back to the firmware packages of testphone").click()
    await page.wait_for_url(f"**{PAGE}")
    assert "tp100-fw" in await page.locator("#pkg-installed").inner_text()
    await audit(browser, f"{srv.rest_url}{PAGE}", ("Uninstall tp100-fw", "Install tp200-fw"))
    await browser.shot("firmware", docs=True)
    assert "tp100-fw" in await _installed(srv)
    assert browser.dialogs == [] and browser.errors == []  # the description's script never ran


async def test_firmware_page_takes_the_rest_acls(fw_server: tuple[Server, bytes]) -> None:
    """Each page and action needs the ACL of its REST call, for this plugin (no other)."""
    srv, _ = fw_server
    base = "provd.pg_mgr.plugins.testphone.install"
    reads = ["provd.dev_mgr.devices.read", f"{base}.installable.read", f"{base}.installed.read"]
    cases = (
        (reads, 200, 403),  # may list, may not install
        (reads[:2], 403, 403),  # installed.read missing
        ([reads[0], *(a.replace("testphone", "other") for a in reads[1:])], 403, 403),
        ([*reads, f"{base}.install.create"], 200, 303),
    )
    for acl, page_status, install_status in cases:
        token = await srv.token_for(srv.master, acl)
        register_secret(token)
        client = await signed_in(srv, token)
        try:
            assert (await client.get(PAGE)).status_code == page_status, acl
            phones = await client.get("/console/phones")
            csrf = csrf_of(phones.text)
            register_secret(csrf)
            r = await client.post(f"{PAGE}/install", data={"csrf": csrf, "id": "tp200-fw"})
            assert r.status_code == install_status, (acl, r.text)
        finally:
            await client.aclose()
