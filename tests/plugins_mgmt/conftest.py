"""A repository served over HTTP on 127.0.0.1 (the "vendor site" edge of the world)."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisor.plugins.build import build_repository

TESTPHONE = Path(__file__).resolve().parents[1] / "support" / "plugins" / "testphone"


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        pass


@pytest.fixture
def web_root(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A folder served at http://127.0.0.1:<port>/ until the test ends."""
    root = tmp_path / "www"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def plugin_source(tmp: Path, version: str, *, marker: str = "", broken: bool = False) -> Path:
    """A copy of the test plugin at some version (optionally broken at import)."""
    sources = tmp / f"src-{version}{'-broken' if broken else ''}"
    target = sources / "testphone"
    shutil.copytree(TESTPHONE, target)
    manifest = (
        (target / "manifest.toml")
        .read_text()
        .replace('version = "1.0.0"', f'version = "{version}"')
    )
    (target / "manifest.toml").write_text(manifest)
    if marker:
        tpl = target / "templates" / "common.cfg"
        tpl.write_text(tpl.read_text() + f"marker = {marker}\n")
    if broken:
        (target / "plugin.py").write_text("raise RuntimeError('broken on purpose')\n")
    return sources


def publish(sources: Path, www: Path) -> dict[str, object]:
    """Build a repository from sources into the served folder."""
    return build_repository(sources, www)


def publish_unchecked(sources: Path, www: Path, plugin_id: str, version: str) -> None:
    """Publish an archive without the build's load check (a broken release on a server)."""
    import hashlib
    import json

    from provisor.plugins.build import _pack

    data = _pack(sources / plugin_id, plugin_id)
    name = f"{plugin_id}-{version}.tar.gz"
    (www / name).write_bytes(data)
    index = {
        "format": 1,
        "plugins": {
            plugin_id: {
                "version": version,
                "file": name,
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        },
    }
    (www / "index.json").write_text(json.dumps(index))
