"""device_ports: a device's ports assigned to tenants (gateways shared by tenants)

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "device_ports",
        sa.Column("device_id", sa.String(length=128), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("tenant_uuid", sa.String(length=64), nullable=False),
        sa.Column("config", sa.String(length=128), nullable=True),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_device_ports_device_id_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("device_id", "port", name=op.f("pk_device_ports")),
    )
    op.create_index(
        op.f("ix_device_ports_tenant_uuid"), "device_ports", ["tenant_uuid"], unique=False
    )
    op.create_index(op.f("ix_device_ports_config"), "device_ports", ["config"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_device_ports_config"), table_name="device_ports")
    op.drop_index(op.f("ix_device_ports_tenant_uuid"), table_name="device_ports")
    op.drop_table("device_ports")
