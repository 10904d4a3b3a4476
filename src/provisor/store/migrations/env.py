"""Alembic environment: runs on the connection provisor hands it (see provisor.store.db)."""

from __future__ import annotations

from alembic import context

from provisor.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - provisor always passes its connection
    raise RuntimeError("run migrations through provisor.store.db.migrate()")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
