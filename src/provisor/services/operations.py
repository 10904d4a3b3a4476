"""Long operations (wazo-provd's "OIP"): progress of installs, updates and resyncs.

An operation runs as an asyncio task and reports ``[label|]state[;current[/end]]`` followed by
its sub-operations in parentheses, exactly as wazo-provd clients parse it. Unlike upstream,
finished operations are forgotten after ``keep_seconds`` so monitors nobody deletes do not leak,
ids are random (upstream counts 1, 2, 3…), and each operation belongs to the tenant that started
it: only that tenant's subtree reads or deletes it (provisor.authz rule 6); any other caller
gets the answer of a missing id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from provisor.authz import Scope, operation_visible
from provisor.errors import NotFound
from provisor.metrics import OPERATIONS

__all__ = ["Operation", "OperationRegistry", "State", "op_status"]

log = logging.getLogger(__name__)

State = Literal["waiting", "progress", "success", "fail"]


@dataclass
class Operation:
    """The progress of one long operation and its sub-operations."""

    label: str | None = None
    state: State = "waiting"
    current: int | None = None
    end: int | None = None
    reason: str | None = None
    subs: list[Operation] = field(default_factory=list)
    id: str = ""
    kind: str = ""
    finished_at: float | None = None
    tenant_uuid: str | None = None

    def sub(self, label: str) -> Operation:
        """Start a sub-operation shown inside this one's status."""
        op = Operation(label=label, state="progress")
        self.subs.append(op)
        return op

    def progress(self, current: int | None = None, end: int | None = None) -> None:
        """Report progress (bytes downloaded, devices done…)."""
        self.state = "progress"
        if current is not None:
            self.current = current
        if end is not None:
            self.end = end

    def format(self) -> str:
        """The status string: ``[label|]state[;cur[/end]](sub)…``."""
        out = f"{self.label}|{self.state}" if self.label else self.state
        if self.current is not None:
            out += f";{self.current}"
            if self.end is not None:
                out += f"/{self.end}"
        for sub in self.subs:
            out += f"({sub.format()})"
        return out


class OperationRegistry:
    """Running and recently finished operations, by id."""

    def __init__(self, keep_seconds: float = 3600.0) -> None:
        self._ops: dict[str, Operation] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.keep_seconds = keep_seconds

    def start(
        self,
        kind: str,
        work: Callable[[Operation], Awaitable[None]],
        *,
        label: str | None = None,
        tenant_uuid: str | None = None,
    ) -> Operation:
        """Run ``work(op)`` in the background; it sets progress and may raise to fail."""
        self._gc()
        op = Operation(label=label, id=_new_id(), kind=kind, tenant_uuid=tenant_uuid)
        self._ops[op.id] = op

        async def run() -> None:
            op.state = "progress"
            try:
                await work(op)
            except Exception as exc:  # any failure becomes the operation's state
                op.state = "fail"
                op.reason = str(exc)
                log.info("operation %s/%s failed: %s", kind, op.id, exc)
            else:
                if op.state != "fail":  # type: ignore[comparison-overlap]  # work() may set it
                    op.state = "success"
            finally:
                op.finished_at = time.monotonic()
                self._tasks.pop(op.id, None)
                ended = op.state if op.state in ("success", "fail") else "cancelled"
                OPERATIONS.labels(kind, ended).inc()

        self._tasks[op.id] = asyncio.get_running_loop().create_task(run())
        return op

    def failed(
        self, kind: str, reason: str, *, label: str | None = None, tenant_uuid: str | None = None
    ) -> Operation:
        """Record an operation that failed before it started (e.g. device not configured)."""
        self._gc()
        op = Operation(
            label=label,
            state="fail",
            reason=reason,
            id=_new_id(),
            kind=kind,
            finished_at=time.monotonic(),
            tenant_uuid=tenant_uuid,
        )
        self._ops[op.id] = op
        OPERATIONS.labels(kind, "fail").inc()
        return op

    def get(self, kind: str, op_id: str, scope: Scope | None = None) -> Operation:
        """An operation of this kind the caller may see; NotFound otherwise."""
        op = self._ops.get(op_id)
        if op is None or op.kind != kind or not operation_visible(scope, op.tenant_uuid):
            raise NotFound("No such resource")
        return op

    def delete(self, kind: str, op_id: str, scope: Scope | None = None) -> None:
        """Forget an operation's monitor (the work itself goes on)."""
        self.get(kind, op_id, scope)
        del self._ops[op_id]

    def running(self, kind: str) -> bool:
        """True while an operation of this kind is running."""
        return any(
            op.kind == kind and op.state in ("waiting", "progress") for op in self._ops.values()
        )

    async def wait(self, op: Operation, timeout: float = 60.0) -> Operation:
        """Wait for an operation to finish (used by the CLI and tests)."""
        task = self._tasks.get(op.id)
        if task is not None:
            await asyncio.wait_for(asyncio.shield(task), timeout)
        return op

    async def close(self) -> None:
        """Cancel every running operation (shutdown)."""
        for task in list(self._tasks.values()):
            task.cancel()
        for task in list(self._tasks.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _gc(self) -> None:
        now = time.monotonic()
        for op_id in [
            i
            for i, op in self._ops.items()
            if op.finished_at is not None and now - op.finished_at > self.keep_seconds
        ]:
            del self._ops[op_id]


def _new_id() -> str:
    """An operation id nobody can guess (128 random bits, hex: safe in a URL path)."""
    return secrets.token_hex(16)


def op_status(op: Operation) -> dict[str, str]:
    """The GET body of an operation: wazo's status string, plus the reason of a failure."""
    body = {"status": op.format()}
    if op.reason:
        body["reason"] = op.reason
    return body
