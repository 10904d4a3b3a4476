"""firmware_state: the firmware packages every node of a cluster installs

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "firmware_state",
        sa.Column("plugin_id", sa.String(length=128), nullable=False),
        sa.Column("package_id", sa.String(length=128), nullable=False),
        sa.Column("installed", sa.Boolean(), nullable=False),
        sa.Column("version", sa.String(length=128), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("downloads", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("plugin_id", "package_id", name=op.f("pk_firmware_state")),
    )


def downgrade() -> None:
    op.drop_table("firmware_state")
