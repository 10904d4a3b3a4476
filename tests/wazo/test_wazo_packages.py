"""wazo plugins' packages (pkgs.db): listed, installed with progress, served to phones, removed."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

from tests.wazo.conftest import publish_wazo, wazo_source
from tests.wazo.test_wazo_plugins import UA, install, use_repository, wait_op, wazo_server

CACHED = b"cached\n"
CACHED_SHA1 = hashlib.sha1(CACHED).hexdigest()
FW = bytes(range(256)) * 2600  # 650 KiB: streamed from disk like firmware


def _zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("TW-lang-1/lang/fr.lang", "bonjour\n")
        zf.writestr("TW-lang-1/README", "not copied\n")
    return out.getvalue()


def _pkgs_db(url: str, fw_sha1: str, zip_data: bytes) -> str:
    return f"""[pkg_tw-fw]
description: Firmware for TW phones
version: 1.2.3
files: tw-fw
install: tw-fw

[pkg_tw-lang]
description: Languages
version: 1
files: tw-lang
install: tw-lang

[pkg_tw-bad]
description: Wrong checksum
version: 1
files: tw-bad
install: tw-fw

[pkg_tw-shell]
description: Needs a command provisor does not run
version: 1
files: tw-fw
install: tw-shell

[pkg_tw-cached]
description: Shipped in the plugin's var/cache
version: 1
files: tw-cached
install: tw-cached

[install_tw-cached]
a-b: include tw-cached.txt

[file_tw-cached]
filename: tw-cached.txt
url:
size: 7
sha1sum: {CACHED_SHA1}

[install_tw-fw]
a-b: cp $FILE1 firmware/

[install_tw-lang]
a-b: unzip $FILE1
b-c: cp */lang/* lang/

[install_tw-shell]
a-b: sh -c true

[file_tw-fw]
filename: TW-1.2.3.rom
url: {url}/TW-1.2.3.rom
size: {len(FW)}
sha1sum: {fw_sha1}

[file_tw-bad]
filename: TW-1.2.3.rom
url: {url}/TW-1.2.3.rom
size: {len(FW)}
sha1sum: {"0" * 40}

[file_tw-lang]
filename: tw-lang.zip
url: {url}/tw-lang.zip
size: {len(zip_data)}
sha1sum: {hashlib.sha1(zip_data).hexdigest()}
"""


async def test_packages_install_serve_uninstall(
    tmp_path: Path, database_url: str, web_root: tuple[Path, str]
) -> None:
    www, url = web_root
    zip_data = _zip()
    (www / "TW-1.2.3.rom").write_bytes(FW)
    (www / "tw-lang.zip").write_bytes(zip_data)
    source = wazo_source(tmp_path)
    (source / "pkgs").mkdir()
    (source / "var" / "cache").mkdir(parents=True)
    (source / "var" / "cache" / "tw-cached.txt").write_bytes(CACHED)
    (source / "pkgs" / "pkgs.db").write_text(_pkgs_db(url, hashlib.sha1(FW).hexdigest(), zip_data))
    publish_wazo(www, source)
    srv = await wazo_server(tmp_path, database_url)
    base = "/0.2/pg_mgr/plugins/wazo-testphone/install"
    try:
        await use_repository(srv, url)
        assert (await install(srv, "wazo-testphone"))["status"].startswith("install|success")
        pkgs = (await srv.api.get(f"{base}/installable")).json()["pkgs"]
        assert pkgs["tw-fw"] == {
            "version": "1.2.3",
            "description": "Firmware for TW phones",
            "dsize": len(FW),
        }
        assert set(pkgs) == {"tw-fw", "tw-lang", "tw-bad", "tw-shell", "tw-cached"}

        for pkg in ("tw-fw", "tw-lang", "tw-cached"):
            r = await srv.api.post(f"{base}/install", json={"id": pkg})
            assert r.status_code == 201, r.text
            op = await wait_op(srv, r.headers["location"])
            assert op["status"].startswith("install_pkg|success(download|success"), op
        installed = (await srv.api.get(f"{base}/installed")).json()["pkgs"]
        assert set(installed) == {"tw-fw", "tw-lang", "tw-cached"}
        r = await srv.phone.get("/tw-cached.txt", headers={"User-Agent": UA})
        assert r.status_code == 200 and r.content == b"cached\n"

        # phones fetch them from the plugin's var/tftpboot through the pipeline
        r = await srv.phone.get("/firmware/TW-1.2.3.rom", headers={"User-Agent": UA})
        assert r.status_code == 200 and r.content == FW
        r = await srv.phone.get(
            "/firmware/TW-1.2.3.rom", headers={"User-Agent": UA, "Range": "bytes=0-9"}
        )
        assert r.status_code == 206 and r.content == FW[:10]
        r = await srv.phone.get("/lang/fr.lang", headers={"User-Agent": UA})
        assert r.status_code == 200 and r.content == b"bonjour\n"
        assert (await srv.phone.get("/README", headers={"User-Agent": UA})).status_code == 404

        # a wrong checksum and an unsupported command fail, naming why; nothing is written
        for pkg, reason in (("tw-bad", "sha1 mismatch"), ("tw-shell", "'sh' is not supported")):
            r = await srv.api.post(f"{base}/install", json={"id": pkg})
            op = await wait_op(srv, r.headers["location"])
            assert op["status"].startswith("install_pkg|fail") and reason in op["reason"], op
        assert set((await srv.api.get(f"{base}/installed")).json()["pkgs"]) == {
            "tw-fw",
            "tw-lang",
            "tw-cached",
        }

        assert (await srv.api.post(f"{base}/uninstall", json={"id": "tw-fw"})).status_code == 204
        assert (
            await srv.phone.get("/firmware/TW-1.2.3.rom", headers={"User-Agent": UA})
        ).status_code == 404
        assert (await srv.api.post(f"{base}/uninstall", json={"id": "tw-fw"})).status_code == 400
    finally:
        await srv.close()
