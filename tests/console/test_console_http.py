"""The console over plain HTTP: sign-in, sessions, CSRF, security headers, scoping, bad input."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from provisor.api.http import MIME
from provisor.console.sessions import SessionStore
from provisor.server import Running
from tests.conftest import Server, make_settings, register_secret, start_server
from tests.console._console import csrf_of, signed_in
from tests.support.fake_wazo_auth import start_fake_wazo_auth


async def test_signin_session_cookie_and_headers(server: Server) -> None:
    client = await signed_in(server, server.token)
    try:
        cookie = next(c for c in client.cookies.jar if c.name == "provisor_console")
        assert cookie.path == "/console"
        assert cookie.has_nonstandard_attr("HttpOnly")
        page = await client.get("/console/phones")
        assert page.status_code == 200
        assert "<h1>Phones</h1>" in page.text
        csp = page.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["referrer-policy"] == "same-origin"
        assert not re.search(r"<script(?![^>]*\ssrc=)", page.text)  # no inline script
        assert not re.search(r"\son[a-z]+=", page.text)  # no event-handler attribute
        assert " style=" not in page.text
        # sign out ends the session on the server
        out = await client.post("/console/signout", data={"csrf": csrf_of(page.text)})
        assert out.status_code == 303
        again = await client.get("/console/phones")
        assert again.status_code == 303 and again.headers["location"] == "/console/signin"
    finally:
        await client.aclose()


async def test_set_cookie_flags(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.rest_url) as client:
        form = await client.get("/console/signin")
        r = await client.post(
            "/console/signin", data={"csrf": csrf_of(form.text), "token": server.token}
        )
        header = r.headers["set-cookie"].lower()
        assert "provisor_console=" in header
        assert "httponly" in header and "samesite=strict" in header


async def test_unknown_token_and_forged_signin_refused(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.rest_url) as client:
        form = await client.get("/console/signin")
        r = await client.post(
            "/console/signin", data={"csrf": csrf_of(form.text), "token": "not-a-token"}
        )
        assert r.status_code == 403 and "unknown token" in r.text
        assert "provisor_console=" not in r.headers.get("set-cookie", "")
    # a sign-in form posted from another site has no nonce cookie: refused
    async with httpx.AsyncClient(base_url=server.rest_url) as client:
        r = await client.post("/console/signin", data={"csrf": "x", "token": server.token})
        assert r.status_code == 403


async def test_csrf_refused_without_or_with_a_wrong_token(server: Server) -> None:
    client = await signed_in(server, server.token)
    try:
        for data in ({"other": "1"}, {"csrf": "wrong"}):
            r = await client.post("/console/signout", data=data)
            assert r.status_code == 403, r.text
            assert "CSRF" in r.text
        r = await client.post(
            "/console/signout",
            content=b"{}",
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 403
        page = await client.get("/console/phones")
        r = await client.post(
            "/console/signout",
            data={"csrf": csrf_of(page.text)},
            headers={"origin": "http://evil.example"},
        )
        assert r.status_code == 403 and "cross-site" in r.text
        assert (await client.get("/console/phones")).status_code == 200  # still signed in
    finally:
        await client.aclose()


async def test_bad_list_parameters_are_400(server: Server) -> None:
    client = await signed_in(server, server.token)
    try:
        for query in (
            "sort=evil",
            "order=sideways",
            "state=broken",
            "after=%%%",
            "after=bm90LWpzb24",
            "q=" + "a" * 500,
            "tenant=someone-else",
        ):
            r = await client.get(f"/console/phones?{query}")
            assert r.status_code == 400, (query, r.status_code, r.text[:300])
            assert r.headers["content-type"].startswith("text/html")
    finally:
        await client.aclose()


async def test_console_settings_are_read(tmp_path: Path, database_url: str) -> None:
    # console.enabled false: no console at all
    srv = await start_server(
        make_settings(tmp_path / "off", database_url, **{"console.enabled": False})
    )
    try:
        r = await srv.api.get("/console/signin")
        assert r.status_code == 404
        assert (await srv.api.get("/console/static/console.js")).status_code == 404
    finally:
        await srv.close()
    # page_size and max_sessions
    srv = await start_server(
        make_settings(
            tmp_path / "on", database_url, **{"console.page_size": 5, "console.max_sessions": 2}
        )
    )
    try:
        await srv.prov.devices.store.insert_many(
            [
                {"id": f"p{n:03d}", "tenant_uuid": srv.master, "mac": f"02:00:00:00:00:{n:02x}"}
                for n in range(12)
            ]
        )
        first = await signed_in(srv, srv.token)
        page = await first.get("/console/phones")
        assert page.text.count('<a href="/console/phones/p') == 5
        second = await signed_in(srv, srv.token)
        third = await signed_in(srv, srv.token)
        # the oldest session made room for the third
        assert (await first.get("/console/phones")).status_code == 303
        assert (await second.get("/console/phones")).status_code == 200
        assert (await third.get("/console/phones")).status_code == 200
        for client in (first, second, third):
            await client.aclose()
    finally:
        await srv.close()


def test_sessions_expire_by_lifetime_and_idle_time() -> None:
    now = [1000.0]
    store = SessionStore(lifetime=100, idle=30, max_sessions=10, clock=lambda: now[0])
    s = store.create("tok-Secret-1", "tester", "t")
    now[0] += 25
    assert store.get(s.id) is s  # used: the idle clock restarts
    now[0] += 25
    assert store.get(s.id) is s
    now[0] += 31
    assert store.get(s.id) is None  # idle too long
    s = store.create("tok-Secret-2", "tester", "t")
    for _ in range(5):
        now[0] += 20
        store.get(s.id)
    now[0] += 20
    assert store.get(s.id) is None  # past its lifetime, however used
    assert store.get("x" * 200) is None and store.get(None) is None
    assert not s.csrf_ok(None) and not s.csrf_ok("") and s.csrf_ok(s.csrf)


async def test_password_signin_with_wazo_auth(tmp_path: Path, database_url: str) -> None:
    fake = await start_fake_wazo_auth()
    fake.users[("alice", "Alice-Secret-9")] = (fake.master, ["provd.#"])
    register_secret("Alice-Secret-9")
    key = tmp_path / "key.yml"
    key.write_text("service_id: provd\nservice_key: service-secret\n")
    settings = make_settings(
        tmp_path,
        database_url,
        **{"auth.backend": "wazo-auth", "auth.url": fake.url, "auth.key_file": str(key)},
    )
    try:
        running = await Running.start(settings)
        try:
            base = f"http://127.0.0.1:{running.ports['rest']}"
            async with httpx.AsyncClient(base_url=base) as client:
                form = await client.get("/console/signin")
                assert 'name="password"' in form.text
                r = await client.post(
                    "/console/signin",
                    data={"csrf": csrf_of(form.text), "username": "alice", "password": "wrong-pw"},
                )
                assert r.status_code == 403 and "wrong username or password" in r.text
                form = await client.get("/console/signin")
                r = await client.post(
                    "/console/signin",
                    data={
                        "csrf": csrf_of(form.text),
                        "username": "alice",
                        "password": "Alice-Secret-9",
                    },
                )
                assert r.status_code == 303, r.text
                page = await client.get("/console/phones")
                assert page.status_code == 200 and "alice" in page.text
                [made] = [t for t in fake.tokens if t.endswith("-alice")]
                register_secret(made)
                api = {"X-Auth-Token": made, "Accept": MIME}
                assert (await client.get("/0.2/dev_mgr/devices", headers=api)).status_code == 200
                # sign-out revokes the token the sign-in obtained, and it is refused at once
                # here (not only once provisor's token cache expires)
                r = await client.post("/console/signout", data={"csrf": csrf_of(page.text)})
                assert r.status_code == 303
                assert fake.calls["delete"] == 1 and made not in fake.tokens
                assert (await client.get("/0.2/dev_mgr/devices", headers=api)).status_code == 401
                # a token the operator pasted is theirs: signing out leaves it alone
                fake.add_token(WAZO_PASTED, fake.master, ["provd.#"])
                form = await client.get("/console/signin")
                r = await client.post(
                    "/console/signin", data={"csrf": csrf_of(form.text), "token": WAZO_PASTED}
                )
                assert r.status_code == 303, r.text
                page = await client.get("/console/phones")
                r = await client.post("/console/signout", data={"csrf": csrf_of(page.text)})
                assert r.status_code == 303
                assert fake.calls["delete"] == 1 and WAZO_PASTED in fake.tokens
        finally:
            await running.stop()
    finally:
        await fake.stop()


WAZO_PASTED = "pasted-wazo-token-7c1e55"


def test_templates_never_mark_values_safe_nor_inline_code() -> None:
    from provisor.console.web import HERE, make_console
    from provisor.settings import ConsoleSettings

    env = make_console(ConsoleSettings()).templates
    assert env.autoescape is True
    templates = sorted((HERE / "templates").glob("*.html"))
    assert len(templates) >= 9
    for path in templates:
        text = path.read_text()
        assert "|safe" not in text.replace(" ", "") and "Markup" not in text, path.name
        assert "autoescape false" not in text, path.name
        assert not re.search(r"<script(?![^>]*\ssrc=)", text), path.name
        assert not re.search(r"\son[a-z]+=|\sstyle=|javascript:", text), path.name
