"""tickets: reminders, acknowledgement overdue, disclosure outcome, outbox claims

Revision ID: 0003_tickets
Revises: 0002_conversations
Create Date: 2026-11-26 09:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_tickets"
down_revision: str | None = "0002_conversations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("ack_overdue", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("ack_reminded_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("reply_reminded_at", sa.DateTime(), nullable=True))
        batch_op.add_column(
            sa.Column("awaiting_resident", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("outcome", sa.String(length=32), nullable=True))
        batch_op.create_index("ix_tickets_assigned_at", ["assigned_at"], unique=False)
        batch_op.create_index("ix_tickets_replied_at", ["replied_at"], unique=False)

    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claim_token", sa.String(length=64), nullable=True))

    with op.batch_alter_table("callback_nonces", schema=None) as batch_op:
        batch_op.create_index("ix_callback_nonces_created_at", ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("callback_nonces", schema=None) as batch_op:
        batch_op.drop_index("ix_callback_nonces_created_at")

    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("claim_token")

    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index("ix_tickets_replied_at")
        batch_op.drop_index("ix_tickets_assigned_at")
        batch_op.drop_column("outcome")
        batch_op.drop_column("awaiting_resident")
        batch_op.drop_column("reply_reminded_at")
        batch_op.drop_column("ack_reminded_at")
        batch_op.drop_column("ack_overdue")
