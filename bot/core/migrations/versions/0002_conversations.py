"""conversations: empty (the tables the conversations use are created by 0001)

Kept because it is part of the revision chain: a database stamped with this revision could not
be upgraded without it.

Revision ID: 0002_conversations
Revises: 0001
Create Date: 2026-11-26 09:30:00
"""

from collections.abc import Sequence

revision: str = "0002_conversations"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
