"""``provisor plugin build``: a repository (index.json + archives) from plugin sources.

Archives are deterministic (sorted members, fixed mtime, no owner names) so the same sources
always give the same sha256. Every plugin is loaded before it is packed: a broken one is
reported and left out, never shipped.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import tarfile
from pathlib import Path
from typing import Any

from provisor.errors import PluginError
from provisor.plugins.loader import load_plugin

__all__ = ["BUNDLED_SOURCES", "build_repository", "pack_folder"]

log = logging.getLogger(__name__)

#: The plugins shipped with provisor: inside the installed package (a wheel carries them, see
#: setup.py), else in the source tree (a clone or an editable install).
_PACKAGED = Path(__file__).resolve().parents[1] / "bundled_plugins"
BUNDLED_SOURCES = (
    _PACKAGED if _PACKAGED.is_dir() else Path(__file__).resolve().parents[3] / "plugins"
)

_MTIME = 1_700_000_000


def pack_folder(folder: Path, top: str) -> bytes:
    """A plugin folder as a deterministic ``.tar.gz`` whose top folder is ``top``."""
    return _pack(folder, top)


def _pack(folder: Path, top: str) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        inside = folder.resolve()
        paths = sorted(
            p
            for p in folder.rglob("*")
            if "__pycache__" not in p.parts
            and not p.is_symlink()
            and p.resolve().is_relative_to(inside)  # a link never packs a file from elsewhere
        )
        for path in [folder, *paths]:
            rel = path.relative_to(folder)
            name = top if str(rel) == "." else f"{top}/{rel.as_posix()}"
            info = tarfile.TarInfo(name)
            info.mtime = _MTIME
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if path.is_dir():
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            elif path.is_file() and not path.is_symlink():
                data = path.read_bytes()
                info.size = len(data)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=_MTIME) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def build_repository(sources: Path, out: Path) -> dict[str, Any]:
    """Pack every valid plugin of ``sources`` into ``out``; returns the index written."""
    out.mkdir(parents=True, exist_ok=True)
    plugins: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for folder in sorted(p for p in sources.iterdir() if (p / "manifest.toml").is_file()):
        try:
            plugin = load_plugin(folder)
        except PluginError as exc:
            log.error("plugin %s left out of the repository: %s", folder.name, exc.message)
            errors[folder.name] = exc.message
            continue
        m = plugin.manifest
        data = _pack(folder, m.id)
        # id and version passed provisor.domain.ids in the manifest: the name is a plain file name
        name = f"{m.id}-{m.version}.tar.gz"
        (out / name).write_bytes(data)
        plugins[m.id] = {
            "version": m.version,
            "description": m.description,
            "vendor": m.vendor,
            "capabilities": {
                name: {"lines": model.lines, "type": model.type} for name, model in m.models.items()
            },
            "file": name,
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
    index = {"format": 1, "plugins": plugins}
    (out / "index.json").write_text(json.dumps(index, indent=1, sort_keys=True))
    if errors:
        index["errors"] = errors
    return index
