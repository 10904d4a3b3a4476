"""The HTTP request object extractors read (path, query arguments, headers)."""

from __future__ import annotations

__all__ = ["Request"]


class Request:
    """A phone's HTTP request, reduced to what device-info extractors use."""

    def __init__(
        self,
        path: bytes,
        headers: dict[bytes, bytes] | None = None,
        args: dict[bytes, list[bytes]] | None = None,
        client_ip: str = "",
    ) -> None:
        self.path = path
        self.uri = path
        self.method = b"GET"
        self.args: dict[bytes, list[bytes]] = args or {}
        self.postpath = [p for p in path.split(b"/") if p]
        self.prepath: list[bytes] = []
        self.prov_dev: object = None
        self.client_ip = client_ip
        self._headers = {k.lower(): v for k, v in (headers or {}).items()}
        self.response_code = 200
        self.response_headers: dict[bytes, bytes] = {}

    def getHeader(self, name: bytes | str) -> bytes | None:  # noqa: N802 - the plugin API
        """A request header, case-insensitive, as bytes."""
        key = name.encode("latin-1") if isinstance(name, str) else name
        return self._headers.get(key.lower())

    def getClientAddress(self) -> tuple[str, int]:  # noqa: N802 - the plugin API
        """The phone's address."""
        return (self.client_ip, 0)

    def setResponseCode(self, code: int) -> None:  # noqa: N802 - the plugin API
        """Kept for plugins that call it; provisor's pipeline decides the response."""
        self.response_code = code

    def setHeader(self, name: bytes, value: bytes) -> None:  # noqa: N802 - the plugin API
        """Kept for plugins that call it; provisor's pipeline decides the response."""
        self.response_headers[name] = value
