"""The synchronous point reader agrees with the async store, and steps aside when it cannot read."""

from __future__ import annotations

from pathlib import Path

from provisor.domain.selector import parse_selector
from provisor.service import Provisor
from provisor.store.documents import Page
from tests.conftest import make_settings


async def test_point_reads_match_the_async_path(tmp_path: Path, database_url: str) -> None:
    prov = await Provisor.open(make_settings(tmp_path, database_url))
    store = prov.devices.store
    try:
        master = prov.devices.master_uuid
        for n in range(3):
            await prov.devices.create(
                {"id": f"d{n}", "mac": f"00:11:22:33:44:0{n}", "ip": "10.0.0.9"}, master
            )
        # a write through the async engine is seen at once by the point reader
        assert (await store.get("d1"))["mac"] == "00:11:22:33:44:01"  # type: ignore[index]
        assert (await store.find_one(mac="00:11:22:33:44:02"))["id"] == "d2"  # type: ignore[index]
        assert [d["id"] for d in await store.find_all(limit=2, ip="10.0.0.9")] == ["d0", "d1"]
        found = await store.find_by_values("mac", ["00:11:22:33:44:00", "00:11:22:33:44:09"])
        assert list(found) == ["00:11:22:33:44:00"]
        selector = parse_selector('{"mac": "00:11:22:33:44:01"}', None)
        docs = await store.query(selector, tenants=[master], page=Page(skip=0, limit=10))
        assert [d["id"] for d in docs] == ["d1"]
        assert await store.query(selector, tenants=["other"], page=Page()) == []
        assert await store.get("missing") is None
        # one address shared by several devices (NAT): at most per_value each, in id order,
        # whichever path answers
        shared = await store.find_by_values("ip", ["10.0.0.9", "10.9.9.9"], per_value=2)
        assert {ip: [d["id"] for d in docs] for ip, docs in shared.items()} == {
            "10.0.0.9": ["d0", "d1"]
        }
        points, store.points = store.points, None
        try:
            shared = await store.find_by_values("ip", ["10.0.0.9"], per_value=2)
            assert [d["id"] for d in shared["10.0.0.9"]] == ["d0", "d1"]
        finally:
            store.points = points
        if store.points is None:  # PostgreSQL: every read is async
            assert "postgresql" in database_url
            return
        # the reader cannot read (file gone from under it): the async path answers
        store.points.path = str(tmp_path / "nowhere" / "x.db")
        store.points.close()
        assert (await store.get("d0"))["id"] == "d0"  # type: ignore[index]
    finally:
        await prov.close()
