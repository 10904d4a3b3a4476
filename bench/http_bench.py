"""Boot storm over HTTP: provisor next to nginx (the machine's limit) and a bare ASGI app.

Run: .venv/bin/python bench/http_bench.py [--seconds 10]
1. A configured device's ~50 KB file fetched by ``wrk -t2 -c50`` with its provisioning key:
   provisor vs nginx serving the same bytes from disk vs a bare uvicorn app returning them.
2. A boot storm of distinct new phones (4 vendors, one request each, keys on): devices
   auto-created, associated and rendered per second.
Everything runs on 127.0.0.1; the load generator shares the machine's cores.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    HEADER,
    PY,
    ROOT,
    WrkResult,
    bare_asgi,
    free_port,
    nginx_serving,
    parse_wrk,
    process,
    rss_mb,
    wait_port,
    wrk,
    wrk_command,
)  # noqa: E402

MIME = "application/vnd.proformatique.provd+json"
KEY = "bench-key-0001"
MAC = "00:15:65:aa:bb:cc"
UA = f"Yealink SIP-T46S 66.86.0.15 {MAC}"

STORM = r"""
local counter = 0
local done = 0
local limit = LIMIT
local threads = {}
function setup(thread) thread:set("tid", #threads) table.insert(threads, thread) end
function init(args) counter = 0 end
local vendors = {
  {"Yealink SIP-T46S 66.86.0.15 %s", "/KEY/%s.cfg", "001565", ":"},
  {"Cisco-CP-7841-3PCC/12.0.1 (%s)", "/KEY/%s.xml", "d0ec35", ""},
  {"Fanvil X4U 2.12.2 %s", "/KEY/Fanvil/%s.cfg", "0c383e", ""},
  {"Grandstream Model HW GXP2160 SW 1.0.11.23 DevId %s", "/KEY/Grandstream/cfg%s.xml", "c074ad", ""},
}
request = function()
  counter = counter + 1
  local n = tid * 1000000 + OFFSET + counter
  local v = vendors[(counter % 4) + 1]
  local hex = string.format("%s%06x", v[3], n % 16777216)
  local mac_ua = hex
  if v[4] == ":" then mac_ua = hex:gsub("(%x%x)", "%1:"):sub(1, 17) end
  local ua = string.format(v[1], mac_ua)
  local path = string.format(v[2], hex)
  local ip = string.format("10.%d.%d.%d", math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256)
  return wrk.format("GET", path, {["User-Agent"] = ua, ["X-Forwarded-For"] = ip})
end
response = function(status, headers, body)
  done = done + 1
  if limit > 0 and done >= limit then wrk.thread:stop() end
end
""".replace("KEY", KEY)


def storm_script(*, offset: int = 0, per_thread: int = 0) -> str:
    """The storm's Lua script: MACs from ``offset``; each thread stops after ``per_thread``
    answers (0: runs for the whole duration)."""
    return STORM.replace("OFFSET", str(offset)).replace("LIMIT", str(per_thread))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument(
        "--storm-only", action="store_true", help="skip the device-file table (for profiling)"
    )
    parser.add_argument(
        "--workers",
        default="1",
        help="provisioning.workers (1: one process, the figure of earlier tables; "
        "bench/workers_bench.py compares 1 and auto)",
    )
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="bench-http-"))
    env = {
        **os.environ,
        "PROVISOR_DATA_DIR": str(data),
        "PROVISOR_HTTP_AUTH_STRATEGY": "url_key",
        "PROVISOR_GENERAL__PLUGIN_DIRS": json.dumps([str(ROOT / "plugins")]),
        "PROVISOR_PROVISIONING__AUTO_CREATE_PER_SOURCE": "100000000",
        "PROVISOR_PROVISIONING__BAN_THRESHOLD": "100000000",
        "PROVISOR_PROVISIONING__TFTP_ENABLED": "false",
        "PROVISOR_PROVISIONING__WORKERS": args.workers,
        # each simulated phone has its own address, as behind a real proxy
        "PROVISOR_GENERAL__HTTP_PROXIED_TRUSTED_PROXIES_COUNT": "1",
    }
    cli = [PY, "-m", "provisor.cli"]
    token = subprocess.run(
        [*cli, "token", "create"], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    rest, http = free_port(), free_port()
    start = time.monotonic()
    with process(
        [*cli, "serve", "--rest-port", str(rest), "--http-port", str(http)], env=env
    ) as server:
        wait_port(http)
        wait_port(rest)
        startup = time.monotonic() - start
        api = httpx.Client(
            base_url=f"http://127.0.0.1:{rest}",
            headers={"X-Auth-Token": token, "Content-Type": MIME, "Accept": MIME},
        )
        api.put(
            "/0.2/configure/provisioning_key", json={"param": {"value": KEY}}
        ).raise_for_status()
        seed(api)
        url = f"http://127.0.0.1:{http}/{KEY}/001565aabbcc.cfg"
        body = httpx.get(url, headers={"User-Agent": UA}).content
        assert b"secret1" in body, "the device file did not render"
        folder = Path(tempfile.mkdtemp(prefix="bench-static-"))
        os.chmod(folder, 0o755)
        (folder / "001565aabbcc.cfg").write_bytes(body)
        (folder / "001565aabbcc.cfg").chmod(0o644)
        print(f"device file: {len(body)} bytes; provisor start-up to listening: {startup:.2f} s\n")
        print(f"server pid {server.pid}", flush=True)
        if not args.storm_only:
            device_file_table(url, folder, args.seconds, pid=server.pid)

        def count() -> int:
            return len(api.get("/0.2/dev_mgr/devices", params={"fields": "id"}).json()["devices"])

        before = count()
        storm = wrk(f"http://127.0.0.1:{http}/", seconds=args.seconds, script=storm_script())
        created = count() - before
        print(
            "\n### Boot storm: new phones of 4 vendors, each auto-created, associated, rendered\n"
        )
        print(HEADER)
        print(storm.row("provisor, distinct new phones"))
        print(
            f"\ndevices created: {created} in {args.seconds} s = {created / args.seconds:.0f} phones/s; "
            f"10 000 phones in {10000 / max(created / args.seconds, 1e-9):.1f} s"
        )
        # the target itself: 10 000 new phones (5 000 per wrk thread), timed from the first
        # request until the 10 000th device is in the database
        elapsed, bounded = ten_thousand(http, data / "provisor.db")
        print(
            f"10 000 new phones, one run: all in the database after {elapsed:.1f} s "
            f"(p50 {bounded.p50_ms:.0f} ms, p99 {bounded.p99_ms:.0f} ms, {bounded.errors} errors)"
        )
        print(f"server RSS after the storm: {rss_mb(server.pid):.0f} MB")


def seed(api: httpx.Client) -> None:
    """The bench config (16 lines, 399 keys: a ~50 KB Yealink file) and its device."""
    lines = {
        str(n): {
            "username": f"user{n}",
            "password": f"secret{n}",
            "display_name": f"Line {n}",
            "number": f"1{n:03d}",
        }
        for n in range(1, 17)
    }
    keys = {
        str(n): {"type": "blf", "value": f"2{n:03d}", "label": f"Colleague {n}", "line": 1}
        for n in range(1, 400)
    }
    cfg = {
        "config": {
            "id": "bench",
            "parent_ids": ["base"],
            "raw_config": {
                "sip_proxy_ip": "10.0.0.1",
                "sip_lines": lines,
                "funckeys": keys,
                "timezone": "Europe/Paris",
                "ntp_enabled": True,
                "ntp_ip": "10.0.0.2",
            },
        }
    }
    api.post("/0.2/cfg_mgr/configs", json=cfg).raise_for_status()
    api.post(
        "/0.2/dev_mgr/devices",
        json={
            "device": {
                "id": "bench-phone",
                "mac": MAC,
                "plugin": "yealink",
                "model": "T46S",
                "config": "bench",
            }
        },
    ).raise_for_status()


def ten_thousand(http: int, db: Path, count: int = 10_000) -> tuple[float, WrkResult]:
    """Send ``count`` distinct new phones; seconds until the last one is stored, and wrk's
    figures (wrk is stopped once they are all in)."""
    reader = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    before = reader.execute("SELECT count(*) FROM devices").fetchone()[0]
    cmd, lua = wrk_command(
        f"http://127.0.0.1:{http}/",
        seconds=120,
        script=storm_script(offset=500_000, per_thread=count // 2),
    )
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        while time.monotonic() - t0 < 120:
            if reader.execute("SELECT count(*) FROM devices").fetchone()[0] - before >= count:
                break
            time.sleep(0.05)
        elapsed = time.monotonic() - t0
        proc.send_signal(signal.SIGINT)  # wrk prints its summary on SIGINT
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        if lua:
            os.unlink(lua)
        reader.close()
    return elapsed, parse_wrk(out)


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used (from /proc): steadier than a rate on a busy box."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def device_file_table(
    url: str, folder: Path, seconds: int, rounds: int = 2, *, pid: int | None = None
) -> None:
    """provisor's cached device file next to nginx and a bare ASGI app serving the same bytes.

    The three are measured in turn, ``rounds`` times, and each keeps its best round: the load
    generator shares the machine, and whatever else runs on it only ever slows a round down.
    """

    def best(a: WrkResult | None, b: WrkResult) -> WrkResult:
        return b if a is None or b.rps > a.rps else a

    ours = ref = asgi = None
    per_request: list[float] = []
    for _ in range(rounds):
        cpu = cpu_seconds(pid) if pid else 0.0
        got = wrk(url, seconds=seconds, headers={"User-Agent": UA})
        if pid and got.rps:
            per_request.append((cpu_seconds(pid) - cpu) / (got.rps * seconds) * 1e6)
        ours = best(ours, got)
        with nginx_serving(folder) as port:
            ref = best(ref, wrk(f"http://127.0.0.1:{port}/001565aabbcc.cfg", seconds=seconds))
        with bare_asgi(folder / "001565aabbcc.cfg") as port:
            asgi = best(asgi, wrk(f"http://127.0.0.1:{port}/", seconds=seconds))
    assert ours is not None and ref is not None and asgi is not None
    print(f"### Device file, wrk -t2 -c50, keys on, best of {rounds} rounds (ratio vs nginx)\n")
    print(HEADER)
    print(ref.row("nginx 1 worker, file on disk", ref))
    print(asgi.row("bare ASGI on uvicorn (Python ceiling)", ref))
    print(ours.row("provisor (cached render)", ref))
    print(f"\nprovisor / bare ASGI: {ours.rps / asgi.rps:.2f}")
    if per_request:
        rounds_us = ", ".join(f"{us:.0f}" for us in per_request)
        print(f"provisor's CPU per request (µs, each round): {rounds_us}")


if __name__ == "__main__":
    main()
