"""The one error tree of provisor, and its mapping to HTTP status codes.

    ProvisorError
     ├── InvalidInput        400  a request or a document is malformed (names the field)
     │    └── PayloadTooLarge 413
     ├── Unauthorized        401  no token, an unknown token, or a missing permission
     ├── Forbidden           403  the resource exists and may be seen but not changed
     ├── NotFound            404  unknown, or outside the caller's tenant subtree
     ├── NotAcceptable       406  Accept excludes the provd MIME type
     ├── Conflict            409  a write that would break uniqueness (mapped to 400
     │                            on the wazo-provd compatible endpoints)
     ├── UnsupportedMedia    415
     ├── PluginError         500  a plugin failed while loading or rendering
     └── Unavailable         503  the database cannot be reached now (with Retry-After)

Messages name the field and the bad value (never a secret).
"""

from __future__ import annotations

__all__ = [
    "Conflict",
    "Forbidden",
    "InvalidInput",
    "NotAcceptable",
    "NotFound",
    "PayloadTooLarge",
    "PluginError",
    "ProvisorError",
    "Unauthorized",
    "StartupError",
    "Unavailable",
    "UnsupportedMedia",
]


class ProvisorError(Exception):
    """Base of every error provisor raises on purpose."""

    status_code = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(ProvisorError):
    """A request or a document is malformed."""

    status_code = 400


class PayloadTooLarge(InvalidInput):
    """A request body is over the configured limit."""

    status_code = 413


class Unauthorized(ProvisorError):
    """No token, an unknown token, or a token without the needed ACL."""

    status_code = 401


class Forbidden(ProvisorError):
    """The resource may be read but this change is not allowed (deletable=false)."""

    status_code = 403


class NotFound(ProvisorError):
    """Unknown resource, or one outside the caller's tenant subtree."""

    status_code = 404


class NotAcceptable(ProvisorError):
    """The client does not accept the provd MIME type."""

    status_code = 406


class Conflict(ProvisorError):
    """A write would break a uniqueness rule (duplicate id, key, provisioning code)."""

    status_code = 409


class UnsupportedMedia(ProvisorError):
    """A body was sent with another Content-Type than the provd MIME type."""

    status_code = 415


class PluginError(ProvisorError):
    """A plugin failed while loading or rendering; isolated to that plugin."""

    status_code = 500


class Unavailable(ProvisorError):
    """The database cannot be reached now; the client should retry after ``retry_after`` s."""

    status_code = 503

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StartupError(ProvisorError):
    """The server cannot start: a listener cannot bind, a TLS file is missing (one line)."""
