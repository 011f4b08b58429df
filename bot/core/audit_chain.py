"""The tamper-evident chain over the audit log and the tickets' timelines.

Every row of `audit_log` and of `ticket_events` gets, when it is inserted, a place in its chain
(`chain_seq`: 1, 2, 3 …), the SHA-256 of its content (`content_hash`) and a link hash
(`chain_hash`) that covers the link before it:

    content_hash = SHA-256( canonical JSON of the row's content, with its chain and seq )
    chain_hash   = SHA-256( previous row's chain_hash + ":" + content_hash )     (hex, ASCII)

The first row's previous hash is 64 zeros. `audit_chain_heads` holds, per chain, the last seq
and hash. Appending takes the head rows' lock first (an UPDATE of both heads, always in the same
order), so appends of every process queue there and the chain never forks: on PostgreSQL it is
the heads' row locks, held until commit; on SQLite the database's one write lock.

The hashes are set by a `before_flush` listener on every ORM session, so code only adds
`AuditEntry` / `TicketEvent` objects as before. A row written by SQL past the ORM, a row
changed, a row deleted or rows re-ordered show up in `verify_chain` (`python -m bot audit
verify`). Someone who can write the database can also recompute every hash after a change; the
chain head printed in each monthly report, kept outside the database, is what shows that.

A ticket's proof (`ticket_proof`) carries its events with their canonical text and, for the
rows in between that belong to other tickets, their content hashes only, so anyone can recompute
the links up to the head without seeing other tickets (`check_proof`; docs/security.md).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import weakref
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, UOWTransaction
from sqlalchemy.orm.attributes import instance_state

from bot.core.models import AuditEntry, Base, ChainHead, Ticket, TicketEvent

GENESIS = "0" * 64
PROOF_FORMAT = "ticket-proof/1"

AUDIT = "audit_log"
EVENTS = "ticket_events"
# The order in which appends lock the heads (the same everywhere, so two writers never wait for
# each other in a circle).
CHAINS = (AUDIT, EVENTS)

# The columns each chain covers, besides its name and the row's seq. The id is not among them:
# it is given by the database after the hash is computed.
FIELDS: dict[str, tuple[str, ...]] = {
    AUDIT: ("user_id", "action", "target_type", "target_id", "detail", "ip", "created_at"),
    EVENTS: (
        "ticket_id",
        "kind",
        "actor_type",
        "actor_id",
        "body",
        "data",
        "visible_to_resident",
        "created_at",
    ),
}
JSON_FIELDS = frozenset({"detail", "data"})
MODELS: dict[str, type[AuditEntry] | type[TicketEvent]] = {AUDIT: AuditEntry, EVENTS: TicketEvent}
BATCH = 2000


class ChainError(Exception):
    """A ticket without a proof, or a proof that does not hold."""


# -- hashing ------------------------------------------------------------------------------------


def _plain(name: str, value: Any) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.isoformat(timespec="microseconds")
    if name in JSON_FIELDS:
        # What a JSON column gives back: keys as strings, tuples as lists.
        return json.loads(json.dumps(value))
    if isinstance(value, str):
        return str.__str__(value)  # a StrEnum member as its plain value
    return value


def canonical(chain: str, seq: int, values: Mapping[str, Any]) -> str:
    """Return the canonical JSON of a row's content (sorted keys, no spaces, ASCII only).

    A resident's own id on their events is personal data that retention and /forget erase
    (bot/tickets/privacy.py), so it is not covered: the chain proves that *the resident* did
    something and what, and erasing who they were leaves it whole. Every other actor (staff,
    officers, departments, the system) is covered.
    """
    content = {name: _plain(name, values.get(name)) for name in FIELDS[chain]}
    if chain == EVENTS and content.get("actor_type") == "resident":
        content["actor_id"] = None
    content["chain"] = chain
    content["seq"] = seq
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def sha256(data: str) -> str:
    """Return the SHA-256 of a text's UTF-8 bytes, in lower-case hex."""
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


def link_hash(previous: str, content_hash: str) -> str:
    """Return a row's chain hash from the previous row's and its own content hash."""
    return sha256(f"{previous}:{content_hash}")


@dataclass(frozen=True, slots=True)
class Link:
    """The chain values a new row gets."""

    seq: int
    content_hash: str
    chain_hash: str


def next_link(chain: str, seq: int, previous: str, values: Mapping[str, Any]) -> Link:
    """Return the link of the row after (seq - 1, previous) with these values."""
    content_hash = sha256(canonical(chain, seq, values))
    return Link(seq, content_hash, link_hash(previous, content_hash))


# -- appending ----------------------------------------------------------------------------------

_LOCK = text("UPDATE audit_chain_heads SET seq = seq WHERE chain = :chain")
_READ = text("SELECT seq, hash FROM audit_chain_heads WHERE chain = :chain")
_WRITE = text("UPDATE audit_chain_heads SET seq = :seq, hash = :hash WHERE chain = :chain")


def _create_head(connection: Connection, chain: str) -> None:
    # Only an emptied table has no head row (migrations add both): add it, whoever is first.
    connection.execute(
        text(
            "INSERT INTO audit_chain_heads (chain, seq, hash) VALUES (:chain, 0, :hash) "
            "ON CONFLICT (chain) DO NOTHING"
        ),
        {"chain": chain, "hash": GENESIS},
    )


def lock_heads(connection: Connection) -> dict[str, tuple[int, str]]:
    """Lock both chains' heads for this transaction and return them (seq, hash)."""
    heads: dict[str, tuple[int, str]] = {}
    for chain in CHAINS:
        if connection.execute(_LOCK, {"chain": chain}).rowcount == 0:
            _create_head(connection, chain)
            connection.execute(_LOCK, {"chain": chain})
        row = connection.execute(_READ, {"chain": chain}).one()
        heads[chain] = (int(row.seq), str(row.hash))
    return heads


def _apply_defaults(row: Base) -> None:
    # Column defaults are applied by the INSERT, after this hook: apply them first, so the hash
    # covers what is stored.
    for column in row.__table__.columns:
        default = column.default
        key = column.key
        if default is None or getattr(row, key) is not None:
            continue
        arg = getattr(default, "arg", None)
        if getattr(default, "is_callable", False) and callable(arg):
            setattr(row, key, arg(None))
        elif getattr(default, "is_scalar", False):
            setattr(row, key, arg)


def _chain_of(row: object) -> str | None:
    if isinstance(row, AuditEntry):
        return AUDIT
    if isinstance(row, TicketEvent):
        return EVENTS
    return None


def _before_flush(session: Session, _context: UOWTransaction, _instances: object) -> None:
    pending: dict[str, list[Any]] = {chain: [] for chain in CHAINS}
    for row in session.new:
        chain = _chain_of(row)
        if chain is not None and row.chain_seq is None:
            pending[chain].append(row)
    if not any(pending.values()):
        return
    heads = lock_heads(session.connection())
    connection = session.connection()
    for chain in CHAINS:
        rows = sorted(pending[chain], key=lambda r: instance_state(r).insert_order or 0)
        if not rows:
            continue
        seq, previous = heads[chain]
        for row in rows:
            _apply_defaults(row)
            seq += 1
            values = {name: getattr(row, name) for name in FIELDS[chain]}
            link = next_link(chain, seq, previous, values)
            row.chain_seq = link.seq
            row.content_hash = link.content_hash
            row.chain_hash = link.chain_hash
            previous = link.chain_hash
        connection.execute(_WRITE, {"chain": chain, "seq": seq, "hash": previous})


_LISTENING: weakref.WeakSet[type[Session]] = weakref.WeakSet()


def install(session_class: type[Session] = Session) -> None:
    """Hash every new audit row and ticket event flushed by sessions of this class (once)."""
    if session_class in _LISTENING:
        return
    event.listen(session_class, "before_flush", _before_flush)
    _LISTENING.add(session_class)


# -- verifying ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChainReport:
    """The outcome of walking one chain: `problem` is None when it holds."""

    chain: str
    count: int
    head_seq: int
    head_hash: str
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


async def _rows(session: AsyncSession, chain: str) -> AsyncIterator[Any]:
    model = MODELS[chain]
    columns = [getattr(model, name) for name in FIELDS[chain]]
    after = 0
    while True:
        batch = (
            await session.execute(
                select(model.id, model.chain_seq, model.content_hash, model.chain_hash, *columns)
                .where(model.chain_seq > after)
                .order_by(model.chain_seq)
                .limit(BATCH)
            )
        ).all()
        if not batch:
            return
        for row in batch:
            yield row
        after = batch[-1].chain_seq


async def read_head(session: AsyncSession, chain: str) -> tuple[int, str] | None:
    """Return a chain's recorded head (seq, hash), or None when there is no head row."""
    head = await session.get(ChainHead, chain)
    return (head.seq, head.hash) if head is not None else None


def _span(first: int, last: int) -> str:
    return f"seq {first}" if first == last else f"seq {first}..{last}"


async def verify_chain(session: AsyncSession, chain: str) -> ChainReport:
    """Walk a chain from its first row and report the first row that breaks it."""
    model = MODELS[chain]
    head = await read_head(session, chain)
    previous, expected, count = GENESIS, 1, 0

    def broken(problem: str) -> ChainReport:
        return ChainReport(chain, count, expected - 1, previous, problem)

    async for row in _rows(session, chain):
        seq = row.chain_seq
        if seq != expected:
            return broken(
                f"{_span(expected, seq - 1)} missing before row id {row.id} (seq {seq}): "
                "rows deleted"
            )
        values = {name: getattr(row, name) for name in FIELDS[chain]}
        content_hash = sha256(canonical(chain, seq, values))
        if content_hash != row.content_hash:
            return broken(
                f"row id {row.id} (seq {seq}) edited: its content does not match its hash"
            )
        if link_hash(previous, content_hash) != row.chain_hash:
            return broken(
                f"row id {row.id} (seq {seq}) does not follow seq {seq - 1}: inserted, re-hashed "
                "or the row before it replaced"
            )
        previous, expected, count = row.chain_hash, expected + 1, count + 1
    unchained = await session.scalar(
        select(model.id).where(model.chain_seq.is_(None)).order_by(model.id).limit(1)
    )
    if unchained is not None:
        return broken(f"row id {unchained} is not in the chain: inserted past the application")
    # Rows appended while the walk went on are fine; the head read before the walk must be
    # reached, and the head read after it must not be passed.
    after_walk = await read_head(session, chain)
    if head is None or after_walk is None:
        return (
            broken("the chain head row is missing") if count else ChainReport(chain, 0, 0, GENESIS)
        )
    if count < head[0]:
        return broken(f"{_span(count + 1, head[0])} missing at the end: rows deleted")
    if count > after_walk[0]:
        return broken(f"{_span(after_walk[0] + 1, count)} past the chain head: rows inserted")
    for seq, hash_ in (head, after_walk):
        if seq == count and hash_ != previous:
            return broken(f"the chain head's hash does not match the last row (seq {count})")
    return ChainReport(chain, count, count, previous)


async def verify_all(session: AsyncSession) -> list[ChainReport]:
    """Walk both chains (audit log, ticket events)."""
    return [await verify_chain(session, chain) for chain in CHAINS]


async def heads(session: AsyncSession) -> dict[str, tuple[int, str]]:
    """Return each chain's recorded head (seq, hash); (0, zeros) for a chain not yet begun."""
    return {chain: (await read_head(session, chain)) or (0, GENESIS) for chain in CHAINS}


def format_head(chain: str, seq: int, hash_: str) -> str:
    """Return a head as it is printed and given to `check-proof --head`: chain seq:hash."""
    return f"{chain} {seq}:{hash_}"


# -- a ticket's proof ---------------------------------------------------------------------------


async def ticket_proof(session: AsyncSession, ticket: Ticket) -> dict[str, Any]:
    """Return a ticket's events with their hashes and the links up to the events chain's head."""
    own = (
        await session.execute(
            select(TicketEvent).where(TicketEvent.ticket_id == ticket.id).order_by(TicketEvent.id)
        )
    ).scalars()
    events = list(own)
    mine = {e.chain_seq: e for e in events if e.chain_seq is not None}
    head = await read_head(session, EVENTS) or (0, GENESIS)
    proof: dict[str, Any] = {
        "format": PROOF_FORMAT,
        "ticket": ticket.number,
        "chain": EVENTS,
        "hashing": (
            "content_hash = sha256(canonical); hash = sha256(previous hash + ':' + content_hash); "
            "the first row's previous hash is 64 zeros"
        ),
        "head": {"seq": head[0], "hash": head[1]},
        "unchained_event_ids": [e.id for e in events if e.chain_seq is None],
        "start": None,
        "links": [],
    }
    if not mine:
        return proof
    first = min(mine)
    before = await session.scalar(
        select(TicketEvent.chain_hash).where(TicketEvent.chain_seq == first - 1)
    )
    proof["start"] = {"seq": first, "previous_hash": GENESIS if first == 1 else before}
    links: list[dict[str, Any]] = []
    after = first - 1
    while True:
        batch = (
            await session.execute(
                select(TicketEvent.chain_seq, TicketEvent.content_hash, TicketEvent.chain_hash)
                .where(TicketEvent.chain_seq > after, TicketEvent.chain_seq <= head[0])
                .order_by(TicketEvent.chain_seq)
                .limit(BATCH)
            )
        ).all()
        if not batch:
            break
        for row in batch:
            seq = int(row.chain_seq or 0)
            entry: dict[str, Any] = {"seq": seq, "content_hash": row.content_hash}
            event_row = mine.get(seq)
            if event_row is not None:
                entry["hash"] = row.chain_hash
                entry["event_id"] = event_row.id
                entry["canonical"] = canonical(
                    EVENTS, seq, {name: getattr(event_row, name) for name in FIELDS[EVENTS]}
                )
            links.append(entry)
        after = batch[-1].chain_seq
    proof["links"] = links
    return proof


@dataclass(frozen=True, slots=True)
class ProofCheck:
    """What a proof shows when it holds."""

    ticket: str
    events: int
    head_seq: int
    head_hash: str


def check_proof(proof: Mapping[str, Any], published: Sequence[tuple[int, str]] = ()) -> ProofCheck:
    """Check a ticket's proof by itself, and against published heads (seq, hash) it spans.

    Raise ChainError saying what does not hold.
    """
    try:
        if proof.get("format") != PROOF_FORMAT or proof.get("chain") != EVENTS:
            raise ChainError("not a ticket proof of this format")
        ticket = str(proof["ticket"])
        if proof.get("unchained_event_ids"):
            raise ChainError(f"events {proof['unchained_event_ids']} are not in the chain")
        head_seq, head_hash = int(proof["head"]["seq"]), str(proof["head"]["hash"])
        links = proof["links"]
        if not links or proof["start"] is None:
            raise ChainError("the proof holds no events")
        previous, seq = str(proof["start"]["previous_hash"]), int(proof["start"]["seq"])
        hashes: dict[int, str] = {seq - 1: previous}
        events = 0
        for entry in links:
            if int(entry["seq"]) != seq:
                raise ChainError(f"seq {seq} is missing from the proof")
            content_hash = str(entry["content_hash"])
            if "canonical" in entry:
                text_ = str(entry["canonical"])
                if sha256(text_) != content_hash:
                    raise ChainError(f"the event at seq {seq} does not match its content hash")
                content = json.loads(text_)
                if content.get("seq") != seq or content.get("chain") != EVENTS:
                    raise ChainError(f"the event at seq {seq} names another place in the chain")
                events += 1
            previous = link_hash(previous, content_hash)
            if "hash" in entry and entry["hash"] != previous:
                raise ChainError(f"the hash at seq {seq} does not follow from the links before it")
            hashes[seq] = previous
            seq += 1
        if seq - 1 != head_seq or previous != head_hash:
            raise ChainError("the links do not lead to the proof's head")
    except (KeyError, TypeError, ValueError) as error:
        raise ChainError(f"the proof is malformed ({error!r})") from error
    for published_seq, published_hash in published:
        if published_seq not in hashes:
            raise ChainError(f"the proof does not reach the published head at seq {published_seq}")
        if hashes[published_seq] != published_hash:
            raise ChainError(f"the chain at seq {published_seq} differs from the published head")
    return ProofCheck(ticket, events, head_seq, head_hash)
