"""console: indexes for the complaint log, full-text search, login throttling and sessions

Revision ID: 0004_console
Revises: 0003_tickets
Create Date: 2026-11-26 10:00:00

On PostgreSQL, `ticket_bigrams(text)` returns the distinct two-character pieces of the
lower-cased text, and a GIN index over the tickets' descriptions lets a search for a word find the
rows containing all of its pieces without reading the table. Chinese words are often two
characters long (噪音, 停车), too short for a trigram index. SQLite searches with LIKE.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004_console"
down_revision: str | None = "0003_tickets"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGRAMS_FUNCTION = """
CREATE OR REPLACE FUNCTION ticket_bigrams(body text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT coalesce(array_agg(DISTINCT substr(lower(body), i, 2)), '{}')
    FROM generate_series(1, char_length(body) - 1) AS i
$$
"""


# Indexes on tickets: (name, columns). The complaint log pages newest first within a filter; the
# figures read a month of assignments, deadlines and replies from the index alone.
TICKET_INDEXES = (
    ("ix_tickets_created_id", ["created_at", "id"]),
    ("ix_tickets_type_created", ["type", "created_at", "id"]),
    ("ix_tickets_status_created", ["status", "created_at", "id"]),
    ("ix_tickets_category_created", ["category", "created_at", "id"]),
    (
        "ix_tickets_figures_assigned",
        ["assigned_at", "department_id", "status", "acknowledged_at", "ack_deadline"],
    ),
    ("ix_tickets_figures_due", ["reply_deadline", "department_id", "status", "replied_at"]),
    ("ix_tickets_figures_replied", ["replied_at", "department_id", "rating"]),
)
QUESTION_INDEXES = (
    (
        "ix_questions_figures",
        ["created_at", "decision", "escalated", "chosen_item_id", "feedback", "reason"],
    ),
)


def upgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        for name, columns in TICKET_INDEXES:
            batch_op.create_index(name, columns, unique=False)
    with op.batch_alter_table("questions", schema=None) as batch_op:
        for name, columns in QUESTION_INDEXES:
            batch_op.create_index(name, columns, unique=False)
    with op.batch_alter_table("login_attempts", schema=None) as batch_op:
        batch_op.create_index("ix_login_attempts_ip_created", ["ip", "created_at"], unique=False)
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.create_index("ix_web_sessions_expires_at", ["expires_at"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(BIGRAMS_FUNCTION)
        op.execute(
            "CREATE INDEX ix_tickets_description_bigrams ON tickets "
            "USING gin (ticket_bigrams(description))"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_tickets_description_bigrams")
        op.execute("DROP FUNCTION IF EXISTS ticket_bigrams(text)")
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_web_sessions_expires_at")
    with op.batch_alter_table("login_attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_login_attempts_ip_created")
    with op.batch_alter_table("questions", schema=None) as batch_op:
        for name, _ in reversed(QUESTION_INDEXES):
            batch_op.drop_index(name)
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        for name, _ in reversed(TICKET_INDEXES):
            batch_op.drop_index(name)
