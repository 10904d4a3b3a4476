"""``/health/live`` and ``/health/ready``: what a load balancer or systemd asks, with no token.

``live`` says the process answers HTTP. ``ready`` says it can do its work: the database
answers a trivial query within DB_TIMEOUT seconds (for SQLite, the database file is also still
where it was opened: a pooled connection keeps working on a deleted file, a new one would not)
and every listener has started. Not ready is 503 with a JSON body naming each failing check.

The endpoints need no token, so anyone who reaches the REST port may call them: the answer
says nothing an operator would hide (no address, no URL, no error text from the driver, only
the exception's class), and one probe result is shared by every caller for CACHE_SECONDS, so
a flood of probes costs at most one database query per CACHE_SECONDS.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from fastapi import APIRouter
from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from provisor.api.deps import provisor_of
from provisor.flight import single_flight
from provisor.service import Provisor

__all__ = ["LISTENERS_KEY", "Readiness", "readiness_of", "router"]

log = logging.getLogger(__name__)

router = APIRouter(prefix="/health")

#: ``prov.extra`` key of a callable giving {listener name: running}; set once all have started.
LISTENERS_KEY = "listeners"
#: Seconds the database gets to answer ``SELECT 1``.
DB_TIMEOUT = 2.0
#: Seconds one readiness result is shared by every caller.
CACHE_SECONDS = 1.0
_EXTRA_KEY = "health_readiness"


def _sqlite_file(url: str) -> Path | None:
    if not url.startswith("sqlite") or ":///" not in url:
        return None
    path = url.split(":///", 1)[1].split("?", 1)[0]
    return None if path in ("", ":memory:") else Path(path)


class Readiness:
    """Runs the readiness checks, at most once per CACHE_SECONDS for all callers."""

    def __init__(self, prov: Provisor) -> None:
        self.prov = prov
        self._result: tuple[float, dict[str, str]] | None = None
        self._flight: dict[str, asyncio.Future[dict[str, str]]] = {}
        self._last_failed: frozenset[str] = frozenset()

    async def checks(self) -> dict[str, str]:
        """{check: "ok" or what is wrong}, fresh within CACHE_SECONDS."""
        now = time.monotonic()
        if self._result is not None and now - self._result[0] < CACHE_SECONDS:
            return self._result[1]
        result = await single_flight(self._flight, "ready", self._run)
        self._result = (time.monotonic(), result)
        return result

    async def _run(self) -> dict[str, str]:
        result = {"database": await self._database(), "listeners": self._listeners()}
        failed = frozenset(k for k, v in result.items() if v != "ok")
        if failed != self._last_failed:  # log changes, not every probe
            if failed:
                log.warning("not ready: %s", ", ".join(f"{k} {result[k]}" for k in sorted(failed)))
            else:
                log.info("ready")
            self._last_failed = failed
        return result

    async def _database(self) -> str:
        path = _sqlite_file(self.prov.settings.database_url)
        if path is not None and not (
            path.is_file()
            and os.access(path, os.R_OK | os.W_OK)
            and os.access(path.parent, os.W_OK)
        ):
            return "database file missing or not accessible"
        try:
            async with asyncio.timeout(DB_TIMEOUT):
                async with self.prov.engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
        except TimeoutError:
            return f"no answer within {DB_TIMEOUT:g} s"
        except Exception as exc:  # any driver error means the same thing here
            return f"unreachable ({type(exc).__name__})"
        return "ok"

    def _listeners(self) -> str:
        state: Callable[[], Mapping[str, bool]] | None = self.prov.extra.get(LISTENERS_KEY)
        if state is None:
            return "starting"
        down = sorted(name for name, up in state().items() if not up)
        return "ok" if not down else "not running: " + ", ".join(down)


def readiness_of(prov: Provisor) -> Readiness:
    """The readiness checks of this server (the console's Health page shows them too)."""
    return _readiness(prov)


def _readiness(prov: Provisor) -> Readiness:
    found = prov.extra.get(_EXTRA_KEY)
    if isinstance(found, Readiness):
        return found
    made = prov.extra[_EXTRA_KEY] = Readiness(prov)
    return made


@router.get("/live")
async def live() -> Response:
    """The process is up and answers HTTP."""
    return JSONResponse({"status": "ok"})


@router.get("/ready")
async def ready(request: Request) -> Response:
    """The database answers and every listener runs; 503 naming what is not ready otherwise."""
    prov = provisor_of(request)
    checks = await _readiness(prov).checks()
    # plugins this node could not get yet (plugins/reconcile.py): reported, never "not ready",
    # since the node serves every other plugin meanwhile
    reconciler = prov.extra.get("plugin_reconciler")
    lagging = dict(reconciler.failed) if reconciler is not None else {}
    firmware = dict(reconciler.firmware.failed) if reconciler is not None else {}
    if all(v == "ok" for v in checks.values()):
        body: dict[str, object] = {"status": "ready", "checks": checks}
        if lagging:
            body["plugins_not_converged"] = lagging
        if firmware:  # "<plugin>/<package>" → why this node has not got it yet
            body["firmware_not_converged"] = firmware
        return JSONResponse(body)
    return JSONResponse(
        {
            "status": "not ready",
            "checks": checks,
            "not_ready": sorted(k for k, v in checks.items() if v != "ok"),
        },
        status_code=503,
        headers={"Retry-After": "5"},
    )
