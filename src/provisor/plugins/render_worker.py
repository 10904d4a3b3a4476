"""The render worker: a child process that renders tenant template overrides.

Run as ``python -m provisor.plugins.render_worker <address-space bytes>`` by
:class:`provisor.plugins.render_pool.RenderPool`. A template a tenant wrote can spend CPU or
memory in one C-level call (``'x' * 10**9``, ``'%0999999999d'``, a huge ``**``) where no
counter runs, and a thread cannot be stopped; a process can:

- each render arms ``ITIMER_PROF`` with the default ``SIGPROF`` action, so the kernel ends
  the process once the render has used its CPU time, whatever it is doing;
- ``RLIMIT_AS`` bounds its memory (a too large allocation is a ``MemoryError``);
- it runs at a lower priority (``nice`` 10), so a runaway render yields the CPU to the server;
- the counting sandbox (:mod:`provisor.plugins.budget`) stops loops and outsized values first
  with a clean error, so the process usually survives a refused template.

Protocol on stdin/stdout, one render at a time: the request is a 4-byte length and a pickle
(from the server, which is trusted); the answer is one status byte (``O`` rendered text, ``L``
limit ``kind\\0message``, ``E`` error), a 4-byte length and UTF-8 text. The server never
unpickles what a worker sends.
"""

from __future__ import annotations

import os
import pickle
import resource
import signal
import struct
import sys
from collections import OrderedDict
from typing import Any, BinaryIO

from jinja2 import ChoiceLoader, DictLoader, FileSystemLoader
from jinja2.sandbox import SandboxedEnvironment

from provisor.plugins.budget import RenderLimitError, RenderLimits, template_failure
from provisor.plugins.sandbox import make_env, render_template

__all__ = ["HEADER", "main", "serve"]

#: Length prefix of a request, status and length of an answer.
HEADER = struct.Struct("!I")
#: Extra CPU time before the kernel stops a render the counters did not stop.
GRACE = 0.25


def _environment(
    envs: OrderedDict[tuple[str, tuple[tuple[str, str], ...]], SandboxedEnvironment],
    root: str,
    overrides: tuple[tuple[str, str], ...],
) -> SandboxedEnvironment:
    key = (root, overrides)
    env = envs.get(key)
    if env is None:
        env = make_env(ChoiceLoader([DictLoader(dict(overrides)), FileSystemLoader(root)]))
        envs[key] = env
        if len(envs) > 64:
            envs.popitem(last=False)
    else:
        envs.move_to_end(key)
    return env


def _answer(out: BinaryIO, status: bytes, text: str) -> None:
    data = text.encode("utf-8", "replace")
    out.write(status + HEADER.pack(len(data)) + data)
    out.flush()


def _render(job: dict[str, Any], envs: Any) -> tuple[bytes, str]:
    limits = RenderLimits(job["cpu_seconds"], job["max_bytes"])
    env = _environment(envs, job["root"], job["overrides"])
    signal.setitimer(signal.ITIMER_PROF, limits.cpu_seconds + GRACE)
    try:
        return b"O", render_template(env, job["name"], job["variables"], limits)
    except RenderLimitError as exc:
        return b"L", f"{exc.kind}\0{exc.message}"
    except MemoryError:
        raise
    except Exception as exc:
        return b"E", template_failure(exc)
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)


def serve(inp: BinaryIO, out: BinaryIO) -> None:
    """Answer render requests until stdin closes (or the kernel stops the process)."""
    envs: OrderedDict[tuple[str, tuple[tuple[str, str], ...]], SandboxedEnvironment] = OrderedDict()
    while True:
        head = inp.read(HEADER.size)
        if len(head) < HEADER.size:
            return
        (size,) = HEADER.unpack(head)
        try:
            job = pickle.loads(inp.read(size))
        except Exception as exc:  # a plugin variable of a class only the server can import
            _answer(out, b"E", f"variables not transferable to the render worker: {exc}")
            continue
        try:
            status, text = _render(job, envs)
        except MemoryError:
            envs.clear()
            _answer(out, b"L", "memory\0render stopped: memory limit of the render worker reached")
            return  # a fresh process for the next render: nothing half-freed survives
        _answer(out, status, text)


def main() -> None:
    """Set the process limits, then serve requests on stdin/stdout."""
    memory = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    signal.signal(signal.SIGPROF, signal.SIG_DFL)  # the kernel's action: end the process
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server stops its workers itself
    os.nice(10)  # on a busy machine the server's event loop goes first
    if memory > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    # the protocol owns the real stdout; anything else printed goes to stderr
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    serve(sys.stdin.buffer, out)


if __name__ == "__main__":
    main()
