"""HTTP conventions of the 0.2 API: the provd MIME type, JSON bodies, errors as plain text.

wazo-provd clients send and accept ``application/vnd.proformatique.provd+json``; a request that
refuses it gets 406, a body of another type 415, malformed JSON 400 and an oversized body 413,
each with a plain-text message saying what is wrong, as upstream's clients expect.

JSON is strict (:mod:`provisor.domain.strictjson`): ``NaN``, ``Infinity``, numbers that
overflow to infinity and nesting deeper than 64 levels are 400s, the depth checked before the
parser recurses.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from provisor.domain.strictjson import strict_loads
from provisor.errors import (
    InvalidInput,
    NotAcceptable,
    PayloadTooLarge,
    ProvisorError,
    Unavailable,
    UnsupportedMedia,
)

__all__ = [
    "MIME",
    "check_accept",
    "created",
    "error_response",
    "json_response",
    "no_content",
    "parse_json",
    "read_json",
    "unavailable",
]

MIME = "application/vnd.proformatique.provd+json"
_ACCEPTED = {MIME, "application/*", "*/*", "application/json"}


def check_accept(request: Request) -> None:
    """406 when the client's Accept header excludes the provd MIME type."""
    accept = request.headers.get("accept")
    if not accept:
        return
    for part in accept.split(","):
        media, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if media.strip().lower() in _ACCEPTED and q > 0:
            return
    raise NotAcceptable(f"Not Acceptable: this resource is only available as {MIME}")


def parse_json(body: bytes) -> Any:
    """A request body as strict JSON (see :mod:`provisor.domain.strictjson`), else a 400."""
    try:
        return strict_loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"Invalid JSON document: {exc}") from None


async def read_json(request: Request, max_bytes: int) -> Any:
    """The request's JSON body, checked for type, size and syntax."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in (MIME, "application/json"):
        raise UnsupportedMedia(f"Unsupported Media Type: send {MIME}")
    length = request.headers.get("content-length")
    if (
        length is not None
        and length.isascii()
        and length.isdigit()
        and (len(length) > 15 or int(length) > max_bytes)
    ):
        raise PayloadTooLarge(f"request body is larger than {max_bytes} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > max_bytes:
            raise PayloadTooLarge(f"request body is larger than {max_bytes} bytes")
    return parse_json(bytes(body))


def json_response(data: Any, status: int = 200) -> Response:
    """A provd JSON response."""
    return Response(
        json.dumps(data, separators=(",", ":")).encode("utf-8"),
        status_code=status,
        media_type=MIME,
    )


def created(location: str, data: Any | None = None) -> Response:
    """201 with a Location header (and the id document when given)."""
    body = b"" if data is None else json.dumps(data).encode("utf-8")
    return Response(body, status_code=201, media_type=MIME, headers={"Location": location})


def no_content() -> Response:
    """204 with no body."""
    return Response(status_code=204)


def error_response(exc: ProvisorError) -> Response:
    """The plain-text error answer for a ProvisorError (with Retry-After for a 503)."""
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, Unavailable) else None
    return Response(
        exc.message.encode("utf-8"),
        status_code=exc.status_code,
        media_type="text/plain; charset=utf-8",
        headers=headers,
    )


def unavailable(retry_after: int) -> Unavailable:
    """The 503 of any REST request while the database is unreachable."""
    return Unavailable("Service Unavailable: the database is unreachable; retry later", retry_after)
