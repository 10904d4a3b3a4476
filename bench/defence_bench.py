"""CPU per scan-defence event a phone worker hands to the main process (provisor.workers.defence).

Run: .venv/bin/python bench/defence_bench.py [--events 200000] [--per-turn 64]
Both ends of a real link (a Unix SEQPACKET socket pair) in one process: a worker's tracker
queues ``--events`` events the way a boot storm of new phones makes them (a creation, then the
device's return), ``--per-turn`` per event-loop turn, and the main process's hub counts them.
Prints the process CPU time per event for the whole round trip (queue, pickle, send, receive,
unpickle, count), the figure to multiply by a storm's ``provisor_defence_events_total``.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from provisor.provisioning.defence import FailureTracker
from provisor.workers.defence import DefenceHub, WorkerTracker
from provisor.workers.link import Link, pair


async def measure(events: int, per_turn: int) -> tuple[float, int]:
    """CPU seconds for ``events`` events and how many the hub received."""
    main_sock, worker_sock = pair()
    main_end, worker_end = Link(main_sock), Link(worker_sock)
    received = 0
    hub = DefenceHub(FailureTracker(10**9, 60, 600), lambda _a, _r: None)

    def got(message: tuple[object, ...]) -> None:
        nonlocal received
        batch = message[1]
        assert isinstance(batch, list)
        received += len(batch)
        hub.receive(batch)

    main_end.listen(got, lambda: None)
    worker = WorkerTracker(FailureTracker(10**9, 60, 600), worker_end)
    t0 = time.process_time()
    n = 0
    while n < events:
        for _ in range(per_turn // 2):  # a new phone: created, then back for its second file
            device = f"dev-{n}"
            worker.created(f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}", device)
            worker.returned(device)
            n += 2
        await asyncio.sleep(0)  # the end of a loop turn: the queue is sent
    while received < n:
        await asyncio.sleep(0.001)
    cpu = time.process_time() - t0
    main_end.close()
    worker_end.close()
    return cpu, received


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--per-turn", type=int, default=64)
    args = parser.parse_args()
    cpu, received = asyncio.run(measure(args.events, args.per_turn))
    print(
        f"{received} events, {args.per_turn} a loop turn: {cpu:.2f} s CPU, "
        f"{cpu / received * 1e6:.1f} µs an event (worker and main process together)"
    )


if __name__ == "__main__":
    main()
