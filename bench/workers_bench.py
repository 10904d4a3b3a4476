"""Phone workers: provisor with ``provisioning.workers`` 1 and ``auto``, against nginx (one
worker) and tftp-hpa measured in the same run.

Run: .venv/bin/python bench/workers_bench.py [--seconds 5] [--rounds 1]
For each worker count, a fresh data directory and ``provisor serve``:
1. the configured device's ~50 KB file, ``wrk -t2 -c50`` with its provisioning key (cached);
2. TFTP, 50 concurrent 1 MB lock-step downloads (blksize 1432) by 50 ``atftp`` processes, the
   file served through the pipeline (the firmware of a device the path names, from the bench's
   own plugin in bench/plugins);
3. a boot storm of 10 000 distinct new phones (4 vendors), timed until the last device is in
   the database (bench/http_bench.py's ``ten_thousand``).
References: nginx with one worker serving the same device file from disk, and tftp-hpa's
in.tftpd serving the same 1 MB file to the same atftp clients. Everything is on 127.0.0.1 and
the load generators share the machine's cores; every load is bounded in time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    HEADER,
    PY,
    ROOT,
    WrkResult,
    free_port,
    nginx_serving,
    process,
    rss_mb,
    wait_port,
    wrk,
)
from http_bench import KEY, MIME, UA, seed, ten_thousand  # noqa: E402
from tftp_bench import atftp_clients  # noqa: E402

FIRMWARE = "bench-1mb.rom"
TFTP_MAC = "02:00:00:00:00:01"
#: bench/plugins/benchphone: the MAC in the path identifies the phone, its firmware is 1 MB
TFTP_PATH = f"{KEY}/bench/020000000001/{FIRMWARE}"


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def run(workers: str, seconds: int, rounds: int, firmware: bytes) -> dict[str, object]:
    """Every measure against one ``provisor serve`` with ``provisioning.workers = workers``."""
    data = Path(tempfile.mkdtemp(prefix=f"bench-workers-{workers}-"))
    store = data / "firmware" / "benchphone" / "bench" / "020000000001"  # the path under the key
    store.mkdir(parents=True)
    (store / FIRMWARE).write_bytes(firmware)
    env = {
        **os.environ,
        "PROVISOR_DATA_DIR": str(data),
        "PROVISOR_HTTP_AUTH_STRATEGY": "url_key",
        "PROVISOR_GENERAL__PLUGIN_DIRS": json.dumps(
            [str(ROOT / "plugins"), str(ROOT / "bench" / "plugins")]
        ),
        "PROVISOR_PROVISIONING__AUTO_CREATE_PER_SOURCE": "100000000",
        "PROVISOR_PROVISIONING__BAN_THRESHOLD": "100000000",
        "PROVISOR_PROVISIONING__WORKERS": workers,
        # each simulated phone has its own address, as behind a real proxy
        "PROVISOR_GENERAL__HTTP_PROXIED_TRUSTED_PROXIES_COUNT": "1",
    }
    cli = [PY, "-m", "provisor.cli"]
    token = subprocess.run(
        [*cli, "token", "create"], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    rest, http, tftp = free_port(), free_port(), free_port()
    serve = [*cli, "serve", "--rest-port", str(rest), "--http-port", str(http)]
    out: dict[str, object] = {"workers": workers}
    with process([*serve, "--tftp-port", str(tftp)], env=env) as server:
        wait_port(http)
        wait_port(rest)
        api = httpx.Client(
            base_url=f"http://127.0.0.1:{rest}",
            headers={"X-Auth-Token": token, "Content-Type": MIME, "Accept": MIME},
            timeout=60,
        )
        api.put(
            "/0.2/configure/provisioning_key", json={"param": {"value": KEY}}
        ).raise_for_status()
        seed(api)
        tftp_phone = {"mac": TFTP_MAC, "plugin": "benchphone", "model": "B1"}
        api.post("/0.2/dev_mgr/devices", json={"device": tftp_phone}).raise_for_status()
        url = f"http://127.0.0.1:{http}/{KEY}/001565aabbcc.cfg"
        # the first render compiles the templates: slow on a busy machine
        body = httpx.get(url, headers={"User-Agent": UA}, timeout=60).content
        assert b"secret1" in body, "the device file did not render"
        out["body"] = body
        out["processes"] = 1 + len(_children(server.pid))
        folder = Path(tempfile.mkdtemp(prefix="bench-static-"))
        os.chmod(folder, 0o755)
        (folder / "001565aabbcc.cfg").write_bytes(body)
        (folder / FIRMWARE).write_bytes(firmware)
        for p in folder.iterdir():
            p.chmod(0o644)
        # the references are measured in turn with provisor, round by round: on a busy machine
        # a ratio is only worth something between figures taken within seconds of each other
        ours = ref = None
        mbps = hpa = 0.0
        for _ in range(rounds):
            ours = best(ours, wrk(url, seconds=seconds, headers={"User-Agent": UA}))
            with nginx_serving(folder) as port:
                page = f"http://127.0.0.1:{port}/001565aabbcc.cfg"
                ref = best(ref, wrk(page, seconds=seconds))
            mbps = max(mbps, atftp_clients(tftp, rounds=1, name=TFTP_PATH))
            hpa = max(hpa, tftp_hpa(folder))
        out["device_file"], out["nginx"] = ours, ref
        out["tftp_mbps"], out["hpa_mbps"] = mbps, hpa
        elapsed, storm = ten_thousand(http, data / "provisor.db")
        out["storm_s"], out["storm"] = elapsed, storm
        out["rss_mb"] = rss_mb(server.pid) + sum(rss_mb(c) for c in _children(server.pid))
    return out


def best(a: WrkResult | None, b: WrkResult) -> WrkResult:
    return b if a is None or b.rps > a.rps else a


def tftp_hpa(folder: Path) -> float:
    """tftp-hpa's MB/s for the same 50 atftp clients and file."""
    if not (shutil.which("in.tftpd") or Path("/usr/sbin/in.tftpd").exists()):
        return float("nan")
    port = free_port()
    cmd = ["/usr/sbin/in.tftpd", "--foreground", "--listen", "--user", "root"]
    cmd += ["--address", f"127.0.0.1:{port}", "--secure", str(folder)]
    with process(cmd):
        time.sleep(0.5)
        return atftp_clients(port, rounds=1, name=FIRMWARE)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=1, help="best of this many rounds")
    args = parser.parse_args()
    if shutil.which("atftp") is None:
        raise SystemExit("atftp is not installed (Debian package atftp)")
    firmware = os.urandom(1_000_000)
    runs = [run(w, args.seconds, args.rounds, firmware) for w in ("1", "auto")]
    cores = len(os.sched_getaffinity(0))
    print(f"### Device file, wrk -t2 -c50, keys on, best of {args.rounds} ({cores} cores)\n")
    print("nginx (1 worker, the same bytes from disk) measured in turn with each provisor.\n")
    print(HEADER)
    for r in runs:
        ref: WrkResult = r["nginx"]  # type: ignore[assignment]
        print(ref.row(f"nginx 1 worker (next to workers={r['workers']})", ref))
        name = f"provisor workers={r['workers']} ({r['processes']} processes)"
        print(r["device_file"].row(name, ref))  # type: ignore[attr-defined]
    print("\n### TFTP, 50 x 1 MB lock-step (blksize 1432), 50 atftp processes as clients\n")
    print("| server | MB/s | tftp-hpa MB/s, same minutes | ratio |\n|---|---:|---:|---:|")
    for r in runs:
        mbps, hpa = float(r["tftp_mbps"]), float(r["hpa_mbps"])  # type: ignore[arg-type]
        print(f"| provisor workers={r['workers']} | {mbps:.0f} | {hpa:.0f} | {mbps / hpa:.2f} |")
    print("\n### Boot storm: 10 000 distinct new phones, until the last is in the database\n")
    print("| server | seconds | p50 ms | p99 ms | errors | RSS MB (all processes) |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in runs:
        storm: WrkResult = r["storm"]  # type: ignore[assignment]
        print(
            f"| provisor workers={r['workers']} | {float(r['storm_s']):.1f} |"  # type: ignore[arg-type]
            f" {storm.p50_ms:.0f} | {storm.p99_ms:.0f} | {storm.errors} |"
            f" {float(r['rss_mb']):.0f} |"  # type: ignore[arg-type]
        )


if __name__ == "__main__":
    main()
