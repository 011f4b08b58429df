"""knowledge files: the text of every file a published change wrote, for every host

Revision ID: 0015_knowledge_files
Revises: 0014_ticket_form_key
Create Date: 2026-12-04 09:00:00

A change published on one host (an approved edit, a restored version, synonyms, a phrasing
taught by staff) is stored with the version it raised, file by file, so that every host brings
its own knowledge folder up to date from the database, not only the host that published.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_knowledge_files"
down_revision: str | None = "0014_ticket_form_key"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "knowledge_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=300), nullable=False),
        sa.Column("content", sa.Text(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("base_sha256", sa.String(length=64), nullable=False),
        sa.Column("published_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_knowledge_files")),
        sa.UniqueConstraint("path", "version", name="uq_knowledge_files_path_version"),
    )
    op.create_index(op.f("ix_knowledge_files_version"), "knowledge_files", ["version"])


def downgrade() -> None:
    op.drop_index(op.f("ix_knowledge_files_version"), table_name="knowledge_files")
    op.drop_table("knowledge_files")
