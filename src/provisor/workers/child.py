"""One phone worker process: serves the phone sockets the main process bound and handed over.

Started by :class:`provisor.workers.pool.WorkerPool` as ``python -m provisor.workers.child``
with the settings (pickled) on standard input and the sockets' descriptors as arguments. It
opens the same store (already migrated by the main process), loads the plugins and runs its
own pipeline, caches and defences (failure counts go to the main process); it sends "ready" or
one "failed" line, then trace entries, scan-defence events and metrics, and stops on SIGTERM,
SIGINT or when the main process's end of the link closes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import pickle
import signal
import socket
import sys
from collections.abc import Mapping
from typing import Any

from provisor.errors import ProvisorError
from provisor.settings import Settings
from provisor.workers.link import Link

__all__ = ["main"]

log = logging.getLogger("provisor.workers")

METRICS_INTERVAL = 1.0
#: under the main process's wait before SIGKILL (provisor.workers.pool.STOP_TIMEOUT)
STOP_GRACE = 10.0


class _Worker:
    """The listeners, pipeline and relays of one worker."""

    def __init__(self, settings: Settings, args: argparse.Namespace, link: Link) -> None:
        self.settings = settings
        self.args = args
        self.link = link
        self.stopped = asyncio.Event()
        self.prov: Any = None
        self.pipeline: Any = None
        self.servers: list[Any] = []
        self.guards: list[Any] = []
        self.serving: list[asyncio.Task[Any]] = []
        self.tasks: list[asyncio.Task[Any]] = []
        self.tftp: Any = None
        self._polling: asyncio.Task[None] | None = None
        self._poll_again = False

    async def start(self) -> None:
        """Open the store and serve the inherited sockets."""
        from provisor.provisioning.http import PhoneApp
        from provisor.provisioning.limits import fd_budget, raise_fd_limit
        from provisor.provisioning.pipeline import Pipeline
        from provisor.server import _guard, _tls_context, _uvicorn
        from provisor.service import Provisor
        from provisor.workers.defence import WorkerTracker
        from provisor.workers.relay import RelayedTrace

        settings, args, link = self.settings, self.args, self.link
        self.prov = prov = await Provisor.open(settings, migrate_schema=False)
        self.pipeline = pipeline = Pipeline(prov)
        prov.extra["pipeline"] = pipeline
        pipeline.trace = RelayedTrace(link, args.index, settings.provisioning.trace_size)
        # failures are counted by the main process, which decides and announces bans
        pipeline.failures = WorkerTracker(pipeline.failures, link)
        # this worker's own device writes (auto-creation, new address): every other process
        # drops its cached copy at once
        prov.devices.listeners.append(self._device_event)
        budget = fd_budget(raise_fd_limit())
        loop = asyncio.get_running_loop()
        for name, fd in (("http", args.http), ("https", args.https)):
            if fd is None:
                continue
            context = _tls_context(settings) if name == "https" else None
            guard = _guard(
                name, settings.limits.phone, budget.phone, settings, context, share=args.count
            )
            server = _uvicorn(PhoneApp(pipeline, secure=name == "https"), guard)
            guard.start()
            self.guards.append(guard)
            self.servers.append(server)
            sock = socket.socket(fileno=fd)
            self.serving.append(loop.create_task(server.serve(sockets=[sock])))
        for server in self.servers:
            while not server.started:
                if server.should_exit:
                    raise ProvisorError("a phone listener failed to start")
                await asyncio.sleep(0.01)
        if args.tftp is not None:
            from provisor.provisioning.tftp_front import start_tftp

            self.tftp = await start_tftp(
                pipeline,
                settings,
                max_transfers=budget.tftp,
                share=args.count,
                sock=socket.socket(fileno=args.tftp),
            )
        prov.feed.start(prov.reload_changed)
        link.listen(self._message, self.stopped.set)
        self.tasks.append(loop.create_task(self._relay()))

    def _device_event(self, _event: str, doc: Mapping[str, Any]) -> None:
        from provisor.workers.pool import device_keys

        self.link.send(("forget", device_keys(doc)))

    def _message(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "forget":
            self.pipeline.devices.forget(message[1])
        elif kind == "ban":  # decided by the main process, which writes it
            self.pipeline.failures.hold(message)
        elif kind == "plugins":  # the main process's reconciler changed the plugins folder
            from provisor.plugins.resync import resync_plugins
            from provisor.service import plugin_folders

            resync_plugins(self.prov.plugins, plugin_folders(self.prov.settings))
        elif kind == "changed":  # the main process wrote: look at the counters now
            if self._polling is not None:  # a burst of REST writes: one more look after this one
                self._poll_again = True
                return
            self._polling = asyncio.get_running_loop().create_task(self._poll())

    async def _poll(self) -> None:
        try:
            while True:
                self._poll_again = False
                with contextlib.suppress(Exception):  # the periodic poll logs database trouble
                    await self.prov.feed.poll_once(self.prov.reload_changed)
                if not self._poll_again:
                    return
        finally:
            self._polling = None

    async def _relay(self) -> None:
        from provisor.workers.relay import FLUSH_INTERVAL, snapshot

        loop = asyncio.get_running_loop()
        next_metrics = loop.time()
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            self.pipeline.trace.flush()
            if loop.time() >= next_metrics:
                next_metrics = loop.time() + METRICS_INTERVAL
                self.link.send(("metrics", snapshot()))

    async def stop(self) -> None:
        """Stop the listeners, send what is left of the trace, close the store."""
        for server in self.servers:
            server.should_exit = True
        for guard in self.guards:
            guard.stop()
        if self.tftp is not None:
            await self.tftp.stop()
        if self.serving:  # uvicorn finishes the requests in progress, as the main process does
            _, late = await asyncio.wait(self.serving, timeout=STOP_GRACE)
            for task in late:
                task.cancel()
        if self._polling is not None:
            self.tasks.append(self._polling)
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, *self.serving, return_exceptions=True)
        if self.pipeline is not None:
            from provisor.workers.relay import snapshot

            self.pipeline.trace.flush()
            self.link.send(("metrics", snapshot()))
            self.pipeline.close()
        if self.prov is not None:
            await self.prov.close()
        self.link.close()


async def _run(settings: Settings, args: argparse.Namespace) -> int:
    link = Link(socket.socket(fileno=args.link))
    worker = _Worker(settings, args, link)
    try:
        await worker.start()
    except ProvisorError as exc:
        link.send(("failed", exc.message))
        return 1
    except Exception as exc:  # one line to the main process; the traceback to this log
        log.exception("phone worker %d: start-up failed", args.index)
        first = (str(exc).strip().splitlines() or [""])[0]
        link.send(("failed", f"{type(exc).__name__}: {first}"[:500]))
        return 1
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, worker.stopped.set)
    gc.collect()
    gc.freeze()  # as the main process does (provisor.server.serve)
    link.send(("ready", os.getpid()))
    try:
        await worker.stopped.wait()
    finally:
        await worker.stop()
    return 0


def _fd(text: str) -> int:
    return int(text)


def main(argv: list[str] | None = None) -> int:
    """Run one phone worker until told to stop."""
    parser = argparse.ArgumentParser(prog="provisor.workers.child")
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--link", type=_fd, required=True)
    for name in ("http", "https", "tftp"):
        parser.add_argument(f"--{name}", type=_fd, default=None)
    args = parser.parse_args(argv)
    settings: Settings = pickle.load(sys.stdin.buffer)
    from provisor.logs import setup_logging

    observe = settings.observability
    setup_logging(settings.general.verbose, observe.log_format, observe.log_file)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        return asyncio.run(_run(settings, args))
    return uvloop.run(_run(settings, args))


if __name__ == "__main__":
    sys.exit(main())
