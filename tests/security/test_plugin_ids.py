"""Plugin, package and index ids never become paths unless they pass a strict pattern.

Attack (issue 10): ``POST /0.2/pg_mgr/install/uninstall {"id": "../../x"}`` or an absolute
path deleted that folder, ``POST /0.2/pg_mgr/reload`` imported ``plugin.py`` from any folder,
and an index entry named ``../x`` was listed as installable. Every entry point is tried here
with traversal, absolute, nested, empty, too long, NUL and Unicode look-alike ids against a
real server, a real repository on 127.0.0.1 and the real CLI; each is refused and a victim
folder outside the data directory (with a ``plugin.py`` that would leave a mark if imported)
is untouched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from provisor.domain import ids
from provisor.errors import InvalidInput
from provisor.plugins.loader import PluginSet
from tests.conftest import REPO_PLUGINS, Server, make_settings, start_server
from tests.plugins_mgmt.conftest import web_root  # noqa: F401 - the repository fixture
from tests.security._plugsafe import (
    index_entry,
    plugin_members,
    publish,
    tar_gz,
    use_repository,
    wait_op,
)

#: Ids a plugin, a package or an index entry must never be accepted under.
BAD_IDS = [
    "../../victim",
    "..",
    ".",
    ".hidden",
    "a/b",
    "a\\b",
    "",
    "x" * 129,
    "a\x00b",
    "yealink\n",
    "yea link",
    "-rf",
    "\uff59ealink",  # fullwidth 'y'
    "yealink\u202e",  # right-to-left override
    "yea\u0301link",  # combining accent
    "yealink\u2024cfg",  # one-dot leader, looks like '.'
    "\u2025",  # two-dot leader, looks like '..'
]

#: Ids the shipped plugins and wazo's plugin and package naming use.
GOOD_PLUGIN_IDS = [
    "yealink",
    "cisco-spa",
    "wazo-yealink-v86",
    "xivo-cisco-spa-7.5.5",
    "xivo-aastra-3.3.1-SP4",
    "wazo-snom-10.1.46.16",
    "null",
    "zero",
    "testphone",
]


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A plugin-looking folder outside the data directory; importing it leaves a mark."""
    folder = tmp_path / "victim"
    folder.mkdir()
    (folder / "manifest.toml").write_text(
        'id = "victim"\nversion = "1.0.0"\nvendor = "V"\niface_version = 1\n'
    )
    mark = tmp_path / "imported.mark"
    (folder / "plugin.py").write_text(
        f"open({str(mark)!r}, 'w').close()\n"
        "from provisor.plugins.base import Plugin as _Base\n"
        "class Plugin(_Base):\n    pass\n"
    )
    (folder / "canary.txt").write_text("still here")
    return folder


def _intact(victim: Path) -> None:
    assert (victim / "canary.txt").read_text() == "still here"
    assert not (victim.parent / "imported.mark").exists(), "victim plugin.py was imported"


@pytest.fixture
async def srv(tmp_path: Path, database_url: str) -> AsyncIterator[Server]:
    """A server with the test plugin loaded; its data directory is tmp_path/data."""
    server = await start_server(make_settings(tmp_path, database_url))
    try:
        yield server
    finally:
        await server.close()


def test_patterns_accept_real_ids_and_refuse_tricks() -> None:
    shipped = sorted(p.name for p in REPO_PLUGINS.iterdir() if (p / "manifest.toml").is_file())
    assert len(shipped) >= 10
    for good in [*shipped, *GOOD_PLUGIN_IDS]:
        assert ids.plugin_id(good) == good and ids.is_plugin_id(good)
    for good in ("tp100-fw", "T46S-66.86.0.15", "fw+lang_1.2"):
        assert ids.package_id(good) == good
    for good in ("base", "defaultconfigdevice", "autoprov", "e30dc5c2a0784c18a48f89ffd409b195"):
        assert ids.config_id(good) == good and ids.device_id(good) == good
    assert ids.relative_path("firmware/T46S-66.86.0.15.rom") == "firmware/T46S-66.86.0.15.rom"
    assert not ids.is_plugin_id("x" * 65) and ids.is_plugin_id("x" * 64)
    for bad in BAD_IDS:
        for rule in (ids.plugin_id, ids.package_id, ids.config_id, ids.device_id, ids.version):
            with pytest.raises(InvalidInput) as err:
                rule(bad, "the.field")
            assert err.value.message.startswith("the.field: ") and ascii(bad)[:20] in (
                err.value.message
            )
        assert not ids.is_plugin_id(bad)
    for bad in ("../x", "/abs", "a//b", "a/../b", "a/" * 9 + "b", "a\\b", ""):
        with pytest.raises(InvalidInput):
            ids.relative_path(bad, "dest")
    with pytest.raises(InvalidInput) as err:
        ids.plugin_id(5, "id")
    assert "expected a plugin id" in err.value.message
    # a huge value is not echoed back whole
    with pytest.raises(InvalidInput) as err:
        ids.plugin_id("x" * 100_000)
    assert len(err.value.message) < 400


def _names_the_bad_id(text: str, kind: str) -> bool:
    """The 400 names the id, or (for NUL) the strict JSON reader refused the body first."""
    if "\\u0000" in text:
        return text.startswith("Invalid JSON document")
    return text.startswith("id: ") and f"not a valid {kind} id" in text


@pytest.mark.parametrize(
    "endpoint",
    [
        "/0.2/pg_mgr/install/install",
        "/0.2/pg_mgr/install/upgrade",
        "/0.2/pg_mgr/install/uninstall",
        "/0.2/pg_mgr/reload",
    ],
)
async def test_rest_plugin_id_bodies_are_refused(
    srv: Server, victim: Path, tmp_path: Path, endpoint: str
) -> None:
    data_dir = tmp_path / "data"
    (data_dir / "plugins").mkdir(parents=True, exist_ok=True)
    relative = os.path.relpath(victim, data_dir / "plugins")
    assert relative == "../../victim"
    for bad in [*BAD_IDS, "x" * 65, str(victim), relative]:
        r = await srv.api.post(endpoint, json={"id": bad})
        assert r.status_code == 400, (endpoint, bad, r.text)
        assert _names_the_bad_id(r.text, "plugin"), r.text
    for not_a_string in (5, None, ["x"], {"a": 1}):
        r = await srv.api.post(endpoint, json={"id": not_a_string})
        assert r.status_code == 400 and "id" in r.text
    _intact(victim)
    assert "victim" not in srv.prov.plugins


@pytest.mark.parametrize("action", ["install", "uninstall"])
async def test_rest_package_id_bodies_are_refused(
    srv: Server, victim: Path, tmp_path: Path, action: str
) -> None:
    (tmp_path / "data" / "firmware" / "testphone").mkdir(parents=True)
    for bad in [*BAD_IDS, str(victim), "../../../victim"]:
        r = await srv.api.post(f"/0.2/pg_mgr/plugins/testphone/install/{action}", json={"id": bad})
        assert r.status_code == 400, (action, bad, r.text)
        assert _names_the_bad_id(r.text, "package"), r.text
    _intact(victim)


async def test_rest_plugin_ids_in_paths_are_refused(srv: Server, victim: Path) -> None:
    # what a path segment can carry (a '/' never reaches the handler: no route matches it)
    in_path = ["%2E%2E", "%2E", ".hidden", "x" * 65, "a%00b", "yealink%0A", "yea%20link"]
    in_path += ["%EF%BD%99ealink", "yealink%E2%80%AE", "%E2%80%A5"]
    base = "/0.2/pg_mgr/plugins/{}"
    requests = [
        ("GET", base, None),
        ("GET", base + "/info", None),
        ("GET", base + "/install", None),
        ("GET", base + "/install/installable", None),
        ("GET", base + "/install/installed", None),
        ("POST", base + "/install/install", {"id": "tp100-fw"}),
        ("POST", base + "/install/uninstall", {"id": "tp100-fw"}),
        ("GET", base + "/templates", None),
        ("PUT", base + "/templates/tenant/common.cfg", {"template": {"source": "x"}}),
        ("DELETE", base + "/templates/tenant/common.cfg", None),
    ]
    for bad in in_path:
        for method, path, body in requests:
            r = await srv.api.request(method, path.format(bad), json=body)
            assert r.status_code == 400, (method, path, bad, r.text)
            assert r.text.startswith("plugin_id: ") and "not a valid plugin id" in r.text
    for bad in ["..%2F..%2Fvictim", "%2Ftmp", "a%2Fb"]:
        for method, path, body in requests:
            r = await srv.api.request(method, path.format(bad), json=body)
            assert r.status_code in (400, 404), (method, path, bad, r.status_code)
    _intact(victim)


async def test_index_entries_with_bad_ids_are_not_listed(
    tmp_path: Path,
    database_url: str,
    web_root: tuple[Path, str],  # noqa: F811 - the imported fixture
    victim: Path,
) -> None:
    www, url = web_root
    good = tar_gz(plugin_members("goodphone"))
    hostile = tar_gz(plugin_members("goodphone"))  # any bytes: the entry must never be used
    (www / "x.tar.gz").write_bytes(hostile)
    extra: dict[str, object] = {bad: index_entry("x.tar.gz", hostile) for bad in BAD_IDS}
    extra[str(victim)] = index_entry("x.tar.gz", hostile)
    extra["badfile"] = index_entry("../x.tar.gz", hostile)
    extra["badversion"] = index_entry("x.tar.gz", hostile, version="../1")
    publish(www, {"goodphone": good}, extra)
    server = await start_server(
        make_settings(tmp_path, database_url, **{"general.plugin_dirs": []})
    )
    try:
        await use_repository(server, url)
        pkgs = (await server.api.get("/0.2/pg_mgr/install/installable")).json()["pkgs"]
        assert list(pkgs) == ["goodphone"]
        cached = json.loads((tmp_path / "data" / "plugins-index.json").read_text())
        assert list(cached["plugins"]) == ["goodphone"]
        for bad in ["../../victim", str(victim), "badfile", "badversion"]:
            r = await server.api.post("/0.2/pg_mgr/install/install", json={"id": bad})
            assert r.status_code == 400, (bad, r.text)
        assert not (tmp_path / "data" / "cache").exists()  # nothing was even downloaded
    finally:
        await server.close()
    _intact(victim)


def _manifest(pid: str, extra: str = "") -> str:
    return f'id = "{pid}"\nversion = "1.0.0"\nvendor = "V"\niface_version = 1\n{extra}'


def test_manifests_on_disk_with_bad_ids_are_not_loaded(tmp_path: Path) -> None:
    folder = tmp_path / "plugins"
    cases = {
        "dots": _manifest("../dots"),
        "Bad Name": _manifest("Bad Name"),
        "badversion": _manifest("badversion").replace('"1.0.0"', '"../1"'),
        "badpkg": _manifest("badpkg", '[firmware."../../x"]\nurl = "http://127.0.0.1/x.bin"\n'),
        "baddest": _manifest(
            "baddest",
            '[firmware.fw]\nurl = "http://127.0.0.1/x.zip"\n'
            'files = [{src = "x.bin", dest = "../../../victim/x.bin"}]\n',
        ),
        "badurl": _manifest("badurl", '[firmware.fw]\nurl = "http://127.0.0.1/a/.."\n'),
        "good": _manifest("good"),
    }
    for name, text in cases.items():
        (folder / name).mkdir(parents=True)
        (folder / name / "manifest.toml").write_text(text)
    (folder / ".good.old").mkdir()
    (folder / ".good.old" / "manifest.toml").write_text(_manifest("good"))
    loaded = PluginSet.from_folders([folder])
    assert loaded.ids() == ["good"]
    errors = {e.folder: e.message for e in loaded.errors}
    assert set(errors) == set(cases) - {"good"}
    assert "not a valid plugin id" in errors["dots"] and "not a valid" in errors["Bad Name"]
    assert "not a valid version" in errors["badversion"]
    assert "not a valid package id" in errors["badpkg"]
    assert "not a valid relative path" in errors["baddest"]
    assert "not a valid file name" in errors["badurl"]


async def test_archive_whose_manifest_has_a_bad_firmware_dest_is_refused(
    tmp_path: Path,
    database_url: str,
    web_root: tuple[Path, str],  # noqa: F811 - the imported fixture
) -> None:
    www, url = web_root
    members = plugin_members("evilphone")
    members = [
        (
            name,
            data + b'\n[firmware.fw]\nurl = "http://127.0.0.1:1/fw.zip"\nsize = 1\n'
            b'sha256 = "' + b"0" * 64 + b'"\nfiles = [{src = "a", dest = "../../../x"}]\n'
            if data is not None and name.endswith("manifest.toml")
            else data,
        )
        for name, data in members
    ]
    publish(www, {"evilphone": tar_gz(members)})
    server = await start_server(
        make_settings(tmp_path, database_url, **{"general.plugin_dirs": []})
    )
    try:
        await use_repository(server, url)
        r = await server.api.post("/0.2/pg_mgr/install/install", json={"id": "evilphone"})
        body = await wait_op(server, r.headers["location"])
        assert body["status"].startswith("install|fail"), body
        assert "does not load" in body["reason"] and "relative path" in body["reason"]
        assert "evilphone" not in server.prov.plugins
        assert not (tmp_path / "data" / "plugins" / "evilphone").exists()
    finally:
        await server.close()


def _cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PROVISOR_DATA_DIR": str(data_dir)}
    env.pop("PROVISOR_TEST_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "provisor.cli", "plugin", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def test_cli_refuses_bad_plugin_ids(tmp_path: Path, victim: Path) -> None:
    data_dir = tmp_path / "data"
    (data_dir / "plugins").mkdir(parents=True)
    for command, bad in [
        ("uninstall", "../../victim"),
        ("uninstall", str(victim)),
        ("install", "a/b"),
        ("upgrade", ""),
        ("install", "\uff59ealink"),
    ]:
        r = _cli(command, bad, data_dir=data_dir)
        assert r.returncode == 2, (command, bad, r.stdout, r.stderr)
        message = " ".join(r.stderr.replace("\u2502", " ").split())  # unbox rich's panel
        assert f"{ascii(bad)} is not a valid plugin id" in message, message
    # nothing was even opened: the refusal comes before the store
    assert not (data_dir / "provisor.db").exists()
    _intact(victim)
