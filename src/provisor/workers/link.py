"""The link between the main process and one phone worker: a Unix socket pair of messages.

``SOCK_SEQPACKET`` keeps message boundaries and is reliable, so one ``send`` is one message;
messages are pickled tuples (both ends are provisor's own processes, started together from the
same installation). Sends never block: a full socket buffer drops the message and the caller
counts it, so a stalled main process can never stall a worker's phones. End of file on either
side means the other process is gone: a worker whose main process died stops.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import socket
from collections.abc import Callable
from typing import Any

__all__ = ["Link", "pair"]

log = logging.getLogger(__name__)

#: the largest message read; a batch of trace entries stays well under it (see trace_relay)
MAX_MESSAGE = 1 << 20


def pair() -> tuple[socket.socket, socket.socket]:
    """(main end, worker end) of a new link."""
    main, worker = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    main.set_inheritable(False)
    worker.set_inheritable(True)
    return main, worker


class Link:
    """One end of a link, read on the running event loop."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.closed = False
        self._loop: asyncio.AbstractEventLoop | None = None

    def send(self, message: tuple[Any, ...]) -> bool:
        """Send one message without waiting; False if it was dropped (buffer full, too large,
        or the other end gone)."""
        if self.closed:
            return False
        try:
            self.sock.send(pickle.dumps(message, pickle.HIGHEST_PROTOCOL))
        except OSError:  # BlockingIOError (full), EMSGSIZE, EPIPE: the caller counts the loss
            return False
        return True

    def listen(
        self, on_message: Callable[[tuple[Any, ...]], None], on_close: Callable[[], None]
    ) -> None:
        """Call ``on_message`` for each message, ``on_close`` once at end of file."""
        loop = self._loop = asyncio.get_running_loop()

        def readable() -> None:
            while not self.closed:
                try:
                    data = self.sock.recv(MAX_MESSAGE)
                except (BlockingIOError, InterruptedError):
                    return
                except OSError:
                    data = b""
                if not data:
                    self.close()
                    on_close()
                    return
                try:
                    on_message(pickle.loads(data))
                except Exception:  # a bad message must not stop the link
                    log.exception("phone worker link: message dropped")

        loop.add_reader(self.sock.fileno(), readable)

    def close(self) -> None:
        """Stop reading and close the socket."""
        if self.closed:
            return
        self.closed = True
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self.sock.fileno())
        self.sock.close()
