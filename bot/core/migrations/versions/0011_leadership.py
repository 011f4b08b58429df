"""several processes: the Telegram lease, clock ticks, handled updates and the polling cursor

Revision ID: 0011_leadership
Revises: 0005_escalation_answers
Create Date: 2026-12-03 17:00:00

`python -m bot run` may run on several machines against one PostgreSQL: one leads (serves
Telegram) while it renews its row in `leases`; periodic jobs claim `(job, tick)` in `clock_ticks`
so each tick runs once; `telegram_updates` and `telegram_cursor` let a new leader resume polling
where the last one confirmed, without handling an update twice.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_leadership"
down_revision: str | None = "0010_audit_chain"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("term", sa.BigInteger(), nullable=False),
        sa.Column("acquired_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "clock_ticks",
        sa.Column("job", sa.String(64), primary_key=True),
        sa.Column("tick", sa.BigInteger(), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("claimed_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_clock_ticks_claimed_at", "clock_ticks", ["claimed_at"])
    op.create_table(
        "telegram_updates",
        sa.Column("update_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("handled_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "telegram_cursor",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("next_offset", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("telegram_cursor")
    op.drop_table("telegram_updates")
    op.drop_index("ix_clock_ticks_claimed_at", table_name="clock_ticks")
    op.drop_table("clock_ticks")
    op.drop_table("leases")
