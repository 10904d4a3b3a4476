"""A throw-away RabbitMQ broker on 127.0.0.1 (Debian's rabbitmq-server), for the bus tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")


def available() -> bool:
    """True when the broker can be started here."""
    return SERVER.exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def rabbitmq(tmp: Path) -> Iterator[int]:
    """Start a broker with its own node name, ports and folders; yields its AMQP port."""
    tmp.mkdir(parents=True, exist_ok=True)
    port, dist = _free_port(), _free_port()
    (tmp / "enabled_plugins").write_text("[].\n")
    node = f"provisor-{uuid.uuid4().hex[:8]}@localhost"
    env = {
        **os.environ,
        "HOME": str(tmp),
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(port),
        "RABBITMQ_DIST_PORT": str(dist),
        "RABBITMQ_NODENAME": node,
        "RABBITMQ_MNESIA_BASE": str(tmp / "mnesia"),
        "RABBITMQ_LOG_BASE": str(tmp / "log"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(tmp / "enabled_plugins"),
        "RABBITMQ_CONFIG_FILE": str(tmp / "rabbitmq"),
    }
    log = (tmp / "broker.log").open("w")
    proc = subprocess.Popen(
        [str(SERVER)], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(
                        "rabbitmq-server exited: " + (tmp / "broker.log").read_text()[-500:]
                    ) from None
                time.sleep(0.3)
        else:
            raise RuntimeError("rabbitmq-server did not listen within 90 s")
        yield port
    finally:
        import signal

        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)  # the script, erl and beam share the session
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=15)
                break
            except subprocess.TimeoutExpired:
                continue
        subprocess.run(["pkill", "-f", f"beam.smp.*{tmp}"], check=False)
        log.close()
        epmd = shutil.which("epmd") or "/usr/lib/erlang/bin/epmd"
        subprocess.run([epmd, "-kill"], capture_output=True, check=False)
