"""The console over plain HTTP: sign-in, sessions, CSRF, security headers, scoping, bad input."""

from __future__ import annotations

import re

import httpx

from tests.conftest import Server
from tests.console._console import csrf_of, signed_in


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
