"""knowledge base edited in the console: changes, versions, reviews, the published version

Revision ID: 0012_knowledge_edits
Revises: 0005_escalation_answers
Create Date: 2026-12-03 17:00:00

Changes proposed by officers and decided by reviewers, every published version of an item,
when each item was last confirmed current, the one row every process polls to reload, and the
residents waiting to be told when their question gets an answer.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_knowledge_edits"
down_revision: str | None = "0011_leadership"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "knowledge_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("department_id", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("content", sa.JSON(), nullable=True),
        sa.Column("base_hash", sa.String(length=64), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("author_name", sa.String(length=200), nullable=False),
        sa.Column("reviewer_id", sa.Integer(), nullable=True),
        sa.Column("reviewer_name", sa.String(length=200), nullable=False),
        sa.Column("review_comment", sa.Text(), nullable=False),
        sa.Column("reviewed_at", sa.DateTime(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"], ["users.id"], name=op.f("fk_knowledge_changes_author_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["reviewer_id"], ["users.id"], name=op.f("fk_knowledge_changes_reviewer_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_knowledge_changes")),
    )
    op.create_index("ix_knowledge_changes_status", "knowledge_changes", ["status", "created_at"])
    op.create_index("ix_knowledge_changes_item", "knowledge_changes", ["item_id", "created_at"])
    op.create_index(
        op.f("ix_knowledge_changes_department_id"), "knowledge_changes", ["department_id"]
    )
    op.create_table(
        "knowledge_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.String(length=128), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("content", sa.JSON(), nullable=True),
        sa.Column("toml", sa.Text(), nullable=False),
        sa.Column("change_id", sa.Integer(), nullable=True),
        sa.Column("author_name", sa.String(length=200), nullable=False),
        sa.Column("reviewer_name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["change_id"],
            ["knowledge_changes.id"],
            name=op.f("fk_knowledge_versions_change_id_knowledge_changes"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_knowledge_versions")),
        sa.UniqueConstraint("item_id", "number", name="uq_knowledge_versions_item_number"),
    )
    op.create_index(op.f("ix_knowledge_versions_item_id"), "knowledge_versions", ["item_id"])
    op.create_table(
        "knowledge_reviews",
        sa.Column("item_id", sa.String(length=128), nullable=False),
        sa.Column("reviewed_at", sa.DateTime(), nullable=False),
        sa.Column("reviewer_id", sa.Integer(), nullable=True),
        sa.Column("reviewer_name", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["reviewer_id"], ["users.id"], name=op.f("fk_knowledge_reviews_reviewer_id_users")
        ),
        sa.PrimaryKeyConstraint("item_id", name=op.f("pk_knowledge_reviews")),
    )
    op.create_table(
        "knowledge_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("changed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_knowledge_state")),
    )
    op.create_table(
        "answer_watches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("question_id", sa.Integer(), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.String(length=128), nullable=True),
        sa.Column("notified_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["question_id"], ["questions.id"], name=op.f("fk_answer_watches_question_id_questions")
        ),
        sa.ForeignKeyConstraint(
            ["resident_id"], ["residents.id"], name=op.f("fk_answer_watches_resident_id_residents")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_answer_watches")),
        sa.UniqueConstraint("question_id", name=op.f("uq_answer_watches_question_id")),
    )
    op.create_index("ix_answer_watches_open", "answer_watches", ["notified_at"])
    op.create_index(op.f("ix_answer_watches_resident_id"), "answer_watches", ["resident_id"])


def downgrade() -> None:
    op.drop_table("answer_watches")
    op.drop_table("knowledge_state")
    op.drop_table("knowledge_reviews")
    op.drop_table("knowledge_versions")
    op.drop_table("knowledge_changes")
