"""The ``provisor`` command line, run as a real subprocess on a data directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.ops._serve import serve

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
    token = run("token", "create", data_dir=tmp_path).stdout.strip()
    env = {**os.environ, "PROVISOR_DATA_DIR": str(tmp_path)}
    env.pop("PROVISOR_TEST_DATABASE_URL", None)
    # ports 0: the kernel chooses, the server says which (no probe-then-bind race)
    served = serve(
        [*PROVISOR, "serve", "--rest-port", "0", "--http-port", "0", "--tftp-port", "0"],
        env=env,
        cwd=tmp_path,
    )
    try:
        status = httpx.get(
            f"http://127.0.0.1:{served.ports['rest']}/0.2/status",
            headers={"X-Auth-Token": token},
            timeout=10,
        )
        assert status.json()["rest_api"] == "ok"
        r = httpx.get(f"http://127.0.0.1:{served.ports['http']}/x.cfg", timeout=10)
        assert r.status_code == 404
    finally:
        served.proc.terminate()
        code = served.proc.wait(timeout=30)
    assert code == 0, served.log
