"""Device writes on the SQLite file from one thread that owns one connection.

Why: through SQLAlchemy's async layer and aiosqlite, one insert is five or six hand-offs
between the event loop and aiosqlite's thread (cursor, execute, close, commit, the pool's
rollback), each paying a thread wake-up and a GIL transfer; on a loaded 2-core machine that
was most of a creation's time (docs/benchmarks.md). Here a write is a plain function run on the
writer's ``sqlite3`` connection: one hand-off there, one back. The commit (and its fsync under
``synchronous=FULL``) happens on this thread with the GIL released, so the event loop keeps
serving while the disk works.

Group commit: the thread takes every job queued while it was committing and runs them in one
transaction, each in its own savepoint (a job that fails, a duplicate id, is rolled back alone
and its caller gets its own error). A lone job never waits for company. When the transaction
itself cannot be written (the file locked by another process beyond the busy timeout, the disk
full, an I/O error), every job of it gets that error and nothing of it is kept; the API maps it
to a 503 (store/health.py).

Sharing the file with other processes (the phone workers each have a writer): SQLite's own busy
handler sleeps 1, 2, 5 … up to 100 ms between tries, and a writer that holds the lock takes it
again microseconds after its commit, so the other one kept missing the free moments and slept
longer each time (transactions waiting 170 ms, answers 1.2 s in a two-worker storm). Here the
lock is asked for without SQLite's handler, again every :data:`RETRY_PAUSE` at most, and a
writer that shares the file (``shared``: phone workers) leaves :data:`YIELD_PAUSE` after a
commit before it takes the lock again for jobs already waiting: the other writer's next try
finds it free. A writer whose queue is empty never waits, and neither does one alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from provisor.metrics import DATABASE_SECONDS
from provisor.store.db import Synchronous, sqlite_pragmas

__all__ = ["SqliteWriter"]

log = logging.getLogger(__name__)

T = TypeVar("T")
Job = tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any]]

#: jobs written in one transaction at most (a boot storm's batch)
MAX_BATCH = 500
#: Longest pause between two tries of a write lock another process holds (seconds).
RETRY_PAUSE = 0.001
#: Pause of a shared writer between a commit and the next transaction (seconds): longer than
#: RETRY_PAUSE, so another process waiting for the lock gets it.
YIELD_PAUSE = 0.0015


class SqliteWriter:
    """A thread and its connection that run write jobs in grouped transactions."""

    def __init__(
        self,
        path: str,
        *,
        synchronous: Synchronous = "FULL",
        busy_timeout: float = 30.0,
        shared: bool = False,
    ) -> None:
        self.path = path
        self.shared = shared
        self.synchronous = synchronous
        self.busy_timeout = busy_timeout
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    async def run(self, job: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``job`` on the writer's connection inside a transaction; its result or error."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._ensure_thread()
        self._jobs.put((job, future))
        return await future

    def _ensure_thread(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._serve, name="provisor-sqlite-writer", daemon=True
                )
                self._thread.start()

    def close(self) -> None:
        """Stop the thread once the queued jobs are written, and close the connection."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._jobs.put(None)
            thread.join()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
        )
        sqlite_pragmas(conn, None, synchronous=self.synchronous)
        # the write lock is waited for by _begin (short, even pauses), not SQLite's handler
        conn.execute("PRAGMA busy_timeout = 0")
        return conn

    def _begin(self, conn: sqlite3.Connection) -> None:
        """Take the file's write lock; trying again every RETRY_PAUSE, up to the busy timeout."""
        deadline: float | None = None
        pause = RETRY_PAUSE / 8
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY:
                    raise
                now = time.monotonic()
                if deadline is None:
                    deadline = now + self.busy_timeout
                elif now >= deadline:
                    raise
                time.sleep(pause)
                pause = min(pause * 2, RETRY_PAUSE)
            else:
                return

    def _serve(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while True:
                first = self._jobs.get()
                if first is None:
                    return
                batch = [first]
                stop = False
                while len(batch) < MAX_BATCH:
                    try:
                        more = self._jobs.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        stop = True
                        break
                    batch.append(more)
                try:
                    conn = conn or self._connect()
                    self._begin(conn)
                    outcomes = self._write(conn, batch)
                except Exception as exc:  # the transaction failed: every job of it did
                    if conn is not None:
                        with contextlib.suppress(sqlite3.Error):
                            conn.rollback()
                        conn.close()  # a fresh connection next time (the file may be replaced)
                        conn = None
                    outcomes = [(False, exc)] * len(batch)
                _deliver(batch, outcomes)
                if stop:
                    return
                if self.shared and not self._jobs.empty():
                    time.sleep(YIELD_PAUSE)  # another process may be waiting: let it in
        finally:
            if conn is not None:
                conn.close()

    @staticmethod
    def _write(conn: sqlite3.Connection, batch: list[Job]) -> list[tuple[bool, Any]]:
        outcomes: list[tuple[bool, Any]] = []
        for job, future in batch:
            if future.cancelled():  # its caller gave up before it was written: skip it
                outcomes.append((False, asyncio.CancelledError()))
                continue
            conn.execute("SAVEPOINT job")
            started = time.perf_counter()
            try:
                result = job(conn)
            except sqlite3.IntegrityError as exc:  # this job's own fault: undo it alone
                conn.execute("ROLLBACK TO job")
                conn.execute("RELEASE job")
                outcomes.append((False, exc))
            else:
                # the job's statements, as the engine's are timed (provisor/metrics.py)
                DATABASE_SECONDS.observe(time.perf_counter() - started)
                conn.execute("RELEASE job")
                outcomes.append((True, result))
        conn.execute("COMMIT")
        return outcomes


def _deliver(batch: list[Job], outcomes: list[tuple[bool, Any]]) -> None:
    """Hand the outcomes back to the loop in one call (one wake-up per transaction)."""
    if not batch:
        return
    loop = batch[0][1].get_loop()

    def settle() -> None:
        for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
            if future.done():
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    with contextlib.suppress(RuntimeError):  # the loop closed while the job was written
        loop.call_soon_threadsafe(settle)
