"""How phone workers should share a listening port: one inherited socket, or SO_REUSEPORT.

Run: .venv/bin/python bench/socket_bench.py [--seconds 5] [--rounds 3] [--workers 2]
Two (``--workers``) bare ASGI apps on uvicorn, each answering the same ~47 KB body, serve
``wrk -t2 -c50`` in turn:
- shared: the bench binds one socket and every process inherits it (what provisor does,
  src/provisor/workers/pool.py);
- reuseport: each process binds its own socket to the same port with SO_REUSEPORT.
Rounds alternate, so both see the machine in the same minutes. Each process counts the
requests it answered and prints the count when stopped: the table gives the throughput and
the share of the least-loaded process (0.50 is an even split between two).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PY, free_port, wait_port, wrk  # noqa: E402

APP = """
import contextlib, os, signal, socket, sys, uvicorn
body = os.urandom(int(sys.argv[1]))
mode, port = sys.argv[2], int(sys.argv[3])
headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
served = 0
async def app(scope, receive, send):
    global served
    if scope["type"] != "http":
        return
    served += 1
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
if mode == "shared":
    sock = socket.socket(fileno=int(sys.argv[4]))
else:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(2048)
config = uvicorn.Config(app, loop="uvloop", http="httptools", log_level="warning",
                        access_log=False, lifespan="off")
class Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):  # stop on SIGTERM and return (uvicorn re-raises it)
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "should_exit", True))
        yield
server = Server(config)
try:
    server.run(sockets=[sock])
finally:
    print(served, flush=True)
"""


def one_round(mode: str, workers: int, seconds: int, size: int) -> tuple[float, float]:
    """(req/s, share of the least-loaded process) for one round of ``mode``."""
    port = free_port()
    shared: socket.socket | None = None
    fds: tuple[int, ...] = ()
    if mode == "shared":
        shared = socket.socket()
        shared.bind(("127.0.0.1", port))
        shared.listen(2048)
        fds = (shared.fileno(),)
    procs = []
    try:
        for _ in range(workers):
            cmd = [PY, "-c", APP, str(size), mode, str(port), *(str(fd) for fd in fds)]
            procs.append(
                subprocess.Popen(
                    cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, pass_fds=fds, text=True
                )
            )
        wait_port(port)
        time.sleep(0.5)  # every process listening before the load starts
        result = wrk(f"http://127.0.0.1:{port}/", seconds=seconds)
    finally:
        counts = []
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            out, _ = proc.communicate(timeout=20)
            lines = out.split()
            counts.append(int(lines[-1]) if lines else 0)
        if shared is not None:
            shared.close()
    total = sum(counts) or 1
    return result.rps, min(counts) / total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--size", type=int, default=47_000)
    args = parser.parse_args()
    rows: dict[str, list[tuple[float, float]]] = {"shared": [], "reuseport": []}
    for _ in range(args.rounds):
        for mode in rows:
            rows[mode].append(one_round(mode, args.workers, args.seconds, args.size))
    print(
        f"### {args.workers} bare uvicorn processes, wrk -t2 -c50, {args.rounds} rounds of {args.seconds} s\n"
    )
    print("| listening socket | req/s, each round | best | least-loaded process's share |")
    print("|---|---|---:|---|")
    for mode, got in rows.items():
        rates = ", ".join(f"{r:.0f}" for r, _ in got)
        shares = ", ".join(f"{s:.2f}" for _, s in got)
        print(f"| {mode} | {rates} | {max(r for r, _ in got):.0f} | {shares} |")
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
