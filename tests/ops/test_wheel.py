"""The wheel carries the bundled plugins: installed outside the checkout, it serves phones."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_wheel_installed_elsewhere_serves_a_phone_with_bundled_plugins(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(dist),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    [wheel] = list(dist.glob("provisor-*.whl"))
    site = tmp_path / "site"
    installed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(site),
            str(wheel),
        ],
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
    rest, http = _free_port(), _free_port()
    where = subprocess.run(
        [sys.executable, "-c", "import provisor.plugins.build as b; print(b.BUNDLED_SOURCES)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    assert where.stdout.strip() == str(site / "provisor" / "bundled_plugins"), where.stderr
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from provisor.cli import main; main()",
            "serve",
            "--data-dir",
            str(tmp_path / "data"),
            "--rest-port",
            str(rest),
            "--http-port",
            str(http),
            "--tftp-port",
            "0",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        answer = None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                answer = httpx.get(
                    f"http://127.0.0.1:{http}/001565aabb02.cfg",
                    headers={"User-Agent": "Yealink SIP-T46S 66.86.0.15 00:15:65:aa:bb:02"},
                    timeout=5,
                )
                break
            except httpx.TransportError:
                time.sleep(0.3)
        assert answer is not None, "the server did not answer"
        assert answer.status_code == 200 and b"account.1" in answer.content
        # the console's templates and static files came with the wheel
        signin = httpx.get(f"http://127.0.0.1:{rest}/console/signin", timeout=5)
        assert signin.status_code == 200 and "API token" in signin.text
        script = httpx.get(f"http://127.0.0.1:{rest}/console/static/console.js", timeout=5)
        assert script.status_code == 200 and "textContent" in script.text
    finally:
        server.terminate()
        server.communicate(timeout=30)
    # installed at first start, from the repository built out of the wheel's own plugins
    assert (tmp_path / "data" / "plugins" / "yealink" / "manifest.toml").is_file()
    assert (tmp_path / "data" / "bundled-repository" / "index.json").is_file()
