"""Run provisor: the REST API, the phone HTTP/HTTPS listeners and TFTP in one event loop.

:class:`Running` starts every enabled listener on sockets it binds itself (port 0 picks a free
port, which the tests use) and stops them all on SIGINT/SIGTERM or :meth:`Running.stop`.
uvicorn serves HTTP with uvloop and httptools; its own signal handling is disabled so that
several servers can share one loop and stop together.

Each HTTP listener is guarded (:mod:`provisor.provisioning.http_guard`): connection caps per
listener and per address, head size caps and deadlines, with TLS started after the connection is
counted. The file-descriptor limit is raised to the hard limit first, and listeners whose cap
is not set share it (:func:`provisor.provisioning.limits.fd_budget`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import uvicorn

from provisor.errors import StartupError
from provisor.plugins.bundled import install_bundled_at_first_start
from provisor.preflight import check_advertised_urls
from provisor.provisioning.http import PhoneApp
from provisor.provisioning.http_guard import ListenerBounds, ListenerGuard
from provisor.provisioning.limits import (
    ConnectionLimiter,
    FdBudget,
    IPNetwork,
    RefusalLog,
    fd_budget,
    proxy_networks,
    raise_fd_limit,
)
from provisor.provisioning.pipeline import Pipeline
from provisor.provisioning.tftp import TftpServer
from provisor.service import Provisor
from provisor.settings import ListenerLimits, Settings

if TYPE_CHECKING:
    from provisor.workers.pool import WorkerPool

__all__ = ["Running", "serve"]

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to :class:`Running`."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _bind_tcp(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family in (socket.AF_INET, socket.AF_INET6):
        # accepted sockets inherit it: no 40 ms Nagle/delayed-ACK stalls on small answers
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def _tls_context(settings: Settings) -> ssl.SSLContext:
    """The phone HTTPS listener's TLS context; StartupError names a missing or bad file."""
    pcfg = settings.provisioning
    if not pcfg.tls_certfile or not pcfg.tls_keyfile:
        raise StartupError(
            "https listener: provisioning.https_enabled needs provisioning.tls_certfile"
            " and tls_keyfile"
        )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(str(pcfg.tls_certfile), str(pcfg.tls_keyfile))
    except (OSError, ssl.SSLError) as exc:
        raise StartupError(
            f"https listener {settings.phone_host}:{pcfg.https_port}: cannot load"
            f" provisioning.tls_certfile {pcfg.tls_certfile} /"
            f" tls_keyfile {pcfg.tls_keyfile}: {getattr(exc, 'strerror', None) or exc}"
        ) from None
    return context


def _bind_udp(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind((host, port))
    sock.setblocking(False)
    return sock


def _uvicorn(app: Any, guard: ListenerGuard, *, proxy_headers: bool = False) -> _Server:
    config = uvicorn.Config(
        app,
        loop="none",
        http=guard.protocol_class(),
        ws="none",
        lifespan="off",
        access_log=False,
        # phones: provisor reads X-Forwarded-For itself, from its trusted proxies only
        # (PhoneApp); uvicorn's own reading trusted any loopback client's header whatever the
        # settings. The REST listener keeps it: the console's cookie is `Secure` when a local
        # TLS proxy says X-Forwarded-Proto: https (docs/operations.md)
        proxy_headers=proxy_headers,
        log_level="warning",
        server_header=False,
        date_header=False,
        timeout_keep_alive=max(1, int(guard.bounds.idle_timeout)),
        backlog=2048,
    )
    guard.quick = getattr(app, "quick", None)  # the phone app answers hot GETs at once
    return _Server(config)


def _proxies(settings: Settings) -> tuple[IPNetwork, ...]:
    """Addresses held only to a listener's total: the reverse proxies (``proxy_networks``)."""
    return proxy_networks(
        settings.limits.proxy_addresses, settings.general.http_proxied_trusted_proxies_count
    )


def _guard(
    name: str,
    cfg: ListenerLimits,
    default_cap: int,
    settings: Settings,
    ssl_context: ssl.SSLContext | None = None,
    *,
    share: int = 1,
) -> ListenerGuard:
    # ``share`` phone workers serve one socket: each holds that fraction of the configured caps
    # so that the totals hold; the file-descriptor share (a cap left unset) is each process's
    # own, since each worker has its own descriptor table
    configured = cfg.max_connections
    bounds = ListenerBounds(
        max_connections=max(1, configured // share) if configured else default_cap,
        max_connections_per_address=max(1, cfg.max_connections_per_address // share),
        max_request_line=cfg.max_request_line,
        max_header_bytes=cfg.max_header_bytes,
        idle_timeout=cfg.idle_timeout,
        header_timeout=cfg.header_timeout,
        body_timeout=cfg.body_timeout,
    )
    limiter = ConnectionLimiter(
        name, bounds.max_connections, bounds.max_connections_per_address, _proxies(settings)
    )
    refusals = RefusalLog(log, name, settings.limits.refusal_log_interval)
    return ListenerGuard(name, bounds, limiter, refusals, ssl_context)


@dataclass
class Running:
    """A started provisor with the ports it listens on."""

    prov: Provisor
    pipeline: Pipeline
    ports: dict[str, int] = field(default_factory=dict)
    guards: dict[str, ListenerGuard] = field(default_factory=dict)
    tftp: TftpServer | None = None
    budget: FdBudget | None = None
    workers: WorkerPool | None = None
    _phone_sockets: dict[str, socket.socket] = field(default_factory=dict)
    _servers: list[_Server] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _closers: list[Any] = field(default_factory=list)

    @classmethod
    async def start(cls, settings: Settings, *, prov: Provisor | None = None) -> Running:
        """Open the store and start every enabled listener."""
        check_advertised_urls(settings)
        if prov is None:
            prov = await Provisor.open(settings)
            try:
                await install_bundled_at_first_start(prov)
            except BaseException:
                await prov.close()
                raise
        pipeline = Pipeline(prov)
        prov.extra["pipeline"] = pipeline
        if settings.general.sync_service_type != "none":
            from provisor.sync.service import SyncService

            prov.extra["sync"] = SyncService(prov)
        running = cls(prov, pipeline)
        try:
            await running._start_listeners(settings)
        except BaseException:
            await running.stop()
            raise
        return running

    async def _start_listeners(self, settings: Settings) -> None:
        # here, not at the top: phone workers import this module and never serve the REST API
        from provisor.api.app import create_api
        from provisor.api.extensions import extra_routers

        budget = self.budget = fd_budget(raise_fd_limit())
        limits = settings.limits
        pcfg = settings.provisioning
        workers = settings.phone_workers
        if workers > 1:
            # phones served before the REST API answers, as with one process: whoever waits for
            # the REST port (a supervisor, a test) finds the phone listeners serving
            await self._start_workers(settings, workers)
        api = create_api(self.prov, extra_routers=extra_routers())
        rest = _guard("rest", limits.rest, budget.rest, settings)
        self._add("rest", api, settings.rest_api.ip, settings.rest_api.port, rest)
        self.ports = {"rest": self.ports.pop("rest"), **self.ports}  # REST first, as always
        if workers == 1 and pcfg.http_enabled:
            guard = _guard("http", limits.phone, budget.phone, settings)
            app = PhoneApp(self.pipeline)
            self._add("http", app, settings.phone_host, settings.phone_http_port, guard)
        if pcfg.https_enabled and workers == 1:
            context = _tls_context(settings)
            guard = _guard("https", limits.phone, budget.phone, settings, context)
            app = PhoneApp(self.pipeline, secure=True)
            self._add("https", app, settings.phone_host, pcfg.https_port, guard)
        log.info(
            "connection caps (file-descriptor limit %d): %s",
            budget.nofile,
            ", ".join(
                f"{name} {g.bounds.max_connections} ({g.bounds.max_connections_per_address}"
                " per address)"
                for name, g in self.guards.items()
            ),
        )
        for server in self._servers:
            while not server.started:
                if server.should_exit:
                    raise RuntimeError("a listener failed to start")
                await asyncio.sleep(0.01)
        if pcfg.tftp_enabled and workers == 1:
            from provisor.provisioning.tftp_front import start_tftp

            try:
                tftp = await start_tftp(self.pipeline, settings, max_transfers=budget.tftp)
            except OSError as exc:
                raise StartupError(
                    f"tftp listener {settings.phone_host}:{settings.tftp_port}:"
                    f" {exc.strerror or exc}"
                ) from None
            self.ports["tftp"] = tftp.port
            self.tftp = tftp
            self._closers.append(tftp.stop)
        self.prov.feed.start(self.prov.reload_changed)  # other nodes' writes, within a second
        from provisor.plugins.reconcile import PluginReconciler

        reconciler = PluginReconciler(self.prov)  # the plugins the database records
        self.prov.extra["plugin_reconciler"] = reconciler
        if self.workers is not None:  # the workers load what the reconciler put in the folder
            pool = self.workers
            reconciler.changed.append(lambda: pool.broadcast(("plugins",)))
        reconciler.start()
        self._closers.append(reconciler.stop)
        if settings.bus.enabled:
            from provisor.bus import Bus

            bus = Bus(self.prov)
            await bus.start()
            self.prov.extra["bus"] = bus
            self._closers.append(bus.stop)
        if settings.auth.backend == "wazo-auth":
            from provisor.bus import TenantSync

            tenant_sync = TenantSync(self.prov)
            tenant_sync.start()
            self._closers.append(tenant_sync.stop)
        for start_hook in self.prov.extra.get("on_start", []):
            closer = await start_hook(self.prov)  # may give back what stops it
            if closer is not None:
                self._closers.append(closer)
        self.prov.extra["listeners"] = self.listener_state  # /health/ready: started, and up

    async def _start_workers(self, settings: Settings, count: int) -> None:
        """Bind the phone sockets here and serve them from ``count`` worker processes."""
        from provisor.workers.pool import WorkerPool

        pcfg = settings.provisioning
        host = settings.phone_host
        wanted: list[tuple[str, int, bool]] = []
        if pcfg.http_enabled:
            wanted.append(("http", settings.phone_http_port, True))
        if pcfg.https_enabled:
            _tls_context(settings)  # a bad certificate is one line here, not N in the workers
            wanted.append(("https", pcfg.https_port, True))
        if pcfg.tftp_enabled:
            wanted.append(("tftp", settings.tftp_port, False))
        for name, port, tcp in wanted:
            try:
                sock = _bind_tcp(host, port) if tcp else _bind_udp(host, port)
            except OSError as exc:
                raise StartupError(
                    f"{name} listener {host}:{port}: {exc.strerror or exc}"
                ) from None
            self._phone_sockets[name] = sock
            self.ports[name] = sock.getsockname()[1]
        pool = WorkerPool(settings, count, self._phone_sockets, self.pipeline)
        await pool.start()
        self.workers = pool
        self.prov.extra["worker_metrics"] = pool.metrics
        log.info("phone listeners served by %d worker processes: %s", count, pool.pids())

    def listener_state(self) -> dict[str, bool]:
        """Whether each listener runs (a uvicorn server that exited is down; with workers, a
        phone listener is up while at least one worker serves it)."""
        if self.workers is not None:
            rest = self._servers[0]
            state = {"rest": rest.started and not rest.should_exit}
            state.update((name, self.workers.serving) for name in self._phone_sockets)
            return state
        names = [name for name in self.ports if name != "tftp"]
        state = {
            name: server.started and not server.should_exit
            for name, server in zip(names, self._servers, strict=True)
        }
        if "tftp" in self.ports:
            state["tftp"] = True  # bound and serving until stop(), which ends the process
        return state

    def _add(self, name: str, app: Any, host: str, port: int, guard: ListenerGuard) -> None:
        try:
            sock = _bind_tcp(host, port)
        except OSError as exc:
            raise StartupError(f"{name} listener {host}:{port}: {exc.strerror or exc}") from None
        self.ports[name] = sock.getsockname()[1]
        server = _uvicorn(app, guard, proxy_headers=name == "rest")
        guard.start()
        self.guards[name] = guard
        self._servers.append(server)
        self._tasks.append(asyncio.get_running_loop().create_task(server.serve(sockets=[sock])))

    async def stop(self) -> None:
        """Stop every listener and close the store."""
        for server in self._servers:
            server.should_exit = True
        for guard in self.guards.values():
            guard.stop()
        if self.workers is not None:
            await self.workers.stop()
        for sock in self._phone_sockets.values():
            sock.close()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for closer in self._closers:
            await closer()
        self.pipeline.close()
        await self.prov.close()

    async def wait(self) -> None:
        """Run until SIGINT or SIGTERM."""
        await _stop_on_signals().wait()


def _stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM from now on (the default action would end the process
    without stopping its phone workers or closing the store)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def serve(settings: Settings) -> None:
    """Start provisor and run until a signal."""
    stop = _stop_on_signals()  # a signal during start-up stops the server once it is up
    running = await Running.start(settings)
    # Everything loaded at start (plugins, templates, settings, the tenant tree) lives as long
    # as the process: keep it out of the garbage collector's scans, which otherwise grow with
    # the number of plugins and run during every burst of requests. The price: a plugin later
    # unloaded (upgrade, uninstall) leaves its reference cycles behind, a few hundred KB.
    gc.collect()
    gc.freeze()
    # one line, in the log (stdout and stderr both reach the journal under systemd)
    log.info(
        "provisor listening on %s",
        ", ".join(
            f"{k} {settings.rest_api.ip if k == 'rest' else settings.phone_host}:{v}"
            for k, v in running.ports.items()
        ),
    )
    try:
        await stop.wait()
    finally:
        await running.stop()
