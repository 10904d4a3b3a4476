"""The boot storm alone: N distinct new phones, trees compared in interleaved rounds.

Run: .venv/bin/python bench/storm_bench.py [--count 10000] [--workers auto] [--rounds 3]
     [--tree /work/main --tree .] [--profile out.svg]

Each round starts a fresh server per tree (its ``src`` on PYTHONPATH, its ``plugins``), sets a
provisioning key and sends ``count`` distinct new phones of the storm's four vendors
(bench/http_bench.py's Lua script, 2 wrk threads, 50 connections), timed from the first request
until the last device is in the database. The trees take turns, so a machine that slows down
for a minute slows both. ``--profile`` records the server (and its phone workers) with py-spy.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
from common import PY, ROOT, cpu_seconds_tree, free_port, process, wait_port
from http_bench import KEY, MIME, ten_thousand


def one_storm(
    tree: Path, count: int, workers: str, profile: Path | None
) -> tuple[float, float, float, int, float]:
    """Seconds for ``count`` new phones, p50 and p99 ms, errors, server CPU seconds."""
    data = Path(tempfile.mkdtemp(prefix="bench-storm-"))
    env = {
        **os.environ,
        "PYTHONPATH": str(tree / "src"),
        "PROVISOR_DATA_DIR": str(data),
        "PROVISOR_HTTP_AUTH_STRATEGY": "url_key",
        "PROVISOR_GENERAL__PLUGIN_DIRS": json.dumps([str(tree / "plugins")]),
        "PROVISOR_PROVISIONING__AUTO_CREATE_PER_SOURCE": "100000000",
        "PROVISOR_PROVISIONING__BAN_THRESHOLD": "100000000",
        "PROVISOR_PROVISIONING__TFTP_ENABLED": "false",
        "PROVISOR_PROVISIONING__WORKERS": workers,
        "PROVISOR_GENERAL__HTTP_PROXIED_TRUSTED_PROXIES_COUNT": "1",
    }
    cli = [PY, "-m", "provisor.cli"]
    token = subprocess.run(
        [*cli, "token", "create"], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    rest, http = free_port(), free_port()
    try:
        with process(
            [*cli, "serve", "--rest-port", str(rest), "--http-port", str(http)], env=env
        ) as server:
            wait_port(http)
            wait_port(rest)
            httpx.put(
                f"http://127.0.0.1:{rest}/0.2/configure/provisioning_key",
                json={"param": {"value": KEY}},
                headers={"X-Auth-Token": token, "Content-Type": MIME, "Accept": MIME},
            ).raise_for_status()
            time.sleep(1.0)  # the phone workers learn the key
            spy = None
            if profile is not None:
                spy = subprocess.Popen(
                    ["py-spy", "record", "--subprocesses", "-r", "200", "-o", str(profile)]
                    + ["-f", "raw" if profile.suffix == ".txt" else "flamegraph"]
                    + ["-p", str(server.pid)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                time.sleep(1.0)
            cpu = cpu_seconds_tree(server.pid)
            elapsed, result = ten_thousand(http, data / "provisor.db", count)
            cpu = cpu_seconds_tree(server.pid) - cpu
            if spy is not None:
                spy.send_signal(2)
                spy.wait(timeout=60)
    finally:
        shutil.rmtree(data, ignore_errors=True)
    return elapsed, result.p50_ms, result.p99_ms, result.errors, cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--workers", default="auto", help="provisioning.workers")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--tree", action="append", type=Path, help="a checkout to run (default: this one)"
    )
    parser.add_argument("--profile", type=Path, help="py-spy output (one tree, one round)")
    args = parser.parse_args()
    trees = [t.resolve() for t in (args.tree or [ROOT])]
    print(
        f"| round | tree | {args.count} new phones, s | p50 ms | p99 ms | errors | server CPU s |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|")
    for n in range(1, args.rounds + 1):
        for tree in trees:
            elapsed, p50, p99, errors, cpu = one_storm(tree, args.count, args.workers, args.profile)
            print(
                f"| {n} | {tree} | {elapsed:.1f} | {p50:.0f} | {p99:.0f} | {errors} | {cpu:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
