"""TFTP: provisor's server next to tftp-hpa (in.tftpd) serving the same bytes on 127.0.0.1.

Run: .venv/bin/python bench/tftp_bench.py
- small-file read requests per second (1.4 KB file, 50 transfers at a time, bounded count);
- aggregate MB/s for 50 concurrent 1 MB transfers, blksize 1432, without and with windowsize 8
  (in.tftpd does not implement windowsize: its row shows lock-step).
The load client is an asyncio program (on uvloop) in this process, sharing the machine's 2
cores.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PY, ROOT, free_port, process  # noqa: E402

SERVER = """
import asyncio, sys
sys.path.insert(0, sys.argv[3])
from pathlib import Path
from provisor.provisioning.tftp import TftpLimits, TftpReply, TftpServer
root = Path(sys.argv[1])
files = {p.name: p.read_bytes() for p in root.iterdir()}
async def handler(req):
    data = files.get(req.filename)
    return TftpReply(data=data) if data is not None else TftpReply(error_code=1, error_message="not found")
async def main():
    import uvloop
    server = TftpServer(handler, host="127.0.0.1", port=int(sys.argv[2]), limits=TftpLimits(max_transfers_per_client=10000, max_transfers=10000))
    await server.start()
    await asyncio.Event().wait()
import uvloop
uvloop.run(main())
"""


class Client(asyncio.DatagramProtocol):
    def __init__(self, done: asyncio.Future[int], blksize: int, window: int) -> None:
        self.done = done
        self.blksize = blksize
        self.window = window
        self.expected = 1
        self.received = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        op = struct.unpack_from(">H", data)[0]
        if op == 6:  # OACK: use only what the server acknowledged
            fields = data[2:-1].split(b"\x00")
            acked = dict(zip(fields[::2], fields[1::2], strict=False))
            self.blksize = int(acked.get(b"blksize", 512))
            self.window = int(acked.get(b"windowsize", 1))
            self.transport.sendto(b"\x00\x04\x00\x00", addr)  # type: ignore[attr-defined]
            return
        if op == 5:
            if not self.done.done():
                self.done.set_exception(RuntimeError(data[4:-1].decode()))
            return
        block = struct.unpack_from(">H", data, 2)[0]
        if block != self.expected & 0xFFFF:
            return
        self.expected += 1
        self.received += len(data) - 4
        last = len(data) - 4 < self.blksize
        if last or (self.expected - 1) % self.window == 0:
            self.transport.sendto(struct.pack(">HH", 4, block), addr)  # type: ignore[attr-defined]
        if last and not self.done.done():
            self.done.set_result(self.received)


async def get(port: int, name: str, blksize: int | None, window: int | None) -> int:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[int] = loop.create_future()
    opts = b""
    if blksize:
        opts += b"blksize\x00" + str(blksize).encode() + b"\x00"
    if window:
        opts += b"windowsize\x00" + str(window).encode() + b"\x00"
    transport, _ = await loop.create_datagram_endpoint(
        lambda: Client(done, blksize or 512, window or 1), local_addr=("127.0.0.1", 0)
    )
    try:
        transport.sendto(b"\x00\x01" + name.encode() + b"\x00octet\x00" + opts, ("127.0.0.1", port))
        return await asyncio.wait_for(done, 20)
    finally:
        transport.close()


async def load(
    port: int,
    name: str,
    total: int,
    concurrency: int,
    blksize: int | None,
    window: int | None,
    limit_s: float,
) -> tuple[float, int, int]:
    queue = iter(range(total))
    done = 0
    failed = 0
    nbytes = 0
    start = time.perf_counter()

    async def worker() -> None:
        nonlocal done, failed, nbytes
        for _ in queue:
            if time.perf_counter() - start > limit_s:
                return
            try:
                nbytes += await get(port, name, blksize, window)
                done += 1
            except Exception:
                failed += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - start, done, failed


async def measure(port: int) -> dict[str, float]:
    out: dict[str, float] = {}
    elapsed, done, failed = (await load(port, "small.cfg", 5000, 50, None, None, 20))[:3]
    out["rrq"] = done / elapsed
    out["rrq_failed"] = failed
    elapsed, done, _ = (await load(port, "big.bin", 50, 50, 1432, None, 60))[:3]
    out["mbps"] = done * 1_000_000 / elapsed / 1e6
    elapsed, done, _ = (await load(port, "big.bin", 50, 50, 1432, 8, 60))[:3]
    out["mbps_w8"] = done * 1_000_000 / elapsed / 1e6
    return out


def atftp_clients(port: int, count: int = 50, rounds: int = 2, name: str = "big.bin") -> float:
    """MB/s for ``count`` concurrent 1 MB downloads by atftp processes (a client in C, so the
    server rather than a Python client is what saturates); best of ``rounds``."""
    if shutil.which("atftp") is None:
        return float("nan")
    best = 0.0
    for _ in range(rounds):
        t0 = time.monotonic()
        cmd = ["atftp", "--option", "blksize 1432", "-g", "-r", name, "-l", "/dev/null"]
        procs = [
            subprocess.Popen(
                [*cmd, "127.0.0.1", str(port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(count)
        ]
        if any(p.wait(timeout=120) != 0 for p in procs):
            return float("nan")
        best = max(best, count / (time.monotonic() - t0))
    return best


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-tftp-"))
    os.chmod(folder, 0o755)
    (folder / "small.cfg").write_bytes(os.urandom(1400))
    (folder / "big.bin").write_bytes(os.urandom(1_000_000))
    for p in folder.iterdir():
        p.chmod(0o644)
    ours_port = free_port()
    with process([PY, "-c", SERVER, str(folder), str(ours_port), str(ROOT / "src")]):
        time.sleep(1.0)
        ours = uvloop.run(measure(ours_port))
        ours["mbps_atftp"] = atftp_clients(ours_port)
    hpa = None
    if shutil.which("in.tftpd") or Path("/usr/sbin/in.tftpd").exists():
        hpa_port = free_port()
        with process(
            [
                "/usr/sbin/in.tftpd",
                "--foreground",
                "--listen",
                "--user",
                "root",
                "--address",
                f"127.0.0.1:{hpa_port}",
                "--secure",
                str(folder),
            ]
        ):
            time.sleep(0.5)
            hpa = uvloop.run(measure(hpa_port))
            hpa["mbps_atftp"] = atftp_clients(hpa_port)
    print("| measure | provisor | tftp-hpa | ratio |\n|---|---:|---:|---:|")
    for key, label in (
        ("rrq", "small-file RRQ/s (1.4 KB, 50 at a time)"),
        ("mbps", "MB/s, 50 x 1 MB, blksize 1432"),
        ("mbps_w8", "MB/s, 50 x 1 MB, blksize 1432, windowsize 8"),
        ("mbps_atftp", "MB/s, 50 x 1 MB, blksize 1432, 50 atftp processes as clients"),
    ):
        ref = hpa[key] if hpa else float("nan")
        ratio = ours[key] / ref if hpa and ref else float("nan")
        print(f"| {label} | {ours[key]:.0f} | {ref:.0f} | {ratio:.2f} |")
    print(
        f"\nfailed small transfers: provisor {ours['rrq_failed']:.0f}, tftp-hpa {hpa['rrq_failed'] if hpa else 'n/a'}"
    )


if __name__ == "__main__":
    main()
