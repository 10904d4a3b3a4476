"""Worker processes that render tenant template overrides, stopped when they overrun.

A runaway render must not run on the event loop (it would stall every request) and cannot be
stopped in a thread, so overrides render in child processes
(:mod:`provisor.plugins.render_worker`) that the kernel ends on CPU time; the pool here waits
for them without blocking, kills one that outlives a wall-clock backstop, and replaces any
worker that died. Each tenant has at most one override render in flight, so one tenant's bad
template occupies one worker while the others keep serving the other tenants.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass

from provisor.errors import PluginError
from provisor.plugins.base import RenderJob
from provisor.plugins.budget import RenderLimitError, RenderLimits
from provisor.plugins.render_worker import HEADER

__all__ = ["PoolLimits", "RenderPool", "WorkerLost"]

log = logging.getLogger(__name__)

#: What a worker inherits of the environment: enough to start Python, none of the server's
#: settings (database URL, AMI secret…) for a template that escaped the sandbox to read.
_WORKER_ENV = frozenset({"PATH", "PYTHONPATH", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "HOME"})


class WorkerLost(PluginError):
    """A worker ended or misbehaved for a reason other than the render's budget."""


@dataclass(frozen=True, slots=True)
class PoolLimits:
    """The pool's size and each render's limits."""

    render: RenderLimits
    workers: int = 2
    memory_bytes: int = 512 * 1024 * 1024
    wall_seconds: float = 30.0


class _Worker:
    """One child process and its pipes."""

    def __init__(
        self, proc: asyncio.subprocess.Process, transport: asyncio.SubprocessTransport
    ) -> None:
        self.proc = proc
        self.transport = transport
        assert proc.stdin is not None and proc.stdout is not None
        self.stdin = proc.stdin
        self.stdout = proc.stdout

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None

    async def reap(self) -> None:
        """Wait for a worker that is ending by itself (EOF, memory); kill it if it lingers.

        Killing it at once would race the child watcher: Popen checks with waitpid before
        signalling, reaps the dead child, and the watcher then reports status 255 instead of
        the signal that ended it (the kernel's SIGPROF).
        """
        try:
            async with asyncio.timeout(5):
                await self.proc.wait()
        except TimeoutError:
            pass
        await self.kill()

    async def kill(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        code = await self.proc.wait()
        self.transport.close()
        log.info(
            "render worker %s ended (status %s); the next render starts a new one",
            self.proc.pid,
            code,
        )

    async def render(self, job: RenderJob, limits: PoolLimits) -> str:
        request = pickle.dumps(
            {
                "root": job.templates_root,
                "name": job.name,
                "overrides": job.overrides,
                "variables": job.variables,
                "cpu_seconds": limits.render.cpu_seconds,
                "max_bytes": limits.render.max_bytes,
            },
            protocol=pickle.HIGHEST_PROTOCOL,
        )
        self.stdin.write(HEADER.pack(len(request)) + request)
        try:
            async with asyncio.timeout(limits.wall_seconds):
                await self.stdin.drain()
                status = await self.stdout.readexactly(1)
                (size,) = HEADER.unpack(await self.stdout.readexactly(HEADER.size))
                # a worker is not trusted with the server's memory either
                if size > 4 * limits.render.max_bytes + 4096:
                    await self.kill()
                    raise WorkerLost("render worker answered an oversized reply")
                text = (await self.stdout.readexactly(size)).decode("utf-8", "replace")
        except TimeoutError:
            await self.kill()
            raise RenderLimitError(
                "cpu", f"render stopped: no answer within {limits.wall_seconds:g} s"
            ) from None
        except (asyncio.IncompleteReadError, ConnectionError, BrokenPipeError):
            await self.reap()
            raise self._death(limits) from None
        if status == b"O":
            return text
        if status == b"L":
            kind, _, message = text.partition("\0")
            if kind == "memory":
                await self.reap()  # it exits after answering: never hand it another job
            raise RenderLimitError(kind, message)
        if status == b"E":
            raise PluginError(f"rendering {job.name} failed: {text}")
        await self.kill()
        raise WorkerLost("render worker answered garbage")

    def _death(self, limits: PoolLimits) -> PluginError:
        code = self.proc.returncode
        if code in (-signal.SIGPROF, -signal.SIGXCPU):
            return RenderLimitError(
                "cpu",
                f"render stopped: CPU budget of {limits.render.cpu_seconds:g} s exceeded "
                "(worker stopped by the kernel)",
            )
        if code == -signal.SIGKILL:
            return RenderLimitError("memory", "render stopped: the render worker was killed")
        return WorkerLost(f"render worker exited with status {code}")


class RenderPool:
    """Render jobs in worker processes; never blocks the event loop."""

    def __init__(self, limits: PoolLimits) -> None:
        self.limits = limits
        self._idle: list[_Worker] = []
        self._slots = asyncio.Semaphore(limits.workers)
        self._tenants: dict[str, tuple[asyncio.Lock, int]] = {}
        self._all: set[_Worker] = set()
        self.spawned = 0
        """Workers started so far (a replaced worker counts again)."""
        self.busy = 0
        """Renders in flight in a worker right now."""

    async def _spawn(self) -> _Worker:
        # asyncio.create_subprocess_exec's own steps, keeping the transport: close() must be
        # able to close it while the loop runs (a transport collected later warns and fails)
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.subprocess_exec(
            lambda: asyncio.subprocess.SubprocessStreamProtocol(limit=2**16, loop=loop),
            sys.executable,
            "-m",
            "provisor.plugins.render_worker",
            str(self.limits.memory_bytes),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=None,
            env={k: v for k, v in os.environ.items() if k in _WORKER_ENV},
        )
        proc = asyncio.subprocess.Process(transport, protocol, loop)
        self.spawned += 1
        worker = _Worker(proc, transport)
        self._all.add(worker)
        return worker

    @contextlib.asynccontextmanager
    async def _tenant_turn(self, tenant: str) -> AsyncIterator[None]:
        lock, users = self._tenants.get(tenant, (asyncio.Lock(), 0))
        self._tenants[tenant] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._tenants[tenant]
            if users <= 1:
                del self._tenants[tenant]
            else:
                self._tenants[tenant] = (lock, users - 1)

    async def render(self, job: RenderJob, tenant: str) -> str:
        """The rendered text of ``job``, or RenderLimitError/PluginError; one job per tenant
        at a time."""
        async with self._tenant_turn(tenant), self._slots:
            worker = None
            while self._idle and worker is None:
                candidate = self._idle.pop()
                if candidate.alive:
                    worker = candidate
                else:
                    self._all.discard(candidate)
            if worker is None:
                worker = await self._spawn()
            self.busy += 1
            try:
                text = await worker.render(job, self.limits)
            except BaseException:
                if worker.alive and not isinstance(sys.exc_info()[1], PluginError):
                    await worker.kill()  # cancelled mid-render: its pipe state is unknown
                if worker.alive:
                    self._idle.append(worker)
                else:
                    self._all.discard(worker)
                raise
            finally:
                self.busy -= 1
            self._idle.append(worker)
            return text

    def close(self) -> None:
        """Stop every worker (the event loop reaps them; an orphan exits on stdin's EOF)."""
        workers, self._all, self._idle = list(self._all), set(), []
        for worker in workers:
            with contextlib.suppress(Exception):
                worker.transport.close()  # kills a running process, closes its pipes
