"""outbox: rows without a ticket, for staff answers to escalated questions

Revision ID: 0005_escalation_answers
Revises: 0004_console
Create Date: 2026-12-01 09:00:00

A staff answer to a question the bot handed over reaches the resident through the outbox, with
the retries every other message to a resident has, but it belongs to no ticket and no ticket
event. Going down deletes those rows (a schema without them cannot hold them).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_escalation_answers"
down_revision: str | None = "0004_console"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.alter_column("ticket_id", existing_type=sa.Integer(), nullable=True)
        batch_op.alter_column("event_id", existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM outbox WHERE ticket_id IS NULL OR event_id IS NULL")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.alter_column("event_id", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column("ticket_id", existing_type=sa.Integer(), nullable=False)
