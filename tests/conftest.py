"""Fixtures: a real provisor on 127.0.0.1 with a real database, and HTTP clients for it.

The database is a SQLite file in the test's temporary folder, or, when
``PROVISOR_TEST_DATABASE_URL`` names a PostgreSQL server (``.ci/run`` starts one), a fresh
database created on it for each test and dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
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
        return await backend.create_token(tenant_uuid, acl or ["provd.#"], "test")

    def client(self, token: str, **headers: str) -> httpx.AsyncClient:
        """A REST client with another token (and extra headers such as Wazo-Tenant)."""
        return httpx.AsyncClient(
            base_url=self.rest_url,
            headers={"X-Auth-Token": token, "Accept": MIME, "Content-Type": MIME, **headers},
            timeout=10,
        )

    async def close(self) -> None:
        """Stop clients and server."""
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
    return Server(running, token)


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[Server]:
    """A running provisor with the default test settings."""
    srv = await start_server(settings)
    try:
        yield srv
    finally:
        await srv.close()
