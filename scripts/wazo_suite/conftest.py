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

Ports are chosen as provisor's own tests choose them (``tests/support/ports.py``): outside the
kernel's ephemeral range, and a start that fails because another process took its port meanwhile
is tried again on new ports; a service counts as up only when its own process holds the listening
socket (``listens``), never because something else answered on that port.

It also patches ``AssetLaunchingTestCase``'s container methods (start/stop, ``service_port``,
``restart_service``, ``docker_exec``) to act on those processes. ``docker_exec`` runs the command
here with ``/etc/wazo-provd`` mapped to provisor's config folder (the only container path the
suite writes to); ``chown`` to the container's user is skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
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
from tests.support.ports import ATTEMPTS, free_port, listens, port_taken  # noqa: E402
from tests.support.rabbitmq import rabbitmq  # noqa: E402 - provisor's private broker

_services: dict[str, Any] = {}


class PortTaken(RuntimeError):
    """The process exited before listening because one of its ports was taken meanwhile."""


def _log_size(log: Path) -> int:
    return log.stat().st_size if log.exists() else 0


def _wait_listening(
    proc: subprocess.Popen[bytes],
    ports: list[int],
    log: Path,
    what: str,
    since: int = 0,
    seconds: float = 60,
) -> None:
    """Until ``proc`` itself listens on every TCP port of ``ports``; a process that exited on a
    taken port (said in ``log`` after offset ``since``: this start's lines) raises PortTaken,
    so that the caller tries new ports; any other exit RuntimeError."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            with log.open("rb") as f:
                f.seek(since)
                tail = f.read().decode(errors="replace")[-2000:]
            if port_taken(tail):
                raise PortTaken(f"{what}: a port of {ports} was taken")
            raise RuntimeError(f"{what} exited with {proc.returncode}: {tail[-500:]}")
        if all(listens(proc.pid, port) for port in ports):
            return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not listen on {ports} within {seconds} s")


def _start_retrying(start: Callable[[], subprocess.Popen[bytes]], pick: Callable[[], None]) -> Any:
    """``start()`` until it does not fail on a taken port, calling ``pick()`` for new ports
    before each new try."""
    for attempt in range(ATTEMPTS):
        try:
            return start()
        except PortTaken:
            if attempt == ATTEMPTS - 1:
                raise
            pick()
    raise AssertionError("unreachable")


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
        self.key_file = self.home / "wazo-provd-key.yml"
        shutil.copy(ASSETS / "keys" / "wazo-provd-key.yml", self.key_file)
        self._write_config()
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

    def _write_config(self) -> None:
        """provisor's config.yml for the current ports (conf.d fragments stay as written)."""
        ports = self.ports
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
                "key_file": str(self.key_file),
            },
            "bus": {"enabled": True, "host": "127.0.0.1", "port": ports[("rabbitmq", 5672)]},
            "database": {"url": f"sqlite+aiosqlite:///{self.home / 'provisor.db'}"},
        }
        (self.etc / "config.yml").write_text(json.dumps(config))

    def _start_once(self) -> subprocess.Popen[bytes]:
        log = self.home / "provisor.log"  # kept across restarts: the whole class's story
        since = _log_size(log)
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [PROVISOR, "serve", "--config", str(self.etc / "config.yml")],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.proc = proc
        tcp = [self.ports[("provd", 8666)], self.ports[("provd", 8667)]]
        try:
            _wait_listening(proc, tcp, log, "provisor", since)
        except PortTaken:
            _stop(proc)
            raise
        return proc

    def start(self, new_ports_if_taken: bool = False) -> None:
        """Start provisor; at a class's launch (no client holds its ports yet) a port taken
        meanwhile is replaced by a new one, on a restart the same ports are kept."""

        def pick() -> None:
            if not new_ports_if_taken:
                raise RuntimeError("provisor's ports were taken while it restarted")
            for internal in (8666, 8667, 69):
                self.ports[("provd", internal)] = free_port()
            self._write_config()

        self.proc = _start_retrying(self._start_once, pick)

    def stop(self) -> None:
        _stop(self.proc)
        self.proc = None


def _start_shared() -> None:
    if _services:
        return
    ports = {
        ("provd", 8666): free_port(),
        ("provd", 8667): free_port(),
        ("provd", 69): free_port(),
    }
    broker = rabbitmq(WORK / "rabbitmq")
    ports[("rabbitmq", 5672)] = broker.__enter__()
    auth = _helper(
        ports,
        ("auth", 9497),
        "auth",
        # the mock reads its port from argv at import and binds 0.0.0.0 when run as a script:
        # load it as a module, then run its app on 127.0.0.1
        lambda port: [
            sys.executable,
            "-c",
            "import runpy, sys; port = sys.argv[1]; sys.argv = ['wazo-auth-mock', port]; "
            f"m = runpy.run_path({AUTH_MOCK!r}, run_name='mock'); "
            "m['app'].run(host='127.0.0.1', port=int(port))",
            str(port),
        ],
    )
    plugins = _helper(
        ports,
        ("pluginserver", 8080),
        "pluginserver",
        lambda port: [
            sys.executable,
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            "--directory",
            str(ASSETS / "plugins" / "pkgs"),
            str(port),
        ],
    )
    _services.update(ports=ports, broker=broker, auth=auth, plugins=plugins, provd=None)


def _helper(
    ports: dict[tuple[str, int], int],
    key: tuple[str, int],
    name: str,
    argv: Callable[[int], list[str]],
) -> subprocess.Popen[bytes]:
    """Start a helper service on a free port (a new one when the port was taken meanwhile)."""
    ports[key] = free_port()
    log = WORK / f"{name}.log"

    def start() -> subprocess.Popen[bytes]:
        since = _log_size(log)
        with log.open("ab") as out:
            proc = subprocess.Popen(
                argv(ports[key]), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            _wait_listening(proc, [ports[key]], log, name, since)
        except PortTaken:
            _stop(proc)
            raise
        return proc

    def pick() -> None:
        ports[key] = free_port()

    proc: subprocess.Popen[bytes] = _start_retrying(start, pick)
    return proc


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
        provd.start(new_ports_if_taken=True)
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
