"""Tenant template overrides (provisor's REST API) for one ``configure`` call in a worker.

wazo-provd knows only per-install overrides (``var/templates``). provisor's per-tenant, model
and device overrides reach a wazo plugin here: the worker sets the device's overrides around
its ``configure``, and :class:`~wazo_provd.plugins.TemplatePluginHelper` then loads templates
through them first. The overrides are a tenant's text, so that call renders in provisor's
budgeted sandbox (no Python internals, CPU and output bounded: a runaway override fails its own
device's file with a clean error instead of hanging the worker every tenant shares). Calls
without overrides keep the plugin's own environment, unchanged.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Mapping
from typing import Any

from jinja2 import BaseLoader, ChoiceLoader, DictLoader, Environment

__all__ = ["active", "environment", "overrides"]

_current: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "wazo_tenant_templates", default=None
)


def active() -> bool:
    """True inside an :func:`overrides` block that carries at least one override."""
    return bool(_current.get())


def environment(base_loader: BaseLoader) -> Environment:
    """The budgeted sandbox loading the current overrides before ``base_loader``."""
    from provisor.plugins.budget import BudgetedEnvironment

    loader = ChoiceLoader([DictLoader(dict(_current.get() or {})), base_loader])
    return BudgetedEnvironment(loader=loader, cache_size=0)


@contextlib.contextmanager
def overrides(
    sources: Mapping[str, str] | None, cpu_seconds: float, max_bytes: int
) -> Iterator[Any]:
    """Apply ``sources`` (template name → Jinja2 source) to templates loaded in this block,
    charged to one render budget (``cpu_seconds``, ``max_bytes`` per value and output)."""
    if not sources:
        yield None
        return
    from provisor.plugins.budget import Budget, RenderLimits, budget_scope

    token = _current.set(dict(sources))
    try:
        with budget_scope(Budget(RenderLimits(cpu_seconds, max_bytes))) as budget:
            yield budget
    finally:
        _current.reset(token)
