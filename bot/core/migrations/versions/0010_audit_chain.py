"""audit_log, ticket_events: the tamper-evident hash chain

Revision ID: 0010_audit_chain
Revises: 0005_escalation_answers
Create Date: 2026-12-03 17:00:00

Each audit row and each ticket event gets its place in its chain (chain_seq), the SHA-256 of
its content and a link hash over the link before it; `audit_chain_heads` holds each chain's
last link. The rows already there are hashed here, in the order of their ids, with the same
functions the application uses (bot/core/audit_chain.py). Going down drops the columns and the
heads.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from bot.core.audit_chain import AUDIT, CHAINS, EVENTS, FIELDS, GENESIS, next_link

revision: str = "0010_audit_chain"
down_revision: str | None = "0009_privacy"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = {
    AUDIT: sa.table(
        "audit_log",
        sa.column("id", sa.Integer()),
        sa.column("user_id", sa.Integer()),
        sa.column("action", sa.String()),
        sa.column("target_type", sa.String()),
        sa.column("target_id", sa.String()),
        sa.column("detail", sa.JSON()),
        sa.column("ip", sa.String()),
        sa.column("created_at", sa.DateTime()),
        sa.column("chain_seq", sa.Integer()),
        sa.column("content_hash", sa.String()),
        sa.column("chain_hash", sa.String()),
    ),
    EVENTS: sa.table(
        "ticket_events",
        sa.column("id", sa.Integer()),
        sa.column("ticket_id", sa.Integer()),
        sa.column("kind", sa.String()),
        sa.column("actor_type", sa.String()),
        sa.column("actor_id", sa.String()),
        sa.column("body", sa.Text()),
        sa.column("data", sa.JSON()),
        sa.column("visible_to_resident", sa.Boolean()),
        sa.column("created_at", sa.DateTime()),
        sa.column("chain_seq", sa.Integer()),
        sa.column("content_hash", sa.String()),
        sa.column("chain_hash", sa.String()),
    ),
}
BATCH = 1000


def _hash_existing(chain: str) -> tuple[int, str]:
    table = TABLES[chain]
    connection = op.get_bind()
    seq, previous, after = 0, GENESIS, 0
    columns = [table.c.id, *(table.c[name] for name in FIELDS[chain])]
    while True:
        rows = connection.execute(
            sa.select(*columns).where(table.c.id > after).order_by(table.c.id).limit(BATCH)
        ).all()
        if not rows:
            return seq, previous
        updates: list[dict[str, Any]] = []
        for row in rows:
            seq += 1
            link = next_link(chain, seq, previous, dict(row._mapping))
            previous = link.chain_hash
            updates.append(
                {"row_id": row.id, "s": seq, "c": link.content_hash, "h": link.chain_hash}
            )
        connection.execute(
            table.update()
            .where(table.c.id == sa.bindparam("row_id"))
            .values(
                chain_seq=sa.bindparam("s"),
                content_hash=sa.bindparam("c"),
                chain_hash=sa.bindparam("h"),
            ),
            updates,
        )
        after = rows[-1].id


def upgrade() -> None:
    op.create_table(
        "audit_chain_heads",
        sa.Column("chain", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("chain", name=op.f("pk_audit_chain_heads")),
    )
    # Plain ALTER TABLE (no batch copy on SQLite: the outbox's foreign keys name ticket_events).
    for name in ("audit_log", "ticket_events"):
        op.add_column(name, sa.Column("chain_seq", sa.Integer(), nullable=True))
        op.add_column(name, sa.Column("content_hash", sa.String(length=64), nullable=True))
        op.add_column(name, sa.Column("chain_hash", sa.String(length=64), nullable=True))
        op.create_index(op.f(f"ix_{name}_chain_seq"), name, ["chain_seq"], unique=True)
    heads = sa.table("audit_chain_heads", sa.column("chain"), sa.column("seq"), sa.column("hash"))
    for chain in CHAINS:
        seq, last = _hash_existing(chain)
        op.execute(heads.insert().values(chain=chain, seq=seq, hash=last))


def downgrade() -> None:
    # SQLite drops columns itself since 3.35; no batch copy, as in upgrade.
    for name in ("ticket_events", "audit_log"):
        op.drop_index(op.f(f"ix_{name}_chain_seq"), table_name=name)
        for column in ("chain_hash", "content_hash", "chain_seq"):
            op.execute(f"ALTER TABLE {name} DROP COLUMN {column}")
    op.drop_table("audit_chain_heads")
