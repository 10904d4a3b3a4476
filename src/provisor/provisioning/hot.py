"""Hot answers: the file a phone was just served, kept for the same request made again.

A phone that reboots, or polls, asks for the same few files with the same path, User-Agent,
address and TLS; when nothing the file depends on changed since (the device's epoch and the
generations of configs, tenants, parameters and plugins, compared as one tuple), the answer is
the same bytes and the same decisions, so it is given without identifying, looking up or
rendering anything. A request with a query string is never kept: identification may read the
query, which the key does not hold.
"""

from __future__ import annotations

from dataclasses import dataclass

from provisor.provisioning.request import FileRequest, FileResult
from provisor.provisioning.trace import TraceEntry

__all__ = ["HotAnswer", "HotAnswers", "HotKey"]

HotKey = tuple[str, str, str | None, str, bool]
"""(protocol, path, User-Agent, client address, TLS)."""


@dataclass(frozen=True, slots=True)
class HotAnswer:
    """One kept answer and what it was decided from."""

    result: FileResult
    device_id: str
    stamp: tuple[int, ...]
    born: float
    sensitive: bool
    origin: TraceEntry


class HotAnswers:
    """Kept answers by request, the oldest dropped past ``cap`` entries or ``max_bytes``.

    An answer's body is usually the render cache's own bytes object, but a kept answer keeps it
    alive after the render cache dropped it: the bytes are counted here too (a body shared by
    several requests is counted once per request, which only errs on the safe side).
    """

    def __init__(self, cap: int = 50_000, max_bytes: int = 256 * 1024 * 1024) -> None:
        self.cap = cap
        self.max_bytes = max_bytes
        self.bytes = 0
        self._answers: dict[HotKey, HotAnswer] = {}

    @staticmethod
    def key(req: FileRequest) -> HotKey | None:
        """The key of a request, None when it may never be answered hot (a query string)."""
        if req.query:
            return None
        return (req.protocol, req.path, req.user_agent, req.client_ip, req.secure)

    def get(self, key: HotKey) -> HotAnswer | None:
        """The answer kept for this request, if any (still to be checked by the caller)."""
        return self._answers.get(key)

    def drop(self, key: HotKey) -> None:
        """Forget an answer that no longer holds."""
        gone = self._answers.pop(key, None)
        if gone is not None:
            self.bytes -= len(gone.result.body)

    def keep(self, key: HotKey, result: FileResult, origin: TraceEntry, *, born: float) -> None:
        """Keep a rendered 200 for the same request made again (``origin`` says who it is)."""
        assert origin.device_id and origin.hot_stamp
        self.drop(key)
        self.bytes += len(result.body)
        self._answers[key] = HotAnswer(
            FileResult(
                result.status,
                result.body,
                result.content_type,
                result.etag,
                result.last_modified,
                reason=origin.path,
            ),
            origin.device_id,
            origin.hot_stamp,
            born,
            bool(origin.secrets is not None and origin.file and origin.hot_sensitive),
            origin,
        )
        while self._answers and (len(self._answers) > self.cap or self.bytes > self.max_bytes):
            self.drop(next(iter(self._answers)))
