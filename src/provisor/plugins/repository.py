"""Plugin repositories: the index and verified downloads.

A repository is a folder or an HTTP(S) URL holding ``index.json`` beside plugin archives
(``<id>-<version>.tar.gz``, one top folder named ``<id>``). The index is read from outside, so
every plugin id, version and file name in it is checked against :mod:`provisor.domain.ids`; an
entry that fails is left out (and logged), never listed. Every archive is checked against the
index's size and sha256 before it is opened; :mod:`provisor.plugins.archive` extracts it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import httpx

from provisor.domain import ids
from provisor.errors import InvalidInput
from provisor.plugins.archive import ArchiveLimits, safe_extract

__all__ = [
    "ArchiveLimits",
    "IndexEntry",
    "Progress",
    "download",
    "fetch_index",
    "http_client",
    "local_path",
    "parse_index",
    "safe_extract",
]

Progress = Callable[[int, int], None]

log = logging.getLogger(__name__)

_FORMAT = 1
_MAX_INDEX = 16 * 1024 * 1024
_HEX = re.compile(r"[0-9A-Fa-f]+")


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One plugin of a repository index."""

    id: str
    version: str
    description: str
    vendor: str
    capabilities: Mapping[str, Any]
    file: str
    size: int
    sha256: str

    def public(self) -> dict[str, Any]:
        """The entry as ``/pg_mgr/install/installable`` shows it."""
        return {
            "version": self.version,
            "description": self.description,
            "vendor": self.vendor,
            "capabilities": dict(self.capabilities),
            "dsize": self.size,
            "sha256": self.sha256,
        }


def parse_index(data: bytes) -> dict[str, IndexEntry]:
    """Validate an ``index.json``; InvalidInput names the plugin and the field."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"repository index: not valid JSON: {exc}") from None
    if (
        not isinstance(doc, dict)
        or doc.get("format") != _FORMAT
        or not isinstance(doc.get("plugins"), dict)
    ):
        raise InvalidInput('repository index: expected {"format": 1, "plugins": {...}}')
    out: dict[str, IndexEntry] = {}
    for pid, entry in doc["plugins"].items():
        try:
            out[pid] = _entry(pid, entry)
        except InvalidInput as exc:
            # one bad (or hostile) entry is not listed; the rest of the index stays usable
            log.warning("%s: entry left out", exc.message)
    return out


@dataclass(frozen=True, slots=True)
class EntryFields:
    """The names one repository format gives an entry's fields, and its digest's form."""

    file: str = "file"
    size: str = "size"
    digest: str = "sha256"
    digest_hex: int = 64


def check_entry(where: str, entry: object, fields: EntryFields) -> dict[str, Any]:
    """An index entry's fields, checked (the same rules for provisor's index and wazo's
    ``plugins.db``): version, a plain file name, a hex digest, a size; InvalidInput names the
    plugin and the field. Returns version, file, size, digest (lower case), description,
    vendor and capabilities under provisor's names."""
    if not isinstance(entry, dict):
        raise InvalidInput(f"{where} must be an object")
    for key, kind in (
        ("version", str),
        (fields.file, str),
        (fields.digest, str),
        (fields.size, int),
    ):
        if not isinstance(entry.get(key), kind) or isinstance(entry.get(key), bool):
            raise InvalidInput(f"{where}: field {key!r} is missing or not a {kind.__name__}")
    ids.version(entry["version"], f"{where}: version")
    name = entry[fields.file]
    if "/" in name or "\\" in name or name.startswith("."):
        raise InvalidInput(f"{where}: {fields.file} {name!r} is not a plain file name")
    ids.file_name(name, f"{where}: {fields.file}")
    digest = entry[fields.digest]
    if len(digest) != fields.digest_hex or not _HEX.fullmatch(digest):
        raise InvalidInput(f"{where}: {fields.digest} must be {fields.digest_hex} hex digits")
    if entry[fields.size] < 0:
        raise InvalidInput(f"{where}: {fields.size} must not be negative")
    capabilities = entry.get("capabilities")
    return {
        "version": entry["version"],
        "file": name,
        "size": entry[fields.size],
        "digest": digest.lower(),
        "description": str(entry.get("description", "")),
        "vendor": str(entry.get("vendor", "")),
        "capabilities": capabilities if isinstance(capabilities, dict) else {},
    }


def _entry(pid: str, entry: object) -> IndexEntry:
    """One index entry, validated; InvalidInput names the plugin and the field."""
    ids.plugin_id(pid, "repository index: plugin id")
    checked = check_entry(f"repository index: plugin {pid!r}", entry, EntryFields())
    return IndexEntry(id=pid, sha256=checked.pop("digest"), **checked)


def local_path(url: str) -> Path | None:
    """The folder a ``file://`` or plain-path repository URL names (None for HTTP)."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        return Path(parts.path)
    if parts.scheme == "":
        return Path(url)
    return None


def http_client(proxies: Mapping[str, str | None]) -> httpx.AsyncClient:
    """A client for repository downloads through the configured proxies (both formats)."""
    mounts = {}
    if proxies.get("http"):
        mounts["http://"] = httpx.AsyncHTTPTransport(proxy=proxies["http"])
    if proxies.get("https"):
        target = proxies["https"] or ""
        mounts["https://"] = httpx.AsyncHTTPTransport(
            proxy=target if "://" in target else f"http://{target}"
        )
    return httpx.AsyncClient(mounts=mounts, timeout=30, follow_redirects=True)


async def fetch_index(base: str, proxies: Mapping[str, str | None]) -> dict[str, IndexEntry]:
    """Read and validate the index of a repository (folder, file:// or http(s) URL)."""
    local = local_path(base)
    if local is not None:
        try:
            with (local / "index.json").open("rb") as src:
                data = src.read(_MAX_INDEX + 1)
        except OSError as exc:
            raise InvalidInput(
                f"repository {base}: cannot read index.json: {exc.strerror}"
            ) from None
    else:
        data = await _fetch_small(base.rstrip("/") + "/index.json", base, proxies)
    if len(data) > _MAX_INDEX:
        raise InvalidInput(f"repository {base}: index.json is larger than {_MAX_INDEX} bytes")
    return parse_index(data)


async def _fetch_small(url: str, base: str, proxies: Mapping[str, str | None]) -> bytes:
    """A document of at most ``_MAX_INDEX`` bytes (one more tells it was larger)."""
    chunks: list[bytes] = []
    got = 0
    try:
        async with http_client(proxies) as client, client.stream("GET", url) as response:
            if response.status_code != 200:
                raise InvalidInput(f"repository {base}: index.json answered {response.status_code}")
            async for chunk in response.aiter_bytes(64 * 1024):
                chunks.append(chunk)
                got += len(chunk)
                if got > _MAX_INDEX:
                    break
    except httpx.HTTPError as exc:
        raise InvalidInput(f"repository {base}: {exc}") from None
    return b"".join(chunks)


class _Sink:
    """Where a download goes: counted, hashed and written, refused past the expected size."""

    def __init__(
        self,
        url: str,
        out: IO[bytes],
        size: int,
        progress: Progress | None,
        algorithm: str = "sha256",
    ) -> None:
        self.url = url
        self.out = out
        self.size = size
        self.progress = progress
        self.digest = hashlib.new(algorithm)
        self.done = 0

    def take(self, chunk: bytes) -> None:
        self.done += len(chunk)
        if self.done > self.size:
            raise InvalidInput(f"{self.url}: larger than the expected {self.size} bytes")
        self.digest.update(chunk)
        self.out.write(chunk)
        if self.progress:
            self.progress(self.done, self.size)

    def copy_file(self, local: Path) -> None:
        """Copy a local file (run in a worker thread: it reads the whole file)."""
        try:
            with local.open("rb") as src:
                while chunk := src.read(64 * 1024):
                    self.take(chunk)
        except OSError as exc:
            raise InvalidInput(f"{self.url}: cannot read: {exc.strerror}") from None


async def download(
    url: str,
    dest: Path,
    *,
    size: int,
    sha256: str,
    proxies: Mapping[str, str | None],
    progress: Progress | None = None,
    algorithm: str = "sha256",
) -> None:
    """Download ``url`` to ``dest``, checking size and digest; the file exists only if valid.

    ``sha256`` is the expected hex digest; ``algorithm`` names another hash when a repository
    format uses one (wazo's plugins.db gives sha1). A local file is copied and hashed in a
    worker thread; an HTTP body is hashed chunk by chunk (64 KiB at a time) as it arrives, so
    the event loop is never held for long.
    """
    tmp = dest.with_name(dest.name + ".part")
    try:
        with tmp.open("wb") as out:
            sink = _Sink(url, out, size, progress, algorithm)
            local = local_path(url)
            if local is not None:
                await asyncio.to_thread(sink.copy_file, local)
            else:
                try:
                    async with (
                        http_client(proxies) as client,
                        client.stream("GET", url) as response,
                    ):
                        if response.status_code != 200:
                            raise InvalidInput(f"{url}: download answered {response.status_code}")
                        async for chunk in response.aiter_bytes(64 * 1024):
                            sink.take(chunk)
                except httpx.HTTPError as exc:
                    raise InvalidInput(f"{url}: {exc}") from None
        if sink.done != size:
            raise InvalidInput(f"{url}: got {sink.done} bytes, the index says {size} (truncated?)")
        if sink.digest.hexdigest() != sha256.lower():
            raise InvalidInput(f"{url}: {algorithm} mismatch, the download is refused")
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)
