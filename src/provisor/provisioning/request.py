"""One file request from a phone, whatever the protocol, and the answer to it.

HTTP and TFTP front ends translate their protocol into a :class:`FileRequest`, hand it to the
pipeline, and translate the :class:`FileResult` back; the pipeline never sees a socket.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import unquote

__all__ = ["FileRequest", "FileResult", "clean_path"]


@dataclass(frozen=True, slots=True)
class FileRequest:
    """A phone asking for a file."""

    protocol: Literal["http", "tftp"]
    path: str
    """Normalised path: '/' separators, no leading '/', never a '..' segment."""
    client_ip: str
    user_agent: str | None = None
    query: Mapping[str, str] = field(default_factory=dict)
    secure: bool = False


@dataclass(frozen=True, slots=True)
class FileResult:
    """What the pipeline decided: bytes (or a file on disk) and the reason, for the trace."""

    status: int
    body: bytes = b""
    content_type: str = "application/octet-stream"
    etag: str | None = None
    last_modified: float | None = None
    file: Path | None = None
    """A file to stream instead of ``body`` (firmware), with its size in ``size``."""
    size: int = 0
    reason: str = ""

    @classmethod
    def not_found(cls, reason: str) -> FileResult:
        """The one 404 for every refusal: nowhere to route, bad key, bad token, ban."""
        return cls(404, b"Nowhere to route this request.", "text/plain", reason=reason)

    @classmethod
    def from_store(cls, root: Path, relative: str, content_type: str) -> FileResult:
        """A file of a firmware store, streamed; 404 outside ``root`` or when missing."""
        base = root.resolve()
        target = (base / relative).resolve()
        if not target.is_relative_to(base) or not target.is_file():
            return cls.not_found("firmware not installed")
        stat = target.stat()
        return cls(
            200,
            content_type=content_type,
            etag=f'"{stat.st_size:x}-{int(stat.st_mtime):x}"',
            last_modified=stat.st_mtime,
            file=target,
            size=stat.st_size,
            reason="firmware",
        )

    @classmethod
    def error(cls, reason: str) -> FileResult:
        """A 500 for this request only (plugin failure)."""
        return cls(500, b"Internal processing error", "text/plain", reason=reason)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@lru_cache(maxsize=8192)
def clean_path(raw: str) -> str | None:
    """Normalise a requested path; None when it is unsafe (traversal, NUL, control chars).

    Memoised: phones ask for the same few paths again and again.
    """
    path = raw
    for _ in range(3):  # decode nested percent-encoding (%252e) before judging
        if "%" not in path:
            break
        decoded = unquote(path)
        if decoded == path:
            break
        path = decoded
    if _CONTROL.search(path):
        return None
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        return None
    return "/".join(parts)
