"""``GET /metrics``: the Prometheus exposition of :mod:`provisor.metrics`, with no token.

Prometheus scrapes without credentials by default, and the exposition carries nothing an
operator would hide: counts by bounded labels (protocol, status class, plugin id, cache
outcome, route template), never a path, key, token, MAC, address or tenant. An operator who
wants it private turns it off (``observability.metrics_enabled``) or filters it in the proxy.
"""

from __future__ import annotations

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from provisor.api.deps import provisor_of
from provisor.metrics import DATABASE_UP, REGISTRY

__all__ = ["router"]

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """The metrics of the process and its phone workers, in the Prometheus text format."""
    prov = provisor_of(request)
    DATABASE_UP.set(0 if prov.feed.health.skip() or not prov.feed.health.up else 1)
    # with phone workers, their counters are added in (provisor.workers.relay.WorkerMetrics)
    source = prov.extra.get("worker_metrics", REGISTRY)
    return Response(generate_latest(source), media_type=CONTENT_TYPE_LATEST)
