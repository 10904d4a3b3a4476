"""Settings: defaults that run, a YAML file, its ``conf.d/`` fragments, then the environment.

Key names follow wazo-provd's ``config.yml`` where they mean the same thing
(``general.http_auth_strategy``, ``general.advertised_http_url``, ``rest_api.port``…) so an
operator's existing file mostly works. Precedence, lowest first: built-in defaults, the YAML
file, ``conf.d/*.yml`` in name order (deep-merged), ``PROVISOR_<SECTION>__<KEY>`` variables and
the short aliases in :data:`ENV_ALIASES`, then command-line options.
A bad value fails at start-up with the key's dotted name.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, IPvAnyNetwork, ValidationError

from provisor.errors import InvalidInput
from provisor.settings_wazo import translate_wazo_keys

__all__ = [
    "ENV_ALIASES",
    "AuthSettings",
    "ConsoleSettings",
    "DatabaseSettings",
    "GeneralSettings",
    "LimitsSettings",
    "ListenerLimits",
    "PluginsSettings",
    "ProvisioningSettings",
    "RenderSettings",
    "RestApiSettings",
    "Settings",
    "SyncSettings",
    "default_data_dir",
    "load_settings",
]

log = logging.getLogger(__name__)

AuthStrategy = Literal["url_key", "device_token"] | None


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class GeneralSettings(_Section):
    """wazo-provd's ``general`` section, with provisor's additions."""

    data_dir: Path | None = None
    advertised_http_url: str | None = None
    """The URL phones use for HTTP; default http://<provisioning host>:<http port>."""
    advertised_https_url: str | None = None
    """The URL written into files served over HTTPS; default https://<host>:<https port>."""
    http_auth_strategy: AuthStrategy = None
    http_proxied_trusted_proxies_count: int = Field(0, ge=0, le=16)
    http_proxied_listen_interface: str | None = None
    http_proxied_listen_port: int | None = Field(None, ge=0, le=65535)
    tftp_port: int | None = Field(None, ge=0, le=65535)
    plugin_server: str | None = None
    verbose: bool = False
    sync_service_type: Literal["none", "asterisk_ami", "sip"] = "sip"
    base_raw_config: dict[str, Any] = Field(default_factory=dict)
    plugin_dirs: list[Path] = Field(default_factory=list)
    """Extra folders of plugins loaded as they are (development, tests), after installed ones."""
    install_bundled_plugins: bool = True
    """A fresh data directory gets the plugins shipped with provisor at first start (offline)."""
    check_advertised_url: bool = True
    """Refuse to start when phones could not use the advertised URLs (wildcard or loopback
    host while the phone listeners are reachable from elsewhere)."""


class RestApiSettings(_Section):
    """The REST API listener."""

    ip: str = "127.0.0.1"
    port: int = Field(8666, ge=0, le=65535)
    max_body_bytes: int = Field(8 * 1024 * 1024, ge=1024)
    tenant_max_devices: int = Field(250_000, ge=0)
    """Devices one tenant may create through the API (0: no limit); past it, 403."""
    tenant_max_configs: int = Field(1_000_000, ge=0)
    """Configs one tenant may create through the API (0: no limit); past it, 403."""


class ProvisioningSettings(_Section):
    """The phone-facing listeners and their defences."""

    host: str = "127.0.0.1"
    http_enabled: bool = True
    http_port: int = Field(8667, ge=0, le=65535)
    https_enabled: bool = False
    https_port: int = Field(8443, ge=0, le=65535)
    tls_certfile: Path | None = None
    tls_keyfile: Path | None = None
    tftp_enabled: bool = True
    tftp_port: int = Field(6969, ge=0, le=65535)
    tftp_max_blksize: int = Field(1468, ge=8, le=65464)
    tftp_max_transfers: int = Field(2000, ge=1)
    tftp_max_transfers_per_client: int = Field(64, ge=1)
    """Transfers in flight from one address (requests being answered included)."""
    tftp_reserved_transfers: int = Field(200, ge=0)
    """The last slots under ``tftp_max_transfers``, kept for addresses with few transfers."""
    tftp_reserved_per_client: int = Field(4, ge=1)
    """Below this many transfers in flight an address may use the reserved slots."""
    tftp_unacked_timeout: float = Field(3.0, gt=0)
    """A transfer whose first packet is never acknowledged is dropped after this (seconds)."""
    tftp_busy_grace: float = Field(0.2, ge=0)
    """How long a request over a cap waits for a slot before "server busy" (seconds)."""
    auto_create: bool = True
    auto_create_per_source: int = Field(100, ge=0)
    """Devices one source address may auto-create per ``auto_create_window`` seconds."""
    auto_create_window: float = Field(60.0, gt=0)
    auto_create_max_total: int = Field(200_000, ge=0)
    ban_threshold: int = Field(30, ge=1)
    """Failed requests from one address within ``ban_window`` seconds before it is refused."""
    ban_window: float = Field(60.0, gt=0)
    ban_duration: float = Field(600.0, ge=0)
    ban_max_addresses: int = Field(10_000, ge=1)
    """Banned addresses kept (in the shared table and in each process); past it, the oldest
    ban is lifted first."""
    trace_size: int = Field(2000, ge=0)
    workers: Annotated[int, Field(ge=1, le=256)] | Literal["auto"] = "auto"
    """Processes serving the phone listeners (HTTP, HTTPS, TFTP): an integer from 1, or
    ``auto``, the cores this process may run on. With more than one, the REST API stays in the
    main process, which supervises them (docs/architecture.md "Process model")."""
    last_seen_interval: float = Field(1.0, gt=0, le=3600)
    """Seconds between two writes of devices' last requests to the database (batched)."""
    last_seen_batch: int = Field(500, ge=1, le=10_000)
    """Devices per write statement; a full batch is written without waiting the interval."""
    last_seen_pending_max: int = Field(50_000, ge=1)
    """Devices' last requests waiting to be written; past it the oldest is dropped (counted)."""
    security_log: Path | None = None
    """fail2ban log (wazo-provd's line format); default <data_dir>/provisor-fail2ban.log."""
    stale_if_error: float = Field(86400.0, ge=0)
    """While the database is unreachable, a phone gets again the file it was last served if
    that was at most this many seconds ago (0: never; a 503 instead)."""


class ListenerLimits(_Section):
    """What one connection may make an HTTP listener spend (each listener counts its own)."""

    max_connections: int | None = Field(None, ge=1)
    """Open connections; null: a share of the file-descriptor limit (30 % phone, 10 % REST)."""
    max_connections_per_address: int = Field(256, ge=1)
    max_request_line: int = Field(8192, ge=64)
    """Bytes of the request target (path and query); beyond it: 414."""
    max_header_bytes: int = Field(32768, ge=1024)
    """Bytes of the request line and headers together; beyond it: 431."""
    idle_timeout: float = Field(15.0, gt=0)
    """Seconds a connection may stay silent before its request starts (new or kept alive)."""
    header_timeout: float = Field(10.0, gt=0)
    """Seconds from a request's first byte (or the TLS handshake's) to its last header."""
    body_timeout: float = Field(30.0, gt=0)
    """Seconds from the end of the headers to the end of the body."""


class LimitsSettings(_Section):
    """Bounds on what anonymous clients can make the HTTP listeners spend."""

    phone: ListenerLimits = Field(default_factory=ListenerLimits)
    """The phone HTTP listener and the phone HTTPS listener, each."""
    rest: ListenerLimits = Field(
        default_factory=lambda: ListenerLimits.model_validate({"max_connections_per_address": 64})
    )
    proxy_addresses: list[IPvAnyNetwork] | None = None
    """Addresses held only to the listener's cap, not the per-address one (reverse proxies);
    null: loopback when ``general.http_proxied_trusted_proxies_count`` > 0, else none."""
    refusal_log_interval: float = Field(10.0, gt=0)
    """Refusals are logged at most once per this many seconds per listener and reason."""


class RenderSettings(_Section):
    """The budget of one template render (docs/plugins.md, "Render budget")."""

    cpu_seconds: float = Field(1.0, gt=0, le=60)
    """CPU time one render may use before it is stopped (that file fails, nothing else)."""
    inline_cpu_seconds: float = Field(0.05, gt=0, le=60)
    """CPU time a shipped template may use on the event loop; past it, the render is redone in
    a worker process with the full ``cpu_seconds``."""
    max_bytes: int = Field(4 * 1024 * 1024, ge=1024, le=256 * 1024 * 1024)
    """Largest rendered file; a render that grows past it is stopped and never cached."""
    workers: int = Field(2, ge=1, le=64)
    """Worker processes rendering tenants' template overrides (each tenant uses one at most)."""
    worker_memory_bytes: int = Field(512 * 1024 * 1024, ge=128 * 1024 * 1024)
    """Address-space limit of a render worker process."""
    wall_seconds: float = Field(30.0, gt=0)
    """Backstop: a worker that has not answered after this long is killed and replaced."""


class SyncSettings(_Section):
    """How phones are told to resync (SIP NOTIFY directly, or through Asterisk's AMI)."""

    route: Literal["auto", "sip", "ami"] = "auto"
    """auto: AMI when configured and the device registered a peer, else direct SIP."""
    sip_transport: Literal["udp", "tcp", "tls"] = "udp"
    sip_port: int = Field(5060, ge=1, le=65535)
    sip_local_host: str = "127.0.0.1"
    """Address written in Via/From (the host phones see provisor as)."""
    timeout: float = Field(4.0, gt=0)
    """How long to wait for the phone's final answer (UDP retransmits within it)."""
    rate: float = Field(20.0, gt=0)
    """NOTIFYs per second when resyncing many devices."""
    ami_host: str | None = None
    ami_port: int = Field(5038, ge=1, le=65535)
    ami_username: str | None = None
    ami_secret: str | None = None
    tls_verify: bool = False


class BusSettings(_Section):
    """The Wazo message bus (AMQP), off by default."""

    enabled: bool = False
    username: str = "guest"
    password: str = "guest"
    host: str = "localhost"
    port: int = Field(5672, ge=1, le=65535)
    exchange_name: str = "wazo-headers"
    exchange_type: str = "headers"

    def url(self) -> str:
        """The AMQP URL (never logged: it carries the password)."""
        return f"amqp://{self.username}:{self.password}@{self.host}:{self.port}/"


class SyncdbSettings(_Section):
    """Periodic removal of devices whose tenant no longer exists in wazo-auth."""

    start_sec: float = Field(60.0, ge=0)
    # 0: a new pass as soon as the previous one ends (wazo-provd's reading of any value under
    # one second); a pass that fails waits at least a second before the next
    interval_sec: float = Field(86400.0, ge=0)


class WazoSettings(_Section):
    """Workers running wazo-format plugins (third-party code, one process per plugin)."""

    worker_timeout: float = Field(5.0, gt=0, le=300)
    """Seconds a worker has to answer one call before it is killed (and restarted later)."""
    worker_start_timeout: float = Field(30.0, gt=0, le=600)
    """Seconds a worker has to load its plugin."""
    worker_memory_mb: int = Field(1024, ge=0)
    """Address-space cap of a worker process in MiB (0: none)."""


class DatabaseSettings(_Section):
    """Where the store lives; SQLite in the data directory unless a URL is given."""

    url: str | None = None
    echo: bool = False
    connect_timeout: float = Field(5.0, gt=0, le=300)
    """Seconds to wait for a PostgreSQL connection before the database counts as down."""
    retry_after: int = Field(10, ge=1, le=3600)
    """Seconds clients are told to wait (``Retry-After``) while the database is unreachable."""
    sqlite_synchronous: Literal["NORMAL", "FULL", "EXTRA"] = "FULL"
    """SQLite's ``PRAGMA synchronous`` (WAL mode): FULL keeps every acknowledged write through
    an OS crash or power loss; NORMAL may lose the last ones (docs/settings.md)."""
    sqlite_busy_timeout: float = Field(30.0, gt=0, le=600)
    """Seconds a SQLite write waits for the file's lock (held by another process, a CLI
    command or a migration) before it fails; the REST API then answers 503."""


class AuthSettings(_Section):
    """Who checks REST API tokens."""

    backend: Literal["builtin", "wazo-auth"] = "builtin"
    url: str | None = None
    host: str = "localhost"
    port: int = 9497
    https: bool = False
    prefix: str | None = None
    key_file: Path | None = None
    cache_ttl: float = Field(10.0, ge=0)
    timeout: float = Field(3.0, gt=0)

    def server_url(self) -> str:
        """The wazo-auth base URL, from ``url`` or host/port/https/prefix."""
        if self.url:
            return self.url.rstrip("/")
        scheme = "https" if self.https else "http"
        return f"{scheme}://{self.host}:{self.port}{self.prefix or ''}"


class PluginsSettings(_Section):
    """Bounds on what installing a plugin may cost (archives come from a repository)."""

    archive_max_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    """Largest plugin archive downloaded (the index's size is refused above it)."""
    archive_max_extracted_bytes: int = Field(128 * 1024 * 1024, ge=1024)
    """Total bytes an archive may expand to; counted while extracting, not read from headers."""
    archive_max_members: int = Field(5_000, ge=1)
    """Files and folders in one archive."""
    archive_max_member_bytes: int = Field(32 * 1024 * 1024, ge=1)
    """Size of one extracted file."""
    archive_max_path_depth: int = Field(16, ge=2, le=256)
    """Folder levels of a member's path, the top folder included."""
    archive_max_path_length: int = Field(255, ge=16, le=4096)
    """Characters of a member's path, the top folder included."""
    stored_archive_max_bytes: int = Field(16 * 1024 * 1024, ge=1024)
    """Largest archive kept in the database for the other nodes (a plugin installed from a
    local repository folder); a bigger one is refused: publish it on an HTTP repository."""


class ObservabilitySettings(_Section):
    """Metrics and the phone access log (docs/operations.md "Monitoring")."""

    metrics_enabled: bool = True
    """Serve ``/metrics`` (Prometheus, no token) on the REST listener."""
    access_log: bool = False
    """One ``provisor.access`` line per phone request (off: a boot storm is many lines)."""
    access_log_per_second: int = Field(100, ge=0)
    """Most access lines a second (0: no limit); the lines over it are counted, not written."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    """Lowest level logged (``-v`` or ``general.verbose``: debug); the fail2ban log file
    (``provisioning.security_log``), when set, gets its lines whatever this says."""
    log_format: Literal["text", "json"] = "text"
    """``json``: one JSON object a line (time, level, logger, message, exception)."""
    log_file: Path | None = None
    """Log to this file (reopened when moved by logrotate) instead of stderr."""


class ConsoleSettings(_Section):
    """The operator console in the browser (docs/console.md)."""

    enabled: bool = True
    """Serve the console at ``/console`` on the REST listener (false: 404)."""
    session_lifetime: float = Field(8 * 3600.0, ge=60, le=30 * 86400)
    """Seconds a console session lasts after sign-in, whatever its use."""
    session_idle: float = Field(1800.0, ge=60, le=30 * 86400)
    """Seconds without a request after which a console session ends."""
    max_sessions: int = Field(1000, ge=1, le=1_000_000)
    """Most console sessions held at once; a sign-in past it ends the oldest of the biggest holder."""
    page_size: int = Field(50, ge=5, le=500)
    """Phones per page of the Phones list."""


class Settings(_Section):
    """Every setting of provisor."""

    general: GeneralSettings = Field(default_factory=GeneralSettings)
    rest_api: RestApiSettings = Field(default_factory=RestApiSettings)
    provisioning: ProvisioningSettings = Field(default_factory=ProvisioningSettings)
    render: RenderSettings = Field(default_factory=RenderSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    sync: SyncSettings = Field(default_factory=SyncSettings)
    bus: BusSettings = Field(default_factory=BusSettings)
    syncdb: SyncdbSettings = Field(default_factory=SyncdbSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    plugins: PluginsSettings = Field(default_factory=PluginsSettings)
    wazo: WazoSettings = Field(default_factory=WazoSettings)
    observability: ObservabilitySettings = Field(default_factory=ObservabilitySettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    plugin_config: dict[str, dict[str, Any]] = Field(default_factory=dict)
    proxy: dict[Literal["http", "https", "ftp"], str | None] = Field(default_factory=dict)
    """wazo-provd's initial proxy parameters (http_proxy…); a value set through the API wins."""

    @property
    def data_dir(self) -> Path:
        """The data directory (database, plugins, firmware, logs)."""
        return self.general.data_dir or default_data_dir()

    @property
    def database_url(self) -> str:
        """SQLAlchemy async URL of the store."""
        url = self.database.url or f"sqlite+aiosqlite:///{self.data_dir / 'provisor.db'}"
        if url.startswith("postgresql://") or url.startswith("postgres://"):
            url = "postgresql+asyncpg://" + url.split("://", 1)[1]
        if url.startswith("sqlite:///"):
            url = "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
        return url

    @property
    def phone_http_port(self) -> int:
        """The phone HTTP port (wazo's http_proxied_listen_port wins when set)."""
        port = self.general.http_proxied_listen_port
        return self.provisioning.http_port if port is None else port

    @property
    def phone_workers(self) -> int:
        """How many processes serve phones (``provisioning.workers``, ``auto`` resolved)."""
        wanted = self.provisioning.workers
        if wanted == "auto":
            return max(1, len(os.sched_getaffinity(0)))
        return wanted

    @property
    def phone_host(self) -> str:
        """The address the phone listeners bind."""
        return self.general.http_proxied_listen_interface or self.provisioning.host

    @property
    def tftp_port(self) -> int:
        """The TFTP port (wazo's general.tftp_port wins when set)."""
        port = self.general.tftp_port
        return self.provisioning.tftp_port if port is None else port

    @property
    def advertised_http_url(self) -> str:
        """The URL base phones are told to use over HTTP."""
        url = self.general.advertised_http_url
        return (url or f"http://{self.phone_host}:{self.phone_http_port}").rstrip("/")

    @property
    def advertised_https_url(self) -> str:
        """The URL base phones are told to use in files they fetched over HTTPS.

        ``general.advertised_https_url``, else https://<provisioning host>:<https port>: a file
        served over HTTPS never sends the phone (and its key or token) back to plain HTTP.
        """
        url = self.general.advertised_https_url
        return (url or f"https://{self.phone_host}:{self.provisioning.https_port}").rstrip("/")

    @property
    def advertised_path_prefixes(self) -> tuple[str, ...]:
        """The paths of the advertised URLs (``device/provisioning`` in Wazo's remote
        provisioning guide): a phone asks for ``/<prefix>/<key>/<file>`` and provisor's own
        listeners must answer it as ``/<key>/<file>``, with no reverse proxy in front."""
        found = []
        for url in (self.advertised_http_url, self.advertised_https_url):
            path = urlsplit(url).path.strip("/")
            if path and path not in found:
                found.append(path)
        return tuple(found)

    @property
    def security_log(self) -> Path:
        """The fail2ban-compatible security log file."""
        return self.provisioning.security_log or self.data_dir / "provisor-fail2ban.log"


#: Short environment variables, beside the generic PROVISOR_<SECTION>__<KEY> form.
ENV_ALIASES: Mapping[str, str] = {
    "PROVISOR_DATA_DIR": "general.data_dir",
    "PROVISOR_HTTP_AUTH_STRATEGY": "general.http_auth_strategy",
    "PROVISOR_ADVERTISED_HTTP_URL": "general.advertised_http_url",
    "PROVISOR_DATABASE_URL": "database.url",
    "PROVISOR_AUTH_BACKEND": "auth.backend",
    "PROVISOR_WAZO_AUTH_URL": "auth.url",
    "PROVISOR_WAZO_AUTH_KEY_FILE": "auth.key_file",
    "PROVISOR_PLUGIN_SERVER": "general.plugin_server",
}


def default_data_dir() -> Path:
    """``$PROVISOR_DATA_DIR``, else ``~/.local/share/provisor``, else ``./var``."""
    home = os.environ.get("HOME")
    if home and Path(home).is_dir() and os.access(home, os.W_OK):
        return Path(home) / ".local" / "share" / "provisor"
    return Path.cwd() / "var"


def _deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"settings: cannot read {path}: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidInput(f"settings: {path} must hold a mapping at the top level")
    return data


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    node = data
    *parents, last = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


def _env_value(raw: str) -> Any:
    if raw.lower() in ("null", "none", ""):
        return None
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def load_settings(
    config_file: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build the settings from the file, its conf.d, the environment and dotted overrides."""
    env = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    if config_file is None and env.get("PROVISOR_CONFIG"):
        config_file = Path(env["PROVISOR_CONFIG"])
    if config_file is not None:
        if not config_file.is_file():
            raise InvalidInput(f"settings: config file {config_file} does not exist")
        data = _read_yaml(config_file)
        conf_d = config_file.parent / "conf.d"
        if conf_d.is_dir():
            for fragment in sorted(conf_d.glob("*.yml")) + sorted(conf_d.glob("*.yaml")):
                data = _deep_merge(data, _read_yaml(fragment))
    # a section left with only comments under it (``rest_api:``) is an empty section
    data = {key: value for key, value in data.items() if value is not None}
    for warning in translate_wazo_keys(data):
        log.warning("settings: %s", warning)
    for name, raw in env.items():
        if name in ENV_ALIASES:
            _set_dotted(data, ENV_ALIASES[name], _env_value(raw))
        elif name.startswith("PROVISOR_") and "__" in name:
            dotted = name[len("PROVISOR_") :].lower().replace("__", ".")
            _set_dotted(data, dotted, _env_value(raw))
    for dotted, value in (overrides or {}).items():
        if value is not None:
            _set_dotted(data, dotted, value)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise InvalidInput(f"settings: {problems}") from None
