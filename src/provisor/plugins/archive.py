"""Safe, bounded extraction of a plugin archive (a tar, plain or gzip/bzip2/xz compressed).

An archive comes from a repository: its sha256 matched the index, but the index may be
hostile. Extraction therefore

- refuses anything that could leave the plugin's folder: absolute paths, ``..``, backslashes,
  control characters, members outside the single top folder, symbolic and hard links, devices,
  FIFOs and sparse files (it only ever creates plain folders and files, so nothing written can
  redirect a later write);
- streams the archive once, member by member (``tarfile``'s ``r|`` mode over our own
  decompressor), and checks each cap as it goes: member count, path depth and length, the
  size of one file and the total extracted bytes. Sizes are counted from the bytes actually
  written, not only from headers, and the decompressed stream itself has a budget, so a
  bomb — a huge member, a huge pax or GNU long-name header, or 200 000 empty files — is
  stopped when the cap is reached, after at most the cap's worth of work;
- removes what it wrote when it refuses.

It is synchronous on purpose: callers run it in a worker thread (``asyncio.to_thread``) so the
event loop keeps serving phones and the REST API while an archive expands.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import shutil
import tarfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Protocol

from provisor.errors import InvalidInput
from provisor.settings import PluginsSettings

__all__ = ["ArchiveLimits", "safe_extract"]

#: Decompressed bytes allowed beyond the declared data for headers (pax, GNU long names),
#: padding and tarfile's read-ahead (10 KiB), per member.
_HEADER_ALLOWANCE = 64 * 1024
_CHUNK = 64 * 1024
_ERRORS = (tarfile.TarError, OSError, EOFError, zlib.error, lzma.LZMAError)

#: ``progress(bytes extracted so far)``, called after each member.
ExtractProgress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class ArchiveLimits:
    """The caps of one extraction (``plugins.archive_*`` settings)."""

    max_extracted_bytes: int = 128 * 1024 * 1024
    max_members: int = 5_000
    max_member_bytes: int = 32 * 1024 * 1024
    max_path_depth: int = 16
    max_path_length: int = 255

    @classmethod
    def from_settings(cls, settings: PluginsSettings) -> ArchiveLimits:
        """The caps configured under ``plugins:``."""
        return cls(
            max_extracted_bytes=settings.archive_max_extracted_bytes,
            max_members=settings.archive_max_members,
            max_member_bytes=settings.archive_max_member_bytes,
            max_path_depth=settings.archive_max_path_depth,
            max_path_length=settings.archive_max_path_length,
        )


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class _Budget(io.RawIOBase):
    """The decompressed tar stream, refused past ``limit`` bytes (raised as members go)."""

    def __init__(self, src: _Readable, limit: int, refuse: Callable[[str], InvalidInput]) -> None:
        super().__init__()
        self._src = src
        self._refuse = refuse
        self.limit = limit
        self.total = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        room = self.limit - self.total
        if room <= 0:
            raise self._refuse(
                "its headers or data exceed the plugins.archive_max_extracted_bytes budget"
                " (a decompression bomb?)"
            )
        view = memoryview(buffer)
        data = self._src.read(min(len(view), room))
        view[: len(data)] = data
        self.total += len(data)
        return len(data)


def _decompressed(raw: IO[bytes]) -> _Readable:
    """The tar stream inside ``raw``, decompressed lazily (bounded memory) by its magic."""
    magic = raw.read(6)
    raw.seek(0)
    if magic.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if magic.startswith(b"BZh"):
        return bz2.BZ2File(raw)
    if magic.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(raw)
    return raw


def _block(size: int) -> int:
    return (size + tarfile.BLOCKSIZE - 1) // tarfile.BLOCKSIZE * tarfile.BLOCKSIZE


class _Extraction:
    """One archive being extracted: the counters every cap is checked against."""

    def __init__(self, archive: Path, dest: Path, top: str, limits: ArchiveLimits) -> None:
        self.archive = archive
        self.dest = dest
        self.top = top
        self.limits = limits
        self.members = 0
        self.written = 0

    def refuse(self, reason: str) -> InvalidInput:
        return InvalidInput(f"archive {self.archive.name}: refused, {reason}")

    def check_member(self, member: tarfile.TarInfo) -> tuple[str, ...]:
        """The member's path parts, once its name, type and declared size pass every rule."""
        limits = self.limits
        self.members += 1
        if self.members > limits.max_members:
            raise self.refuse(
                f"more than {limits.max_members} members (plugins.archive_max_members)"
            )
        name = member.name
        path = PurePosixPath(name)
        if path.is_absolute() or ".." in path.parts or "\\" in name:
            raise self.refuse(f"member {name!r} leaves the plugin folder")
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
            raise self.refuse(f"member {name!r} has a control character in its name")
        if not path.parts or path.parts[0] != self.top:
            raise self.refuse(f"member {name!r} is outside the top folder {self.top!r}")
        if len(name) > limits.max_path_length:
            raise self.refuse(
                f"member path {name[:60]!r}... is longer than {limits.max_path_length}"
                " characters (plugins.archive_max_path_length)"
            )
        if len(path.parts) > limits.max_path_depth:
            raise self.refuse(
                f"member {name!r} is deeper than {limits.max_path_depth} levels"
                " (plugins.archive_max_path_depth)"
            )
        if member.issym() or member.islnk():
            raise self.refuse(f"member {name!r} is a link")
        if member.issparse():
            raise self.refuse(f"member {name!r} is a sparse file")
        if not (member.isfile() or member.isdir()):
            raise self.refuse(f"member {name!r} is a device, FIFO or special file")
        if member.isfile():
            self.check_size(name, member.size, member.size)
        return path.parts

    def check_size(self, name: str, member_bytes: int, more: int) -> None:
        """Refuse once one file or the whole archive is over its cap."""
        limits = self.limits
        if member_bytes > limits.max_member_bytes:
            raise self.refuse(
                f"member {name!r} is larger than {limits.max_member_bytes} bytes"
                " (plugins.archive_max_member_bytes)"
            )
        if self.written + more > limits.max_extracted_bytes:
            raise self.refuse(
                f"it expands to more than {limits.max_extracted_bytes} bytes"
                " (plugins.archive_max_extracted_bytes)"
            )

    def write(self, tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> None:
        """Copy one file out, counting the bytes really written against the caps."""
        target.parent.mkdir(parents=True, exist_ok=True)
        src = tar.extractfile(member)
        if src is None:
            raise self.refuse(f"member {member.name!r} has no data")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        try:
            fd = os.open(target, flags, 0o644)
        except FileExistsError:
            raise self.refuse(f"member {member.name!r} appears twice") from None
        done = 0
        with src, os.fdopen(fd, "wb") as out:
            while chunk := src.read(_CHUNK):
                done += len(chunk)
                self.check_size(member.name, done, len(chunk))
                self.written += len(chunk)
                out.write(chunk)


def safe_extract(
    archive: Path,
    dest: Path,
    top: str,
    limits: ArchiveLimits | None = None,
    progress: ExtractProgress | None = None,
) -> Path:
    """Extract a plugin archive whose single top folder is ``top`` into ``dest``; return it."""
    job = _Extraction(archive, dest, top, limits or ArchiveLimits())
    root = dest / top
    try:
        with archive.open("rb") as raw:
            budget = _Budget(_decompressed(raw), _HEADER_ALLOWANCE, job.refuse)
            with tarfile.open(fileobj=budget, mode="r|") as tar:
                for member in tar:
                    parts = job.check_member(member)
                    budget.limit = member.offset_data + _block(member.size) + _HEADER_ALLOWANCE
                    target = dest.joinpath(*parts)
                    if member.isdir():
                        target.mkdir(mode=0o755, parents=True, exist_ok=True)
                    else:
                        job.write(tar, member, target)
                    if progress is not None:
                        progress(job.written)
    except InvalidInput:
        shutil.rmtree(root, ignore_errors=True)
        raise
    except _ERRORS as exc:
        shutil.rmtree(root, ignore_errors=True)
        raise InvalidInput(
            f"archive {archive.name}: corrupt, truncated or unreadable: {exc}"
        ) from None
    if not root.is_dir():
        raise InvalidInput(f"archive {archive.name}: no {top}/ folder inside")
    return root
