"""bans and plugin_state: what every node of a cluster refuses and installs

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bans",
        sa.Column("address", sa.String(length=45), nullable=False),
        sa.Column("until", sa.Float(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("reason", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("address", name=op.f("pk_bans")),
    )
    op.create_index(op.f("ix_bans_until"), "bans", ["until"])
    op.create_index(op.f("ix_bans_created_at"), "bans", ["created_at"])
    op.create_table(
        "plugin_state",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("installed", sa.Boolean(), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("archive", sa.LargeBinary(), nullable=True),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("algorithm", sa.String(length=16), nullable=False),
        sa.Column("digest", sa.String(length=128), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plugin_state")),
    )


def downgrade() -> None:
    op.drop_table("plugin_state")
    op.drop_index(op.f("ix_bans_created_at"), table_name="bans")
    op.drop_index(op.f("ix_bans_until"), table_name="bans")
    op.drop_table("bans")
