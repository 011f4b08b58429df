"""tickets: the key of the form each was filed from

Revision ID: 0014_ticket_form_key
Revises: 0013_knowledge_freshness
Create Date: 2026-12-03 18:20:00

A form submitted twice (its button handled again by the process that took over after a crash)
finds the ticket it already filed instead of filing a twin: the key is unique.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_ticket_form_key"
down_revision: str | None = "0013_knowledge_freshness"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN (no table copy on SQLite: other tables refer to tickets).
    op.add_column("tickets", sa.Column("form_key", sa.String(length=64), nullable=True))
    op.create_index("ix_tickets_form_key", "tickets", ["form_key"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_tickets_form_key", table_name="tickets")
    # Plain DROP COLUMN (SQLite 3.35+ and PostgreSQL): a batch table copy would trip the
    # foreign keys of the tables that refer to tickets.
    op.execute("ALTER TABLE tickets DROP COLUMN form_key")
