"""Helpers for the console tests: sign in over HTTP with httpx, read the CSRF token."""

from __future__ import annotations

import re

import httpx

from tests.conftest import Server

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token of the first form of a page."""
    match = _CSRF.search(html)
    assert match is not None, html[:500]
    return match.group(1)


async def signed_in(server: Server, token: str) -> httpx.AsyncClient:
    """A browser-like client with a console session for ``token``."""
    client = httpx.AsyncClient(base_url=server.rest_url, timeout=10, follow_redirects=False)
    form = await client.get("/console/signin")
    assert form.status_code == 200
    r = await client.post("/console/signin", data={"csrf": csrf_of(form.text), "token": token})
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/console/phones"
    return client
