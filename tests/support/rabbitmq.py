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

from tests.support.ports import free_port

SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")


def available() -> bool:
    """True when the broker can be started here."""
    return SERVER.exists()


class _PortTaken(Exception):
    """The broker exited before listening (most often: a port taken meanwhile)."""


def _speaks_amqp(port: int) -> bool:
    """Whether an AMQP 0-9-1 server answers on ``port`` (its Connection.Start method frame):
    a process that took the port before the broker could would not."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(b"AMQP\x00\x00\x09\x01")
        return conn.recv(3) == b"\x01\x00\x00"  # method frame, channel 0


def _start(tmp: Path) -> tuple[subprocess.Popen[bytes], int]:
    tmp.mkdir(parents=True, exist_ok=True)
    port, dist = free_port(), free_port()
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
    with (tmp / "broker.log").open("w") as log:  # the broker keeps its own copy of the fd
        proc = subprocess.Popen(
            [str(SERVER)], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if _speaks_amqp(port) and proc.poll() is None:
                return proc, port
            raise OSError("not the broker (yet)")
        except OSError:
            if proc.poll() is not None:
                _stop(proc, tmp)
                raise _PortTaken((tmp / "broker.log").read_text()[-500:]) from None
            time.sleep(0.3)
    _stop(proc, tmp)
    raise RuntimeError("rabbitmq-server did not listen within 90 s")


def _stop(proc: subprocess.Popen[bytes], tmp: Path) -> None:
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
    epmd = shutil.which("epmd") or "/usr/lib/erlang/bin/epmd"
    subprocess.run([epmd, "-kill"], capture_output=True, check=False)


@contextmanager
def rabbitmq(tmp: Path) -> Iterator[int]:
    """Start a broker with its own node name, ports and folders; yields its AMQP port.

    Free ports are picked outside the kernel's ephemeral range (tests/support/ports.py), yet
    another process may take one before the broker binds it: the broker then exits, and the
    start is tried again with new ports (five times at most).
    """
    for attempt in range(5):
        try:
            proc, port = _start(tmp / f"try{attempt}")
        except _PortTaken:
            continue
        break
    else:
        raise RuntimeError("rabbitmq-server: its ports were taken five times in a row")
    try:
        yield port
    finally:
        _stop(proc, tmp / f"try{attempt}")
