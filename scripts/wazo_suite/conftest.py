"""Run wazo-provd's integration suite against provisor without docker.

Copied by ``scripts/wazo-provd-suite.sh`` beside the suite's ``suite/`` folder (the suite is
extracted from a wazo-provd checkout at run time; none of it lives in this repository). It
replaces what the suite's docker-compose assets provide with local processes on 127.0.0.1:

- ``provd``: provisor (``provisor serve``), fresh for each test class as the asset would be,
  with the asset's configs imported (``provisor import wazo-provd``) and wazo-auth as backend;
- ``auth``: the upstream wazo-auth mock (``contribs/docker/wazo-auth-mock`` of
  wazo-test-helpers), run with Flask on 127.0.0.1;
- ``rabbitmq``: a private Debian ``rabbitmq-server`` (provisor's tests/support/rabbitmq.py);
- ``pluginserver``: ``python -m http.server`` over the asset's ``plugins/pkgs``.

and patches ``AssetLaunchingTestCase``'s container methods (start/stop, ``service_port``,
``restart_service``, ``docker_exec``) to act on those processes. ``docker_exec`` runs the command
here with ``/etc/wazo-provd`` mapped to provisor's config folder (the only container path the
suite writes to); ``chown`` to the container's user is skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import requests

ROOT = Path(__file__).resolve().parent
ASSETS = ROOT / "assets"
PROVISOR = os.environ["PROVISOR_BIN"]
PROVISOR_REPO = Path(os.environ["PROVISOR_REPO"])
AUTH_MOCK = os.environ["WAZO_AUTH_MOCK"]
WORK = Path(os.environ.get("WAZO_SUITE_WORK") or tempfile.mkdtemp(prefix="wazo-suite-"))

sys.path.insert(0, str(PROVISOR_REPO))
from tests.support.rabbitmq import rabbitmq  # noqa: E402 - provisor's private broker

_services: dict[str, Any] = {}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{what} did not listen on {port} within {seconds} s")


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


class Provd:
    """One provisor process standing in for the ``provd`` container of an asset."""

    def __init__(self, ports: dict[tuple[str, int], int]) -> None:
        self.ports = ports
        self.home = Path(tempfile.mkdtemp(prefix="provd-", dir=WORK))
        self.etc = self.home / "etc"
        (self.etc / "conf.d").mkdir(parents=True)
        key_file = self.home / "wazo-provd-key.yml"
        shutil.copy(ASSETS / "keys" / "wazo-provd-key.yml", key_file)
        config = {
            "general": {
                "data_dir": str(self.home / "data"),
                "plugin_server": f"http://127.0.0.1:{ports[('pluginserver', 8080)]}/",
                "install_bundled_plugins": False,
                "plugin_dirs": [],
                "advertised_http_url": f"http://127.0.0.1:{ports[('provd', 8667)]}",
            },
            "rest_api": {"ip": "127.0.0.1", "port": ports[("provd", 8666)]},
            "provisioning": {
                "host": "127.0.0.1",
                "http_port": ports[("provd", 8667)],
                "tftp_port": ports[("provd", 69)],
                "tftp_enabled": True,
            },
            "auth": {
                "backend": "wazo-auth",
                "host": "127.0.0.1",
                "port": ports[("auth", 9497)],
                "key_file": str(key_file),
            },
            "bus": {"enabled": True, "host": "127.0.0.1", "port": ports[("rabbitmq", 5672)]},
            "database": {"url": f"sqlite+aiosqlite:///{self.home / 'provisor.db'}"},
        }
        (self.etc / "config.yml").write_text(json.dumps(config))
        storage = self.home / "wazo-provd"
        shutil.copytree(ASSETS / "jsondb", storage / "jsondb")
        subprocess.run(
            [
                PROVISOR,
                "import",
                "wazo-provd",
                str(storage),
                "--config",
                str(self.etc / "config.yml"),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.home / "provisor.log").open("ab")
        self.proc = subprocess.Popen(
            [PROVISOR, "serve", "--config", str(self.etc / "config.yml")],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _wait_port(self.ports[("provd", 8666)], self.proc, "provisor")

    def stop(self) -> None:
        _stop(self.proc)
        self.proc = None


def _start_shared() -> None:
    if _services:
        return
    ports = {
        ("provd", 8666): _free_port(),
        ("provd", 8667): _free_port(),
        ("provd", 69): _free_port(),
        ("auth", 9497): _free_port(),
        ("pluginserver", 8080): _free_port(),
    }
    broker = rabbitmq(WORK / "rabbitmq")
    ports[("rabbitmq", 5672)] = broker.__enter__()
    auth = subprocess.Popen(
        [
            sys.executable,
            "-c",
            # the mock reads its port from argv at import and binds 0.0.0.0 when run as a
            # script: load it as a module, then run its app on 127.0.0.1
            "import runpy, sys; port = sys.argv[1]; sys.argv = ['wazo-auth-mock', port]; "
            f"m = runpy.run_path({AUTH_MOCK!r}, run_name='mock'); "
            "m['app'].run(host='127.0.0.1', port=int(port))",
            str(ports[("auth", 9497)]),
        ],
        stdout=(WORK / "auth.log").open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    plugins = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            "--directory",
            str(ASSETS / "plugins" / "pkgs"),
            str(ports[("pluginserver", 8080)]),
        ],
        stdout=(WORK / "pluginserver.log").open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    _wait_port(ports[("auth", 9497)], auth, "wazo-auth mock")
    _wait_port(ports[("pluginserver", 8080)], plugins, "plugin server")
    _services.update(ports=ports, broker=broker, auth=auth, plugins=plugins, provd=None)


@pytest.fixture(scope="session", autouse=True)
def _local_services() -> Any:
    _start_shared()
    yield
    provd = _services.get("provd")
    if provd is not None:
        provd.stop()
    _stop(_services["auth"])
    _stop(_services["plugins"])
    _services["broker"].__exit__(None, None, None)


def _patch() -> None:
    from wazo_test_helpers import asset_launching_test_case as alt

    cls = alt.AbstractAssetLaunchingHelper

    def launch_service_with_asset(klass: Any) -> None:
        _start_shared()
        old = _services.get("provd")
        if old is not None:
            old.stop()
        provd = Provd(_services["ports"])
        provd.start()
        _services["provd"] = provd
        # the asset's "sync" container waits for every service to answer
        url = f"http://127.0.0.1:{_services['ports'][('provd', 8666)]}/0.2/api/api.yml"
        for _ in range(100):
            try:
                if requests.get(url, timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.1)

    def stop_service_with_asset(klass: Any) -> None:
        provd = _services.get("provd")
        if provd is not None:
            provd.stop()
            _services["provd"] = None

    def service_port(klass: Any, internal_port: int, service_name: str | None = None) -> int:
        return int(_services["ports"][(service_name or klass.service, int(internal_port))])

    def restart_service(klass: Any, service_name: str | None = None, signal: Any = None) -> None:
        if (service_name or klass.service) != "provd":
            raise NotImplementedError(f"restart of {service_name} is not emulated")
        provd = _services["provd"]
        provd.stop()
        provd.start()

    def stop_service(klass: Any, service_name: str | None = None, timeout: int = 10) -> None:
        if (service_name or klass.service) != "provd":
            raise NotImplementedError(f"stop of {service_name} is not emulated")
        _services["provd"].stop()

    def start_service(klass: Any, service_name: str | None = None) -> None:
        if (service_name or klass.service) != "provd":
            raise NotImplementedError(f"start of {service_name} is not emulated")
        _services["provd"].start()

    def docker_exec(
        klass: Any,
        command: list[str],
        service_name: str | None = None,
        return_attr: str = "stdout",
        privileged: bool = False,
    ) -> Any:
        etc = str(_services["provd"].etc)
        local = [part.replace("/etc/wazo-provd", etc) for part in command]
        if local and local[0] == "chown":
            return "" if return_attr == "stdout" else 0
        result = subprocess.run(local, capture_output=True, check=False)
        if return_attr == "returncode":
            return result.returncode
        return result.stdout

    for name, fn in {
        "launch_service_with_asset": launch_service_with_asset,
        "stop_service_with_asset": stop_service_with_asset,
        "service_port": service_port,
        "restart_service": restart_service,
        "stop_service": stop_service,
        "start_service": start_service,
        "docker_exec": docker_exec,
    }.items():
        setattr(cls, name, classmethod(fn))


_patch()
