"""A lock-step TFTP load in its own process: each thread sends its final ACK and, at once, the
next read request from a new socket, as a fast client does. Prints ``served N refused M``.

Run: python -m tests.security._lockstep PORT THREADS TRANSFERS
"""

from __future__ import annotations

import socket
import sys
import threading

RRQ = b"\x00\x01f.cfg\x00octet\x00"


def main() -> None:
    """Run the threads and print what they got."""
    port, threads, transfers = (int(a) for a in sys.argv[1:4])
    target = ("127.0.0.1", port)
    served: list[int] = []
    refused: list[bytes] = []

    def endpoint() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.settimeout(20)
        sock.bind(("127.0.0.1", 0))
        return sock

    def worker() -> None:
        sock = endpoint()
        sock.sendto(RRQ, target)
        for i in range(transfers):
            data, addr = sock.recvfrom(2048)
            following = endpoint() if i + 1 < transfers else None
            if data[:2] == b"\x00\x05":
                refused.append(data)
            else:
                served.append(1)
                sock.sendto(b"\x00\x04" + data[2:4], addr)  # the final ACK (one block)
            if following is not None:
                following.sendto(RRQ, target)  # right behind it
            sock.close()
            if following is not None:
                sock = following

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    print(f"served {len(served)} refused {len(refused)}", flush=True)


if __name__ == "__main__":
    main()
