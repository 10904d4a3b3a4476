"""Helpers shared by the bench scripts: ports, processes, wrk, reference servers.

Everything binds to 127.0.0.1 and every load is bounded in time. Results are printed as one
table per script, with ratios against a reference measured in the same run.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


@contextmanager
def process(
    cmd: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    log = tempfile.NamedTemporaryFile(prefix="bench-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int

    def row(self, name: str, ref: WrkResult | None = None) -> str:
        ratio = f"{self.rps / ref.rps:6.2f}" if ref and ref.rps else "      "
        return f"| {name:<34} | {self.rps:>10.0f} | {ratio} | {self.p50_ms:>7.2f} | {self.p99_ms:>7.2f} | {self.errors:>6} |"


HEADER = "| server                             |      req/s |  ratio | p50 ms  | p99 ms  | errors |\n|---|---:|---:|---:|---:|---:|"


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk_command(
    url: str,
    *,
    seconds: int = 10,
    connections: int = 50,
    threads: int = 2,
    headers: dict[str, str] | None = None,
    script: str | None = None,
) -> tuple[list[str], str | None]:
    """The wrk command line, and the temporary Lua file to delete afterwards."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian package wrk)")
    cmd = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "--timeout",
        "5s",
    ]
    for k, v in (headers or {}).items():
        cmd += ["-H", f"{k}: {v}"]
    lua = None
    if script:
        tmp = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)  # noqa: SIM115
        tmp.write(script)
        tmp.close()
        lua = tmp.name
        cmd += ["-s", lua]
    return [*cmd, url], lua


def parse_wrk(out: str) -> WrkResult:
    """wrk's summary as numbers."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat = dict(re.findall(r"\s+(50|99)%\s+([\d.]+\w+)", out))

    def parse(v: str) -> float:
        m = re.match(r"([\d.]+)(us|ms|s)", v)
        return _ms(m.group(1), m.group(2)) if m else float("nan")

    errors = 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        errors += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(x) for x in m.groups())
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return WrkResult(rps, parse(lat.get("50", "nan")), parse(lat.get("99", "nan")), errors, total)


def wrk(url: str, *, seconds: int = 10, **kw: Any) -> WrkResult:
    """Run wrk for ``seconds`` and parse its summary."""
    cmd, lua = wrk_command(url, seconds=seconds, **kw)
    try:
        out = subprocess.run(
            cmd, capture_output=True, text=True, timeout=seconds + 60, check=True
        ).stdout
    finally:
        if lua:
            os.unlink(lua)
    return parse_wrk(out)


@contextmanager
def nginx_serving(folder: Path) -> Iterator[int]:
    """nginx with one worker serving ``folder`` (the machine's limit for static bytes)."""
    if shutil.which("nginx") is None:
        raise SystemExit("nginx is not installed (Debian package nginx)")
    port = free_port()
    work = Path(tempfile.mkdtemp(prefix="bench-nginx-"))
    os.chmod(work, 0o755)
    conf = work / "nginx.conf"
    conf.write_text(
        textwrap.dedent(f"""
        worker_processes 1;
        daemon off;
        user root;
        pid {work}/nginx.pid;
        error_log {work}/error.log;
        events {{ worker_connections 4096; }}
        http {{
            access_log off;
            sendfile on;
            tcp_nodelay on;
            keepalive_requests 1000000;
            client_body_temp_path {work};
            proxy_temp_path {work};
            fastcgi_temp_path {work};
            uwsgi_temp_path {work};
            scgi_temp_path {work};
            server {{ listen 127.0.0.1:{port}; root {folder}; }}
        }}
    """)
    )
    with process(["nginx", "-c", str(conf), "-p", str(work)]):
        wait_port(port)
        yield port


BARE_ASGI = """
import sys, uvicorn
body = open(sys.argv[1], "rb").read()
headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), loop="uvloop", http="httptools",
            log_level="warning", access_log=False, lifespan="off")
"""


@contextmanager
def bare_asgi(body_file: Path) -> Iterator[int]:
    """A bare ASGI app on uvicorn returning the same bytes (Python's ceiling)."""
    port = free_port()
    with process([PY, "-c", BARE_ASGI, str(body_file), str(port)]):
        wait_port(port)
        yield port


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds_tree(pid: int) -> float:
    """User + system CPU of a process and its living descendants (a server and its workers)."""
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            total += _cpu_seconds(current)
            # a child belongs to the thread that started it: read every thread's list
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue  # it ended meanwhile
    return total
