"""The main process's side of the phone workers: start them, feed them, restart them, stop them.

The main process binds the phone sockets (HTTP, HTTPS, TFTP) and hands the same sockets to
every worker (``pass_fds``): the kernel gives each new connection or datagram to whichever
worker asks first, so a busy worker takes less, and a worker that dies loses only its own
connections (a restarted worker inherits the sockets again; nothing is ever queued on a dead
process's socket, as it would be with one ``SO_REUSEPORT`` socket per worker). Each worker is
``python -m provisor.workers.child``, given the settings on its standard input and one
:class:`~provisor.workers.link.Link`. The main process keeps the REST API, the change feed's
writers, the bus and the sync services; it relays device invalidations between the workers
(a device written by REST, DHCP or another worker is dropped from every worker's cache at
once), collects their trace entries and metrics (:mod:`provisor.workers.relay`), and counts
their scan-defence events in its own tracker, telling every worker at once of the bans that
follow (:mod:`provisor.workers.defence`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pickle
import signal
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from provisor.errors import StartupError
from provisor.metrics import BANS
from provisor.provisioning.pipeline import Pipeline
from provisor.settings import Settings
from provisor.store.bans import Ban
from provisor.workers.defence import DefenceHub, ban_message
from provisor.workers.link import Link, pair
from provisor.workers.relay import WorkerMetrics, receive_trace

__all__ = ["WorkerPool", "device_keys"]

log = logging.getLogger(__name__)

#: a worker opens the store and loads every plugin before it says it is ready
READY_TIMEOUT = 120.0
STOP_TIMEOUT = 15.0
MAX_RESTART_DELAY = 30.0


def device_keys(doc: Mapping[str, Any]) -> dict[str, Any]:
    """What a cache needs to forget a device (no secret crosses the link)."""
    return {"id": doc.get("id", ""), "mac": doc.get("mac"), "ip": doc.get("ip")}


def _ended(returncode: int) -> str:
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-returncode).name}"
    return f"exit code {returncode}"


@dataclass
class _Worker:
    index: int
    proc: asyncio.subprocess.Process
    link: Link
    ready: asyncio.Future[int]
    watch: asyncio.Task[None] | None = None
    pid: int = field(init=False)

    def __post_init__(self) -> None:
        self.pid = self.proc.pid


class WorkerPool:
    """``count`` phone worker processes sharing the main process's phone sockets."""

    def __init__(
        self,
        settings: Settings,
        count: int,
        sockets: Mapping[str, socket.socket],
        pipeline: Pipeline,
    ) -> None:
        self.settings = settings
        self.count = count
        self.sockets = dict(sockets)
        self.pipeline = pipeline
        self.metrics = WorkerMetrics()
        self.defence = DefenceHub(pipeline.failures, self._ban_decided)
        self.restarts = 0
        self._workers: dict[int, _Worker] = {}
        self._stopping = False
        self._restarting: set[asyncio.Task[None]] = set()

    # -- start and stop -------------------------------------------------------------------------

    async def start(self) -> None:
        """Start every worker and wait until each serves; StartupError names the first failure."""
        results = await asyncio.gather(
            *(self._start_one(i) for i in range(1, self.count + 1)), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                await self.stop()
                raise result
        prov = self.pipeline.prov
        prov.devices.listeners.append(self._device_event)
        prov.feed.on_bump.append(self._bumped)
        prov.bans.on_ban.append(self._ban_added)

    async def _start_one(self, index: int) -> None:
        main_end, worker_end = pair()
        fds = {name: sock.fileno() for name, sock in self.sockets.items()}
        args = ["--index", str(index), "--count", str(self.count)]
        args += ["--link", str(worker_end.fileno())]
        for name, fd in fds.items():
            args += [f"--{name}", str(fd)]
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "provisor.workers.child",
                *args,
                stdin=asyncio.subprocess.PIPE,
                pass_fds=(worker_end.fileno(), *fds.values()),
            )
        except OSError as exc:
            main_end.close()
            raise StartupError(f"phone worker {index}: cannot start: {exc}") from None
        finally:
            worker_end.close()
        assert proc.stdin is not None
        proc.stdin.write(pickle.dumps(self.settings, pickle.HIGHEST_PROTOCOL))
        with contextlib.suppress(ConnectionError):
            await proc.stdin.drain()
        proc.stdin.close()
        ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        worker = _Worker(index, proc, Link(main_end), ready)
        self._workers[index] = worker
        worker.link.listen(
            lambda message: self._message(worker, message), lambda: self._closed(worker)
        )
        try:
            await asyncio.wait_for(asyncio.shield(ready), READY_TIMEOUT)
        except TimeoutError:
            proc.kill()
            raise StartupError(
                f"phone worker {index}: not serving after {READY_TIMEOUT:.0f} s"
            ) from None
        except StartupError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            worker.link.close()
            raise
        worker.watch = asyncio.get_running_loop().create_task(self._watch(worker))

    async def stop(self) -> None:
        """SIGTERM every worker and wait for it (SIGKILL after ``STOP_TIMEOUT``)."""
        self._stopping = True
        for task in list(self._restarting):
            task.cancel()
        workers = list(self._workers.values())
        for worker in workers:
            if worker.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    worker.proc.send_signal(signal.SIGTERM)
        for worker in workers:
            try:
                await asyncio.wait_for(worker.proc.wait(), STOP_TIMEOUT)
            except TimeoutError:
                log.warning(
                    "phone worker %d (pid %d) did not stop: killed", worker.index, worker.pid
                )
                with contextlib.suppress(ProcessLookupError):
                    worker.proc.kill()
                await worker.proc.wait()
            if worker.watch is not None:
                worker.watch.cancel()
            worker.link.close()
        await asyncio.gather(*self._restarting, return_exceptions=True)

    # -- supervision ----------------------------------------------------------------------------

    async def _watch(self, worker: _Worker) -> None:
        returncode = await worker.proc.wait()
        worker.link.close()
        self.metrics.retire(worker.index)
        if self._stopping:
            return
        log.warning(
            "phone worker %d (pid %d) ended (%s); starting another",
            worker.index,
            worker.pid,
            _ended(returncode),
        )
        task = asyncio.get_running_loop().create_task(self._restart(worker.index))
        self._restarting.add(task)
        task.add_done_callback(self._restarting.discard)

    async def _restart(self, index: int) -> None:
        delay = 0.5
        while not self._stopping:
            await asyncio.sleep(delay)
            if self._stopping:
                return
            try:
                await self._start_one(index)
            except StartupError as exc:
                log.warning("%s; trying again in %.0f s", exc.message, delay)
                delay = min(delay * 2, MAX_RESTART_DELAY)
            else:
                self.restarts += 1
                return

    # -- messages -------------------------------------------------------------------------------

    def _message(self, worker: _Worker, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "trace":
            receive_trace(self.pipeline.trace, message[1], message[2])
        elif kind == "defence":
            self.defence.receive(message[1])
        elif kind == "metrics":
            self.metrics.update(worker.index, message[1])
        elif kind == "forget":
            self.pipeline.devices.forget(message[1])
            self.broadcast(message, skip=worker.index)
        elif kind == "ready" and not worker.ready.done():
            worker.ready.set_result(int(message[1]))
        elif kind == "failed" and not worker.ready.done():
            worker.ready.set_exception(StartupError(f"phone worker {worker.index}: {message[1]}"))

    def _closed(self, worker: _Worker) -> None:
        if not worker.ready.done():
            worker.ready.set_exception(
                StartupError(
                    f"phone worker {worker.index}: ended before serving (its log says why)"
                )
            )

    def broadcast(self, message: tuple[Any, ...], *, skip: int = 0) -> None:
        """Send a message to every serving worker (but ``skip``)."""
        for worker in self._workers.values():
            if worker.index != skip and worker.ready.done() and not worker.link.closed:
                worker.link.send(message)

    def _device_event(self, _event: str, doc: Mapping[str, Any]) -> None:
        self.broadcast(("forget", device_keys(doc)))

    def _ban_decided(self, address: str, reason: str) -> None:
        BANS.inc()
        self.pipeline.security.banned(address, reason)

    def _ban_added(self, ban: Ban) -> None:
        """A ban decided here (workers' failures or REST): every worker refuses it now."""
        self.broadcast(ban_message(ban))

    def _bumped(self, name: str) -> None:
        self.broadcast(("changed", name))

    # -- state ----------------------------------------------------------------------------------

    def pids(self) -> dict[int, int]:
        """The pid of each worker serving now, by worker number."""
        return {
            w.index: w.pid
            for w in self._workers.values()
            if w.ready.done() and not w.ready.exception() and w.proc.returncode is None
        }

    @property
    def serving(self) -> bool:
        """At least one worker serves phones."""
        return bool(self.pids())
