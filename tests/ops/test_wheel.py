"""The wheel carries the bundled plugins: installed outside the checkout, it serves phones."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.ops._serve import build_wheel, serve


def test_wheel_installed_elsewhere_serves_a_phone_with_bundled_plugins(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "dist")
    site = tmp_path / "site"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site)]
        + [str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stderr[-2000:]
    assert (site / "provisor" / "bundled_plugins" / "yealink" / "manifest.toml").is_file()
    assert (site / "provisor" / "console" / "templates" / "phones.html").is_file()
    assert (site / "provisor" / "console" / "static" / "console.css").is_file()
    # the dependencies come from this environment; provisor itself from the wheel only
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISOR_")}
    env["PYTHONPATH"] = str(site)
    where = subprocess.run(
        [sys.executable, "-c", "import provisor.plugins.build as b; print(b.BUNDLED_SOURCES)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    assert where.stdout.strip() == str(site / "provisor" / "bundled_plugins"), where.stderr
    served = serve(
        [sys.executable, "-c", "from provisor.cli import main; main()", "serve"]
        + ["--data-dir", str(tmp_path / "data")]
        + ["--rest-port", "0", "--http-port", "0", "--tftp-port", "0"],
        env=env,
        cwd=tmp_path,
    )
    try:
        answer = httpx.get(
            f"http://127.0.0.1:{served.ports['http']}/001565aabb02.cfg",
            headers={"User-Agent": "Yealink SIP-T46S 66.86.0.15 00:15:65:aa:bb:02"},
            timeout=30,
        )
        assert answer.status_code == 200 and b"account.1" in answer.content
        # the console's templates and static files came with the wheel
        signin = httpx.get(f"http://127.0.0.1:{served.ports['rest']}/console/signin", timeout=30)
        assert signin.status_code == 200 and "API token" in signin.text
        script = httpx.get(
            f"http://127.0.0.1:{served.ports['rest']}/console/static/console.js", timeout=5
        )
        assert script.status_code == 200 and "textContent" in script.text
    finally:
        served.stop()
    # installed at first start, from the repository built out of the wheel's own plugins
    assert (tmp_path / "data" / "plugins" / "yealink" / "manifest.toml").is_file()
    assert (tmp_path / "data" / "bundled-repository" / "index.json").is_file()
