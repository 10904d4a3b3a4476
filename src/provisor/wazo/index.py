"""wazo-format plugin repositories: ``plugins.db`` beside ``<id>-<version>.tar.bz2`` archives.

``plugins.db`` is a JSON object mapping each plugin id to its ``plugin-info`` fields plus
``filename``, ``dsize`` (bytes) and ``sha1sum``. provisor's own repositories have an
``index.json`` instead; :func:`repository_kind` tells them apart by what the server has.
Downloads, size and checksum checks and safe extraction are provisor's (plugins.repository).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from provisor.domain import ids
from provisor.errors import InvalidInput
from provisor.plugins.repository import EntryFields, check_entry, http_client, local_path

__all__ = ["WazoEntry", "fetch_plugins_db", "parse_plugins_db", "repository_kind"]

log = logging.getLogger(__name__)

DB_NAME = "plugins.db"
_MAX_DB = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class WazoEntry:
    """One plugin of a wazo repository."""

    id: str
    version: str
    description: str
    vendor: str
    capabilities: Mapping[str, Any]
    file: str
    size: int
    sha1: str

    @property
    def checksum(self) -> tuple[str, str]:
        """(hash algorithm, hex digest) the download must match."""
        return ("sha1", self.sha1)

    def public(self) -> dict[str, Any]:
        """The entry as ``/pg_mgr/install/installable`` shows it (wazo's own fields)."""
        return {
            "version": self.version,
            "description": self.description,
            "vendor": self.vendor,
            "capabilities": dict(self.capabilities),
            "dsize": self.size,
            "sha1sum": self.sha1,
        }

    def cached(self) -> dict[str, Any]:
        """The entry as written back into the cached ``plugins.db``."""
        return {
            "version": self.version,
            "description": self.description,
            "vendor": self.vendor,
            "capabilities": dict(self.capabilities),
            "filename": self.file,
            "dsize": self.size,
            "sha1sum": self.sha1,
        }


def parse_plugins_db(data: bytes) -> dict[str, WazoEntry]:
    """Validate a ``plugins.db``; InvalidInput names the plugin and the field."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"plugins.db: not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidInput("plugins.db: expected a JSON object of plugins by id")
    out: dict[str, WazoEntry] = {}
    for pid, entry in doc.items():
        try:
            out[pid] = _entry(pid, entry)
        except InvalidInput as exc:  # as for provisor's index: the rest stays usable
            log.warning("plugins.db entry left out: %s", exc.message)
    return out


_FIELDS = EntryFields(file="filename", size="dsize", digest="sha1sum", digest_hex=40)


def _entry(pid: str, entry: object) -> WazoEntry:
    """One checked ``plugins.db`` entry; InvalidInput names the plugin and the field."""
    ids.plugin_id(pid, "plugins.db: plugin id")
    checked = check_entry(f"plugins.db: plugin {pid!r}", entry, _FIELDS)
    return WazoEntry(id=pid, sha1=checked.pop("digest"), **checked)


async def _get(base: str, name: str, proxies: Mapping[str, str | None]) -> bytes | None:
    """A repository file's bytes, or None when the server has no such file."""
    local = local_path(base)
    if local is not None:
        path = local / name
        if not path.is_file():
            return None
        if path.stat().st_size > _MAX_DB:
            raise InvalidInput(f"repository {base}: {name} is too large")
        return path.read_bytes()
    url = base.rstrip("/") + "/" + name
    try:
        async with http_client(proxies) as client, client.stream("GET", url) as response:
            if response.status_code in (403, 404, 410):
                return None
            if response.status_code != 200:
                raise InvalidInput(f"repository {base}: {name} answered {response.status_code}")
            body = b""
            async for chunk in response.aiter_bytes(65536):
                body += chunk
                if len(body) > _MAX_DB:
                    raise InvalidInput(f"repository {base}: {name} is too large")
            return body
    except httpx.HTTPError as exc:
        raise InvalidInput(f"repository {base}: {exc}") from None


async def repository_kind(
    base: str, proxies: Mapping[str, str | None]
) -> Literal["provisor", "wazo"]:
    """'provisor' when the server has index.json, 'wazo' when it has plugins.db."""
    local = local_path(base)
    if local is not None:
        if (local / "index.json").is_file():
            return "provisor"
        if (local / DB_NAME).is_file():
            return "wazo"
        raise InvalidInput(f"repository {base}: neither index.json nor {DB_NAME} found")
    if await _get(base, "index.json", proxies) is not None:
        return "provisor"
    return "wazo"


async def fetch_plugins_db(base: str, proxies: Mapping[str, str | None]) -> dict[str, WazoEntry]:
    """Read and validate the ``plugins.db`` of a wazo repository."""
    data = await _get(base, DB_NAME, proxies)
    if data is None:
        raise InvalidInput(f"repository {base}: neither index.json nor {DB_NAME} found")
    return parse_plugins_db(data)
