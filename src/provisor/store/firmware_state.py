"""The ``firmware_state`` table: the firmware packages every node should have, and from where.

An installed row names the package's version and its downloads (URL, size and digest of each,
as the plugin's manifest or wazo ``pkgs.db`` declared them when an operator installed it): each
node downloads from those URLs and checks the sizes and digests. The files themselves are
never kept in the database (firmware can be hundreds of MB). A removed row is a tombstone: a
node that was away removes the package instead of bringing it back.

Rows are written by any node and read by all, so a row is checked when read: a malformed one
is reported for that package only (:class:`FirmwareRecord` ``problem``), never trusted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from provisor.store.tables import firmware_state

__all__ = ["Download", "FirmwareRecord", "FirmwareStateStore"]

_ALGORITHMS = {"sha256": 64, "sha1": 40}
_HEX = re.compile(r"[0-9a-f]+")
#: More downloads than any published package declares (wazo packages name one to a few).
_MAX_DOWNLOADS = 64


@dataclass(frozen=True, slots=True)
class Download:
    """One file of a package: where every node gets it and how it is checked."""

    name: str
    url: str  # http(s)://…, or "" for a file the plugin ships (a wazo plugin's var/cache)
    size: int
    algorithm: str
    digest: str

    def as_json(self) -> dict[str, Any]:
        """The row's form of this download."""
        return {
            "name": self.name,
            "url": self.url,
            "size": self.size,
            "algorithm": self.algorithm,
            "digest": self.digest,
        }


@dataclass(frozen=True, slots=True)
class FirmwareRecord:
    """One firmware package's wanted state."""

    plugin_id: str
    package_id: str
    installed: bool
    version: str = ""
    downloads: tuple[Download, ...] = ()
    problem: str = ""  # why a row read from the database cannot be used ("" when it can)

    @property
    def key(self) -> str:
        """``<plugin>/<package>``: how logs and reports name the package."""
        return f"{self.plugin_id}/{self.package_id}"

    @property
    def size(self) -> int:
        """Bytes to download."""
        return sum(d.size for d in self.downloads)


def _download(raw: object) -> Download:
    """A download read from a row; ValueError naming what is wrong."""
    if not isinstance(raw, dict):
        raise ValueError("a download is not an object")
    name, url, size = raw.get("name"), raw.get("url"), raw.get("size")
    algorithm, digest = raw.get("algorithm"), raw.get("digest")
    if not isinstance(name, str) or not isinstance(url, str):
        raise ValueError("a download's name or url is not text")
    if url and not url.startswith(("http://", "https://")):
        raise ValueError("a download's url is not http(s)")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ValueError("a download's size is not a count of bytes")
    if algorithm not in _ALGORITHMS or not isinstance(digest, str):
        raise ValueError("a download's digest algorithm is not sha256 or sha1")
    if len(digest) != _ALGORITHMS[algorithm] or not _HEX.fullmatch(digest):
        raise ValueError(
            f"a download's {algorithm} digest is not {_ALGORITHMS[algorithm]} hex digits"
        )
    return Download(name, url, size, algorithm, digest)


def _downloads(raw: object) -> tuple[Download, ...]:
    if not isinstance(raw, list) or len(raw) > _MAX_DOWNLOADS:
        raise ValueError(f"downloads is not a list of at most {_MAX_DOWNLOADS}")
    return tuple(_download(item) for item in raw)


class FirmwareStateStore:
    """Read and write the ``firmware_state`` table."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def put(self, record: FirmwareRecord, now: float) -> None:
        """Record a package's wanted state (the last writer wins)."""
        values = {
            "plugin_id": record.plugin_id,
            "package_id": record.package_id,
            "installed": record.installed,
            "version": record.version,
            "size": record.size,
            "downloads": [d.as_json() for d in record.downloads],
            "updated_at": now,
        }
        where = (
            firmware_state.c.plugin_id == record.plugin_id,
            firmware_state.c.package_id == record.package_id,
        )
        for attempt in range(2):  # two nodes writing one package at once: the second retries
            try:
                async with self.engine.begin() as conn:
                    await conn.execute(delete(firmware_state).where(*where))
                    await conn.execute(insert(firmware_state).values(**values))
                return
            except IntegrityError:
                if attempt:
                    raise

    async def records(self) -> list[FirmwareRecord]:
        """Every package's wanted state (a malformed row carries its ``problem``)."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(firmware_state))).all()
        return [_record(r) for r in rows]

    async def record(self, plugin_id: str, package_id: str) -> FirmwareRecord | None:
        """One package's wanted state (None when never recorded)."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(firmware_state).where(
                        firmware_state.c.plugin_id == plugin_id,
                        firmware_state.c.package_id == package_id,
                    )
                )
            ).one_or_none()
        return None if row is None else _record(row)


def _record(r: Any) -> FirmwareRecord:
    """A row as a record, checked: a malformed one carries its ``problem``, no downloads."""
    try:
        downloads = _downloads(r.downloads) if r.installed else ()
        problem = ""
    except ValueError as exc:
        downloads, problem = (), f"its database record is malformed: {exc}"
    return FirmwareRecord(
        r.plugin_id, r.package_id, bool(r.installed), str(r.version), downloads, problem
    )
