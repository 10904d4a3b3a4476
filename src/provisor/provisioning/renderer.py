"""Where a file's template is rendered, under which budget, and what a refusal costs.

Shipped plugin templates (trusted, reviewed with their golden files) render in this process in
the counting sandbox: tens of microseconds, no inter-process hop for a boot storm. The event
loop lends them only ``inline_cpu_seconds``: a render that needs more (a tenant's huge config)
is redone in a worker process with the full budget. As soon as a tenant has overridden one of
the plugin's templates, the render goes to a worker process
(:class:`provisor.plugins.render_pool.RenderPool`) that the kernel stops on CPU time and memory.
Either way the output is capped, a failure fails that file only, is logged once (device,
plugin, template, override scope; never the template's text or a value) and is remembered for
the same inputs, so a phone retrying a broken file does not burn the budget again.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from provisor.errors import PluginError
from provisor.plugins.base import Plugin
from provisor.plugins.budget import RenderLimitError, RenderLimits
from provisor.plugins.contract import RenderContext
from provisor.plugins.render_pool import PoolLimits, RenderPool, WorkerLost
from provisor.settings import RenderSettings

__all__ = ["RenderRefused", "Renderer"]

log = logging.getLogger(__name__)

#: Seconds before the same refusal (device, template, overrides, reason) is logged again.
LOG_AGAIN_AFTER = 600.0

OverrideRows = Callable[[str, str], Awaitable[list[dict[str, Any]]]]


class RenderRefused(PluginError):
    """A render failed (budget, template error); already logged by the Renderer."""


class Renderer:
    """Renders a routed file in the right place and remembers failures."""

    def __init__(self, settings: RenderSettings, override_rows: OverrideRows) -> None:
        self.limits = RenderLimits(settings.cpu_seconds, settings.max_bytes)
        self.inline_limits = RenderLimits(
            min(settings.inline_cpu_seconds, settings.cpu_seconds), settings.max_bytes
        )
        self.pool = RenderPool(
            PoolLimits(
                self.limits,
                workers=settings.workers,
                memory_bytes=settings.worker_memory_bytes,
                wall_seconds=settings.wall_seconds,
            )
        )
        self._override_rows = override_rows
        self._failed: OrderedDict[Hashable, str] = OrderedDict()
        self._logged: OrderedDict[tuple[Any, ...], float] = OrderedDict()

    async def render(self, plugin: Plugin, ctx: RenderContext, key: Hashable) -> bytes:
        """The file's bytes; RenderRefused when it cannot be rendered within the budget."""
        failed = self._failed.get(key)
        if failed is not None:
            raise RenderRefused(failed)
        try:
            if ctx.route.spec.kind == "static":
                body = plugin.render(ctx)
            elif ctx.template_overrides:
                body = await self._in_worker(plugin, ctx)
            else:
                try:
                    body = plugin.render(ctx, self.inline_limits)
                except RenderLimitError as exc:
                    if exc.kind != "cpu":
                        raise
                    body = await self._in_worker(plugin, ctx)  # too long for the event loop
            if len(body) > self.limits.max_bytes:
                raise RenderLimitError(
                    "output",
                    f"render stopped: {len(body)} bytes exceed the output limit "
                    f"of {self.limits.max_bytes} bytes",
                )
        except PluginError as exc:
            message = await self._log(plugin, ctx, exc)
            if not isinstance(exc, WorkerLost):  # the template's fault: the same again fails
                self._failed[key] = message
                if len(self._failed) > 10_000:
                    self._failed.popitem(last=False)
            raise RenderRefused(message) from exc
        return body

    async def _in_worker(self, plugin: Plugin, ctx: RenderContext) -> bytes:
        job = plugin.render_job(ctx)
        tenant = str(ctx.device.get("tenant_uuid") or "")
        return (await self.pool.render(job, tenant)).encode("utf-8")

    async def _log(self, plugin: Plugin, ctx: RenderContext, exc: PluginError) -> str:
        spec = ctx.route.spec
        name = (spec.template or "").format(**ctx.route.params)
        message = exc.message
        # once per device, template, override set and reason: the render key also moves with
        # unrelated change counters, which must not repeat the line
        seen = (
            ctx.device.get("id"),
            plugin.id,
            name,
            hash(tuple(sorted(ctx.template_overrides.items()))),
            message,
        )
        now = time.monotonic()
        last = self._logged.get(seen)
        if last is not None and now - last < LOG_AGAIN_AFTER:
            return message
        self._logged[seen] = now
        self._logged.move_to_end(seen)
        if len(self._logged) > 10_000:
            self._logged.popitem(last=False)
        scopes = await self._scopes(plugin, ctx)
        log.error(
            "render refused: device %s, plugin %s, template %s, overrides %s: %s",
            ctx.device.get("id"),
            plugin.id,
            name,
            scopes or "none",
            message,
        )
        return message

    async def _scopes(self, plugin: Plugin, ctx: RenderContext) -> str:
        """Which stored override (scope, target) each overridden template came from."""
        if not ctx.template_overrides:
            return ""
        try:
            rows = await self._override_rows(str(ctx.device.get("tenant_uuid") or ""), plugin.id)
        except Exception:  # the log line must not fail the request
            rows = []
        device, model = ctx.device.get("id"), ctx.device.get("model")
        applies = [
            r
            for r in rows
            if r["scope"] == "tenant"
            or (r["scope"] == "model" and r["target"] == model)
            or (r["scope"] == "device" and r["target"] == device)
        ]
        applies.sort(key=lambda r: {"device": 0, "model": 1}.get(r["scope"], 2))
        found = []
        for name, source in sorted(ctx.template_overrides.items()):
            scope = next(
                (
                    r["scope"] + (f" {r['target']}" if r["target"] else "")
                    for r in applies
                    if r["name"] == name and r["source"] == source
                ),
                "unknown scope",
            )
            found.append(f"{name} ({scope})")
        return ", ".join(found)

    def close(self) -> None:
        """Stop the render workers."""
        self.pool.close()
