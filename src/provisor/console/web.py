"""What every console page shares: rendering, security headers, the session, CSRF, forms.

Every console route is a :class:`ConsoleRoute`: its answer carries a strict
Content-Security-Policy (scripts and styles from ``/console/static`` only, no inline code),
``frame-ancestors 'none'``, ``X-Frame-Options: DENY``, ````Referrer-Policy: same-origin```` and
``Cache-Control: no-store``; a provisor error becomes an HTML page with its status (never a
500). Pages get their caller from :func:`console_caller`, which takes the session's API token
through the same authorization as the REST API (:func:`provisor.api.deps.authorize_token`).
State-changing requests are POSTs whose form carries the session's CSRF token
(:func:`read_form`); Jinja2 autoescapes every value.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import jinja2
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from provisor.api.deps import Caller, authorize_token, provisor_of
from provisor.console.sessions import COOKIE, Session, SessionStore
from provisor.errors import Forbidden, InvalidInput, PayloadTooLarge, ProvisorError, Unauthorized
from provisor.service import Provisor
from provisor.settings import ConsoleSettings

__all__ = [
    "PREFIX",
    "Console",
    "ConsoleRoute",
    "SignInRequired",
    "console_caller",
    "console_of",
    "read_form",
    "render",
    "session_of",
]

log = logging.getLogger(__name__)

PREFIX = "/console"
HERE = Path(__file__).parent
MAX_FORM_BYTES = 64 * 1024

SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "object-src 'none'"
    ),
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",  # no-referrer would make the browser send Origin: null
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
    "cross-origin-opener-policy": "same-origin",
}


class SignInRequired(Exception):
    """No live session: the browser goes to the sign-in page."""


@dataclass
class Console:
    """The console's state, kept on the REST app."""

    settings: ConsoleSettings
    sessions: SessionStore
    templates: jinja2.Environment


def make_console(settings: ConsoleSettings) -> Console:
    """The console's state from its settings."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every device field, path and User-Agent is attacker-controlled
        trim_blocks=True,
        lstrip_blocks=True,
    )
    sessions = SessionStore(settings.session_lifetime, settings.session_idle, settings.max_sessions)
    return Console(settings=settings, sessions=sessions, templates=env)


def console_of(request: Request) -> Console:
    """The console state of this app."""
    console: Console = request.app.state.console
    return console


def session_of(request: Request) -> Session | None:
    """The live session of the request's cookie, if any."""
    return console_of(request).sessions.get(request.cookies.get(COOKIE))


async def console_caller(request: Request, acl: str, **variables: str) -> tuple[Session, Caller]:
    """The signed-in operator, authorised for ``acl`` like a REST call with its token."""
    session = session_of(request)
    if session is None:
        raise SignInRequired
    caller = await authorize_token(
        provisor_of(request),
        session.token,
        session.acting_tenant,
        acl,
        recurse=True,  # the console shows the whole subtree the token sees
        **variables,
    )
    return session, caller


def _same_origin(request: Request) -> bool:
    """Whether a browser-sent Origin (or Referer) names this server (absent: accepted)."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin:
        return True
    if origin == "null":  # a sandboxed frame or a data: page
        return False
    host = request.headers.get("host", "")
    return urlsplit(origin).netloc == host


async def read_form(request: Request, session: Session | None) -> dict[str, str]:
    """The urlencoded form of a POST, refused (403) without this session's CSRF token."""
    if not _same_origin(request):
        raise Forbidden("Forbidden: cross-site request")
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        raise Forbidden("Forbidden: expected a form from the console")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise PayloadTooLarge(f"form: larger than {MAX_FORM_BYTES} bytes")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=200)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput(f"form: cannot be read ({type(exc).__name__})") from None
    form = dict(pairs)
    if session is not None and not session.csrf_ok(form.get("csrf")):
        raise Forbidden("Forbidden: missing or wrong CSRF token; reload the page")
    return form


def render(
    request: Request,
    template: str,
    *,
    status: int = 200,
    session: Session | None = None,
    **context: Any,
) -> HTMLResponse:
    """A page from ``templates/`` with the layout's context."""
    env = console_of(request).templates
    html = env.get_template(template).render(
        prefix=PREFIX,
        session=session,
        path=request.url.path,
        **context,
    )
    return HTMLResponse(html, status_code=status)


def redirect(location: str) -> RedirectResponse:
    """A 303 to another console page (after a POST: the reload does not repeat it)."""
    return RedirectResponse(location, status_code=303)


def _error_page(request: Request, exc: ProvisorError) -> Response:
    status = exc.status_code
    if isinstance(exc, Unauthorized):
        status = 403  # signed in, but the token may not do this
    try:
        return render(
            request, "error.html", status=status, session=session_of(request), message=str(exc)
        )
    except Exception:  # pragma: no cover - the error page itself failed
        log.exception("console error page")
        return Response(b"Error", status_code=status, media_type="text/plain")


class ConsoleRoute(APIRoute):
    """A console route: errors as HTML pages, security headers on every answer."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def console_handler(request: Request) -> Response:
            try:
                response = await handler(request)
            except SignInRequired:
                response = redirect(f"{PREFIX}/signin")
            except ProvisorError as exc:
                if exc.status_code >= 500 and exc.status_code != 503:
                    log.warning("console %s %s: %s", request.method, self.path, exc)
                response = _error_page(request, exc)
                if exc.status_code == 503:
                    response.headers["retry-after"] = "10"
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        return console_handler


def prov_of(request: Request) -> Provisor:
    """The Provisor serving this request."""
    return provisor_of(request)
