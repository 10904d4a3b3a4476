"""configs the master created without Wazo-Tenant become the master's

Before the authorization model of docs/api.md, a config the master created without the
``Wazo-Tenant`` header was stored as shared (no owner) and every sub-tenant could read it,
passwords included. Nothing recorded whether sharing was meant, and no client could ask for it,
so every shared config that is not a system config now belongs to the master tenant: devices of
sub-tenants that name it keep working (a tenant may use its ancestors' configs), sub-tenants no
longer read it. A config whose provisioning code the master already uses stays shared (the
code must stay unique per owner) and is listed by ``provisor config list``.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

#: Created at first start and shared by design (service.system_configs).
SYSTEM = ("base", "default", "defaultconfigdevice", "autoprov")


def upgrade() -> None:
    conn = op.get_bind()
    master = conn.execute(
        sa.text("SELECT uuid FROM tenants WHERE is_master = :yes LIMIT 1"), {"yes": True}
    ).scalar()
    if master is None:
        return
    codes = {
        row[0]
        for row in conn.execute(
            sa.text(
                "SELECT provisioning_code FROM configs"
                " WHERE tenant_uuid = :m AND provisioning_code IS NOT NULL"
            ),
            {"m": master},
        )
    }
    rows = conn.execute(
        sa.text(
            "SELECT id, provisioning_code, role FROM configs WHERE tenant_uuid IS NULL ORDER BY id"
        )
    ).all()
    for config_id, code, role in rows:
        if config_id in SYSTEM or role == "autocreate":
            continue
        if code is not None:
            if code in codes:
                continue
            codes.add(code)
        conn.execute(
            sa.text("UPDATE configs SET tenant_uuid = :m WHERE id = :id"),
            {"m": master, "id": config_id},
        )


def downgrade() -> None:
    """Ownership cannot be told apart afterwards; the upgrade is kept."""
