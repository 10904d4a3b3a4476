"""First start: the bundled plugins arrive by themselves; bad settings stop start-up in one line."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from provisor.errors import InvalidInput
from provisor.plugins.bundled import MARKER
from provisor.preflight import check_advertised_urls
from provisor.settings import load_settings
from tests.conftest import make_settings, start_server

PROVISOR = str(Path(sys.executable).parent / "provisor")


async def test_fresh_data_directory_gets_the_bundled_plugins_once(
    tmp_path: Path, database_url: str
) -> None:
    settings = make_settings(
        tmp_path,
        database_url,
        **{"general.install_bundled_plugins": True, "general.plugin_dirs": []},
    )
    srv = await start_server(settings)
    try:
        bundled = {
            "yealink",
            "poly",
            "polyos",
            "panasonic",
            "snom",
            "cisco-mpp",
            "cisco-enterprise",
        }
        assert bundled <= set(srv.prov.plugins.ids())
        assert (settings.data_dir / MARKER).is_file()
        mac = "00:15:65:aa:bb:01"
        r = await srv.phone.get(
            "/001565aabb01.cfg", headers={"User-Agent": f"Yealink SIP-T46S 66.86.0.15 {mac}"}
        )
        assert r.status_code == 200 and b"account.1" in r.content
        r = await srv.api.post("/0.2/pg_mgr/install/uninstall", json={"id": "snom"})
        assert r.status_code == 204, r.text
    finally:
        await srv.close()
    srv = await start_server(settings)  # the operator's uninstall is kept
    try:
        assert "snom" not in set(srv.prov.plugins.ids()) and "yealink" in srv.prov.plugins.ids()
    finally:
        await srv.close()


async def test_setting_turns_the_first_start_install_off(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url, **{"general.plugin_dirs": []})
    srv = await start_server(settings)
    try:
        assert list(srv.prov.plugins.ids()) == [] and not (settings.data_dir / MARKER).exists()
    finally:
        await srv.close()


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        (
            {
                "provisioning.host": "127.0.0.1",
                "general.advertised_http_url": "http://0.0.0.0:8667",
            },
            "general.advertised_http_url: http://0.0.0.0:8667 names a wildcard",
        ),
        ({"provisioning.host": "0.0.0.0"}, "general.advertised_http_url: http://0.0.0.0:8667"),
        (
            {
                "provisioning.host": "192.0.2.10",
                "general.advertised_http_url": "http://127.0.0.1:8667",
            },
            "is a loopback address but the phone listeners bind 192.0.2.10",
        ),
        (
            {"provisioning.host": "::", "general.advertised_http_url": "http://[::1]:8667"},
            "is a loopback address",
        ),
    ],
)
def test_unusable_advertised_urls_are_refused(overrides: dict[str, object], named: str) -> None:
    settings = load_settings(None, environ={}, overrides=overrides)
    with pytest.raises(InvalidInput, match=named.replace("[", r"\[").replace(".", r"\.")):
        check_advertised_urls(settings)
    settings.general.check_advertised_url = False
    check_advertised_urls(settings)  # told otherwise: accepted


def test_usable_advertised_urls_pass() -> None:
    for overrides in (
        {},  # embedded defaults: everything on loopback
        {"provisioning.host": "192.0.2.10"},
        {"provisioning.host": "0.0.0.0", "general.advertised_http_url": "http://pbx.example:8667"},
        # the HTTPS URL derived from a reachable listener address is usable too
        {
            "provisioning.host": "192.0.2.10",
            "general.advertised_http_url": "http://pbx:8667",
            "provisioning.https_enabled": True,
        },
    ):
        check_advertised_urls(load_settings(None, environ={}, overrides=overrides))


def _serve(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISOR_")}
    return subprocess.run(
        [PROVISOR, "serve", "--data-dir", str(tmp_path / "data"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_busy_port_is_one_line_naming_the_listener(tmp_path: Path) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    try:
        done = _serve(tmp_path, "--rest-port", str(port), "--http-port", "0", "--tftp-port", "0")
    finally:
        holder.close()
    assert done.returncode == 1
    lines = [ln for ln in done.stderr.splitlines() if "cannot start" in ln]
    assert lines == [
        f"provisor: cannot start: rest listener 127.0.0.1:{port}: Address already in use"
    ]
    assert "Traceback" not in done.stderr


def test_missing_tls_file_is_one_line_naming_the_listener(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yml"
    cfg.write_text(
        "provisioning:\n"
        f"  tls_certfile: {tmp_path}/nope.pem\n  tls_keyfile: {tmp_path}/nope.key\n"
        "  https_port: 0\n  http_port: 0\n  tftp_port: 0\nrest_api:\n  port: 0\n"
    )
    done = _serve(tmp_path, "--config", str(cfg), "--https-port", "0")
    assert done.returncode == 1, done.stderr
    assert "provisor: cannot start: https listener 127.0.0.1:0: cannot load" in done.stderr
    assert "nope.pem" in done.stderr and "Traceback" not in done.stderr


def test_init_writes_a_commented_config_that_loads(tmp_path: Path) -> None:
    cfg, data = tmp_path / "etc" / "config.yml", tmp_path / "lib" / "provisor"
    run = [PROVISOR, "init", "--config", str(cfg), "--data-dir", str(data)]
    done = subprocess.run(run, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert data.is_dir() and (data.stat().st_mode & 0o777) == 0o750
    settings = load_settings(cfg, environ={})
    assert settings.data_dir == data.resolve()
    defaults = load_settings(None, environ={}, overrides={"general.data_dir": str(data)})
    assert settings.model_dump() == defaults.model_dump()  # comments only, besides data_dir
    again = subprocess.run(run, capture_output=True, text=True, timeout=60)
    assert again.returncode == 1 and "--force" in again.stderr
    forced = subprocess.run([*run, "--force"], capture_output=True, text=True, timeout=60)
    assert forced.returncode == 0
