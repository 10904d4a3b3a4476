"""A wazo-format repository (``plugins.db`` + ``.tar.bz2`` + sha1) served on 127.0.0.1."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
from pathlib import Path
from typing import Any

from tests.plugins_mgmt.conftest import web_root  # noqa: F401 - the served folder fixture

WAZO_PLUGINS = Path(__file__).resolve().parents[1] / "support" / "wazo_plugins"


def wazo_source(
    tmp: Path, plugin_id: str = "wazo-testphone", version: str = "1.0.0", variant: str = ""
) -> Path:
    """A copy of the test plugin source under ``plugin_id`` at ``version``; a ``variant``
    folder (``wazo-testsplit``) replaces its ``entry.py`` and ``plugin-info``."""
    target = tmp / f"wsrc-{plugin_id}-{version}" / plugin_id
    shutil.copytree(WAZO_PLUGINS / "wazo-testphone", target)
    if variant:
        shutil.copytree(WAZO_PLUGINS / variant, target, dirs_exist_ok=True)
    info = json.loads((target / "plugin-info").read_text())
    info["version"] = version
    (target / "plugin-info").write_text(json.dumps(info))
    return target


def pack(folder: Path) -> bytes:
    """``<id>/...`` as a bzip2 tar, the way wazo's build tool packs a plugin."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:bz2") as tar:
        tar.add(folder, arcname=folder.name)
    return out.getvalue()


def publish_wazo(www: Path, *folders: Path, tamper: bool = False) -> dict[str, Any]:
    """Write ``plugins.db`` and the archives of ``folders`` into the served folder."""
    db: dict[str, Any] = {}
    for folder in folders:
        info = json.loads((folder / "plugin-info").read_text())
        data = pack(folder)
        name = f"{folder.name}-{info['version']}.tar.bz2"
        db[folder.name] = {
            **info,
            "filename": name,
            "dsize": len(data),
            "sha1sum": hashlib.sha1(data).hexdigest(),
        }
        if tamper:
            data = data[:-20] + bytes(b ^ 0xFF for b in data[-20:])
        (www / name).write_bytes(data)
    (www / "plugins.db").write_text(json.dumps(db))
    return db
