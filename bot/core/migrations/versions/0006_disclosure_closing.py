"""ticket_documents: the document a department gives a disclosure applicant with its answer

Revision ID: 0006_disclosure_closing
Revises: 0005_escalation_answers
Create Date: 2026-12-03 17:00:00

A file (its bytes, so the console keeps it and any worker can send it) or a link, tied to the
ticket and the reply it came with.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_disclosure_closing"
down_revision: str | None = "0005_escalation_answers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ticket_documents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.Column("file_name", sa.String(length=200), nullable=False),
        sa.Column("media_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=True),
        sa.Column("telegram_file_id", sa.String(length=256), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name="fk_ticket_documents_ticket_id_tickets"
        ),
        sa.ForeignKeyConstraint(
            ["event_id"], ["ticket_events.id"], name="fk_ticket_documents_event_id_ticket_events"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_ticket_documents"),
    )
    op.create_index("ix_ticket_documents_ticket_id", "ticket_documents", ["ticket_id"])


def downgrade() -> None:
    op.drop_index("ix_ticket_documents_ticket_id", table_name="ticket_documents")
    op.drop_table("ticket_documents")
