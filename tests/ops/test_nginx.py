"""docs/operations.md "Behind nginx": the site block and settings of the docs, run with a real
nginx (Debian's) in front of a real provisor on 127.0.0.1; phones are served through it with
the advertised path, and a forged ``X-Forwarded-For`` does not choose the phone's address."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import make_settings, start_server
from tests.provisioning.test_http_pipeline import MAC, UA
from tests.support.ports import free_port, listens

ROOT = Path(__file__).resolve().parents[2]
HOST = "provisioning.example.org"


def _documented() -> tuple[str, dict[str, Any]]:
    """The nginx block and the settings of the docs' "Behind nginx" section."""
    text = (ROOT / "docs" / "operations.md").read_text()
    section = text.split("## Behind nginx", 1)[1].split("\n## ", 1)[0]
    [site] = re.findall(r"```nginx\n(.*?)```", section, re.S)
    [settings] = re.findall(r"```yaml\n(.*?)```", section, re.S)
    return site, yaml.safe_load(settings)


def _nginx() -> str:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if found is None:
        pytest.skip("nginx not installed (scripts/test.sh installs Debian's nginx)")
    return found


@contextmanager
def _running_nginx(site: str, tmp: Path) -> Iterator[int]:
    """nginx with ``site`` on a port of its own; nginx cannot take port 0, so a port taken
    between the choice and nginx's bind is seen in its error log and another is tried
    (tests/support/ports.py)."""
    binary = _nginx()
    for _attempt in range(5):
        port = free_port()
        conf = tmp / "nginx.conf"
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (tmp / sub).mkdir(parents=True, exist_ok=True)
        user = "user root root;\n" if os.geteuid() == 0 else ""
        conf.write_text(
            f"{user}daemon off;\nworker_processes 1;\npid {tmp}/nginx.pid;\n"
            f"error_log {tmp}/error.log;\nevents {{ worker_connections 64; }}\n"
            f"http {{\n access_log off;\n client_body_temp_path {tmp}/body;\n"
            f" proxy_temp_path {tmp}/proxy;\n fastcgi_temp_path {tmp}/fastcgi;\n"
            f" uwsgi_temp_path {tmp}/uwsgi;\n scgi_temp_path {tmp}/scgi;\n"
            + site.replace("listen 80;", f"listen 127.0.0.1:{port};")
            + "\n}\n"
        )
        proc = subprocess.Popen(
            [binary, "-p", str(tmp), "-e", str(tmp / "error.log"), "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 30
        up = False
        while time.monotonic() < deadline and proc.poll() is None:
            if listens(proc.pid, port):  # nginx's own socket, not a process that took it
                up = True
                break
            time.sleep(0.1)
        if up:
            try:
                yield port
            finally:
                proc.terminate()
                proc.wait(timeout=30)
            return
        proc.kill()
        _out, err = proc.communicate(timeout=30)
        errors = err + (tmp / "error.log").read_text(errors="replace")
        assert "Address already in use" in errors, errors  # anything else is a real failure
    raise AssertionError("nginx found no free port in 5 tries")


async def test_documented_nginx_site_in_front_of_provisor(
    tmp_path: Path, database_url: str
) -> None:
    site, documented = _documented()
    overrides = {f"general.{k}": v for k, v in documented["general"].items()}
    assert set(documented) == {"general"}, documented
    srv = await start_server(make_settings(tmp_path, database_url, **overrides))
    try:
        ports = srv.running.ports
        site = site.replace("127.0.0.1:8667", f"127.0.0.1:{ports['http']}")
        site = site.replace("127.0.0.1:8666", f"127.0.0.1:{ports['rest']}")
        with _running_nginx(site, tmp_path / "nginx") as port:
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}", headers={"Host": HOST}, timeout=30
            ) as phone:
                r = await phone.get(
                    "/device/provisioning/tp/common.cfg",
                    headers={"User-Agent": UA, "X-Forwarded-For": "198.51.100.7"},
                )
                assert r.status_code == 200, r.text
                assert f"server = http://{HOST}/device/provisioning".encode() in r.content
                r = await phone.get(
                    f"/device/provisioning/{MAC.replace(':', '')}.cfg", headers={"User-Agent": UA}
                )
                assert r.status_code == 200 and b"line1.user" in r.content
                r2 = await phone.get(
                    f"/device/provisioning/{MAC.replace(':', '')}.cfg",
                    headers={"User-Agent": UA, "If-None-Match": r.headers["etag"]},
                )
                assert r2.status_code == 304  # conditional GET passes through
                assert (await phone.get("/health/ready")).status_code == 200
                # outside the proxied locations nothing reaches provisor
                assert (await phone.get("/0.2/dev_mgr/devices")).status_code == 404
        [device] = (await srv.api.get("/0.2/dev_mgr/devices", params={"recurse": "true"})).json()[
            "devices"
        ]
        # the address nginx saw, not the one the client wrote in its own header
        assert device["ip"] == "127.0.0.1"
        [first] = srv.pipeline.trace.query(limit=10)[-1:]
        assert first["client_ip"] == "127.0.0.1" and first["path"] == "tp/common.cfg"
    finally:
        await srv.close()
