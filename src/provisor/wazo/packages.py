"""Firmware and language packages of wazo plugins (``pkgs/pkgs.db``), installed by the server.

``pkgs.db`` is an INI file: ``[pkg_<id>]`` (``version``, ``description``, ``files``, ``install``),
``[file_<name>]`` (``filename``, ``url``, ``size``, ``sha1sum``) and ``[install_<name>]`` whose
steps ``a-b: <command> <args>`` move files from one working folder to the next: ``a`` holds the
downloads, the last folder is copied into the plugin's package root (its ``var/tftpboot`` or the
folder its FetchfwPluginHelper names). Only the two commands the published plugins use are
supported, written here without a shell: ``cp SRC... DEST`` (globs in the source folder, DEST a
folder when it ends with ``/`` or is ``./``), ``unzip ZIP`` and ``include FILE...``; anything
else is refused by name. A file with an empty ``url`` is taken from the plugin's ``var/cache``. Downloads are checked against size and SHA-1; archives are extracted with caps and no
path may leave its folder.
"""

from __future__ import annotations

import configparser
import glob
import json
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from provisor.errors import InvalidInput
from provisor.plugins.repository import download

__all__ = [
    "WazoPackage",
    "install_package",
    "installed_packages",
    "read_packages",
    "uninstall_package",
]

_STEP = re.compile(r"^([a-z])-([a-z])$")
_MAX_MEMBERS = 20_000
_MAX_EXTRACTED = 2 * 1024 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class PkgFile:
    """One download of a package."""

    name: str
    url: str
    size: int
    sha1: str


@dataclass(frozen=True, slots=True)
class WazoPackage:
    """A package a wazo plugin offers."""

    id: str
    version: str
    description: str
    files: tuple[PkgFile, ...]
    steps: tuple[tuple[str, str, str, tuple[str, ...]], ...]

    @property
    def size(self) -> int:
        """Bytes to download."""
        return sum(f.size for f in self.files)

    def public(self) -> dict[str, Any]:
        """The package as the package endpoints list it."""
        return {"version": self.version, "description": self.description, "size": self.size}


def _plain(name: str, what: str) -> str:
    if not name or "/" in name or "\\" in name or name.startswith(".") or "\x00" in name:
        raise InvalidInput(f"pkgs.db: {what} {name!r} is not a plain file name")
    return name


def read_packages(plugin_root: Path) -> dict[str, WazoPackage]:
    """The packages of ``plugin_root/pkgs/pkgs.db`` (none when the plugin has no such file)."""
    db = plugin_root / "pkgs" / "pkgs.db"
    if not db.is_file():
        return {}
    parser = configparser.RawConfigParser()
    try:
        parser.read_string(db.read_text(encoding="utf-8"))
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise InvalidInput(f"pkgs.db of {plugin_root.name}: {exc}") from None
    out: dict[str, WazoPackage] = {}
    for section in parser.sections():
        if not section.startswith("pkg_"):
            continue
        pkg_id = section[4:]
        files = []
        for name in parser.get(section, "files", fallback="").split():
            fs = f"file_{name}"
            if not parser.has_section(fs):
                raise InvalidInput(f"pkgs.db: package {pkg_id!r} names unknown file {name!r}")
            url = parser.get(fs, "url", fallback="")
            try:
                size = int(parser.get(fs, "size", fallback=""))
            except ValueError:
                raise InvalidInput(f"pkgs.db: file {name!r}: size is not a number") from None
            sha1 = parser.get(fs, "sha1sum", fallback="")
            if not re.fullmatch(r"[0-9a-fA-F]{40}", sha1):
                raise InvalidInput(f"pkgs.db: file {name!r}: sha1sum must be 40 hex digits")
            filename = parser.get(fs, "filename", fallback=PurePosixPath(url).name)
            files.append(PkgFile(_plain(filename, "file name"), url, size, sha1.lower()))
        steps = []
        install = parser.get(section, "install", fallback="")
        if install:
            ins = f"install_{install}"
            if not parser.has_section(ins):
                raise InvalidInput(f"pkgs.db: package {pkg_id!r} names unknown install {install!r}")
            for key, value in parser.items(ins):
                m = _STEP.match(key)
                if m is None:
                    raise InvalidInput(f"pkgs.db: install {install!r}: bad step {key!r}")
                cmd, *args = value.split()
                steps.append((m.group(1), m.group(2), cmd, tuple(args)))
        out[pkg_id] = WazoPackage(
            id=pkg_id,
            version=parser.get(section, "version", fallback=""),
            description=parser.get(section, "description", fallback=""),
            files=tuple(files),
            steps=tuple(steps),
        )
    return out


def _inside(base: Path, relative: str) -> Path:
    target = (base / relative).resolve()
    if not target.is_relative_to(base.resolve()) or ".." in PurePosixPath(relative).parts:
        raise InvalidInput(f"package step: {relative!r} leaves its folder")
    return target


def _cp(src_dir: Path, dst_dir: Path, args: tuple[str, ...], downloads: list[str]) -> None:
    if len(args) < 2:
        raise InvalidInput("package step: cp needs a source and a destination")
    *sources, dest = args
    to_dir = dest.endswith("/") or dest in (".", "./") or len(sources) > 1
    for pattern in sources:
        pattern = _expand(pattern, downloads)
        matches = sorted(
            p for p in src_dir.glob(pattern) if p.resolve().is_relative_to(src_dir.resolve())
        )
        if not matches:
            raise InvalidInput(f"package step: cp found nothing for {pattern!r}")
        for match in matches:
            if match.is_symlink():
                raise InvalidInput(f"package step: {match.name!r} is a link")
            target = _inside(dst_dir, dest)
            if to_dir:
                target.mkdir(parents=True, exist_ok=True)
                target = target / match.name
            target.parent.mkdir(parents=True, exist_ok=True)
            if match.is_dir():
                shutil.copytree(match, target, symlinks=False, dirs_exist_ok=True)
            else:
                shutil.copyfile(match, target)


def _unzip(src_dir: Path, dst_dir: Path, args: tuple[str, ...], downloads: list[str]) -> None:
    if len(args) != 1:
        raise InvalidInput("package step: unzip takes one archive")
    pattern = _expand(args[0], downloads)
    for archive in sorted(src_dir.glob(pattern)):
        try:
            with zipfile.ZipFile(archive) as zf:
                infos = zf.infolist()
                if len(infos) > _MAX_MEMBERS or sum(i.file_size for i in infos) > _MAX_EXTRACTED:
                    raise InvalidInput(f"package: {archive.name} is too large once extracted")
                for info in infos:
                    _inside(dst_dir, info.filename)
                    if (info.external_attr >> 16) & 0o170000 == 0o120000:
                        raise InvalidInput(f"package: {archive.name}: {info.filename!r} is a link")
                zf.extractall(dst_dir)
        except zipfile.BadZipFile as exc:
            raise InvalidInput(f"package: {archive.name} is not a zip archive: {exc}") from None


def _expand(arg: str, downloads: list[str]) -> str:
    m = re.fullmatch(r"\$FILE(\d+)", arg)
    if m is None:
        return arg
    index = int(m.group(1)) - 1
    if not 0 <= index < len(downloads):
        raise InvalidInput(f"package step: {arg} names no download")
    return glob.escape(downloads[index])


def _include(src_dir: Path, dst_dir: Path, args: tuple[str, ...], downloads: list[str]) -> None:
    """Take files as they are into the next folder (``include NAME...``)."""
    if not args:
        raise InvalidInput("package step: include needs a file")
    _cp(src_dir, dst_dir, (*args, "./"), downloads)


_COMMANDS: Mapping[str, Callable[[Path, Path, tuple[str, ...], list[str]], None]] = {
    "cp": _cp,
    "unzip": _unzip,
    "include": _include,
}


def _state(plugin_root: Path) -> Path:
    return plugin_root / "var" / "installed" / "provisor-packages.json"


def installed_packages(plugin_root: Path) -> dict[str, dict[str, Any]]:
    """Installed packages with their version and files (relative to the plugin folder)."""
    state = _state(plugin_root)
    return dict(json.loads(state.read_text())) if state.is_file() else {}


async def install_package(
    plugin_root: Path,
    package_root: Path,
    pkg: WazoPackage,
    cache: Path,
    proxies: Mapping[str, str | None],
    progress: Callable[[int, int], None],
) -> None:
    """Download, verify, run the install steps in a scratch folder, copy the result in."""
    for cmd in {step[2] for step in pkg.steps}:
        if cmd not in _COMMANDS:
            raise InvalidInput(f"package {pkg.id!r}: install command {cmd!r} is not supported")
    cache.mkdir(parents=True, exist_ok=True)
    done = 0
    with tempfile.TemporaryDirectory(prefix="wazo-pkg-", dir=cache) as scratch:
        folders = {"a": Path(scratch) / "a"}
        folders["a"].mkdir()
        for f in pkg.files:

            def report(got: int, _total: int, base: int = done) -> None:
                progress(base + got, pkg.size)

            # a file without a URL ships in the plugin's var/cache (checked all the same)
            source = f.url or str(plugin_root / "var" / "cache" / f.name)
            await download(
                source,
                folders["a"] / f.name,
                size=f.size,
                sha256=f.sha1,
                algorithm="sha1",
                proxies=proxies,
                progress=report,
            )
            done += f.size
        last = "a"
        for src, dst, cmd, args in pkg.steps:
            if src not in folders:
                raise InvalidInput(f"package {pkg.id!r}: step {src}-{dst} reads an unknown folder")
            folders.setdefault(dst, Path(scratch) / dst).mkdir(exist_ok=True)
            _COMMANDS[cmd](folders[src], folders[dst], args, [f.name for f in pkg.files])
            last = dst
        result = folders[last]
        root = package_root.resolve()
        if not root.is_relative_to(plugin_root.resolve()):
            raise InvalidInput(f"package {pkg.id!r}: its install folder is outside the plugin")
        written: list[str] = []
        for path in sorted(result.rglob("*")):
            if path.is_symlink() or not path.is_file():
                continue
            relative = path.relative_to(result)
            target = _inside(root, str(relative))
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".part")
            shutil.copyfile(path, tmp)
            tmp.replace(target)
            written.append(str(target.relative_to(plugin_root.resolve())))
    state = installed_packages(plugin_root)
    state[pkg.id] = {"version": pkg.version, "description": pkg.description, "files": written}
    _state(plugin_root).parent.mkdir(parents=True, exist_ok=True)
    _state(plugin_root).write_text(json.dumps(state))


def uninstall_package(plugin_root: Path, pkg_id: str) -> None:
    """Remove the files a package installed."""
    state = installed_packages(plugin_root)
    if pkg_id not in state:
        raise InvalidInput(f"package {pkg_id!r} is not installed")
    base = plugin_root.resolve()
    for relative in state[pkg_id].get("files", []):
        target = (base / relative).resolve()
        if target.is_relative_to(base):
            target.unlink(missing_ok=True)
    del state[pkg_id]
    _state(plugin_root).write_text(json.dumps(state))
