"""docs/operations.md's install step, run: ``pipx install`` of the wheel into a clean pipx
home (its dependencies from the package index), ``provisor init``, then ``provisor serve``
from outside the checkout serves a phone with the bundled plugins."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from provisor import __version__
from tests.ops._serve import ROOT, build_wheel, serve

MAC = "00:15:65:aa:bb:03"


@pytest.mark.timeout(900)  # pipx installs the dependencies from the package index
def test_pipx_installed_wheel_serves_phones(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "dist")
    home, bin_dir = tmp_path / "pipx", tmp_path / "bin"
    env = {
        "HOME": str(tmp_path / "home"),
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "PIPX_HOME": str(home),
        "PIPX_BIN_DIR": str(bin_dir),
        "PIPX_MAN_DIR": str(tmp_path / "man"),
        "LANG": "C.UTF-8",
    }
    for name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_CERT", "SSL_CERT_FILE"):
        if name in os.environ:  # the machine's way to the package index, if it has one
            env[name] = os.environ[name]
    installed = subprocess.run(
        [sys.executable, "-m", "pipx", "install", "--python", sys.executable, str(wheel)],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
        cwd=tmp_path,
    )
    assert installed.returncode == 0, installed.stdout[-2000:] + installed.stderr[-3000:]
    provisor = bin_dir / "provisor"
    assert provisor.is_file()
    version = subprocess.run(
        [str(provisor), "--version"], capture_output=True, text=True, env=env, timeout=60
    )
    assert version.returncode == 0 and __version__ in version.stdout, version.stderr
    # provisor runs from pipx's own environment, not from this checkout
    where = subprocess.run(
        [
            str(home / "venvs" / "provisor" / "bin" / "python"),
            "-c",
            "import provisor; print(provisor.__file__)",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert str(home) in where.stdout and str(ROOT) not in where.stdout, where
    config, data = tmp_path / "etc" / "config.yml", tmp_path / "lib"
    init = subprocess.run(
        [str(provisor), "init", "--config", str(config), "--data-dir", str(data)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert init.returncode == 0, init.stderr
    served = serve(
        [str(provisor), "serve", "--config", str(config)]
        + ["--rest-port", "0", "--http-port", "0", "--tftp-port", "0"],
        env=env,
        cwd=tmp_path,
    )
    try:
        answer = httpx.get(
            f"http://127.0.0.1:{served.ports['http']}/{MAC.replace(':', '')}.cfg",
            headers={"User-Agent": f"Yealink SIP-T46S 66.86.0.15 {MAC}"},
            timeout=30,
        )
        assert answer.status_code == 200 and b"account.1" in answer.content
        health = httpx.get(f"http://127.0.0.1:{served.ports['rest']}/health/ready", timeout=30)
        assert health.status_code == 200, health.text
    finally:
        assert served.stop() == 0, served.log[-20:]
    assert (data / "plugins" / "yealink" / "manifest.toml").is_file()
