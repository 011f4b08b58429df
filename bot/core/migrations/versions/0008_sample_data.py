"""tickets: a flag for the try-out's sample tickets

Revision ID: 0008_sample_data
Revises: 0005_escalation_answers
Create Date: 2026-12-03 17:00:00

The try-out can fill its database with made-up tickets so the console's figures and charts have
something to show (tryout/samples.py). They are marked `sample`, so the console labels them, the
ticket clock leaves them alone, and removing them removes nothing else. Going down deletes
them first: a schema without the flag could no longer tell them apart.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_sample_data"
down_revision: str | None = "0007_attachment_files"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SAMPLE_TICKETS = "SELECT id FROM tickets WHERE sample"


def upgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("sample", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.create_index(batch_op.f("ix_tickets_sample"), ["sample"], unique=False)


def downgrade() -> None:
    for table in ("outbox", "ticket_supporters", "ticket_attachments", "ticket_events"):
        op.execute(f"DELETE FROM {table} WHERE ticket_id IN ({_SAMPLE_TICKETS})")  # noqa: S608
    op.execute("DELETE FROM tickets WHERE sample")
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tickets_sample"))
        batch_op.drop_column("sample")
