"""The Wazo bus: tenant deletions in, device events out (AMQP, optional).

provisor consumes ``auth_tenant_deleted`` from the headers exchange (``wazo-headers``) and
deletes that tenant's devices, configs and provisioning key; it publishes
``device_created``/``device_updated``/``device_deleted`` and ``config_created``/
``config_updated``/``config_deleted`` events (ids, never a raw config: it holds passwords) with a
``name`` header as Wazo services do. ``/0.2/status`` reports the consumer's health. A message of an unknown
shape is logged and dropped; nothing else stops. Also here: the periodic tenant sync, which
removes devices of tenants wazo-auth no longer knows.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Mapping
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from provisor.service import Provisor

__all__ = ["Bus", "TenantSync"]

log = logging.getLogger(__name__)

_PUBLISHED = ("device_created", "device_updated", "device_deleted")
_PUBLIC_KEYS = (
    "id",
    "mac",
    "ip",
    "vendor",
    "model",
    "version",
    "plugin",
    "config",
    "tenant_uuid",
    "configured",
    "is_new",
)


class Bus:
    """One AMQP connection: a consumer and a publisher."""

    def __init__(self, prov: Provisor) -> None:
        self.prov = prov
        self.cfg = prov.settings.bus
        self.healthy = False
        self._connection: Any = None
        self._exchange: Any = None

    async def start(self) -> None:
        """Connect, declare, bind and consume; failures leave ``healthy`` false and retry."""
        try:
            self._connection = await aio_pika.connect_robust(self.cfg.url(), timeout=5)
            channel = await self._connection.channel()
            self._exchange = await channel.declare_exchange(
                self.cfg.exchange_name, self.cfg.exchange_type, durable=True
            )
            queue = await channel.declare_queue("", exclusive=True, auto_delete=True)
            await queue.bind(
                self._exchange, arguments={"x-match": "any", "name": "auth_tenant_deleted"}
            )
            await queue.consume(self._on_message)
            self.healthy = True
            self.prov.devices.listeners.append(self._publish_device)
            self.prov.configs.listeners.append(self._publish_config)
        except Exception as exc:  # the bus is optional: provisioning goes on without it
            self.healthy = False
            log.error(
                "bus unavailable at %s:%s: %s", self.cfg.host, self.cfg.port, type(exc).__name__
            )

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        async with message.process(ignore_processed=True):
            try:
                body = json.loads(message.body)
                name = (message.headers or {}).get("name") or body.get("name")
                if name != "auth_tenant_deleted":
                    return
                uuid = body["data"]["uuid"]
                if not isinstance(uuid, str):
                    raise TypeError("data.uuid is not a string")
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                log.warning("bus message of an unknown shape dropped: %s", exc)
                return
            removed = await self.prov.delete_tenant(uuid)
            log.info("tenant %s deleted on the bus: %s", uuid, dict(removed))

    async def publish(self, name: str, data: Mapping[str, Any]) -> None:
        """Publish an event with Wazo's envelope and ``name`` header."""
        if self._exchange is None:
            return
        body = json.dumps({"name": name, "origin_uuid": None, "data": dict(data)}).encode()
        message = aio_pika.Message(body, headers={"name": name}, content_type="application/json")
        try:
            await self._exchange.publish(message, routing_key="")
        except Exception as exc:  # a lost event must not fail the write that caused it
            log.warning("bus publish of %s failed: %s", name, type(exc).__name__)

    async def _publish_device(self, event: str, doc: Mapping[str, Any]) -> None:
        if event in _PUBLISHED:
            await self.publish(event, {k: doc.get(k) for k in _PUBLIC_KEYS})

    async def _publish_config(self, event: str, doc: Mapping[str, Any]) -> None:
        # ids and links only: a config's raw_config holds SIP passwords
        await self.publish(
            event,
            {
                "id": doc.get("id"),
                "parent_ids": doc.get("parent_ids"),
                "tenant_uuid": doc.get("tenant_uuid"),
            },
        )

    async def stop(self) -> None:
        """Close the connection."""
        with contextlib.suppress(ValueError):
            self.prov.devices.listeners.remove(self._publish_device)
        with contextlib.suppress(ValueError):
            self.prov.configs.listeners.remove(self._publish_config)
        if self._connection is not None:
            await self._connection.close()
        self.healthy = False


#: Pause after a pass that failed, whatever ``syncdb.interval_sec`` says: with an interval of 0
#: an unreachable wazo-auth must not be asked (and the failure logged) in a tight loop.
_RETRY_AFTER_FAILURE_SEC = 1.0


class TenantSync:
    """Every ``syncdb.interval_sec``, delete devices of tenants the auth backend forgot."""

    def __init__(self, prov: Provisor) -> None:
        self.prov = prov
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> list[str]:
        """One pass; returns the tenants removed."""
        known = await self.prov.auth.list_tenants()
        if known is None:
            raise RuntimeError("the auth backend did not list its tenants")
        if not known:  # an empty answer is no reason to delete every tenant
            return []
        master = await self.prov.master_tenant()
        gone = [t.uuid for t in self.prov.tenants.all() if t.uuid not in known and t.uuid != master]
        for uuid in gone:
            await self.prov.delete_tenant(uuid)
        return gone

    def start(self) -> None:
        """Run in the background."""
        cfg = self.prov.settings.syncdb

        async def loop() -> None:
            await asyncio.sleep(cfg.start_sec)
            while True:
                pause = cfg.interval_sec
                try:
                    gone = await self.run_once()
                    if gone:
                        log.info("tenant sync removed %s", gone)
                except Exception as exc:  # keep syncing later
                    log.warning("tenant sync failed: %s", exc)
                    pause = max(pause, _RETRY_AFTER_FAILURE_SEC)
                await asyncio.sleep(pause)  # 0 still lets requests run between passes

        self._task = asyncio.get_running_loop().create_task(loop())

    async def stop(self) -> None:
        """Stop the loop."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
