"""Two nodes on one database: a write on one is seen by the other after a poll."""

from __future__ import annotations

from pathlib import Path

from provisor.service import Provisor
from tests.conftest import make_settings


async def test_second_node_sees_keys_configs_and_params(tmp_path: Path, database_url: str) -> None:
    a = await Provisor.open(make_settings(tmp_path / "a", database_url))
    b = await Provisor.open(make_settings(tmp_path / "b", database_url))
    try:
        tenant = (await a.tenants.create("acme")).uuid
        await a.tenants.set_key(tenant, "node-key-123")
        await a.configs.create({"id": "c", "parent_ids": ["base"], "raw_config": {"X_v": 1}}, None)
        assert (await b.configs.effective("c"))["X_v"] == 1  # type: ignore[index]
        await a.configs.replace("c", {"parent_ids": ["base"], "raw_config": {"X_v": 2}}, None)
        await a.params.set("locale", "fr_FR", "")
        assert b.tenants.by_key("node-key-123") is None  # not yet polled
        assert (await b.configs.effective("c"))["X_v"] == 1  # type: ignore[index]  (cached)
        changed = await b.feed.poll_once(b.reload_changed)
        assert changed == {"tenants", "configs", "params"}
        assert b.tenants.by_key("node-key-123").uuid == tenant  # type: ignore[union-attr]
        assert (await b.configs.effective("c"))["X_v"] == 2  # type: ignore[index]
        assert await b.params.get("locale", "") == "fr_FR"
        assert await b.feed.poll_once(b.reload_changed) == set()
    finally:
        await a.close()
        await b.close()


async def test_a_bump_right_after_another_nodes_is_not_taken_for_our_own(
    tmp_path: Path, database_url: str
) -> None:
    a = await Provisor.open(make_settings(tmp_path / "a", database_url))
    b = await Provisor.open(make_settings(tmp_path / "b", database_url))
    try:
        await b.feed.bump("bans")  # B lifts a ban…
        await a.feed.bump("bans")  # …just before A writes one: A must still reload B's change
        assert "bans" in await a.feed.poll_once(a.reload_changed)
        await a.feed.bump("bans")  # A's own change alone is not reloaded
        assert await a.feed.poll_once(a.reload_changed) == set()
    finally:
        await a.close()
        await b.close()
