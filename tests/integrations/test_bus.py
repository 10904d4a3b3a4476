"""The Wazo bus against a real RabbitMQ: tenant deletion in, device events out, status."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aio_pika
import pytest

from tests.conftest import make_settings, start_server
from tests.support import rabbitmq

pytestmark = pytest.mark.skipif(
    not rabbitmq.available(), reason="rabbitmq-server not installed (Debian rabbitmq-server)"
)


async def test_bus_end_to_end(tmp_path: Path, database_url: str) -> None:
    with rabbitmq.rabbitmq(tmp_path / "rmq") as port:
        srv = await start_server(
            make_settings(
                tmp_path,
                database_url,
                **{"bus.enabled": True, "bus.port": port, "bus.host": "127.0.0.1"},
            )
        )
        connection = await aio_pika.connect_robust(f"amqp://guest:guest@127.0.0.1:{port}/")
        try:
            assert (await srv.api.get("/0.2/status")).json()["bus_consumer"] == {"status": "ok"}
            channel = await connection.channel()
            exchange = await channel.declare_exchange("wazo-headers", "headers", durable=True)
            events = await channel.declare_queue("", exclusive=True)
            await events.bind(exchange, arguments={"x-match": "any", "name": "device_created"})
            config_events = await channel.declare_queue("", exclusive=True)
            await config_events.bind(
                exchange, arguments={"x-match": "any", "name": "config_created"}
            )

            sub = (await srv.prov.tenants.create("doomed")).uuid
            keep = (await srv.prov.tenants.create("kept")).uuid
            await srv.prov.tenants.set_key(sub, "doomed-key-1")
            for tenant, device_id in ((sub, "d1"), (sub, "d2"), (keep, "k1")):
                r = await srv.api.post(
                    "/0.2/dev_mgr/devices",
                    json={"device": {"id": device_id}},
                    headers={"Wazo-Tenant": tenant},
                )
                assert r.status_code == 201
            message = await asyncio.wait_for(events.get(timeout=5), 10)
            body = json.loads(message.body)
            assert body["name"] == "device_created" and body["data"]["id"] == "d1"
            cfg = {
                "config": {
                    "id": "c1",
                    "parent_ids": ["base"],
                    "raw_config": {
                        "sip_lines": {"1": {"username": "u", "password": "Bus-Secret-1"}}
                    },
                }
            }
            assert (await srv.api.post("/0.2/cfg_mgr/configs", json=cfg)).status_code == 201
            message = await asyncio.wait_for(config_events.get(timeout=5), 10)
            assert (
                json.loads(message.body)["data"]["id"] == "c1"
                and b"Bus-Secret-1" not in message.body
            )

            # garbage first: dropped, nothing stops
            await exchange.publish(
                aio_pika.Message(b"not json", headers={"name": "auth_tenant_deleted"}),
                routing_key="",
            )
            await exchange.publish(
                aio_pika.Message(b'{"data": {}}', headers={"name": "auth_tenant_deleted"}),
                routing_key="",
            )
            deleted = {"name": "auth_tenant_deleted", "data": {"uuid": sub, "name": "doomed"}}
            await exchange.publish(
                aio_pika.Message(
                    json.dumps(deleted).encode(), headers={"name": "auth_tenant_deleted"}
                ),
                routing_key="",
            )
            for _ in range(100):
                ids = {
                    d["id"]
                    for d in (
                        await srv.api.get("/0.2/dev_mgr/devices", params={"recurse": "true"})
                    ).json()["devices"]
                }
                if ids == {"k1"} and srv.prov.tenants.by_key("doomed-key-1") is None:
                    break
                await asyncio.sleep(0.05)
            assert ids == {"k1"}
            assert srv.prov.tenants.by_key("doomed-key-1") is None
        finally:
            await connection.close()
            await srv.close()


async def test_status_reports_an_unreachable_bus(tmp_path: Path, database_url: str) -> None:
    srv = await start_server(
        make_settings(
            tmp_path, database_url, **{"bus.enabled": True, "bus.port": 1, "bus.host": "127.0.0.1"}
        )
    )
    try:
        assert (await srv.api.get("/0.2/status")).json()["bus_consumer"] == {"status": "fail"}
        r = await srv.api.post("/0.2/dev_mgr/devices", json={"device": {"id": "still-works"}})
        assert r.status_code == 201
    finally:
        await srv.close()
