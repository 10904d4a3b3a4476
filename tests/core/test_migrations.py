"""Schema migrations on a database that holds data of the previous revision."""

from __future__ import annotations

import json
from pathlib import Path

from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Connection

from provisor.store.db import _alembic_config, create_engine, migrate
from tests.conftest import make_settings

MASTER = "11111111-1111-4111-8111-111111111111"


def _upgrade_to(revision: str) -> object:
    def run(connection: Connection) -> None:
        command.upgrade(_alembic_config(connection), revision)

    return run


def _config(conn: Connection, config_id: str, tenant: str | None, **extra: object) -> None:
    doc = {"id": config_id, "parent_ids": [], "raw_config": {}}
    conn.execute(
        text(
            "INSERT INTO configs (id, tenant_uuid, role, provisioning_code, doc, rev)"
            " VALUES (:id, :t, :role, :code, :doc, 1)"
        ),
        {
            "id": config_id,
            "t": tenant,
            "role": extra.get("role"),
            "code": extra.get("code"),
            "doc": json.dumps(doc),
        },
    )


async def test_unshared_configs_of_the_old_model_become_the_masters(
    tmp_path: Path, database_url: str
) -> None:
    settings = make_settings(tmp_path, database_url)
    engine = create_engine(settings.database_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade_to("0002"))
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO tenants (uuid, name, parent_uuid, is_master, tftp_enabled)"
                    " VALUES (:u, 'master', NULL, :yes, :yes)"
                ),
                {"u": MASTER, "yes": True},
            )
            await conn.run_sync(
                lambda c: [
                    _config(c, "base", None),
                    _config(c, "autoprov", None, role="autocreate"),
                    _config(c, "line-1001", None),
                    _config(c, "owned", "22222222-2222-4222-8222-222222222222"),
                    _config(c, "coded-master", MASTER, code="1234"),
                    _config(c, "coded-shared", None, code="1234"),
                ]
            )
        await migrate(engine)
        async with engine.connect() as conn:
            owners = dict((await conn.execute(text("SELECT id, tenant_uuid FROM configs"))).all())
        assert owners["base"] is None and owners["autoprov"] is None  # shared by design
        assert owners["line-1001"] == MASTER  # a sub-tenant no longer reads it
        assert owners["owned"] == "22222222-2222-4222-8222-222222222222"
        assert owners["coded-shared"] is None  # its code is taken in the master: left as it was
    finally:
        await engine.dispose()


async def test_device_ports_come_with_0004_and_follow_their_device(
    tmp_path: Path, database_url: str
) -> None:
    """A database of revision 0003 with a device gains ``device_ports``; a port row needs its
    device and goes with it (the foreign key cascades on SQLite and PostgreSQL)."""
    settings = make_settings(tmp_path, database_url)
    engine = create_engine(settings.database_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade_to("0003"))
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO devices (id, tenant_uuid, is_new, doc, rev)"
                    " VALUES ('gw', :t, :no, :doc, 1)"
                ),
                {"t": MASTER, "no": False, "doc": json.dumps({"id": "gw"})},
            )
        await migrate(engine)
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO device_ports (device_id, port, tenant_uuid, config)"
                    " VALUES ('gw', 2, 'tenant-b', 'cfg-b')"
                )
            )
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT device_id, port FROM device_ports"))).all()
        assert [tuple(r) for r in rows] == [("gw", 2)]
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM devices WHERE id = 'gw'"))
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM device_ports"))).scalar() == 0
    finally:
        await engine.dispose()
