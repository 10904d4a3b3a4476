"""Console sessions: a random id in a cookie, the API token kept on the server.

The browser never holds the API token: it holds a session id (``HttpOnly``, ``SameSite=Strict``,
``Secure`` over HTTPS) that maps to the token here, in memory. Sessions are bounded in number
(past ``console.max_sessions`` the oldest session of the tenant holding the most is ended) and in time (``console.session_lifetime``
after sign-in, ``console.session_idle`` without use). Each session has its own CSRF token,
required on every state-changing request. Sessions live in one process: a restart signs every
operator out, and behind a load balancer the console needs sticky sessions.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["COOKIE", "Session", "SessionStore"]

COOKIE = "provisor_console"


@dataclass(slots=True)
class Session:
    """One signed-in operator."""

    id: str
    token: str
    csrf: str
    label: str  # who signed in, for the header and the logs (never the token)
    tenant_uuid: str
    created: float
    used: float
    acting_tenant: str | None = None  # the Wazo-Tenant the operator chose (None: the token's)
    extra: dict[str, str] = field(default_factory=dict)

    def csrf_ok(self, value: str | None) -> bool:
        """Whether ``value`` is this session's CSRF token (constant-time)."""
        return bool(value) and hmac.compare_digest(self.csrf.encode(), str(value).encode())


class SessionStore:
    """Sessions by id, bounded in count and lifetime."""

    def __init__(
        self,
        lifetime: float,
        idle: float,
        max_sessions: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lifetime = lifetime
        self.idle = idle
        self.max_sessions = max_sessions
        self.clock = clock
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, token: str, label: str, tenant_uuid: str) -> Session:
        """A new session for a token that was just checked."""
        now = self.clock()
        self._expire(now)
        while len(self._sessions) >= self.max_sessions:
            self._make_room()
        session = Session(
            id=secrets.token_urlsafe(32),
            token=token,
            csrf=secrets.token_urlsafe(32),
            label=label,
            tenant_uuid=tenant_uuid,
            created=now,
            used=now,
        )
        self._sessions[session.id] = session
        return session

    def _make_room(self) -> None:
        # the oldest session of the tenant holding the most ends: a tenant signing in again and
        # again ends its own sessions, never another tenant's (the master's operators included)
        held = Counter(s.tenant_uuid for s in self._sessions.values())
        greedy = max(held, key=held.__getitem__)
        oldest = next(s.id for s in self._sessions.values() if s.tenant_uuid == greedy)
        del self._sessions[oldest]

    def get(self, session_id: str | None) -> Session | None:
        """The live session with this id, its idle clock restarted; None when unknown/expired."""
        if not session_id or len(session_id) > 100:
            return None
        session = self._sessions.get(session_id)
        if session is None:
            return None
        now = self.clock()
        if now - session.created > self.lifetime or now - session.used > self.idle:
            del self._sessions[session_id]
            return None
        session.used = now
        return session

    def end(self, session_id: str | None) -> None:
        """Sign out."""
        if session_id:
            self._sessions.pop(session_id, None)

    def _expire(self, now: float) -> None:
        for sid in [
            s.id
            for s in self._sessions.values()
            if now - s.created > self.lifetime or now - s.used > self.idle
        ]:
            del self._sessions[sid]
