"""Changes made with the ``provisor`` CLI reach a running server on the same data and database.

A real server runs in the test's event loop; the real console script runs beside it in a
subprocess. New tenants and tokens must work on the very next request (the server reloads its
tenant tree once on a miss), so those tests stop the server's change poller first: nothing
else can explain a success. Revocations, renames, TFTP switches, deletions and plugin changes
arrive through the change feed: the tests wait for them with a deadline, never a fixed sleep.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from provisor.plugins.build import build_repository
from provisor.settings import Settings
from provisor.store import tenancy
from tests.cli._cli import arun_cli
from tests.conftest import TEST_PLUGINS, Server, make_settings, start_server

DEADLINE = 30.0  # seconds a change may take to arrive before the test fails (it takes ~1 s)


@pytest.fixture
async def live(tmp_path: Path, database_url: str) -> AsyncIterator[tuple[Server, Settings]]:
    """A running server whose plugins come only from its data directory."""
    settings = make_settings(tmp_path, database_url, **{"general.plugin_dirs": []})
    server = await start_server(settings)
    try:
        yield server, settings
    finally:
        await server.close()


async def _eventually(check: Callable[[], Awaitable[bool]]) -> None:
    """Wait until ``check()`` holds, polling, failing after DEADLINE seconds."""
    end = time.monotonic() + DEADLINE
    while not await check():
        assert time.monotonic() < end, "the change did not reach the running server"
        await asyncio.sleep(0.05)


async def _cli(settings: Settings, *args: str) -> str:
    r = await arun_cli(settings, *args)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


async def test_a_tenant_created_by_the_cli_is_usable_at_once(
    live: tuple[Server, Settings],
) -> None:
    server, settings = live
    await server.prov.feed.stop()  # only the reload on a miss can make the next call succeed
    tenant = await _cli(settings, "tenant", "create", "acme")
    async with server.client(server.token, **{"Wazo-Tenant": tenant}) as api:
        r = await api.get("/0.2/dev_mgr/devices")
        assert r.status_code == 200, r.text
        assert r.json() == {"devices": []}
        r = await api.post("/0.2/dev_mgr/devices", json={"device": {"mac": "00:11:22:33:44:55"}})
        assert r.status_code == 201, r.text
    # a uuid nobody created is still refused, after its reload
    async with server.client(server.token, **{"Wazo-Tenant": str(uuid.uuid4())}) as api:
        r = await api.get("/0.2/dev_mgr/devices")
        assert r.status_code == 401 and "not visible" in r.text


async def test_a_token_of_a_new_tenant_works_at_once(live: tuple[Server, Settings]) -> None:
    server, settings = live
    await server.prov.feed.stop()
    tenant = await _cli(settings, "tenant", "create", "acme")
    child = await _cli(settings, "tenant", "create", "branch", "--parent", tenant)
    token = await _cli(settings, "token", "create", "--tenant", tenant)
    async with server.client(token, **{"Wazo-Tenant": child}) as api:
        r = await api.get("/0.2/tenant_mgr/tenants")
        assert r.status_code == 200, r.text
        assert [t["uuid"] for t in r.json()["tenants"]] == [child]
    async with server.client(token) as api:
        r = await api.get("/0.2/tenant_mgr/tenants")
        assert {t["name"] for t in r.json()["tenants"]} == {"acme", "branch"}


async def test_a_token_revoked_by_the_cli_stops_working(live: tuple[Server, Settings]) -> None:
    server, settings = live
    server.prov.auth.cache_ttl = 3600  # only the change feed can make the server forget it
    token = await _cli(settings, "token", "create", "--description", "ci")
    async with server.client(token) as api:
        assert (await api.get("/0.2/dev_mgr/devices")).status_code == 200  # now cached
        listed = await arun_cli(settings, "token", "list", "--json")
        token_id = next(t["id"] for t in json.loads(listed.stdout) if t["description"] == "ci")
        await _cli(settings, "token", "revoke", str(token_id))

        async def refused() -> bool:
            return (await api.get("/0.2/dev_mgr/devices")).status_code == 401

        await _eventually(refused)
    async with server.api as api:  # the other tokens were not touched
        assert (await api.get("/0.2/dev_mgr/devices")).status_code == 200


async def test_tenant_rename_tftp_and_delete_reach_the_server(
    live: tuple[Server, Settings],
) -> None:
    server, settings = live
    tenant = await _cli(settings, "tenant", "create", "acme")
    await _cli(settings, "tenant", "rename", tenant, "acme corp")
    await _cli(settings, "tenant", "tftp", tenant, "off")

    async def switched() -> bool:
        r = await server.api.get(f"/0.2/tenant_mgr/tenants/{tenant}")
        t = r.json()["tenant"]
        return bool(t["name"] == "acme corp" and t["tftp_enabled"] is False)

    await _eventually(switched)
    assert server.prov.tenants.get(tenant).tftp_enabled is False  # what the TFTP pipeline reads

    token = await _cli(settings, "token", "create", "--tenant", tenant)
    async with server.client(token) as api:
        assert (await api.get("/0.2/dev_mgr/devices")).status_code == 200  # cached by the server
    deleted = await _cli(settings, "tenant", "delete", tenant)  # no device, config, sub-tenant
    assert deleted == "deleted 1 tenants, 0 devices, 0 configs, 1 tokens"

    async def gone() -> bool:
        r = await server.api.get(f"/0.2/tenant_mgr/tenants/{tenant}")
        return r.status_code == 404

    await _eventually(gone)
    async with server.client(server.token, **{"Wazo-Tenant": tenant}) as api:
        assert (await api.get("/0.2/dev_mgr/devices")).status_code == 401
    async with server.client(token) as api:
        assert (await api.get("/0.2/dev_mgr/devices")).status_code == 401
    assert server.prov.tenants.get(tenant) is None


async def test_plugins_installed_and_removed_by_the_cli_reach_the_server(
    live: tuple[Server, Settings], tmp_path: Path
) -> None:
    server, settings = live
    repo = tmp_path / "repository"
    build_repository(TEST_PLUGINS, repo)
    r = await server.api.put(
        "/0.2/configure/plugin_server", json={"param": {"value": repo.as_uri()}}
    )
    assert r.status_code == 204, r.text
    assert "testphone" not in server.prov.plugins

    await _cli(settings, "plugin", "install", "testphone", "--quiet")

    async def listed() -> set[str]:
        r = await server.api.get("/0.2/pg_mgr/plugins")
        return set(r.json()["plugins"])

    async def installed() -> bool:
        return "testphone" in await listed()

    await _eventually(installed)
    plugin = server.prov.plugins.get("testphone")
    assert plugin is not None and plugin.root == settings.data_dir / "plugins" / "testphone"
    r = await server.phone.get(
        "/001122aabbcc.cfg", headers={"User-Agent": "TestPhone-T1/1.0 (00:11:22:aa:bb:cc)"}
    )
    assert r.status_code == 200, r.text  # the running server serves the new plugin's files

    await _cli(settings, "plugin", "uninstall", "testphone")

    async def uninstalled() -> bool:
        return "testphone" not in await listed()

    await _eventually(uninstalled)
    assert server.prov.plugins.get("testphone") is None


async def test_unknown_tenants_cannot_force_a_reload_storm(
    live: tuple[Server, Settings],
) -> None:
    server, _settings = live
    await server.prov.feed.stop()
    tenants = server.prov.tenants
    before = tenants.generation
    found = await asyncio.gather(*(tenants.reload_on_miss(str(uuid.uuid4())) for _ in range(200)))
    assert found == [None] * 200
    assert tenants.generation - before == 1  # 200 misses at once: one reload
    before, started = tenants.generation, time.monotonic()
    async with server.client(server.token, **{"Wazo-Tenant": "made-up"}) as api:
        for _ in range(5):  # waves of requests naming unknown tenants
            answers = await asyncio.gather(
                *(
                    api.get("/0.2/dev_mgr/devices", headers={"Wazo-Tenant": f"x{i}"})
                    for i in range(40)
                )
            )
            assert {a.status_code for a in answers} == {401}
    elapsed = time.monotonic() - started
    # however fast or slow this machine is: never more than one reload per interval
    assert tenants.generation - before <= elapsed / tenancy.MISS_RELOAD_INTERVAL + 1
