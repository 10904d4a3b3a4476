"""Plugin archives are extracted under caps, off the event loop.

Attack (issue 10): a 1 MiB archive expanding to 1 GiB, or one of 200 000 small files, stalled
the REST API and the phone listeners for 11 s / 56 s: extraction ran on the event loop with no
cap. Here the caps (``plugins.archive_*``) refuse such archives with the cap named, stop
before the cap's worth of work is exceeded, leave no staging folder and install nothing; and
a large but allowed extraction runs while the REST API and a phone file keep being answered,
shown by the order of events (answers observed between two progress reports of the running
extraction), never by timing.
"""

from __future__ import annotations

import asyncio
import re
import tarfile
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from provisor.errors import InvalidInput
from provisor.plugins.archive import ArchiveLimits, safe_extract
from provisor.settings import PluginsSettings
from tests.conftest import Server, make_settings, start_server
from tests.plugins_mgmt.conftest import web_root  # noqa: F401 - the repository fixture
from tests.security._plugsafe import (
    Member,
    leftovers,
    pax_header_bomb,
    plugin_members,
    publish,
    tar_gz,
    use_repository,
    wait_op,
    zero_bomb,
)

UA = "TestPhone-TP100/1.2.3 (00:11:22:33:44:55)"
MiB = 1024 * 1024


def _extract(
    tmp_path: Path, data: bytes, limits: ArchiveLimits, name: str = "a"
) -> tuple[pytest.ExceptionInfo[InvalidInput], Path, list[int]]:
    """Extract ``data`` expecting a refusal; the error, the (emptied) dest, progress seen."""
    archive = tmp_path / f"{name}.tar.gz"
    archive.write_bytes(data)
    dest = tmp_path / f"{name}-dest"
    dest.mkdir()
    seen: list[int] = []
    with pytest.raises(InvalidInput) as err:
        safe_extract(archive, dest, "p", limits, seen.append)
    return err, dest, seen


def _files(top: str, count: int, size: int) -> list[Member]:
    return [(top, None), *((f"{top}/f{i}", bytes(size)) for i in range(count))]


@pytest.mark.parametrize(
    ("members", "limits", "setting"),
    [
        (
            lambda: _files("p", 8, MiB),
            ArchiveLimits(max_extracted_bytes=4 * MiB),
            "max_extracted_bytes",
        ),
        (lambda: _files("p", 60, 0), ArchiveLimits(max_members=50), "max_members"),
        (lambda: _files("p", 2, 2 * MiB), ArchiveLimits(max_member_bytes=MiB), "max_member_bytes"),
        (lambda: [("p", None), ("p/" + "d/" * 20 + "f", b"x")], ArchiveLimits(), "max_path_depth"),
        (lambda: [("p", None), ("p/" + "n" * 300, b"x")], ArchiveLimits(), "max_path_length"),
    ],
)
def test_each_cap_refuses_and_cleans_up(
    tmp_path: Path, members: Callable[[], list[Member]], limits: ArchiveLimits, setting: str
) -> None:
    err, dest, seen = _extract(tmp_path, tar_gz(members()), limits)
    assert f"(plugins.archive_{setting})" in err.value.message
    assert list(dest.iterdir()) == []
    # never more than the cap was written, whatever the archive holds
    assert max(seen, default=0) <= limits.max_extracted_bytes
    if setting == "max_extracted_bytes":
        assert seen[-1] == 4 * MiB  # stopped at the cap, the rest never written


def test_a_1_gib_zero_bomb_is_stopped_at_its_header(tmp_path: Path) -> None:
    bomb = zero_bomb("p", "p/zeros.bin", 1024 * MiB)
    assert len(bomb) < 2 * MiB  # the "1 MiB archive that expands to 1 GiB"
    err, dest, seen = _extract(tmp_path, bomb, ArchiveLimits())
    assert "(plugins.archive_max_member_bytes)" in err.value.message
    assert seen == [0] and list(dest.iterdir()) == []
    # with a generous per-file cap the total cap stops it, after exactly the cap's bytes
    limits = ArchiveLimits(max_member_bytes=2048 * MiB, max_extracted_bytes=3 * MiB)
    err, dest, seen = _extract(tmp_path, bomb, limits, name="b")
    assert "(plugins.archive_max_extracted_bytes)" in err.value.message
    assert seen == [0] and list(dest.iterdir()) == []


def test_a_huge_pax_header_is_stopped_by_the_stream_budget(tmp_path: Path) -> None:
    # tarfile reads a pax header whole into memory: 256 MiB here without the budget
    bomb = pax_header_bomb("p", 256 * MiB)
    tracemalloc.start()
    try:
        err, dest, _ = _extract(tmp_path, bomb, ArchiveLimits())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "plugins.archive_max_extracted_bytes budget" in err.value.message
    assert peak < 8 * MiB, peak
    assert list(dest.iterdir()) == []


def test_many_small_files_stop_at_the_member_cap(tmp_path: Path) -> None:
    # the 200 000 small files, scaled down: the count is what is capped
    err, dest, seen = _extract(
        tmp_path, tar_gz(_files("p", 3000, 0)), ArchiveLimits(max_members=500)
    )
    assert "more than 500 members (plugins.archive_max_members)" in err.value.message
    assert len(seen) == 500 and list(dest.iterdir()) == []


def test_limits_come_from_the_settings() -> None:
    limits = ArchiveLimits.from_settings(
        PluginsSettings(
            archive_max_extracted_bytes=5000,
            archive_max_members=6,
            archive_max_member_bytes=7,
            archive_max_path_depth=8,
            archive_max_path_length=90,
        )
    )
    assert limits == ArchiveLimits(5000, 6, 7, 8, 90)


async def _server(tmp_path: Path, database_url: str, **caps: int) -> Server:
    dotted = {f"plugins.{k}": v for k, v in caps.items()}
    return await start_server(make_settings(tmp_path, database_url, **dotted))


@pytest.mark.parametrize(
    ("archive", "caps", "setting"),
    [
        (lambda: zero_bomb("bombphone", "bombphone/z.bin", 1024 * MiB), {}, "member_bytes"),
        (
            lambda: tar_gz(_files("bombphone", 8, MiB)),
            {"archive_max_extracted_bytes": 3 * MiB},
            "extracted_bytes",
        ),
        (
            lambda: tar_gz(_files("bombphone", 400, 0)),
            {"archive_max_members": 100},
            "members",
        ),
    ],
)
async def test_bombs_are_refused_through_the_api(
    tmp_path: Path,
    database_url: str,
    web_root: tuple[Path, str],  # noqa: F811 - the imported fixture
    archive: Callable[[], bytes],
    caps: dict[str, int],
    setting: str,
) -> None:
    www, url = web_root
    publish(www, {"bombphone": archive()})
    srv = await _server(tmp_path, database_url, **caps)
    plugins_dir = tmp_path / "data" / "plugins"
    try:
        await use_repository(srv, url)
        r = await srv.api.post("/0.2/pg_mgr/install/install", json={"id": "bombphone"})
        assert r.status_code == 201, r.text
        body = await wait_op(srv, r.headers["location"])
        assert body["status"].startswith("install|fail"), body
        assert f"(plugins.archive_max_{setting})" in body["reason"], body
        assert "bombphone" not in srv.prov.plugins
        assert not (plugins_dir / "bombphone").exists() and leftovers(plugins_dir) == []
        installed = (await srv.api.get("/0.2/pg_mgr/install/installed")).json()["pkgs"]
        assert "bombphone" not in installed
    finally:
        await srv.close()


async def test_archive_larger_than_the_download_cap_is_refused_before_download(
    tmp_path: Path,
    database_url: str,
    web_root: tuple[Path, str],  # noqa: F811 - the imported fixture
) -> None:
    www, url = web_root
    data = tar_gz(_files("bigphone", 4, 64 * 1024))
    publish(www, {"bigphone": data + bytes(8192)})  # padding: > 8 KiB whatever gzip does
    srv = await _server(tmp_path, database_url, archive_max_bytes=8192)
    try:
        await use_repository(srv, url)
        r = await srv.api.post("/0.2/pg_mgr/install/install", json={"id": "bigphone"})
        assert r.status_code == 400
        assert "more than 8192 (plugins.archive_max_bytes)" in r.text, r.text
        assert not (tmp_path / "data" / "cache").exists()
    finally:
        await srv.close()


_EXTRACTING = re.compile(r"\(extract\|progress;(\d+)\)")


async def _status(srv: Server, location: str) -> str:
    r = await srv.api.get(location)
    assert r.status_code == 200
    return str(r.json()["status"])


async def test_rest_and_phone_answer_while_plugins_extract_and_import(
    tmp_path: Path,
    database_url: str,
    web_root: tuple[Path, str],  # noqa: F811 - the imported fixture
) -> None:
    www, url = web_root
    # one (connected, release) pair per import of the plugin: the install, then a reload
    gates = [(asyncio.Event(), asyncio.Event()) for _ in range(2)]
    imports = 0

    async def gate(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal imports
        connected, release = gates[imports]
        imports += 1
        connected.set()
        await release.wait()
        writer.write(b"x")
        await writer.drain()
        writer.close()

    gate_server = await asyncio.start_server(gate, "127.0.0.1", 0)
    port = gate_server.sockets[0].getsockname()[1]
    # a plugin whose import waits for the test (a "heavy" plugin.py), with 3000 files to extract
    plugin_py = (
        "import socket\n"
        f"with socket.create_connection(('127.0.0.1', {port}), timeout=60) as s:\n"
        "    s.recv(1)\n"
        "from provisor.plugins.base import Plugin as _Base\n\n\n"
        "class Plugin(_Base):\n    pass\n"
    )
    members = plugin_members("slowphone", plugin_py=plugin_py)
    members += [(f"slowphone/static/blob{i}.bin", bytes(1024)) for i in range(3000)]
    publish(www, {"slowphone": tar_gz(members)})
    srv = await start_server(make_settings(tmp_path, database_url))  # testphone serves phones
    try:
        await use_repository(srv, url)
        r = await srv.api.post("/0.2/pg_mgr/install/install", json={"id": "slowphone"})
        location = r.headers["location"]

        # 1. extraction: s1, a phone file, s2, s3 all while the extraction reports progress,
        #    with progress after s2 -> the phone and s2 were answered during the extraction
        proof: list[int] | None = None
        for _ in range(5000):
            s1 = await _status(srv, location)
            m1 = _EXTRACTING.search(s1)
            if m1 is None or int(m1[1]) == 0:
                if "(extract|success" in s1 or "|fail" in s1:
                    break
                continue
            phone = await srv.phone.get("/tp/common.cfg", headers={"User-Agent": UA})
            assert phone.status_code == 200
            m2 = _EXTRACTING.search(await _status(srv, location))
            m3 = _EXTRACTING.search(await _status(srv, location))
            if m2 and m3 and int(m1[1]) <= int(m2[1]) < int(m3[1]):
                proof = [int(m1[1]), int(m2[1]), int(m3[1])]
                break
        assert proof is not None, "no answer was observed while the extraction ran"

        # 2. the import of plugin.py holds the operation (deterministically) until released
        connected, release = gates[0]
        await asyncio.wait_for(connected.wait(), 60)
        status = await _status(srv, location)
        assert status.startswith("install|progress") and "(extract|success" in status
        installed = (await srv.api.get("/0.2/pg_mgr/install/installed")).json()["pkgs"]
        assert "testphone" in installed and "slowphone" not in installed
        phone = await srv.phone.get("/tp/common.cfg", headers={"User-Agent": UA})
        assert phone.status_code == 200 and b"testphone" in phone.content
        assert (await _status(srv, location)).startswith("install|progress")
        release.set()
        body = await wait_op(srv, location)
        assert body["status"].startswith("install|success"), body
        assert "slowphone" in srv.prov.plugins
        blobs = tmp_path / "data" / "plugins" / "slowphone" / "static"
        assert len(list(blobs.glob("blob*.bin"))) == 3000

        # 3. a reload imports plugin.py again, off the loop too: answers while it is held
        connected, release = gates[1]
        reload = asyncio.create_task(srv.api.post("/0.2/pg_mgr/reload", json={"id": "slowphone"}))
        await asyncio.wait_for(connected.wait(), 60)
        phone = await srv.phone.get("/tp/common.cfg", headers={"User-Agent": UA})
        assert phone.status_code == 200
        installed = (await srv.api.get("/0.2/pg_mgr/install/installed")).json()["pkgs"]
        assert "slowphone" in installed
        assert not reload.done()
        release.set()
        assert (await reload).status_code == 204
        assert imports == 2
    finally:
        for _, release in gates:
            release.set()
        await srv.close()
        gate_server.close()
        await gate_server.wait_closed()


def _sparse_header(name: str) -> bytes:
    """A GNU sparse member header (tarfile cannot write one): a regular header retyped 'S'."""
    block = bytearray(tarfile.TarInfo(name).tobuf(tarfile.GNU_FORMAT))
    block[156:157] = tarfile.GNUTYPE_SPARSE
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block[:512])
    return bytes(block)


def test_sparse_members_are_refused(tmp_path: Path) -> None:
    # besides links, devices and FIFOs (tests/plugins_mgmt), sparse files: their real size is
    # not their stored size
    top = tarfile.TarInfo("p")
    top.type = tarfile.DIRTYPE
    data = top.tobuf(tarfile.GNU_FORMAT) + _sparse_header("p/sparse") + bytes(1024)
    err, dest, _ = _extract(tmp_path, data, ArchiveLimits())
    assert "is a sparse file" in err.value.message and list(dest.iterdir()) == []
