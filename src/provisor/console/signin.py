"""Sign-in and sign-out: an API token, or a wazo-auth user's name and password.

The sign-in form is protected against login CSRF by a double-submitted nonce (a short-lived
``SameSite=Strict`` cookie that must match the form's field). A token is checked for
``provd.read``-level access (``provd.dev_mgr.devices.read``) before a session is opened; with the
wazo-auth backend a username and password are exchanged for a wazo-auth token, and the password
goes nowhere else; that token is revoked at sign-out. Failures are logged with the address, never the token or password.
"""

from __future__ import annotations

import hmac
import logging
import secrets

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from provisor.api.deps import authorize_token, provisor_of
from provisor.auth.base import token_fingerprint
from provisor.console.sessions import COOKIE
from provisor.console.web import (
    PREFIX,
    ConsoleRoute,
    console_of,
    read_form,
    redirect,
    render,
    session_of,
)
from provisor.errors import Forbidden, Unauthorized

__all__ = ["router"]

log = logging.getLogger(__name__)
router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute)

PRE_COOKIE = "provisor_console_signin"
SIGNIN_ACL = "provd.dev_mgr.devices.read"
MAX_FIELD = 4096


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _signin_page(request: Request, message: str = "", status: int = 200) -> Response:
    nonce = secrets.token_urlsafe(24)
    backend = provisor_of(request).settings.auth.backend
    response = render(
        request,
        "signin.html",
        status=status,
        nonce=nonce,
        message=message,
        password_signin=backend == "wazo-auth",
    )
    response.set_cookie(
        PRE_COOKIE,
        nonce,
        max_age=900,
        path=f"{PREFIX}/signin",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    return response


@router.get("/signin")
async def signin_form(request: Request) -> Response:
    """The sign-in form (or the Phones page when already signed in)."""
    if session_of(request) is not None:
        return redirect(f"{PREFIX}/phones")
    return _signin_page(request)


@router.post("/signin")
async def signin(request: Request) -> Response:
    """Check the token (or exchange a username and password) and open a session."""
    form = await read_form(request, None)
    expected = request.cookies.get(PRE_COOKIE) or ""
    if not expected or not hmac.compare_digest(expected, form.get("csrf", "")):
        raise Forbidden("Forbidden: the sign-in form expired or came from another site; reload")
    prov = provisor_of(request)
    console = console_of(request)
    client = request.client.host if request.client else "?"
    token = form.get("token", "").strip()
    username = form.get("username", "").strip()
    password = form.get("password", "")
    if any(len(v) > MAX_FIELD for v in (token, username, password)):
        return _signin_page(request, "A field is too long.", 400)
    label = username
    made_here = False  # a token this sign-in obtained, revoked at sign-out
    if not token and username and prov.settings.auth.backend == "wazo-auth":
        from provisor.auth.wazo import WazoAuthBackend

        backend = prov.auth
        if not isinstance(backend, WazoAuthBackend):  # pragma: no cover - settings say wazo-auth
            return _signin_page(request, "Password sign-in is not available.", 400)
        try:
            token = await backend.login(username, password, int(console.settings.session_lifetime))
            made_here = True
        except Unauthorized as exc:
            log.warning("console: sign-in of user %r from %s refused", username[:64], client)
            return _signin_page(request, str(exc).removeprefix("Unauthorized: "), 403)
    if not token:
        return _signin_page(request, "Give an API token.", 400)
    try:
        caller = await authorize_token(prov, token, None, SIGNIN_ACL)
    except Unauthorized as exc:
        log.warning("console: sign-in from %s refused: %s", client, exc)
        return _signin_page(request, str(exc).removeprefix("Unauthorized: "), 403)
    label = label or caller.token.user or f"token {token_fingerprint(token)}"
    session = console.sessions.create(token, label, caller.tenant_uuid)
    if made_here:
        session.extra["revoke_at_signout"] = "yes"
    log.info(
        "console: %s signed in from %s (tenant %s, token %s)",
        label,
        client,
        caller.tenant_uuid,
        token_fingerprint(token),
    )
    response = redirect(f"{PREFIX}/phones")
    response.set_cookie(
        COOKIE,
        session.id,
        max_age=int(console.settings.session_lifetime),
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    response.delete_cookie(PRE_COOKIE, path=f"{PREFIX}/signin")
    return response


@router.post("/signout")
async def signout(request: Request) -> Response:
    """End the session."""
    session = session_of(request)
    await read_form(request, session)
    if session is not None:
        console_of(request).sessions.end(session.id)
        log.info("console: %s signed out", session.label)
        if session.extra.get("revoke_at_signout"):
            # the token came from this user's password at sign-in: it ends with the session (a
            # token the operator pasted is theirs, used elsewhere too, and is left alone)
            from provisor.auth.wazo import WazoAuthBackend

            backend = provisor_of(request).auth
            if isinstance(backend, WazoAuthBackend):
                await backend.logout(session.token)
    response = redirect(f"{PREFIX}/signin")
    response.delete_cookie(COOKIE, path=PREFIX)
    return response


@router.get("")
async def console_home(request: Request) -> Response:
    """The console's entry: the Phones page."""
    return redirect(f"{PREFIX}/phones")
