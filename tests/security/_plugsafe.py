"""Crafted plugin archives and repository indexes for the plugin-id and archive-cap tests.

Archives are written member by member with ``tarfile`` (the tests' "hostile repository");
the big ones are gzip streams of concatenated identical members, so a 1 GiB expansion costs
about 1 MiB to build and nothing to store.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import json
import tarfile
import zlib
from collections.abc import Iterable
from pathlib import Path

from tests.conftest import Server
from tests.plugins_mgmt.conftest import TESTPHONE

#: A member: (name, data) for a file, (name, None) for a folder.
Member = tuple[str, bytes | None]


def plugin_members(top: str, *, plugin_py: str | None = None) -> list[Member]:
    """The test plugin's files under ``top`` (its manifest id set to ``top``)."""
    out: list[Member] = [(top, None)]
    for path in sorted(TESTPHONE.rglob("*")):
        rel = path.relative_to(TESTPHONE).as_posix()
        if path.is_dir():
            out.append((f"{top}/{rel}", None))
        else:
            data = path.read_bytes()
            if rel == "manifest.toml":
                data = data.replace(b'id = "testphone"', f'id = "{top}"'.encode())
            out.append((f"{top}/{rel}", data))
    if plugin_py is not None:
        out.append((f"{top}/plugin.py", plugin_py.encode()))
    return out


def tar_bytes(members: Iterable[Member]) -> bytes:
    """An uncompressed tar of these members (end-of-archive blocks included)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                info.size = len(data)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def tar_gz(members: Iterable[Member]) -> bytes:
    """A gzip-compressed tar of these members."""
    return gzip.compress(tar_bytes(members), mtime=0)


def zero_bomb(top: str, member: str, expanded: int) -> bytes:
    """A .tar.gz whose ``member`` is ``expanded`` bytes of zeros, about expanded/1000 bytes."""
    head = tarfile.TarInfo(member)
    head.size = expanded
    head.mode = 0o644
    header = tarfile.TarInfo(top)
    header.type = tarfile.DIRTYPE
    start = header.tobuf(tarfile.GNU_FORMAT) + head.tobuf(tarfile.GNU_FORMAT)
    chunk = 1024 * 1024
    zeros = _gzip_member(bytes(chunk))  # computed once, repeated: gzip members concatenate
    whole, rest = divmod(expanded, chunk)
    pad = (-expanded) % tarfile.BLOCKSIZE
    parts = [_gzip_member(start), zeros * whole, _gzip_member(bytes(rest + pad + 1024))]
    return b"".join(parts)


def pax_header_bomb(top: str, declared: int) -> bytes:
    """A .tar.gz whose first header is a pax extended header claiming ``declared`` bytes."""
    head = tarfile.TarInfo(f"{top}/././@PaxHeader")
    head.type = tarfile.XHDTYPE
    head.size = declared
    first = head.tobuf(tarfile.USTAR_FORMAT)
    chunk = 1024 * 1024
    zeros = _gzip_member(bytes(chunk))
    return _gzip_member(first) + zeros * (declared // chunk) + _gzip_member(bytes(1024))


def _gzip_member(data: bytes) -> bytes:
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    return comp.compress(data) + comp.flush()


def index_entry(file: str, data: bytes, version: str = "1.0.0") -> dict[str, object]:
    """An index entry for an archive's bytes."""
    return {
        "version": version,
        "file": file,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "description": "crafted",
    }


def publish(www: Path, archives: dict[str, bytes], extra: dict[str, object] | None = None) -> None:
    """Write archives ``<id>-1.0.0.tar.gz`` and an index naming them (plus raw extra entries)."""
    plugins: dict[str, object] = {}
    for pid, data in archives.items():
        name = f"{pid}-1.0.0.tar.gz"
        (www / name).write_bytes(data)
        plugins[pid] = index_entry(name, data)
    plugins.update(extra or {})
    (www / "index.json").write_text(json.dumps({"format": 1, "plugins": plugins}))


async def wait_op(srv: Server, location: str) -> dict[str, str]:
    """Poll an operation until it is finished (bounded); its final body."""
    for _ in range(1500):
        body: dict[str, str] = (await srv.api.get(location)).json()
        head = body["status"].split("(")[0]
        if head.endswith(("success", "fail")):
            return body
        await asyncio.sleep(0.02)
    raise AssertionError(f"operation {location} did not finish")


async def use_repository(srv: Server, url: str) -> None:
    """Point the server at a repository and fetch its index."""
    r = await srv.api.put("/0.2/configure/plugin_server", json={"param": {"value": url}})
    assert r.status_code == 204, r.text
    r = await srv.api.post("/0.2/pg_mgr/install/update", json={})
    assert r.status_code == 201, r.text
    assert (await wait_op(srv, r.headers["location"]))["status"].startswith("update|success")


def leftovers(plugins_dir: Path) -> list[str]:
    """Staging or half-moved folders left in the plugins folder."""
    if not plugins_dir.is_dir():
        return []
    return sorted(p.name for p in plugins_dir.iterdir() if p.name.startswith("."))
