"""The operator console: server-rendered pages on the REST listener at ``/console``.

One module per page (``phones``, ``phone``, ``live``, ``plugins``, ``firmware``, ``tenants``,
``health``),
the shared plumbing in ``web`` (rendering, security headers, CSRF, the session's caller) and
``sessions``. Templates and the one script and stylesheet are package data: nothing is built
or fetched at install time. docs/console.md describes it for operators.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from provisor.console.web import HERE, PREFIX, make_console
from provisor.service import Provisor

__all__ = ["install"]


def install(app: FastAPI, prov: Provisor) -> None:
    """Mount the console on the REST app (when ``console.enabled``)."""
    from provisor.console import (
        firmware,
        health,
        live,
        operation,
        overrides,
        phone,
        phones,
        plugins,
        signin,
        tenants,
    )
    from provisor.console.samples import Sampler

    app.state.console = make_console(prov.settings.console)
    sampler = app.state.console_sampler = Sampler()
    prov.extra.setdefault("on_start", []).append(sampler.start)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="console-static")
    for module in (
        signin,
        phones,
        phone,
        operation,
        live,
        plugins,
        firmware,
        overrides,
        tenants,
        health,
    ):
        app.include_router(module.router)
