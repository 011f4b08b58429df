"""residents' personal data: notice, exports, forgetting, retention, pseudonymous reports

Revision ID: 0009_privacy
Revises: 0005_escalation_answers
Create Date: 2026-12-03 16:40:00

Residents: when the privacy notice was shown, when they last took a copy of their data, when
they asked to be forgotten. Tickets: the keyed pseudonym and sealed address of an anonymous
report (bot/core/privacy.py), and when personal data was erased. Questions: when the text was
erased. Existing anonymous reports keep their resident until `python -m bot privacy sweep`
pseudonymises them (the migration has no secret).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_privacy"
down_revision: str | None = "0008_sample_data"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("residents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("privacy_notice_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("data_exported_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("forgotten_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("resident_pseudonym", sa.String(64), nullable=True))
        batch_op.add_column(sa.Column("resident_sealed", sa.String(80), nullable=True))
        batch_op.add_column(sa.Column("personal_data_erased_at", sa.DateTime(), nullable=True))
        batch_op.create_index("ix_tickets_resident_pseudonym", ["resident_pseudonym"])
        batch_op.create_index("ix_tickets_closed_at", ["closed_at"])
    with op.batch_alter_table("questions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("text_erased_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("questions", schema=None) as batch_op:
        batch_op.drop_column("text_erased_at")
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index("ix_tickets_closed_at")
        batch_op.drop_index("ix_tickets_resident_pseudonym")
        batch_op.drop_column("personal_data_erased_at")
        batch_op.drop_column("resident_sealed")
        batch_op.drop_column("resident_pseudonym")
    with op.batch_alter_table("residents", schema=None) as batch_op:
        batch_op.drop_column("forgotten_at")
        batch_op.drop_column("data_exported_at")
        batch_op.drop_column("privacy_notice_at")
