"""Plugin repositories: the index, verified downloads and safe extraction.

A repository is a folder or an HTTP(S) URL holding ``index.json`` beside plugin archives
(``<id>-<version>.tar.gz``, one top folder named ``<id>``). Every archive is checked against
the index's size and sha256 before it is opened, and extraction refuses anything that could
leave the plugin's folder: absolute paths, ``..``, links, devices, FIFOs, members outside the
single top folder.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import httpx

from provisor.errors import InvalidInput

__all__ = [
    "IndexEntry",
    "Progress",
    "download",
    "fetch_index",
    "parse_index",
    "safe_extract",
]

Progress = Callable[[int, int], None]

_FORMAT = 1
_MAX_INDEX = 16 * 1024 * 1024


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
        if not isinstance(entry, dict):
            raise InvalidInput(f"repository index: plugin {pid!r} must be an object")
        for key, kind in (("version", str), ("file", str), ("sha256", str), ("size", int)):
            if not isinstance(entry.get(key), kind) or isinstance(entry.get(key), bool):
                raise InvalidInput(
                    f"repository index: plugin {pid!r}: field {key!r} is missing or not a {kind.__name__}"
                )
        name = entry["file"]
        if "/" in name or "\\" in name or name.startswith("."):
            raise InvalidInput(
                f"repository index: plugin {pid!r}: file {name!r} is not a plain file name"
            )
        if len(entry["sha256"]) != 64:
            raise InvalidInput(f"repository index: plugin {pid!r}: sha256 must be 64 hex digits")
        out[pid] = IndexEntry(
            id=pid,
            version=entry["version"],
            description=str(entry.get("description", "")),
            vendor=str(entry.get("vendor", "")),
            capabilities=entry.get("capabilities")
            if isinstance(entry.get("capabilities"), dict)
            else {},
            file=name,
            size=entry["size"],
            sha256=entry["sha256"].lower(),
        )
    return out


def _local(url: str) -> Path | None:
    parts = urlsplit(url)
    if parts.scheme == "file":
        return Path(parts.path)
    if parts.scheme == "":
        return Path(url)
    return None


def _client(proxies: Mapping[str, str | None]) -> httpx.AsyncClient:
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
    local = _local(base)
    if local is not None:
        try:
            return parse_index((local / "index.json").read_bytes())
        except OSError as exc:
            raise InvalidInput(
                f"repository {base}: cannot read index.json: {exc.strerror}"
            ) from None
    url = base.rstrip("/") + "/index.json"
    try:
        async with _client(proxies) as client:
            response = await client.get(url)
    except httpx.HTTPError as exc:
        raise InvalidInput(f"repository {base}: {exc}") from None
    if response.status_code != 200:
        raise InvalidInput(f"repository {base}: index.json answered {response.status_code}")
    if len(response.content) > _MAX_INDEX:
        raise InvalidInput(f"repository {base}: index.json is too large")
    return parse_index(response.content)


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
    format uses one (wazo's plugins.db gives sha1).
    """
    tmp = dest.with_name(dest.name + ".part")
    digest = hashlib.new(algorithm)
    done = 0

    def take(chunk: bytes, out: Any) -> None:
        nonlocal done
        done += len(chunk)
        if done > size:
            raise InvalidInput(f"{url}: larger than the expected {size} bytes")
        digest.update(chunk)
        out.write(chunk)
        if progress:
            progress(done, size)

    try:
        with tmp.open("wb") as out:
            local = _local(url)
            if local is not None:
                try:
                    with local.open("rb") as src:
                        while chunk := src.read(64 * 1024):
                            take(chunk, out)
                except OSError as exc:
                    raise InvalidInput(f"{url}: cannot read: {exc.strerror}") from None
            else:
                try:
                    async with _client(proxies) as client, client.stream("GET", url) as response:
                        if response.status_code != 200:
                            raise InvalidInput(f"{url}: download answered {response.status_code}")
                        async for chunk in response.aiter_bytes(64 * 1024):
                            take(chunk, out)
                except httpx.HTTPError as exc:
                    raise InvalidInput(f"{url}: {exc}") from None
        if done != size:
            raise InvalidInput(f"{url}: got {done} bytes, the index says {size} (truncated?)")
        if digest.hexdigest() != sha256.lower():
            raise InvalidInput(f"{url}: {algorithm} mismatch, the download is refused")
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)


def safe_extract(archive: Path, dest: Path, top: str) -> Path:
    """Extract a plugin archive whose single top folder is ``top`` into ``dest``; return it."""
    try:
        tar = tarfile.open(archive, "r:*")  # noqa: SIM115 - closed by the with below
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise InvalidInput(f"archive {archive.name}: not a readable tar archive: {exc}") from None
    with tar:
        try:
            members = tar.getmembers()
        except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
            raise InvalidInput(f"archive {archive.name}: corrupt or truncated: {exc}") from None
        for member in members:
            name = member.name
            path = PurePosixPath(name)
            if path.is_absolute() or ".." in path.parts or "\\" in name:
                raise InvalidInput(
                    f"archive {archive.name}: member {name!r} leaves the plugin folder"
                )
            if not path.parts or path.parts[0] != top:
                raise InvalidInput(
                    f"archive {archive.name}: member {name!r} is outside the top folder {top!r}"
                )
            if member.issym() or member.islnk():
                raise InvalidInput(f"archive {archive.name}: member {name!r} is a link")
            if not (member.isfile() or member.isdir()):
                raise InvalidInput(
                    f"archive {archive.name}: member {name!r} is a device, FIFO or special file"
                )
        try:
            tar.extractall(dest, members=members, filter="data")
        except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
            raise InvalidInput(f"archive {archive.name}: extraction failed: {exc}") from None
    root = dest / top
    if not root.is_dir():
        raise InvalidInput(f"archive {archive.name}: no {top}/ folder inside")
    return root
