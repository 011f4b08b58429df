"""telegram sends: the Bot API calls an update's handlers made, until the update is confirmed

Revision ID: 0016_telegram_sends
Revises: 0015_knowledge_files
Create Date: 2026-12-06 14:40:00

A leader killed after its answer to an update reached Telegram, but before the update was
recorded as handled, left the next leader to handle the update again and answer twice. Each
call that shows something to someone (send, edit, delete ...) made while handling an update is
now written here as soon as Telegram answers it; handling the update again hands the handler the
recorded answer instead of calling Telegram a second time (bot/telegram/journal.py).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_telegram_sends"
down_revision: str | None = "0015_knowledge_files"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "telegram_sends",
        sa.Column("update_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("ordinal", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("method", sa.String(64), nullable=False),
        sa.Column("chat_id", sa.String(64), nullable=True),
        sa.Column("result", sa.Text(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("telegram_sends")
