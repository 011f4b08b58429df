"""Alembic environment: migrations run on a connection the application hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from bot.core.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations(connection: Connection) -> None:
    """Run the migrations on a connection; SQLite needs batch mode to alter tables."""
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "run migrations through bot.core.db.upgrade_database (python -m bot run, worker, web "
        "and user migrate the database at start)"
    )
run_migrations(connection)
