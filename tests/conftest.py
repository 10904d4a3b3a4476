"""Fixtures: a real provisor on 127.0.0.1 with a real database, and HTTP clients for it.

The database is a SQLite file in the test's temporary folder, or, when
``PROVISOR_TEST_DATABASE_URL`` names a PostgreSQL server (``.ci/run`` starts one), a fresh
database created on it for each test and dropped afterwards.

No secret in any log: every log record of the session, at DEBUG and from every logger (ours and
third-party ones), goes to one file; the secrets the suite creates are registered (API tokens
from the helpers below, and at each server's close every provisioning key, device token and
config password in its database; fixtures' passwords also carry a recognizable ``…Secret<n>``
marker); at the end, that file and every ``*.log`` under the session's temporary folder are
searched, and a hit fails the run with the offending line.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from provisor.api.http import MIME
from provisor.settings import Settings, load_settings

SUPPORT = Path(__file__).parent / "support"
TEST_PLUGINS = SUPPORT / "plugins"
REPO_PLUGINS = Path(__file__).resolve().parents[1] / "plugins"

PG_URL = os.environ.get("PROVISOR_TEST_DATABASE_URL")


# -- secrets must never reach a log -------------------------------------------------------------

SECRETS: set[str] = set()
"""Every secret the suite created (see register_secret)."""
SECRET_MIN_LEN = 6  # shorter test passwords ("p") would match ordinary words
SECRET_MARKER = re.compile(r"[A-Za-z-]*Secret-?[0-9]+[\w-]*|S3cret-\w+")
_PIECES = re.compile(r"[^A-Za-z0-9_\-$~.]+")  # keys' and tokens' alphabet is kept whole
_SECRET_KEYS = re.compile(r"password|secret|passwd|_key$", re.IGNORECASE)
LOG_FILE = Path(tempfile.mkdtemp(prefix="provisor-test-logs-")) / "all-records.log"
_log_handler: _SessionLog | None = None
_basetemp: list[Path] = []


class _SessionLog(logging.Handler):
    """LOG_FILE, buffered, and deaf to close(): every uvicorn start runs logging.config, which
    closes every handler in the process."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.file = path.open("a", encoding="utf-8", buffering=1 << 20)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.file.write(self.format(record) + "\n")
        except Exception:  # pragma: no cover - logging must not break a test
            self.handleError(record)

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        self.flush()  # and stay open: the session's end closes it

    def finish(self) -> None:
        self.file.close()
        super().close()


def register_secret(*values: object) -> None:
    """Remember values that must never appear in a log line."""
    for value in values:
        if isinstance(value, str) and len(value) >= SECRET_MIN_LEN:
            SECRETS.add(value)


def _config_secrets(value: object, key: str = "") -> Iterator[object]:
    """Values under password/secret/key-like names in a config document."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _config_secrets(v, str(k))
    elif isinstance(value, list):
        for v in value:
            yield from _config_secrets(v, key)
    elif _SECRET_KEYS.search(key):
        yield value


async def harvest_secrets(prov: Any) -> None:
    """Register every key, device token and config password in a server's database."""
    from sqlalchemy import select

    from provisor.store.tables import configs, devices, tenants

    async with prov.engine.connect() as conn:
        register_secret(*(await conn.execute(select(tenants.c.provisioning_key))).scalars())
        register_secret(*(await conn.execute(select(devices.c.prov_token))).scalars())
        for doc in (await conn.execute(select(configs.c.doc))).scalars():
            register_secret(*_config_secrets(doc))


def pytest_configure(config: pytest.Config) -> None:
    """Send every log record of the session, at DEBUG, to LOG_FILE."""
    global _log_handler
    handler = _SessionLog(LOG_FILE)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.DEBUG)
    if config.option.log_level is None:
        # pytest's per-test report keeps WARNING and up (the whole DEBUG stream is in LOG_FILE,
        # kept when the run fails): formatting every DEBUG record twice slowed the load tests
        config.option.log_level = "WARNING"
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    # SQLAlchemy holds its loggers at WARNING unless asked: ask, as an operator debugging would
    logging.getLogger("sqlalchemy").setLevel(logging.DEBUG)
    # the security log does not propagate when it has its own file
    logging.getLogger("provisor.security").addHandler(handler)
    _log_handler = handler


@pytest.fixture(scope="session", autouse=True)
def _session_temp(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Where the tests' own log files are (security logs, servers' logs)."""
    _basetemp.append(tmp_path_factory.getbasetemp())


def find_secrets(lines: Iterable[str]) -> Iterator[tuple[str, str]]:
    """(secret, line) for each line carrying a registered secret or a marked fixture one."""
    odd = [s for s in SECRETS if _PIECES.search(s)]  # secrets the split would cut: substring
    for line in lines:
        marked = SECRET_MARKER.search(line)
        if marked:
            yield marked.group(), line
            continue
        for piece in _PIECES.split(line):
            for candidate in (piece, piece.strip(".-"), *piece.split(".")):
                if candidate in SECRETS:
                    yield candidate, line
                    break
            else:
                continue
            break
        else:
            for secret in odd:
                if secret in line:
                    yield secret, line
                    break


def _log_files() -> list[Path]:
    files = [LOG_FILE]
    for base in _basetemp:
        files.extend(p for p in base.rglob("*.log") if p.is_file())
    return files


#: A skip for one of these reasons means a tool the run should have installed is missing.
_MISSING_TOOL = re.compile(r"not installed|no initdb found|are not installed")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """In CI (``CI=true``), a test skipped for a missing tool fails: CI installs every tool the
    suite uses (scripts/test.sh), so such a skip hides a broken install step."""
    outcome: Any = yield
    report = outcome.get_result()
    if os.environ.get("CI") != "true" or not report.skipped:
        return
    reason = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else ""
    if _MISSING_TOOL.search(reason):
        report.outcome = "failed"
        report.longrepr = f"CI=true and a tool the suite needs is missing: {reason}"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when any log the suite wrote holds a secret."""
    if _log_handler is not None:
        _log_handler.flush()
        if exitstatus != 0:
            print(f"\nevery log record of this run: {LOG_FILE}")
    hits: list[str] = []
    for path in _log_files():
        with path.open(encoding="utf-8", errors="replace") as lines:
            for secret, line in find_secrets(lines):
                hits.append(f"{path}: secret {secret[:3]}… in: {line.rstrip()[:400]}")
    if hits:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_sep("=", f"{len(hits)} log lines hold a secret", red=True)
            for hit in hits[:50]:
                reporter.write_line(hit)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    else:
        if _log_handler is not None:
            logging.getLogger().removeHandler(_log_handler)
            logging.getLogger("provisor.security").removeHandler(_log_handler)
            _log_handler.finish()
        if exitstatus == 0 and not os.environ.get("PROVISOR_TEST_KEEP_LOGS"):
            shutil.rmtree(LOG_FILE.parent, ignore_errors=True)


async def _pg_database() -> tuple[str, str]:
    """Create a fresh database on the test PostgreSQL server; returns (url, name)."""
    import asyncpg

    name = f"provisor_test_{uuid.uuid4().hex[:12]}"
    admin = PG_URL.replace("postgresql+asyncpg://", "postgresql://")  # type: ignore[union-attr]
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base, _, _ = admin.rpartition("/")
    return f"{base}/{name}", name


async def _pg_drop(name: str) -> None:
    import asyncpg

    admin = PG_URL.replace("postgresql+asyncpg://", "postgresql://")  # type: ignore[union-attr]
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture
async def database_url(tmp_path: Path) -> AsyncIterator[str]:
    """A database for one test: SQLite file, or a fresh PostgreSQL database."""
    if PG_URL:
        url, name = await _pg_database()
        yield url
        await _pg_drop(name)
    else:
        yield f"sqlite+aiosqlite:///{tmp_path / 'provisor.db'}"


def make_settings(tmp_path: Path, database_url: str, **overrides: Any) -> Settings:
    """Settings for a test server: everything on 127.0.0.1, free ports, test plugins."""
    dotted: dict[str, Any] = {
        "general.data_dir": str(tmp_path / "data"),
        "database.url": database_url,
        "rest_api.ip": "127.0.0.1",
        "rest_api.port": 0,
        "provisioning.host": "127.0.0.1",
        "provisioning.http_port": 0,
        "provisioning.tftp_port": 0,
        "provisioning.tftp_enabled": False,
        "general.plugin_dirs": [str(TEST_PLUGINS)],
        "general.advertised_http_url": "http://127.0.0.1:8667",
        "general.install_bundled_plugins": False,
        # one process: a test server starts in milliseconds; tests/provisioning/test_workers.py
        # covers several
        "provisioning.workers": 1,
    }
    dotted.update(overrides)
    return load_settings(None, environ={}, overrides=dotted)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """Default test settings."""
    return make_settings(tmp_path, database_url)


class Server:
    """A running provisor and clients bound to it."""

    def __init__(self, running: Any, token: str) -> None:
        self.running = running
        self.prov = running.prov
        self.pipeline = running.pipeline
        self.token = token
        self.rest_url = f"http://127.0.0.1:{running.ports['rest']}"
        self.http_url = f"http://127.0.0.1:{running.ports.get('http', 0)}"
        self.api = httpx.AsyncClient(
            base_url=self.rest_url,
            headers={"X-Auth-Token": token, "Accept": MIME, "Content-Type": MIME},
            timeout=10,
        )
        self.phone = httpx.AsyncClient(base_url=self.http_url, timeout=10)

    @property
    def master(self) -> str:
        """The master tenant uuid."""
        return str(self.prov.tenants.master.uuid)

    async def token_for(self, tenant_uuid: str, acl: list[str] | None = None) -> str:
        """A new built-in token for a tenant."""
        from provisor.auth.builtin import BuiltinAuthBackend

        backend = BuiltinAuthBackend(self.prov.tokens, self.prov.tenants)
        token = await backend.create_token(tenant_uuid, acl or ["provd.#"], "test")
        register_secret(token)
        return token

    def client(self, token: str, **headers: str) -> httpx.AsyncClient:
        """A REST client with another token (and extra headers such as Wazo-Tenant)."""
        return httpx.AsyncClient(
            base_url=self.rest_url,
            headers={"X-Auth-Token": token, "Accept": MIME, "Content-Type": MIME, **headers},
            timeout=10,
        )

    async def close(self) -> None:
        """Stop clients and server."""
        with contextlib.suppress(Exception):  # a test may have stopped the database
            await harvest_secrets(self.prov)
        await self.api.aclose()
        await self.phone.aclose()
        await self.running.stop()


async def start_server(settings: Settings) -> Server:
    """Start provisor with these settings and a master-tenant token."""
    from provisor.server import Running

    running = await Running.start(settings)
    from provisor.auth.builtin import BuiltinAuthBackend

    backend = BuiltinAuthBackend(running.prov.tokens, running.prov.tenants)
    token = await backend.create_token(running.prov.tenants.master.uuid, ["provd.#"], "tests")
    register_secret(token)
    return Server(running, token)


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[Server]:
    """A running provisor with the default test settings."""
    srv = await start_server(settings)
    try:
        yield srv
    finally:
        await srv.close()
