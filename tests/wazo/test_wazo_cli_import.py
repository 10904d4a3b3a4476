"""The CLI with a wazo-format repository, and `import wazo-provd` keeping wazo plugins."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from provisor.migrate_wazo import import_wazo_provd
from tests.wazo.conftest import publish_wazo, wazo_source
from tests.wazo.test_wazo_plugins import install, use_repository, wazo_server


def test_cli_lists_and_installs_from_a_wazo_folder(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    publish_wazo(repo, wazo_source(tmp_path))
    env = {k: v for k, v in os.environ.items() if k != "PROVISOR_TEST_DATABASE_URL"}
    env.update(PROVISOR_DATA_DIR=str(tmp_path / "data"), PROVISOR_PLUGIN_SERVER=str(repo))
    cli = [sys.executable, "-m", "provisor.cli", "plugin"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*cli, *args], capture_output=True, text=True, env=env, timeout=120, check=False
        )

    r = run("list")
    assert r.returncode == 0 and "wazo-testphone" in r.stdout, r.stderr
    r = run("install", "wazo-testphone", "--quiet")
    assert r.returncode == 0 and "installed wazo-testphone" in r.stdout, r.stderr
    assert (tmp_path / "data" / "plugins" / "wazo-testphone" / "plugin-info").is_file()
    r = run("uninstall", "wazo-testphone")
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / "data" / "plugins" / "wazo-testphone").exists()


async def test_import_keeps_an_installed_wazo_plugin(
    tmp_path: Path, database_url: str, web_root: tuple[Path, str]
) -> None:
    www, url = web_root
    publish_wazo(www, wazo_source(tmp_path))
    srv = await wazo_server(tmp_path, database_url)
    try:
        await use_repository(srv, url)
        assert (await install(srv, "wazo-testphone"))["status"].startswith("install|success")
        root = tmp_path / "wazo-provd"
        (root / "jsondb" / "devices").mkdir(parents=True)
        (root / "jsondb" / "configs").mkdir(parents=True)
        for dev_id, plugin in (("d-kept", "wazo-testphone"), ("d-other", "wazo-nothere-1.0")):
            doc = {"id": dev_id, "mac": f"00:11:22:33:44:{len(dev_id):02x}", "plugin": plugin}
            if dev_id == "d-other":
                doc["mac"] = "00:11:22:33:44:99"
            (root / "jsondb" / "devices" / dev_id).write_text(json.dumps(doc))
        report = await import_wazo_provd(srv.prov, root)
        kept = (await srv.api.get("/0.2/dev_mgr/devices/d-kept")).json()["device"]
        other = (await srv.api.get("/0.2/dev_mgr/devices/d-other")).json()["device"]
        assert kept["plugin"] == "wazo-testphone"
        assert "plugin" not in other or not other["plugin"]
        assert report.unmapped_plugins == {"wazo-nothere-1.0": 1}
    finally:
        await srv.close()
