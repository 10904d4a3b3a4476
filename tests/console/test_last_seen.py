"""A phone's "last seen" and state come from the device_seen table: they survive a restart,
another node reads them, and a flood of requests is written in batches, not one row per
request. Real HTTP requests to the phone listener, a real SQLite file or PostgreSQL."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import func, select

from provisor.metrics import REGISTRY
from provisor.services.seen import SeenRecorder
from provisor.store.seen import Seen, SeenStore
from provisor.store.tables import device_seen
from tests.conftest import make_settings, start_server
from tests.console._console import signed_in
from tests.provisioning.test_http_pipeline import configure
from tests.support.waiting import until

MAC = "00:11:22:33:44:56"
UA = f"TestPhone-TP100/1.2.3 ({MAC})"


def _cell(html: str, ident: str) -> str:
    match = re.search(rf'id="{ident}"[^>]*>(.*?)</dd>', html, re.S)
    assert match is not None, html[:2000]
    return re.sub(r"<[^>]+>", "", match.group(1)).strip()


async def test_last_seen_and_state_survive_a_restart_and_show_on_another_node(
    tmp_path: Path, database_url: str
) -> None:
    settings = make_settings(tmp_path, database_url)
    srv = await start_server(settings)
    try:
        r = await srv.phone.get("/tp/common.cfg", headers={"User-Agent": UA})
        assert r.status_code == 200
        [device] = (await srv.api.get("/0.2/dev_mgr/devices")).json()["devices"]
        await configure(srv, device["id"])
        r = await srv.phone.get("/001122334456.cfg", headers={"User-Agent": UA})
        assert r.status_code == 200
        token = srv.token
    finally:
        await srv.close()  # the pending record is written at close
    # the same database, a new process: the phone is still provisioned, with its last file
    srv = await start_server(settings)
    try:
        client = await signed_in(srv, token)
        try:
            page = (await client.get(f"/console/phones/{device['id']}")).text
            assert _cell(page, "state") == "provisioned"
            assert _cell(page, "last-file") == "device.cfg (200: rendered)"  # the file served
            assert "127.0.0.1" in _cell(page, "last-seen")
            listing = (await client.get("/console/phones?state=provisioned")).text
            assert MAC in listing
            assert MAC not in (await client.get("/console/phones?state=never")).text
            # a failing fetch: the phone asks for a file its plugin does not serve
            r = await srv.phone.get("/tp/nothing-here-56.cfg", headers={"User-Agent": UA})
            assert r.status_code == 404
            assert srv.prov.seen is not None
            await srv.prov.seen.flush()
        finally:
            await client.aclose()
        # a second node on the same database reads what the first recorded
        other = await start_server(make_settings(tmp_path / "node2", database_url))
        try:
            client2 = await signed_in(other, token)
            try:
                page = (await client2.get(f"/console/phones/{device['id']}")).text
                assert _cell(page, "state") == "failing"
                last_file = _cell(page, "last-file")
                assert "nothing-here-56.cfg (404:" in last_file, last_file
                failing = (await client2.get("/console/phones?state=failing")).text
                assert MAC in failing
            finally:
                await client2.aclose()
        finally:
            await other.close()
    finally:
        await srv.close()


async def test_a_flood_is_written_in_batches(tmp_path: Path, database_url: str) -> None:
    srv = await start_server(make_settings(tmp_path, database_url))
    try:
        engine = srv.prov.engine
        docs = [{"id": f"f{n:04d}", "tenant_uuid": srv.master, "is_new": False} for n in range(300)]
        await srv.prov.devices.store.insert_many(docs)
        store = SeenStore(engine)
        recorder = SeenRecorder(store, interval=3600, batch=100, pending_max=250)
        counted = REGISTRY.get_sample_value("provisor_last_seen_dropped_total") or 0.0
        for rnd in range(10):  # 3 000 requests from 300 devices, 10 each
            for n in range(300):
                recorder.record(f"f{n:04d}", Seen(1000.0 + rnd, 200 if n % 2 else 404, "x.cfg"))
        assert recorder.dropped == 10 * 300 - 250  # bounded: the oldest were dropped, counted
        await recorder.close()
        assert store.statements == 3 and recorder.batches == 3  # 250 records, 100 per statement
        # ... and said in /metrics
        metrics = (await srv.api.get("/metrics")).text
        line = next(
            x for x in metrics.splitlines() if x.startswith("provisor_last_seen_dropped_total")
        )
        assert float(line.split()[-1]) == counted + 10 * 300 - 250
        async with engine.connect() as conn:
            rows = (await conn.execute(select(func.count()).select_from(device_seen))).scalar()
            oldest = (await conn.execute(select(func.min(device_seen.c.seen_at)))).scalar()
        assert rows == 250 and oldest == 1009.0  # each device's newest record only
        # an older record (another node's, late) does not replace a newer one
        await store.put({"f0299": Seen(5.0, 500, "old.cfg")})
        assert (await store.get_many(["f0299"]))["f0299"].file == "x.cfg"
        # a device deleted before the flush: the others are still written
        assert await srv.prov.devices.store.delete("f0000")
        await store.put({"f0000": Seen(2000.0, 200, "a"), "f0001": Seen(2000.0, 200, "b")})
        got = await store.get_many(["f0000", "f0001"])
        assert "f0000" not in got and got["f0001"].file == "b"
        # a deleted device's record goes with it (ON DELETE CASCADE)
        assert await srv.prov.devices.store.delete("f0100")
        assert await store.get_many(["f0100"]) == {}
    finally:
        await srv.close()


async def test_last_seen_settings_are_read(tmp_path: Path, database_url: str) -> None:
    overrides = {
        "provisioning.last_seen_interval": 3600,  # never by the clock in this test
        "provisioning.last_seen_batch": 1,  # a full batch at once: written without waiting
        "provisioning.last_seen_pending_max": 7,
    }
    srv = await start_server(make_settings(tmp_path, database_url, **overrides))
    try:
        recorder = srv.prov.seen
        assert recorder is not None and recorder.pending_max == 7
        r = await srv.phone.get("/tp/common.cfg", headers={"User-Agent": UA})
        assert r.status_code == 200
        [device] = (await srv.api.get("/0.2/dev_mgr/devices")).json()["devices"]
        store = SeenStore(srv.prov.engine)
        # the background writer records it (a bounded wait, not a speed check)
        got = await until(lambda: store.get_many([device["id"]]), "the last-seen row")
        assert got[device["id"]].file == "common.cfg" and got[device["id"]].status == 200
    finally:
        await srv.close()
