"""The Health page: readiness (database, listeners), bus and auth backend, bans with unban,
and charts of the last hour drawn on the server from the metrics counters.

Bans and the server's state are global: the page is for master-tenant tokens with
``provd.status.read`` (a sub-tenant would see other tenants' phone addresses); unbanning needs
``provd.dev_mgr.bans.delete`` and is logged.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from provisor.api.bans import checked_address, lift_ban
from provisor.api.deps import provisor_of
from provisor.api.health import readiness_of
from provisor.authz import require_master
from provisor.console.samples import INTERVAL, Sampler, chart_points
from provisor.console.web import (
    PREFIX,
    ConsoleRoute,
    console_caller,
    read_form,
    redirect,
    render,
)

__all__ = ["router"]

log = logging.getLogger(__name__)
router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute)

W, H = 360, 80


def _charts(sampler: Sampler | None) -> list[dict[str, object]]:
    samples = list(sampler.samples) if sampler is not None else []
    series = {
        "Requests per second": [s.requests / INTERVAL for s in samples],
        "Failures per second": [s.failures / INTERVAL for s in samples],
        "New phones per minute": [s.created * 60 / INTERVAL for s in samples],
        "Cache hit rate (%)": [100.0 * s.hits / s.requests if s.requests else 0.0 for s in samples],
    }
    charts: list[dict[str, object]] = []
    for title, values in series.items():
        points, top = chart_points(values, W, H)
        charts.append(
            {
                "title": title,
                "points": points,
                "top": f"{top:.3g}",
                "last": values[-1] if values else 0,
            }
        )
    return charts


@router.get("/health")
async def health(request: Request) -> Response:
    """The Health page."""
    session, caller = await console_caller(request, "provd.status.read")
    require_master(caller.scope, "the server's health")
    prov = provisor_of(request)
    checks = await readiness_of(prov).checks()
    listeners = prov.extra.get("listeners")
    pipeline = prov.extra.get("pipeline")
    settings = prov.settings
    sampler = request.app.state.console_sampler
    since = (
        datetime.fromtimestamp(sampler.samples[0].at, UTC).strftime("%H:%M:%S UTC")
        if sampler.samples
        else ""
    )
    return render(
        request,
        "health.html",
        session=session,
        checks=checks,
        listeners=listeners() if listeners is not None else {},
        bus="enabled" if settings.bus.enabled else "disabled",
        bus_running="bus" in prov.extra,
        auth=settings.auth.backend,
        bans=sorted(pipeline.failures.banned()) if pipeline is not None else [],
        charts=_charts(sampler),
        width=W,
        height=H,
        since=since,
    )


@router.post("/health/unban")
async def unban(request: Request) -> Response:
    """Lift a ban on a phone address."""
    session, caller = await console_caller(request, "provd.dev_mgr.bans.delete")
    require_master(caller.scope, "bans")
    form = await read_form(request, session)
    address = checked_address(form.get("address", ""))
    if await lift_ban(provisor_of(request), address):
        log.warning("console: %s lifted the ban of %s", session.label, address)
    return redirect(f"{PREFIX}/health")
