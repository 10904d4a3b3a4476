"""Bans shared through the database: in-process nodes (two Provisors on one database)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from provisor.service import Provisor
from provisor.store.tables import bans
from tests.conftest import make_settings


async def test_a_ban_reaches_the_other_node_and_is_lifted_everywhere(
    tmp_path: Path, database_url: str
) -> None:
    a = await Provisor.open(make_settings(tmp_path / "a", database_url))
    b = await Provisor.open(make_settings(tmp_path / "b", database_url))
    try:
        a.bans.add("198.51.100.7", 600, "test")
        assert a.bans.is_banned("198.51.100.7")  # at once where decided
        assert not b.bans.is_banned("198.51.100.7")
        await a.bans.flush()
        assert "bans" in await b.feed.poll_once(b.reload_changed)
        assert b.bans.is_banned("198.51.100.7")
        assert await b.bans.remove("198.51.100.7")
        assert "bans" in await a.feed.poll_once(a.reload_changed)
        assert not a.bans.is_banned("198.51.100.7") and not b.bans.is_banned("198.51.100.7")
    finally:
        await a.close()
        await b.close()


async def test_expiry_is_shared_and_the_table_is_capped(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path / "a", database_url, **{"provisioning.ban_max_addresses": 5})
    a = await Provisor.open(settings)
    b = await Provisor.open(make_settings(tmp_path / "b", database_url))
    try:
        a.bans.add("192.0.2.200", -1, "already over")  # expired: held nowhere
        for i in range(12):  # a flood of distinct addresses
            a.bans.add(f"192.0.2.{i}", 600, "flood")
        assert len(a.bans.listed()) == 5  # memory: the cap, oldest evicted first
        assert not a.bans.is_banned("192.0.2.0") and a.bans.is_banned("192.0.2.11")
        await a.bans.flush()
        async with a.engine.connect() as conn:
            count = (await conn.execute(select(func.count()).select_from(bans))).scalar_one()
        assert count == 5
        await b.feed.poll_once(b.reload_changed)
        assert {x.address for x in b.bans.listed()} == {f"192.0.2.{i}" for i in range(7, 12)}
        assert not b.bans.is_banned("192.0.2.200")
    finally:
        await a.close()
        await b.close()
