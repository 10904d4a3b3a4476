"""Repository index validation, verified downloads and safe extraction."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from provisor.errors import InvalidInput
from provisor.plugins.build import build_repository
from provisor.plugins.loader import version_key
from provisor.plugins.repository import download, parse_index, safe_extract
from tests.plugins_mgmt.conftest import TESTPHONE


def test_build_is_deterministic_and_valid(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "testphone").parent.mkdir()
    import shutil

    shutil.copytree(TESTPHONE, src / "testphone")
    (src / "broken").mkdir()
    (src / "broken" / "manifest.toml").write_text("id = 'broken'\n")
    one = build_repository(src, tmp_path / "r1")
    two = build_repository(src, tmp_path / "r2")
    assert one["plugins"] == two["plugins"]
    assert "broken" in one["errors"] and "testphone" in one["plugins"]
    entry = one["plugins"]["testphone"]
    data = (tmp_path / "r1" / entry["file"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["size"]
    assert (
        parse_index((tmp_path / "r1" / "index.json").read_bytes())["testphone"].version == "1.0.0"
    )


@pytest.mark.parametrize(
    ("index", "fragment"),
    [
        (b"{nope", "not valid JSON"),
        (b'{"format": 2, "plugins": {}}', "format"),
    ],
)
def test_bad_index(index: bytes, fragment: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_index(index)
    assert fragment in err.value.message


def _good() -> dict[str, object]:
    return {"version": "1", "file": "ok.tgz", "size": 1, "sha256": "a" * 64}


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ({"version": "1", "file": "x.tgz", "size": 1}, "'sha256'"),
        ({"version": "1", "file": "../x.tgz", "size": 1, "sha256": "a" * 64}, "plain file name"),
        ({"version": 1, "file": "x.tgz", "size": 1, "sha256": "a" * 64}, "'version'"),
        ({"version": "../1", "file": "x.tgz", "size": 1, "sha256": "a" * 64}, "valid version"),
        ({"version": "1", "file": "x.tgz", "size": 1, "sha256": "z" * 64}, "64 hex digits"),
    ],
)
def test_bad_index_entry_is_left_out(
    entry: dict[str, object], fragment: str, caplog: pytest.LogCaptureFixture
) -> None:
    index = json.dumps({"format": 1, "plugins": {"x": entry, "ok": _good()}}).encode()
    assert list(parse_index(index)) == ["ok"]
    assert fragment in caplog.text and "'x'" in caplog.text


def test_versions_compare_as_versions() -> None:
    assert version_key("1.10.0") > version_key("1.9.3")
    assert version_key("2.0") > version_key("2.0rc1")


async def test_download_checks_size_and_sha(tmp_path: Path) -> None:
    src = tmp_path / "blob.bin"
    src.write_bytes(b"x" * 1000)
    good = hashlib.sha256(b"x" * 1000).hexdigest()
    dest = tmp_path / "out.bin"
    done: list[int] = []
    await download(
        str(src), dest, size=1000, sha256=good, proxies={}, progress=lambda d, t: done.append(d)
    )
    assert dest.read_bytes() == b"x" * 1000 and done[-1] == 1000
    dest.unlink()
    with pytest.raises(InvalidInput, match="sha256 mismatch"):
        await download(str(src), dest, size=1000, sha256="0" * 64, proxies={})
    with pytest.raises(InvalidInput, match="truncated"):
        await download(str(src), dest, size=2000, sha256=good, proxies={})
    with pytest.raises(InvalidInput, match="larger"):
        await download(str(src), dest, size=10, sha256=good, proxies={})
    assert not dest.exists() and not (tmp_path / "out.bin.part").exists()


def _tar(tmp: Path, members: list[tarfile.TarInfo], name: str = "evil.tar.gz") -> Path:
    path = tmp / name
    with tarfile.open(path, "w:gz") as tar:
        for info in members:
            data = b"data" if info.isfile() else None
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


@pytest.mark.parametrize(
    ("member", "fragment"),
    [
        (_member("p/../../etc/x"), "leaves"),
        (_member("/etc/passwd"), "leaves"),
        (_member("other/file"), "outside the top folder"),
        (_member("p/link", tarfile.SYMTYPE, "/etc/passwd"), "link"),
        (_member("p/hard", tarfile.LNKTYPE, "p/x"), "link"),
        (_member("p/dev", tarfile.CHRTYPE), "device"),
        (_member("p/fifo", tarfile.FIFOTYPE), "device"),
    ],
)
def test_unsafe_members_are_refused(tmp_path: Path, member: tarfile.TarInfo, fragment: str) -> None:
    archive = _tar(tmp_path, [_member("p", tarfile.DIRTYPE), member])
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(InvalidInput) as err:
        safe_extract(archive, dest, "p")
    assert fragment in err.value.message
    assert list(dest.iterdir()) == []


def test_corrupt_and_truncated_archives(tmp_path: Path) -> None:
    good = _tar(tmp_path, [_member("p", tarfile.DIRTYPE), _member("p/a")], "good.tar.gz")
    data = good.read_bytes()
    (tmp_path / "trunc.tar.gz").write_bytes(data[: len(data) // 2])
    (tmp_path / "junk.tar.gz").write_bytes(b"not an archive at all")
    for name in ("trunc.tar.gz", "junk.tar.gz"):
        dest = tmp_path / name.split(".")[0]
        dest.mkdir()
        with pytest.raises(InvalidInput):
            safe_extract(tmp_path / name, dest, "p")
    dest = tmp_path / "ok"
    dest.mkdir()
    assert (safe_extract(good, dest, "p") / "a").read_bytes() == b"data"
