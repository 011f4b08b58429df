"""knowledge freshness: the department's name and phone recorded at each review

Revision ID: 0013_knowledge_freshness
Revises: 0012_knowledge_edits
Create Date: 2026-12-03 18:00:00

An item whose department changed its name or phone since the item was last reviewed needs
review again; the review keeps what the department was called and could be reached at.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_knowledge_freshness"
down_revision: str | None = "0012_knowledge_edits"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("knowledge_reviews") as batch:
        batch.add_column(sa.Column("department_name", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("department_phone", sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("knowledge_reviews") as batch:
        batch.drop_column("department_phone")
        batch.drop_column("department_name")
