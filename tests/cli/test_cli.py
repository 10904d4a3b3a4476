"""The ``provisor`` command line, run as a real subprocess on a data directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

PROVISOR = [sys.executable, "-m", "provisor.cli"]


def run(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PROVISOR_DATA_DIR": str(data_dir)}
    env.pop("PROVISOR_TEST_DATABASE_URL", None)
    return subprocess.run(
        [*PROVISOR, *args], capture_output=True, text=True, timeout=60, env=env, check=False
    )


def test_tenant_token_device_config_commands(tmp_path: Path) -> None:
    r = run("tenant", "create", "acme", data_dir=tmp_path)
    assert r.returncode == 0, r.stderr
    tenant = r.stdout.strip()
    assert len(tenant) == 36 and "\n" not in tenant
    r = run("tenant", "list", data_dir=tmp_path)
    assert "acme" in r.stdout
    assert any(line.split("\t")[1:4:2] == ["master", "yes"] for line in r.stdout.splitlines())
    r = run("token", "create", "--tenant", tenant, "--acl", "provd.dev_mgr.#", data_dir=tmp_path)
    assert r.returncode == 0 and len(r.stdout.strip()) > 30
    token = r.stdout.strip()
    assert run("token", "revoke", token, data_dir=tmp_path).stdout.strip() == "revoked"
    assert run("token", "revoke", token, data_dir=tmp_path).returncode == 1
    r = run("token", "create", "--tenant", "no-such-tenant", data_dir=tmp_path)
    assert r.returncode != 0 and "does not exist" in (r.stdout + r.stderr)
    r = run("config", "list", data_dir=tmp_path)
    assert "autoprov" in r.stdout and "defaultconfigdevice" in r.stdout
    r = run("device", "list", data_dir=tmp_path)
    assert r.returncode == 0 and "mac" in r.stdout


def test_tls_self_signed(tmp_path: Path) -> None:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    r = subprocess.run(
        [
            *PROVISOR,
            "tls",
            "self-signed",
            "--cert",
            str(cert),
            "--key",
            str(key),
            "--host",
            "127.0.0.1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert cert.read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert oct(key.stat().st_mode & 0o777) == "0o600"


def test_serve_answers_then_stops(tmp_path: Path) -> None:
    import socket
    import time

    def free_port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])

    rest, http = free_port(), free_port()
    token = run("token", "create", data_dir=tmp_path).stdout.strip()
    env = {**os.environ, "PROVISOR_DATA_DIR": str(tmp_path)}
    env.pop("PROVISOR_TEST_DATABASE_URL", None)
    proc = subprocess.Popen(
        [
            *PROVISOR,
            "serve",
            "--rest-port",
            str(rest),
            "--http-port",
            str(http),
            "--tftp-port",
            "0",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        status = None
        while time.monotonic() < deadline:
            try:
                status = httpx.get(
                    f"http://127.0.0.1:{rest}/0.2/status",
                    headers={"X-Auth-Token": token},
                    timeout=2,
                )
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert status is not None and status.json()["rest_api"] == "ok"
        r = httpx.get(f"http://127.0.0.1:{http}/x.cfg", timeout=2)
        assert r.status_code == 404
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
