"""Who may read which ticket in the web console, and the reads its ticket pages are made of.

The rule (docs/console.md, "Who may open what"): managers see every ticket; a department's
officers see their own department's; staff see those waiting in triage; nobody else sees any.
A resident's identity and contact are shown to managers, and to the department only with the
resident's consent; never for an anonymous report. These are the domain's rules: the console
applies them (a ticket one may not see answers 404, the same as one that does not exist), and
writes the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.models import Resident, Ticket, TicketEvent
from bot.core.privacy import mask_phone
from bot.core.vocabulary import EventKind
from bot.tickets.desk import HELD_STATUSES, TRIAGE_STATUSES, triage_filter


class Reader(Protocol):
    """A console user as the rules see them: a role, and an officer's department."""

    @property
    def role(self) -> str: ...

    @property
    def department_id(self) -> str | None: ...


def may_see(reader: Reader, ticket: Ticket) -> bool:
    """Tell whether a console user may open a ticket."""
    if reader.role == "manager":
        return True
    if reader.role == "officer":
        return reader.department_id is not None and ticket.department_id == reader.department_id
    if reader.role == "staff":
        return ticket.status in TRIAGE_STATUSES and ticket.department_id is None
    return False


def may_see_identity(reader: Reader, ticket: Ticket) -> bool:
    """Tell whether a user may see who filed a ticket and how to reach them.

    Nobody sees it for an anonymous report; a department only with the resident's consent.
    """
    if ticket.anonymous:
        return False
    if reader.role == "manager":
        return True
    return reader.role == "officer" and ticket.share_identity


def may_see_full_phone(reader: Reader, ticket: Ticket) -> bool:
    """Tell whether a user may see a resident's phone number unmasked.

    Only the officers of the department handling the ticket, and only with the resident's
    consent; everyone else who may see the identity sees 138****1234.
    """
    return (
        reader.role == "officer"
        and not ticket.anonymous
        and ticket.share_identity
        and reader.department_id is not None
        and ticket.department_id == reader.department_id
    )


@dataclass(frozen=True, slots=True)
class Identity:
    """Who filed a ticket, for those allowed to know."""

    contact_name: str | None
    contact_phone: str | None
    resident_name: str | None
    telegram_user_id: int | None
    # The phone is shown as 138****1234 (see `may_see_full_phone`).
    phone_masked: bool = False

    @property
    def any(self) -> bool:
        return any(
            (self.contact_name, self.contact_phone, self.resident_name, self.telegram_user_id)
        )

    def shown(self) -> list[str]:
        """Return the names of the fields that hold something (what an audit entry lists)."""
        return [name for name in self.__slots__ if name != "phone_masked" and getattr(self, name)]


@dataclass(frozen=True, slots=True)
class TriageQueue:
    """The tickets no department holds, oldest first, and why each handed-back one is there."""

    tickets: list[Ticket]
    # ticket id -> "department: reason" of its latest hand-back (退单)
    reasons: dict[int, str]


async def ticket_by_number(session: AsyncSession, number: str) -> Ticket | None:
    """Return the ticket of a number as typed in a URL (case and spaces do not matter)."""
    wanted = number.strip().upper()[:32]
    return await session.scalar(select(Ticket).where(Ticket.number == wanted))


def may_see_telegram_identity(reader: Reader) -> bool:
    """Tell whether a user may see a resident's Telegram account (name and user id).

    Residents are told that their Telegram account is given to no department: an officer sees
    at most the name and phone the resident chose to share, never the Telegram account.
    """
    return reader.role == "manager"


async def identity_of(
    session: AsyncSession, ticket: Ticket, reader: Reader | None = None
) -> Identity:
    """Return who filed a ticket (check `may_see_identity` first: this does not). With a
    `reader`, the Telegram account is left out unless `may_see_telegram_identity`, and the
    phone is masked (138****1234) unless `may_see_full_phone`."""
    resident = await session.get(Resident, ticket.resident_id) if ticket.resident_id else None
    telegram = resident is not None and (reader is None or may_see_telegram_identity(reader))
    masked = reader is not None and not may_see_full_phone(reader, ticket)
    return Identity(
        contact_name=ticket.contact_name,
        contact_phone=mask_phone(ticket.contact_phone) if masked else ticket.contact_phone,
        resident_name=resident.display_name if resident and telegram else None,
        telegram_user_id=resident.telegram_user_id if resident and telegram else None,
        phone_masked=masked and bool(ticket.contact_phone),
    )


async def triage_queue(session: AsyncSession, *, limit: int) -> TriageQueue:
    """Return up to `limit` tickets of the staff triage queue, oldest first, with their reasons."""
    tickets = list(
        (
            await session.execute(
                select(Ticket)
                .where(triage_filter())
                .order_by(Ticket.created_at, Ticket.id)
                .limit(limit)
            )
        ).scalars()
    )
    reasons: dict[int, str] = {}
    if tickets:
        events = await session.execute(
            select(TicketEvent.ticket_id, TicketEvent.body, TicketEvent.data)
            .where(
                TicketEvent.ticket_id.in_([t.id for t in tickets]),
                TicketEvent.kind == EventKind.RETURNED,
            )
            .order_by(TicketEvent.id)
        )
        for ticket_id, body, data in events.all():
            former = (data or {}).get("from_department_id") or ""
            reasons[ticket_id] = f"{former}: {body}" if former else body
    return TriageQueue(tickets=tickets, reasons=reasons)


async def department_waiting(
    session: AsyncSession, department_id: str | None, *, limit: int
) -> list[Ticket]:
    """Return up to `limit` tickets a department holds, by reply deadline (soonest first)."""
    return list(
        (
            await session.execute(
                select(Ticket)
                .where(
                    Ticket.department_id == department_id,
                    Ticket.status.in_(HELD_STATUSES),
                )
                .order_by(Ticket.reply_deadline.is_(None), Ticket.reply_deadline, Ticket.id)
                .limit(limit)
            )
        ).scalars()
    )


async def sample_ticket_count(session: AsyncSession) -> int:
    """Return how many sample tickets (the try-out's made-up ones) the database holds."""
    found = await session.scalar(select(func.count()).select_from(Ticket).where(Ticket.sample))
    return int(found or 0)
