"""attachment_files: residents' photos kept in the database

Revision ID: 0007_attachment_files
Revises: 0005_escalation_answers
Create Date: 2026-12-03 16:00:00

Telegram's file links expire; the console shows a ticket's photos from here. Photos attached
before this version are queued for fetching (status pending) like new ones.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_attachment_files"
down_revision: str | None = "0006_disclosure_closing"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "attachment_files",
        sa.Column("attachment_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("locked_until", sa.DateTime(), nullable=True),
        sa.Column("claim_token", sa.String(length=64), nullable=True),
        sa.Column("content_type", sa.String(length=64), nullable=True),
        sa.Column("size", sa.Integer(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("content", sa.LargeBinary(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("fetched_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["attachment_id"],
            ["ticket_attachments.id"],
            name=op.f("fk_attachment_files_attachment_id_ticket_attachments"),
        ),
        sa.PrimaryKeyConstraint("attachment_id", name=op.f("pk_attachment_files")),
    )
    op.create_index(
        "ix_attachment_files_status_next",
        "attachment_files",
        ["status", "next_attempt_at"],
        unique=False,
    )
    op.execute(
        "INSERT INTO attachment_files (attachment_id, status, attempts, next_attempt_at, "
        "created_at) SELECT id, 'pending', 0, created_at, created_at FROM ticket_attachments "
        "WHERE kind = 'photo'"
    )


def downgrade() -> None:
    op.drop_index("ix_attachment_files_status_next", table_name="attachment_files")
    op.drop_table("attachment_files")
