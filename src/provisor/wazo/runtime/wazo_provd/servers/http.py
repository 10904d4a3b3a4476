"""HTTP services a plugin constructs; provisor serves the files itself, through its pipeline."""

from __future__ import annotations

from twisted.web import resource

__all__ = ["HTTPNoListingFileService"]


class HTTPNoListingFileService(resource.Resource):
    """Marks the folder a plugin serves over HTTP (its ``var/tftpboot``)."""

    def __init__(self, path: str) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.path = path
