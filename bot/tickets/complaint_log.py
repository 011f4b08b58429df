"""The complaint log: every ticket, filtered and searched, newest first, paged by keyset.

Keyset paging (`WHERE (created_at, id) < (last row)`) costs the same on page 1 and page 10,000,
where OFFSET would read and skip every earlier row. Full-text search uses the bigram index of
migration 0004 on PostgreSQL (`ticket_bigrams(description) @> ...`), which finds two-character
Chinese words such as 噪音 that a trigram index cannot; SQLite scans with LIKE.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, and_, false, func, literal, or_, select, tuple_
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Text

from bot.core.db import storable
from bot.core.models import Ticket, TicketEvent, utcnow
from bot.core.vocabulary import EventKind, TicketStatus, TicketType

# The choices of the type and status filters, in the order the console lists them.
TICKET_TYPES: tuple[TicketType, ...] = tuple(TicketType)
TICKET_STATUSES: tuple[TicketStatus, ...] = tuple(TicketStatus)
# Tickets no longer waiting for the department.
FINISHED_STATUSES = (TicketStatus.REPLIED, TicketStatus.CLOSED, TicketStatus.REJECTED)
RATING_CHOICES = ("5", "4", "3", "2", "1", "satisfied", "unsatisfied", "unrated")
UNROUTED = "-"
MAX_SEARCH_CHARS = 100
PAGE_SIZE = 50
# Fewer matches than this, and a search sorts them all; more, and it walks the log newest first.
RARE_MATCHES = 2000
_NUMBER = re.compile(r"^[A-Za-z]{2}-\d{4}-\d{1,9}$")


@dataclass(frozen=True, slots=True)
class LogFilters:
    """What a manager narrowed the log to; every field is optional and validated on parsing."""

    type: str = ""
    status: str = ""
    # A department id, or UNROUTED for tickets no department holds.
    department: str = ""
    category: str = ""
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    overdue: bool = False
    rating: str = ""
    search: str = ""

    @classmethod
    def parse(cls, query: dict[str, str], *, departments: Sequence[str] = ()) -> LogFilters:
        """Read filters from a query string, dropping values that are not allowed."""

        def text(name: str) -> str:
            # A query string can hold U+0000, which PostgreSQL refuses in a statement's text.
            return storable(query.get(name, ""))

        def choice(name: str, allowed: Sequence[str]) -> str:
            value = text(name).strip()
            return value if value in allowed else ""

        def date(name: str) -> dt.date | None:
            try:
                return dt.date.fromisoformat(text(name).strip())
            except ValueError:
                return None

        department = text("department").strip()
        if department != UNROUTED and departments and department not in departments:
            department = ""
        return cls(
            type=choice("type", TICKET_TYPES),
            status=choice("status", TICKET_STATUSES),
            department=department[:128],
            category=" ".join(text("category").split())[:128],
            date_from=date("from"),
            date_to=date("to"),
            overdue=text("overdue") in ("1", "on", "true"),
            rating=choice("rating", RATING_CHOICES),
            search=" ".join(text("q").split())[:MAX_SEARCH_CHARS],
        )

    def as_query(self) -> dict[str, str]:
        """Return the filters as query-string parameters (only those that are set)."""
        names = {"date_from": "from", "date_to": "to", "search": "q"}
        result: dict[str, str] = {}
        for field in fields(self):
            value = getattr(self, field.name)
            if value in ("", None, False):
                continue
            key = names.get(field.name, field.name)
            result[key] = "1" if value is True else str(value)
        return result

    @property
    def active(self) -> bool:
        return bool(self.as_query())


@dataclass(frozen=True, slots=True)
class Cursor:
    """The position after (or before) a row of the log: its creation time and id."""

    created_at: dt.datetime
    id: int

    def encode(self) -> str:
        micros = round(self.created_at.timestamp() * 1_000_000)
        return f"{micros}.{self.id}"

    @classmethod
    def decode(cls, text: str) -> Cursor | None:
        """Read a cursor from a URL; anything malformed means "from the start"."""
        match = re.fullmatch(r"(\d{1,17})\.(\d{1,18})", text or "")
        if not match:
            return None
        micros, ticket_id = int(match[1]), int(match[2])
        try:
            moment = dt.datetime.fromtimestamp(micros / 1_000_000, dt.UTC)
        except (OverflowError, OSError, ValueError):
            return None
        if ticket_id > 2**63 - 1:
            return None
        return cls(created_at=moment, id=ticket_id)


@dataclass(frozen=True, slots=True)
class LogPage:
    """One page of the log and the cursors of its neighbours (None at either end)."""

    tickets: list[Ticket]
    next: Cursor | None
    previous: Cursor | None


def day_start(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    """Return midnight of a local day, in UTC."""
    return dt.datetime.combine(day, dt.time(), zone).astimezone(dt.UTC)


def like_pattern(text: str) -> str:
    """Return a LIKE pattern matching `text` anywhere, its wildcards taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def overdue_condition(now: dt.datetime) -> ColumnElement[bool]:
    """Overdue: flagged by the deadline sweep, or past the reply deadline without a reply."""
    return or_(
        Ticket.overdue.is_(True),
        and_(
            Ticket.reply_deadline < now,
            Ticket.replied_at.is_(None),
            Ticket.status.not_in(FINISHED_STATUSES),
        ),
    )


def searches_text(filters: LogFilters) -> bool:
    """Tell whether the search is for words (not a ticket number)."""
    return bool(filters.search) and not _NUMBER.match(filters.search)


def _search_condition(text: str, *, indexed: bool) -> ColumnElement[bool]:
    if _NUMBER.match(text):
        return Ticket.number == text.upper()
    words = [word for word in text.split(" ") if word][:8]
    conditions: list[ColumnElement[bool]] = []
    for word in words:
        # ILIKE on the column itself (lower() LIKE lower() on SQLite): PostgreSQL then estimates
        # from the column's statistics how common the word is, and picks the right plan.
        contains = Ticket.description.ilike(like_pattern(word), escape="\\")
        if indexed and len(word) >= 2:
            # The index narrows to rows having every two-character piece; LIKE checks the order.
            pieces = func.ticket_bigrams(literal(word), type_=ARRAY(Text))
            stored = func.ticket_bigrams(Ticket.description, type_=ARRAY(Text))
            conditions.append(and_(stored.contains(pieces), contains))
        else:
            conditions.append(contains)
    return and_(*conditions) if conditions else false()


AnySelect = TypeVar("AnySelect", bound="Select[*tuple[Any, ...]]")


def filtered(
    query: AnySelect,
    filters: LogFilters,
    *,
    zone: ZoneInfo,
    now: dt.datetime,
    use_index: bool = False,
) -> AnySelect:
    """Apply the filters to a query over tickets (`use_index`: search through the bigram index,
    PostgreSQL only)."""
    if filters.type:
        query = query.where(Ticket.type == filters.type)
    if filters.status:
        query = query.where(Ticket.status == filters.status)
    if filters.department == UNROUTED:
        query = query.where(Ticket.department_id.is_(None))
    elif filters.department:
        query = query.where(Ticket.department_id == filters.department)
    if filters.category:
        query = query.where(Ticket.category == filters.category)
    if filters.date_from:
        query = query.where(Ticket.created_at >= day_start(filters.date_from, zone))
    if filters.date_to:
        end = day_start(filters.date_to + dt.timedelta(days=1), zone)
        query = query.where(Ticket.created_at < end)
    if filters.overdue:
        query = query.where(overdue_condition(now))
    if filters.rating.isdigit():
        query = query.where(Ticket.rating == int(filters.rating))
    elif filters.rating == "satisfied":
        query = query.where(Ticket.rating >= 4)
    elif filters.rating == "unsatisfied":
        query = query.where(Ticket.rating <= 3)
    elif filters.rating == "unrated":
        query = query.where(Ticket.rating.is_(None), Ticket.replied_at.is_not(None))
    if filters.search:
        query = query.where(_search_condition(filters.search, indexed=use_index))
    return query


async def list_tickets(
    session: AsyncSession,
    filters: LogFilters,
    *,
    zone: ZoneInfo,
    after: Cursor | None = None,
    before: Cursor | None = None,
    limit: int = PAGE_SIZE,
    scope: ColumnElement[bool] | None = None,
) -> LogPage:
    """Return a page of tickets, newest first, after or before a cursor.

    `scope` narrows further (an officer's own department); it is applied whatever the filters say.
    """
    now = utcnow()
    backwards = before is not None and after is None
    conditions: list[ColumnElement[bool]] = [] if scope is None else [scope]
    position = tuple_(Ticket.created_at, Ticket.id)
    if after is not None:
        conditions.append(position < (after.created_at, after.id))
    elif before is not None:
        conditions.append(position > (before.created_at, before.id))
    if backwards:
        order = (Ticket.created_at.asc(), Ticket.id.asc())
    else:
        order = (Ticket.created_at.desc(), Ticket.id.desc())
    rows: list[Ticket] | None = None
    if searches_text(filters) and session.get_bind().dialect.name == "postgresql":
        rows = await _rare_matches(session, filters, conditions, not backwards, zone, now, limit)
    if rows is None:
        query = filtered(select(Ticket), filters, zone=zone, now=now).where(*conditions)
        rows = list((await session.execute(query.order_by(*order).limit(limit + 1))).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    if backwards:
        rows.reverse()
    if not rows:
        return LogPage([], None, None)
    first, last = rows[0], rows[-1]
    has_newer = more if backwards else (after is not None)
    has_older = (before is not None) if backwards else more
    return LogPage(
        tickets=rows,
        next=Cursor(last.created_at, last.id) if has_older else None,
        previous=Cursor(first.created_at, first.id) if has_newer else None,
    )


async def _rare_matches(
    session: AsyncSession,
    filters: LogFilters,
    conditions: list[ColumnElement[bool]],
    newest_first: bool,
    zone: ZoneInfo,
    now: dt.datetime,
    limit: int,
) -> list[Ticket] | None:
    """Search through the bigram index when the words are rare; None when they are common.

    Neither plan suits every word. For a rare word, walking the tickets newest first reads the
    whole table to find a page; for a common one, collecting every match through the index and
    sorting them reads tens of thousands of rows, where the walk stops after a few hundred. So
    the index is asked for at most RARE_MATCHES matches first: if that is all there are, they
    are sorted here; otherwise the caller walks.
    """
    probe = (
        filtered(select(Ticket.id, Ticket.created_at), filters, zone=zone, now=now, use_index=True)
        .where(*conditions)
        .limit(RARE_MATCHES + 1)
    )
    matches = [(created_at, ticket_id) for ticket_id, created_at in await session.execute(probe)]
    if len(matches) > RARE_MATCHES:
        return None
    matches.sort(reverse=newest_first)
    wanted = [ticket_id for _, ticket_id in matches[: limit + 1]]
    if not wanted:
        return []
    found = await session.execute(select(Ticket).where(Ticket.id.in_(wanted)))
    by_id = {ticket.id: ticket for ticket in found.scalars()}
    return [by_id[ticket_id] for ticket_id in wanted]


async def latest_replies(session: AsyncSession, ticket_ids: Sequence[int]) -> dict[int, str]:
    """Return the department's latest reply to the resident of each ticket that has one.

    A reopened ticket is answered again; the export carries the answer that stands."""
    if not ticket_ids:
        return {}
    rows = await session.execute(
        select(TicketEvent.ticket_id, TicketEvent.body)
        .where(TicketEvent.ticket_id.in_(list(ticket_ids)), TicketEvent.kind == EventKind.REPLIED)
        .order_by(TicketEvent.id)
    )
    return dict(rows.all())
