"""Tickets: complaints, reports, suggestions, help requests and disclosure applications.

A ticket is an append-only timeline of events (who did what, when); its status and dates are a
summary kept for listing. Every change here is one transaction that locks the ticket, records an
event, updates the summary and adds the outbox rows the event causes (see `bot.tickets.outbox`), so the
department, the resident and the figures never disagree, and nothing is ever deleted.

Lifecycle (docs/tickets.md, at the top; the words are those of `bot.core.vocabulary`):

    received ─▶ assigned ─▶ acknowledged ─▶ replied ─▶ closed
       │           │  └─ returned (退单) ─▶ staff reassign ─▶ assigned
       │           └─ overdue ─▶ escalated (督办), a flag beside the status
       └─ rejected (with a reason the resident sees)
    replied ─▶ (resident: not solved) ─▶ assigned again, same department

The Telegram handlers and the web console both call `TicketDesk`; nothing here knows either.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import unicodedata
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from rapidfuzz import fuzz, process
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import undefer

from bot.answering.knowledge_base import KnowledgeBase
from bot.core.config import DISCLOSURE_EXTENSION_DAYS, Settings
from bot.core.db import conflict_insert, storable, write_gate
from bot.core.models import (
    Resident,
    Ticket,
    TicketAttachment,
    TicketCounter,
    TicketDocument,
    TicketEvent,
    TicketSupporter,
    utcnow,
)
from bot.core.phones import InvalidPhone, normalise_phone
from bot.core.privacy import Pseudonyms
from bot.core.text import normalize
from bot.core.vocabulary import DisclosureOutcome, EventKind, TicketStatus, TicketType
from bot.core.workdays import DeadlinePolicy, WorkCalendar
from bot.tickets.attachments import queue_photos
from bot.tickets.documents import Document, DocumentFile
from bot.tickets.outbox import OutboxWriter, document_summary
from bot.tickets.routing import RoutingDecision, complaint_categories, route_ticket

ActorType = Literal["resident", "staff", "department", "system"]

# Still being worked on: a resident may add information, others may add their voice.
OPEN_STATUSES: frozenset[TicketStatus] = frozenset(
    {
        TicketStatus.RECEIVED,
        TicketStatus.ASSIGNED,
        TicketStatus.ACKNOWLEDGED,
        TicketStatus.RETURNED,
    }
)
# A department holds the ticket.
HELD_STATUSES: frozenset[TicketStatus] = frozenset(
    {TicketStatus.ASSIGNED, TicketStatus.ACKNOWLEDGED}
)
# Waiting for staff to choose a department (the triage queue), with department_id empty.
TRIAGE_STATUSES: frozenset[TicketStatus] = frozenset(
    {TicketStatus.RECEIVED, TicketStatus.RETURNED}
)
FINAL_STATUSES: frozenset[TicketStatus] = frozenset({TicketStatus.CLOSED, TicketStatus.REJECTED})
# Types whose open tickets other residents are shown and may support. Reports, help requests
# and disclosure applications are about one person or accuse one, so they are never shown.
VOICE_TYPES: frozenset[TicketType] = frozenset({TicketType.COMPLAINT, TicketType.SUGGESTION})
# Only reports may be anonymous (a disclosure application needs the applicant by law).
ANONYMOUS_TYPES: frozenset[TicketType] = frozenset({TicketType.REPORT})
# How a disclosure application was answered, as the annual disclosure report counts them.
DISCLOSURE_OUTCOMES: tuple[DisclosureOutcome, ...] = tuple(DisclosureOutcome)
# Longest text an officer or staff member may send at once (a Telegram message holds 4,096).
MAX_OFFICER_TEXT = 3000
MAX_REASON_TEXT = 1000
# The texts officers and staff write on a ticket, by the field name a refusal carries.
OFFICER_TEXT_LIMITS = {
    "reply": MAX_OFFICER_TEXT,
    "question": MAX_OFFICER_TEXT,
    "reason": MAX_REASON_TEXT,
    "note": MAX_REASON_TEXT,
}

_CONTROL = re.compile(
    r"[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]"
)
_LONG_DIGITS = re.compile(r"\d[\d\s-]{4,}\d")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
_BLANK_LINES = re.compile(r"\n{3,}")


class TicketError(Exception):
    """A ticket action that cannot be done; `code` names the reason for the caller's message."""

    code = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code:
            self.code = code


class TicketNotFound(TicketError):
    code = "not_found"


class TransitionNotAllowed(TicketError):
    code = "not_allowed"


class AlreadyRouted(TransitionNotAllowed):
    """A triage button pressed after the ticket was given to a department (or closed)."""

    code = "already_routed"

    def __init__(
        self, message: str, *, number: str, status: str, department_id: str | None
    ) -> None:
        super().__init__(message)
        self.number = number
        self.status = status
        self.department_id = department_id


class NotPermitted(TicketError):
    code = "not_permitted"


class InvalidTicketInput(TicketError):
    """Input that cannot be taken; `field` and `limit` say which text and how long it may be."""

    code = "invalid"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        field: str | None = None,
        limit: int | None = None,
    ) -> None:
        super().__init__(message, code=code)
        self.field = field
        self.limit = limit


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts on a ticket. Residents see the role and the department, never a staff name."""

    type: ActorType
    id: str = ""
    name: str = ""
    department_id: str | None = None

    @classmethod
    def resident(cls, resident_id: int | None) -> Actor:
        return cls("resident", str(resident_id or ""))

    @classmethod
    def staff(cls, user_id: str, name: str = "") -> Actor:
        return cls("staff", user_id, name)

    @classmethod
    def department(cls, department_id: str, user_id: str = "", name: str = "") -> Actor:
        return cls("department", user_id, name, department_id)

    @classmethod
    def system(cls, what: str = "") -> Actor:
        return cls("system", what)


@dataclass(frozen=True, slots=True)
class PhotoRef:
    """A photo the resident sent, by its Telegram file id."""

    file_id: str
    file_unique_id: str = ""


@dataclass(frozen=True, slots=True)
class TicketDraft:
    """What a resident filed, before it is a ticket."""

    type: TicketType
    category: str
    description: str
    resident_id: int | None
    language: str = "zh"
    photos: tuple[PhotoRef, ...] = ()
    location_text: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    contact_name: str | None = None
    contact_phone: str | None = None
    # The resident agreed that the department may see their name and contact.
    share_identity: bool = False
    anonymous: bool = False
    # The form's own key (handlers/complaints.py): filing the same form twice files it once.
    form_key: str | None = None


@dataclass(frozen=True, slots=True)
class FiledTicket:
    """A ticket just stored: what the resident is told."""

    id: int
    number: str
    status: str
    department_id: str | None
    ack_deadline: dt.datetime
    reply_deadline: dt.datetime
    reply_date: dt.date
    routing: RoutingDecision


@dataclass(frozen=True, slots=True)
class SimilarTicket:
    """An open ticket like the one being filed, shown so the resident can add their voice."""

    id: int
    number: str
    excerpt: str
    created_at: dt.datetime
    supporters: int
    score: float


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One event as a reader sees it."""

    id: int
    at: dt.datetime
    kind: str
    actor_type: str
    actor_id: str
    body: str
    data: dict[str, Any]
    visible_to_resident: bool


@dataclass(frozen=True, slots=True)
class TicketSummary:
    """A ticket in a list."""

    id: int
    number: str
    type: str
    category: str
    status: str
    department_id: str | None
    created_at: dt.datetime
    reply_deadline: dt.datetime | None
    overdue: bool
    awaiting_resident: bool
    # "filed" (the resident's own) or "supported" (they added their voice)
    role: str = "filed"


@dataclass(frozen=True, slots=True)
class TicketDetail:
    """A ticket and its timeline, as the reader may see them."""

    summary: TicketSummary
    description: str
    location_text: str | None
    latitude: float | None
    longitude: float | None
    photos: int
    anonymous: bool
    share_identity: bool
    extended: bool
    extension_reason: str | None
    supervised: bool
    supporters: int
    rating: int | None
    solved: bool | None
    timeline: tuple[TimelineEntry, ...] = field(default_factory=tuple)

    @property
    def can_add_information(self) -> bool:
        return self.summary.status in OPEN_STATUSES and self.summary.role == "filed"

    @property
    def can_rate(self) -> bool:
        return self.summary.status == TicketStatus.REPLIED and self.summary.role == "filed"


def clean_text(text: str | None, *, limit: int, what: str, required: bool = True) -> str:
    """Return text fit to store: control and invisible characters gone, trimmed, length checked.

    `what` names the text ("the reply"); a refusal carries it as `field` ("reply") with `limit`.
    """
    cleaned = _CONTROL.sub("", unicodedata.normalize("NFC", text or "")).replace("\r\n", "\n")
    cleaned = _BLANK_LINES.sub("\n\n", cleaned.replace("\r", "\n")).strip()
    field = what.removeprefix("the ")
    if required and not cleaned:
        raise InvalidTicketInput(
            f"{what} is empty (1 to {limit} characters)", code="empty", field=field, limit=limit
        )
    if len(cleaned) > limit:
        raise InvalidTicketInput(
            f"{what} is longer than {limit} characters",
            code="too_long",
            field=field,
            limit=limit,
        )
    return cleaned


def masked_excerpt(text: str, limit: int = 80) -> str:
    """Return the start of a ticket's text for other residents: numbers and e-mails masked."""
    masked = _EMAIL.sub("***", text)
    masked = _LONG_DIGITS.sub(lambda m: m.group()[:2] + "*" * (len(m.group()) - 2), masked)
    masked = " ".join(masked.split())
    return masked if len(masked) <= limit else masked[: limit - 1] + "…"


def _bigrams(text: str) -> str:
    """Turn text into space-separated character pairs, so token scorers work on Chinese."""
    folded = normalize(text).replace(" ", "")
    if len(folded) < 2:
        return folded
    return " ".join(folded[i : i + 2] for i in range(len(folded) - 1))


def ticket_ref_filter(ref: int | str) -> Any:
    """Return the WHERE clause for a ticket given by id or by number."""
    if isinstance(ref, int):
        return Ticket.id == ref
    return Ticket.number == ref.strip().upper()


async def next_ticket_number(session: AsyncSession, year: int) -> str:
    """Return the next number of the year, e.g. TS-2026-000123, inside the caller's transaction.

    The counter row is updated in place: on PostgreSQL the UPDATE holds the row lock until the
    transaction ends, on SQLite it takes the database write lock, so two filings never share a
    number, and a filing that rolls back gives its number back.
    """
    dialect = session.get_bind().dialect.name
    insert = conflict_insert(dialect)
    await session.execute(
        insert(TicketCounter)
        .values(year=year, last_number=0)
        .on_conflict_do_nothing(index_elements=["year"])
    )
    number = (
        await session.execute(
            update(TicketCounter)
            .where(TicketCounter.year == year)
            .values(last_number=TicketCounter.last_number + 1)
            .returning(TicketCounter.last_number)
        )
    ).scalar_one()
    return f"TS-{year}-{number:06d}"


_FORM_KEY = re.compile(r"[0-9a-f]{16,64}")


def _form_key(key: str | None) -> str | None:
    """Return a form key that may be stored (hex, 16-64 characters), or None."""
    return key if isinstance(key, str) and _FORM_KEY.fullmatch(key) else None


class TicketDesk:
    """Files tickets and moves them through their lifecycle; shared by the bot and the console."""

    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        knowledge: Callable[[], KnowledgeBase],
        *,
        calendar: WorkCalendar | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
        pseudonyms: Pseudonyms | None = None,
    ) -> None:
        self.settings = settings
        self._pseudonyms = pseudonyms
        self.sessions = sessions
        self.knowledge = knowledge
        self.calendar = calendar or WorkCalendar.from_settings(settings.calendar)
        self.policy = DeadlinePolicy(settings.tickets, self.calendar)
        self.outbox = OutboxWriter(settings, knowledge)
        self.clock = clock
        self._listeners: list[Callable[[], None]] = []
        # SQLite has one writer at a time and its busy handler is not fair under load; within a
        # process, ticket transactions queue for it in order, behind the same gate as every
        # other write to the database (questions, residents, conversations).
        self._write_gate = write_gate(sessions)

    @property
    def pseudonyms(self) -> Pseudonyms | None:
        """Keyed pseudonyms of anonymous reports (BOT_PRIVACY_SECRET unless given)."""
        return self._pseudonyms or Pseudonyms.from_environment()

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call `listener` after every committed change (the delivery worker wakes up on it)."""
        self._listeners.append(listener)

    def _changed(self) -> None:
        for listener in self._listeners:
            listener()

    # -- the catalogue ------------------------------------------------------------------------

    def categories(self) -> list[str]:
        """Return the categories residents file under (from the departments' catalogue)."""
        return complaint_categories(self.knowledge())

    def department_name(self, department_id: str | None, language: str = "zh") -> str | None:
        """Return a department's name in a language, or None for no or an unknown department."""
        department = self.knowledge().departments.get(department_id or "")
        return department.display_name(language) if department else None

    # -- filing -------------------------------------------------------------------------------

    def clean_description(self, text: str | None) -> str:
        """Return a description fit to file; InvalidTicketInput (empty, too_long, too_short)."""
        limits = self.settings.tickets
        description = clean_text(text, limit=limits.max_description_chars, what="the description")
        if len(description) < limits.min_description_chars:
            raise InvalidTicketInput("the description is too short", code="too_short")
        return description

    def validate_draft(self, draft: TicketDraft) -> TicketDraft:
        """Return the draft with its texts cleaned; raise InvalidTicketInput on what cannot be filed."""
        limits = self.settings.tickets
        try:
            ticket_type = TicketType(draft.type)
        except ValueError:
            raise InvalidTicketInput(f"unknown ticket type {draft.type!r}", code="type") from None
        if draft.category not in self.categories():
            raise InvalidTicketInput(f"unknown category {draft.category!r}", code="category")
        description = self.clean_description(draft.description)
        if len(draft.photos) > limits.max_photos:
            raise InvalidTicketInput(f"more than {limits.max_photos} photos", code="photos")
        if draft.anonymous and draft.type not in ANONYMOUS_TYPES:
            raise InvalidTicketInput("only reports may be anonymous", code="anonymous")
        name = clean_text(
            draft.contact_name, limit=limits.max_contact_chars, what="the name", required=False
        )
        phone = clean_text(
            draft.contact_phone, limit=limits.max_contact_chars, what="the phone", required=False
        )
        if phone:
            try:
                phone = normalise_phone(phone)
            except InvalidPhone:
                raise InvalidTicketInput("the phone number is not valid", code="phone") from None
        location = clean_text(
            draft.location_text,
            limit=limits.max_contact_chars * 2,
            what="the place",
            required=False,
        )
        if ticket_type == TicketType.DISCLOSURE and not (name and phone and draft.share_identity):
            # The law needs the applicant's name and contact (条例 第二十九条).
            raise InvalidTicketInput(
                "a disclosure application needs the applicant's name and contact",
                code="applicant",
            )
        for value, low, high in ((draft.latitude, -90, 90), (draft.longitude, -180, 180)):
            if value is not None and not low <= value <= high:
                raise InvalidTicketInput("the location is out of range", code="location")
        anonymous = draft.anonymous
        return TicketDraft(
            type=ticket_type,
            category=draft.category,
            description=description,
            resident_id=draft.resident_id,
            language=draft.language if draft.language in ("zh", "en") else "zh",
            photos=draft.photos,
            location_text=location or None,
            latitude=draft.latitude,
            longitude=draft.longitude,
            # An anonymous report keeps no contact at all, so none can ever leak.
            contact_name=None if anonymous else (name or None),
            contact_phone=None if anonymous else (phone or None),
            share_identity=False if anonymous else draft.share_identity,
            anonymous=anonymous,
            form_key=_form_key(draft.form_key),
        )

    async def file(self, draft: TicketDraft) -> FiledTicket:
        """Store a new ticket, its first events and its deliveries in one transaction.

        When this returns, the ticket is committed: only then may the resident be told its
        number and deadline. A draft whose `form_key` was filed before returns that ticket.
        """
        draft = self.validate_draft(draft)
        if draft.form_key:
            already = await self._filed_from(draft.form_key)
            if already is not None:
                return already
            try:
                return await self._file(draft)
            except IntegrityError:
                # The same form filed at the same moment elsewhere: that one stands.
                already = await self._filed_from(draft.form_key)
                if already is None:
                    raise
                return already
        return await self._file(draft)

    async def _filed_from(self, form_key: str) -> FiledTicket | None:
        """Return the ticket already filed from this form, as its filing returned it."""
        async with self.sessions() as session:
            ticket = await session.scalar(select(Ticket).where(Ticket.form_key == form_key))
        if ticket is None or ticket.ack_deadline is None or ticket.reply_deadline is None:
            return None
        return FiledTicket(
            id=ticket.id,
            number=ticket.number,
            status=ticket.status,
            department_id=ticket.department_id,
            ack_deadline=ticket.ack_deadline,
            reply_deadline=ticket.reply_deadline,
            reply_date=self.policy.local_date(ticket.reply_deadline),
            routing=RoutingDecision(
                department_id=ticket.department_id,
                confidence=ticket.routing_confidence or 0.0,
                reason="filed_before",
            ),
        )

    async def _file(self, draft: TicketDraft) -> FiledTicket:
        settings = self.settings.tickets
        routing = route_ticket(
            self.knowledge(),
            draft.category,
            draft.description,
            min_confidence=settings.routing_min_confidence,
            generic_categories=settings.generic_categories,
        )
        now = self.clock()
        deadlines = self.policy.deadlines(draft.type, draft.category, now)
        # The number is taken last: on PostgreSQL the counter's row lock is then held only for
        # the end of the transaction, so concurrent filings wait for each other the least.
        placeholder = f"TMP-{secrets.token_hex(14)}"
        recorded: list[tuple[TicketEvent, bool]] = []
        pseudonyms = self.pseudonyms
        if draft.anonymous and draft.resident_id is not None and pseudonyms is None:
            raise InvalidTicketInput(
                "anonymous reports need BOT_PRIVACY_SECRET", code="anonymous_unavailable"
            )
        async with self._write_gate, self.sessions() as session, session.begin():
            resident_id, pseudonym, sealed = draft.resident_id, None, None
            if draft.anonymous and draft.resident_id is not None and pseudonyms is not None:
                # The report is stored under a keyed pseudonym: the database alone cannot
                # tell who filed it (bot/core/privacy.py).
                telegram_user_id = await session.scalar(
                    select(Resident.telegram_user_id).where(Resident.id == draft.resident_id)
                )
                if telegram_user_id is not None:
                    resident_id = None
                    pseudonym = pseudonyms.pseudonym(telegram_user_id)
                    sealed = pseudonyms.seal(telegram_user_id)
            ticket = Ticket(
                number=placeholder,
                type=draft.type,
                category=draft.category,
                department_id=None,
                status=TicketStatus.RECEIVED,
                resident_id=resident_id,
                resident_pseudonym=pseudonym,
                resident_sealed=sealed,
                language=draft.language,
                description=draft.description,
                location_text=draft.location_text,
                latitude=draft.latitude,
                longitude=draft.longitude,
                contact_name=draft.contact_name,
                contact_phone=draft.contact_phone,
                share_identity=draft.share_identity,
                anonymous=draft.anonymous,
                routing_confidence=routing.confidence,
                ack_deadline=deadlines.ack,
                reply_deadline=deadlines.reply,
                extended=False,
                overdue=False,
                ack_overdue=False,
                supervised=False,
                awaiting_resident=False,
                supporters=0,
                form_key=draft.form_key,
                created_at=now,
                updated_at=now,
            )
            session.add(ticket)
            await session.flush()
            photos = [
                TicketAttachment(
                    ticket_id=ticket.id,
                    kind="photo",
                    telegram_file_id=photo.file_id,
                    file_unique_id=photo.file_unique_id,
                    created_at=now,
                )
                for photo in draft.photos
            ]
            session.add_all(photos)
            if photos:
                # Fetched and kept in the background (bot/tickets/attachments.py).
                await session.flush()
                queue_photos(session, photos)
            resident = Actor("resident", "" if draft.anonymous else str(draft.resident_id or ""))
            event = await self.record(
                session,
                ticket,
                now,
                EventKind.RECEIVED,
                resident,
                data={
                    "type": draft.type,
                    "category": draft.category,
                    "photos": len(draft.photos),
                    "anonymous": draft.anonymous,
                    "share_identity": draft.share_identity,
                },
                deliver=False,
            )
            recorded.append((event, True))
            event = await self.record(
                session,
                ticket,
                now,
                EventKind.DEADLINE_SET,
                Actor.system("deadlines"),
                data=deadlines.as_event_data(self.policy.zone) | {"reason": "received"},
                deliver=False,
            )
            recorded.append((event, True))
            if routing.department_id:
                self._assign(ticket, routing.department_id, now)
                event = await self.record(
                    session,
                    ticket,
                    now,
                    EventKind.ASSIGNED,
                    Actor.system("routing"),
                    data={
                        "department_id": routing.department_id,
                        "reason": "routing",
                        "routing": routing.reason,
                        "confidence": routing.confidence,
                        "keywords": list(routing.keywords),
                    },
                    deliver=False,
                )
                recorded.append((event, False))
            else:
                event = await self.record(
                    session,
                    ticket,
                    now,
                    EventKind.TRIAGE,
                    Actor.system("routing"),
                    data={
                        "routing": routing.reason,
                        "confidence": routing.confidence,
                        # The likeliest departments, offered to staff as one-press choices.
                        "candidates": sorted(routing.scores, key=lambda d: -routing.scores[d])[:3],
                    },
                    deliver=False,
                )
                recorded.append((event, True))
            number = await next_ticket_number(session, self.policy.local_date(now).year)
            ticket.number = number
            for event, notify_resident in recorded:
                await self.outbox.enqueue(
                    session, ticket, event, now=now, notify_resident=notify_resident
                )
        self._changed()
        return FiledTicket(
            id=ticket.id,
            number=number,
            status=ticket.status,
            department_id=ticket.department_id,
            ack_deadline=deadlines.ack,
            reply_deadline=deadlines.reply,
            reply_date=self.policy.local_date(deadlines.reply),
            routing=routing,
        )

    # -- the lifecycle ------------------------------------------------------------------------

    async def acknowledge(self, ref: int | str, actor: Actor) -> Ticket:
        """Acknowledge (签收) a ticket on behalf of its department."""
        async with self.locked_ticket(ref) as (session, ticket, now):
            self._require(ticket, actor, {TicketStatus.ASSIGNED}, "acknowledge")
            ticket.status = TicketStatus.ACKNOWLEDGED
            ticket.acknowledged_at = now
            await self.record(
                session, ticket, now, EventKind.ACKNOWLEDGED, actor, data=self._dept(ticket)
            )
            return ticket

    async def reply(
        self,
        ref: int | str,
        actor: Actor,
        text: str,
        *,
        outcome: str | None = None,
        reason: str | None = None,
        document: Document | None = None,
    ) -> Ticket:
        """Record the department's answer.

        A complaint's resident is then asked whether it solved the problem. A disclosure
        application's answer is its decision (条例第三十六条): it needs the outcome, the reason for
        anything but full disclosure (InvalidTicketInput with code "reason" when it is empty), and
        may carry the document (a checked file or link); the applicant is told the outcome, the
        reason and the remedies, gets the file, and is asked only to rate the service.
        """
        body = clean_text(text, limit=MAX_OFFICER_TEXT, what="the reply")
        if outcome is not None and outcome not in DISCLOSURE_OUTCOMES:
            raise InvalidTicketInput(f"unknown outcome {outcome!r}", code="outcome")
        why = clean_text(reason, limit=MAX_REASON_TEXT, what="reason", required=False)
        async with self.locked_ticket(ref) as (session, ticket, now):
            self._require(ticket, actor, HELD_STATUSES, "reply")
            disclosure = ticket.type == TicketType.DISCLOSURE
            if disclosure:
                if outcome is None:
                    raise InvalidTicketInput(
                        "outcome: a disclosure application's answer needs its outcome",
                        code="outcome",
                    )
                if outcome != DisclosureOutcome.DISCLOSED and not why:
                    raise InvalidTicketInput(
                        f"reason: an answer other than full disclosure ({outcome}) needs the "
                        "reason the applicant is told",
                        code="reason",
                    )
            elif document is not None:
                raise InvalidTicketInput(
                    "document: only a disclosure answer carries a document", code="document"
                )
            # A reply without a separate 签收 acknowledges the ticket at the same moment.
            implicit_ack = ticket.acknowledged_at is None
            ticket.acknowledged_at = ticket.acknowledged_at or now
            ticket.status = TicketStatus.REPLIED
            ticket.replied_at = now
            ticket.awaiting_resident = False
            data: dict[str, Any] = {
                "outcome": outcome if disclosure else None,
                "on_time": ticket.reply_deadline is None or now <= ticket.reply_deadline,
                "implicit_ack": implicit_ack,
            }
            stored: TicketDocument | None = None
            if disclosure:
                ticket.outcome = outcome
                data["reason"] = why
                # The remedies as this deployment names them today, kept with the decision.
                data["remedies"] = self.settings.disclosure.model_dump(
                    include={
                        "review_body",
                        "review_body_en",
                        "court",
                        "court_en",
                        "review_days",
                        "litigation_months",
                    }
                )
                if document is not None:
                    stored = _document_row(ticket.id, document, now)
                    session.add(stored)
                    await session.flush()
                    data["document"] = document_summary(stored)
            event = await self.record(
                session,
                ticket,
                now,
                EventKind.REPLIED,
                actor,
                body=body,
                data=self._dept(ticket) | data,
            )
            if stored is not None:
                stored.event_id = event.id
            return ticket

    async def documents(self, ref: int | str) -> list[TicketDocument]:
        """Return the documents given with a ticket's answers (without their bytes), oldest first."""
        async with self.sessions() as session:
            ticket_id = await session.scalar(select(Ticket.id).where(ticket_ref_filter(ref)))
            if ticket_id is None:
                raise TicketNotFound(f"no ticket {ref}")
            result = await session.execute(
                select(TicketDocument)
                .where(TicketDocument.ticket_id == ticket_id)
                .order_by(TicketDocument.id)
            )
            return list(result.scalars())

    async def document_content(self, ref: int | str, document_id: int) -> TicketDocument:
        """Return one of a ticket's documents with its bytes (TicketNotFound for any other)."""
        async with self.sessions() as session:
            ticket_id = await session.scalar(select(Ticket.id).where(ticket_ref_filter(ref)))
            found = await session.scalar(
                select(TicketDocument)
                .where(TicketDocument.id == document_id, TicketDocument.ticket_id == ticket_id)
                .options(undefer(TicketDocument.content))
            )
        if ticket_id is None or found is None:
            raise TicketNotFound(f"no document {document_id} of {ref}")
        return found

    async def remember_telegram_file(self, document_id: int, file_id: str) -> None:
        """Keep the Telegram file id of a document uploaded once, so it is not uploaded again."""
        async with self._write_gate, self.sessions() as session, session.begin():
            await session.execute(
                update(TicketDocument)
                .where(TicketDocument.id == document_id, TicketDocument.telegram_file_id == "")
                .values(telegram_file_id=storable(file_id)[:256])
            )

    async def hand_back(self, ref: int | str, actor: Actor, reason: str) -> Ticket:
        """Return a ticket as not the department's (退单); it waits in triage for staff."""
        body = clean_text(reason, limit=MAX_REASON_TEXT, what="the reason")
        async with self.locked_ticket(ref) as (session, ticket, now):
            self._require(ticket, actor, HELD_STATUSES, "hand_back")
            former = self._dept(ticket)
            ticket.status = TicketStatus.RETURNED
            ticket.department_id = None
            ticket.acknowledged_at = None
            ticket.awaiting_resident = False
            await self.record(
                session,
                ticket,
                now,
                EventKind.RETURNED,
                actor,
                body=body,
                data={"from_department_id": former["department_id"]},
            )
            return ticket

    async def reassign(
        self,
        ref: int | str,
        actor: Actor,
        department_id: str,
        *,
        note: str = "",
        from_triage: bool = False,
    ) -> Ticket:
        """Give a ticket to a department (staff): from triage, after 退单, or to correct routing.

        `from_triage`: only a ticket still waiting for a department (a triage alert's buttons);
        one that was given to a department meanwhile raises AlreadyRouted and changes nothing.
        """
        note = clean_text(note, limit=MAX_REASON_TEXT, what="the note", required=False)
        if department_id not in self.knowledge().departments:
            raise InvalidTicketInput(f"unknown department {department_id!r}", code="department")
        async with self.locked_ticket(ref) as (session, ticket, now):
            if from_triage and ticket.status not in TRIAGE_STATUSES:
                raise AlreadyRouted(
                    f"{ticket.number} is no longer waiting for a department",
                    number=ticket.number,
                    status=ticket.status,
                    department_id=ticket.department_id,
                )
            self._require(ticket, actor, OPEN_STATUSES, "reassign", staff_only=True)
            if ticket.status in HELD_STATUSES and ticket.department_id == department_id:
                raise TransitionNotAllowed(
                    f"{ticket.number} is already with {department_id}", code="same_department"
                )
            former = ticket.department_id if ticket.status in HELD_STATUSES else None
            self._assign(ticket, department_id, now)
            # The new department gets a fresh acknowledgement deadline; the resident's reply
            # deadline stands, since passing the ticket around is not the resident's doing.
            days = self.policy.days_for(_type_of(ticket), ticket.category)
            ticket.ack_deadline = self.policy.end_of_working_day(now, days.ack)
            await self.record(
                session,
                ticket,
                now,
                EventKind.ASSIGNED,
                actor,
                body=note,
                data={"department_id": department_id, "reason": "reassigned", "from": former},
                former_department=former,
            )
            await self.record(
                session,
                ticket,
                now,
                EventKind.DEADLINE_SET,
                Actor.system("deadlines"),
                data={
                    "reason": "reassigned",
                    "ack_deadline": ticket.ack_deadline.isoformat(),
                    "ack_date": self.policy.local_date(ticket.ack_deadline).isoformat(),
                    "ack_working_days": days.ack,
                },
            )
            return ticket

    async def reject(self, ref: int | str, actor: Actor, reason: str) -> Ticket:
        """Refuse a ticket (spam, not actionable); the resident sees the reason."""
        body = clean_text(reason, limit=MAX_REASON_TEXT, what="the reason")
        async with self.locked_ticket(ref) as (session, ticket, now):
            self._require(ticket, actor, OPEN_STATUSES, "reject", staff_only=True)
            ticket.status = TicketStatus.REJECTED
            ticket.closed_at = now
            ticket.awaiting_resident = False
            await self.record(session, ticket, now, EventKind.REJECTED, actor, body=body)
            return ticket

    async def ask_resident(self, ref: int | str, actor: Actor, question: str) -> Ticket:
        """Ask the resident for more information; their answer reaches the department."""
        body = clean_text(question, limit=MAX_OFFICER_TEXT, what="the question")
        async with self.locked_ticket(ref) as (session, ticket, now):
            self._require(ticket, actor, HELD_STATUSES, "ask_resident")
            if ticket.resident_id is None and not ticket.resident_sealed:
                raise TransitionNotAllowed(
                    "nobody to ask: the ticket has no resident", code="no_resident"
                )
            ticket.awaiting_resident = True
            await self.record(
                session,
                ticket,
                now,
                EventKind.INFO_REQUESTED,
                actor,
                body=body,
                data=self._dept(ticket),
            )
            return ticket

    async def extend(self, ref: int | str, actor: Actor, days: int, reason: str) -> Ticket:
        """Extend a disclosure application's reply deadline, once, by at most 20 working days."""
        body = clean_text(reason, limit=MAX_REASON_TEXT, what="the reason")
        if not 1 <= days <= DISCLOSURE_EXTENSION_DAYS:
            raise InvalidTicketInput(
                f"an extension is 1 to {DISCLOSURE_EXTENSION_DAYS} working days", code="days"
            )
        async with self.locked_ticket(ref) as (session, ticket, now):
            self._require(ticket, actor, HELD_STATUSES, "extend")
            if ticket.type != TicketType.DISCLOSURE:
                raise TransitionNotAllowed(
                    "only disclosure applications are extended", code="type"
                )
            if ticket.extended:
                raise TransitionNotAllowed("the deadline was already extended once", code="twice")
            if ticket.reply_deadline is None or now > ticket.reply_deadline:
                raise TransitionNotAllowed("the deadline has passed", code="too_late")
            previous = ticket.reply_deadline
            moved, sources = self.policy.extended(previous, days)
            ticket.reply_deadline = moved
            ticket.extended = True
            ticket.extension_reason = body
            ticket.reply_reminded_at = None
            await self.record(
                session,
                ticket,
                now,
                EventKind.EXTENDED,
                actor,
                body=body,
                data=self._dept(ticket)
                | {
                    "working_days": days,
                    "previous_deadline": previous.isoformat(),
                    "reply_deadline": moved.isoformat(),
                    "reply_date": self.policy.local_date(moved).isoformat(),
                    "calendar": list(sources),
                },
            )
            return ticket

    async def close(self, ref: int | str, actor: Actor, reason: str) -> Ticket:
        """Close a ticket that is not final (staff), e.g. the resident withdrew it by phone."""
        body = clean_text(reason, limit=MAX_REASON_TEXT, what="the reason")
        async with self.locked_ticket(ref) as (session, ticket, now):
            self._require(
                ticket, actor, OPEN_STATUSES | {TicketStatus.REPLIED}, "close", staff_only=True
            )
            ticket.status = TicketStatus.CLOSED
            ticket.closed_at = now
            ticket.awaiting_resident = False
            await self.record(
                session, ticket, now, EventKind.CLOSED, actor, body=body, data={"by": "staff"}
            )
            return ticket

    # -- the resident -------------------------------------------------------------------------

    async def add_information(
        self,
        ref: int | str,
        resident_id: int,
        text: str,
        photos: Sequence[PhotoRef] = (),
    ) -> Ticket:
        """Add the resident's information (and photos) to their open ticket; it reaches the department."""
        body = clean_text(
            text,
            limit=self.settings.tickets.max_information_chars,
            what="the information",
            required=not photos,
        )
        async with self.locked_ticket(ref) as (session, ticket, now):
            await self._require_owner(session, ticket, resident_id)
            if ticket.status not in OPEN_STATUSES:
                raise TransitionNotAllowed(
                    f"{ticket.number} is {ticket.status}", code=ticket.status
                )
            existing = await session.scalar(
                select(func.count())
                .select_from(TicketAttachment)
                .where(TicketAttachment.ticket_id == ticket.id)
            )
            if (existing or 0) + len(photos) > self.settings.tickets.max_photos:
                raise InvalidTicketInput("too many photos on this ticket", code="photos")
            added = [
                TicketAttachment(
                    ticket_id=ticket.id,
                    kind="photo",
                    telegram_file_id=p.file_id,
                    file_unique_id=p.file_unique_id,
                    created_at=now,
                )
                for p in photos
            ]
            session.add_all(added)
            if added:
                await session.flush()
                queue_photos(session, added)
            was_asked = ticket.awaiting_resident
            ticket.awaiting_resident = False
            actor = Actor("resident", "" if ticket.anonymous else str(resident_id))
            await self.record(
                session,
                ticket,
                now,
                EventKind.INFORMATION_ADDED,
                actor,
                body=body,
                data={"photos": len(photos), "answers_request": was_asked},
            )
            return ticket

    async def add_voice(self, ref: int | str, resident_id: int) -> Ticket:
        """Add a resident's voice to another resident's open ticket (once per resident)."""
        async with self.locked_ticket(ref) as (session, ticket, now):
            if ticket.type not in VOICE_TYPES or ticket.status not in OPEN_STATUSES:
                raise TransitionNotAllowed(f"{ticket.number} cannot be supported", code="closed")
            if await self._owns(session, ticket, resident_id):
                raise TransitionNotAllowed("this is the resident's own ticket", code="own")
            already = await session.scalar(
                select(TicketSupporter.id).where(
                    TicketSupporter.ticket_id == ticket.id,
                    TicketSupporter.resident_id == resident_id,
                )
            )
            if already is not None:
                raise TransitionNotAllowed("already supported", code="already")
            session.add(
                TicketSupporter(ticket_id=ticket.id, resident_id=resident_id, created_at=now)
            )
            ticket.supporters += 1
            await self.record(
                session,
                ticket,
                now,
                EventKind.SUPPORTER_ADDED,
                # Residents are never shown to each other.
                Actor("resident", ""),
                data={"supporters": ticket.supporters},
            )
            return ticket

    async def rate(
        self,
        ref: int | str,
        resident_id: int,
        *,
        solved: bool | None,
        rating: int,
        comment: str | None = None,
    ) -> Ticket:
        """Record the resident's 回访 answer; not solved reopens the ticket with its department.

        A disclosure application is rated for the service only (`solved` None): its answer is a
        decision the applicant contests by 行政复议 or 行政诉讼, not by reopening, so it closes
        with the rating whatever `solved` says.
        """
        if not 1 <= rating <= 5:
            raise InvalidTicketInput("a rating is 1 to 5", code="rating")
        note = clean_text(comment, limit=MAX_REASON_TEXT, what="the comment", required=False)
        async with self.locked_ticket(ref) as (session, ticket, now):
            await self._require_owner(session, ticket, resident_id)
            if ticket.status != TicketStatus.REPLIED:
                raise TransitionNotAllowed(
                    f"{ticket.number} is {ticket.status}", code=ticket.status
                )
            if ticket.type == TicketType.DISCLOSURE:
                solved = None
            elif solved is None:
                raise InvalidTicketInput("solved or not is asked of this ticket", code="solved")
            ticket.solved = solved
            ticket.rating = rating
            ticket.rating_comment = note or None
            ticket.rated_at = now
            actor = Actor("resident", "" if ticket.anonymous else str(resident_id))
            rating_data: dict[str, Any] = {"solved": solved, "rating": rating}
            await self.record(
                session,
                ticket,
                now,
                EventKind.RATED,
                actor,
                body=note,
                data=rating_data,
                notify_resident=False,
            )
            if solved is not False:
                ticket.status = TicketStatus.CLOSED
                ticket.closed_at = now
                await self.record(
                    session,
                    ticket,
                    now,
                    EventKind.CLOSED,
                    actor,
                    data={"by": "resident"} | rating_data,
                    notify_resident=False,
                )
                return ticket
            await self._reopen(session, ticket, now, actor, note, rating_data)
            return ticket

    async def comment_rating(self, ref: int | str, resident_id: int, comment: str) -> Ticket:
        """Add the optional comment to a rating the resident just gave."""
        note = clean_text(comment, limit=MAX_REASON_TEXT, what="the comment")
        async with self.locked_ticket(ref) as (session, ticket, now):
            await self._require_owner(session, ticket, resident_id)
            if ticket.rated_at is None or ticket.rating_comment:
                raise TransitionNotAllowed("no rating waits for a comment", code="no_rating")
            ticket.rating_comment = note
            actor = Actor("resident", "" if ticket.anonymous else str(resident_id))
            await self.record(
                session,
                ticket,
                now,
                EventKind.RATING_COMMENT,
                actor,
                body=note,
                notify_resident=False,
            )
            return ticket

    async def _reopen(
        self,
        session: AsyncSession,
        ticket: Ticket,
        now: dt.datetime,
        actor: Actor,
        note: str,
        rating_data: dict[str, Any],
    ) -> None:
        department_id = ticket.department_id
        assert department_id is not None  # a replied ticket has the department that replied
        self._assign(ticket, department_id, now)
        ticket.replied_at = None
        ticket.closed_at = None
        ticket.overdue = False
        ticket.supervised = False
        ticket.reply_reminded_at = None
        deadlines = self.policy.deadlines(_type_of(ticket), ticket.category, now)
        data = deadlines.as_event_data(self.policy.zone)
        reply = deadlines.reply
        # Only a disclosure application is ever extended, and it is never reopened (its
        # applicant has remedies instead): a reopened ticket starts a fresh period.
        ticket.ack_deadline = deadlines.ack
        ticket.reply_deadline = reply
        await self.record(
            session,
            ticket,
            now,
            EventKind.REOPENED,
            actor,
            body=note,
            data=self._dept(ticket) | rating_data,
            notify_resident=False,
        )
        await self.record(
            session,
            ticket,
            now,
            EventKind.DEADLINE_SET,
            Actor.system("deadlines"),
            data=data | {"reason": "reopened"},
        )

    # -- reading ------------------------------------------------------------------------------

    async def get(self, ref: int | str) -> Ticket:
        """Return a ticket by id or number."""
        async with self.sessions() as session:
            ticket = await session.scalar(select(Ticket).where(ticket_ref_filter(ref)))
        if ticket is None:
            raise TicketNotFound(f"no ticket {ref}")
        return ticket

    async def timeline(self, ref: int | str, *, public_only: bool = False) -> list[TimelineEntry]:
        """Return a ticket's events in order; `public_only` keeps what the resident may see."""
        async with self.sessions() as session:
            ticket_id = await session.scalar(select(Ticket.id).where(ticket_ref_filter(ref)))
            if ticket_id is None:
                raise TicketNotFound(f"no ticket {ref}")
            return await self._timeline(session, ticket_id, public_only=public_only)

    async def _timeline(
        self, session: AsyncSession, ticket_id: int, *, public_only: bool
    ) -> list[TimelineEntry]:
        query = select(TicketEvent).where(TicketEvent.ticket_id == ticket_id)
        if public_only:
            query = query.where(TicketEvent.visible_to_resident.is_(True))
        events = (await session.execute(query.order_by(TicketEvent.id))).scalars()
        return [
            TimelineEntry(
                id=e.id,
                at=e.created_at,
                kind=e.kind,
                actor_type=e.actor_type,
                actor_id=e.actor_id if not public_only else "",
                body=e.body,
                data=dict(e.data or {}),
                visible_to_resident=e.visible_to_resident,
            )
            for e in events
        ]

    async def tickets_of_resident(
        self, resident_id: int, *, limit: int = 20, offset: int = 0
    ) -> list[TicketSummary]:
        """Return the resident's own tickets and those they support, newest first."""
        supported = select(TicketSupporter.ticket_id).where(
            TicketSupporter.resident_id == resident_id
        )
        async with self.sessions() as session:
            pseudonym = await self._pseudonym(session, resident_id)
            query = (
                select(Ticket)
                .where(or_(_owner_clause(resident_id, pseudonym), Ticket.id.in_(supported)))
                .order_by(Ticket.created_at.desc(), Ticket.id.desc())
                .limit(limit)
                .offset(offset)
            )
            tickets = (await session.execute(query)).scalars().all()
        return [
            _summary(t, "filed" if _owned(t, resident_id, pseudonym) else "supported")
            for t in tickets
        ]

    async def count_tickets_of_resident(self, resident_id: int) -> int:
        """Count the tickets `tickets_of_resident` pages through."""
        supported = select(TicketSupporter.ticket_id).where(
            TicketSupporter.resident_id == resident_id
        )
        async with self.sessions() as session:
            pseudonym = await self._pseudonym(session, resident_id)
            count = await session.scalar(
                select(func.count())
                .select_from(Ticket)
                .where(or_(_owner_clause(resident_id, pseudonym), Ticket.id.in_(supported)))
            )
        return int(count or 0)

    async def ticket_for_resident(self, ref: int | str, resident_id: int) -> TicketDetail:
        """Return a ticket as its resident (or a supporter) may see it; others get TicketNotFound."""
        async with self.sessions() as session:
            ticket = await session.scalar(select(Ticket).where(ticket_ref_filter(ref)))
            if ticket is None:
                raise TicketNotFound(f"no ticket {ref}")
            if await self._owns(session, ticket, resident_id):
                role = "filed"
            else:
                supporter = await session.scalar(
                    select(TicketSupporter.id).where(
                        TicketSupporter.ticket_id == ticket.id,
                        TicketSupporter.resident_id == resident_id,
                    )
                )
                if supporter is None:
                    # Not "forbidden": whether a number exists is nobody else's business.
                    raise TicketNotFound(f"no ticket {ref}")
                role = "supported"
            photos = await session.scalar(
                select(func.count())
                .select_from(TicketAttachment)
                .where(TicketAttachment.ticket_id == ticket.id)
            )
            # A supporter sees the status, not the other resident's conversation with the department.
            timeline = (
                await self._timeline(session, ticket.id, public_only=True)
                if role == "filed"
                else []
            )
        return TicketDetail(
            summary=_summary(ticket, role),
            description=ticket.description
            if role == "filed"
            else masked_excerpt(ticket.description),
            location_text=ticket.location_text if role == "filed" else None,
            latitude=ticket.latitude if role == "filed" else None,
            longitude=ticket.longitude if role == "filed" else None,
            photos=int(photos or 0) if role == "filed" else 0,
            anonymous=ticket.anonymous,
            share_identity=ticket.share_identity,
            extended=ticket.extended,
            extension_reason=ticket.extension_reason,
            supervised=ticket.supervised,
            supporters=ticket.supporters,
            rating=ticket.rating if role == "filed" else None,
            solved=ticket.solved if role == "filed" else None,
            timeline=tuple(timeline),
        )

    async def attachments(self, ref: int | str) -> list[TicketAttachment]:
        """Return a ticket's photos in the order they came."""
        async with self.sessions() as session:
            ticket_id = await session.scalar(select(Ticket.id).where(ticket_ref_filter(ref)))
            if ticket_id is None:
                raise TicketNotFound(f"no ticket {ref}")
            result = await session.execute(
                select(TicketAttachment)
                .where(TicketAttachment.ticket_id == ticket_id)
                .order_by(TicketAttachment.id)
            )
            return list(result.scalars())

    async def similar_open_tickets(
        self,
        ticket_type: str,
        category: str,
        text: str,
        *,
        exclude_resident_id: int | None = None,
        limit: int | None = None,
    ) -> list[SimilarTicket]:
        """Return open tickets of the same type and category whose text is like `text`."""
        settings = self.settings.tickets
        limit = settings.similar_max_offers if limit is None else limit
        if ticket_type not in VOICE_TYPES or limit <= 0 or not text.strip():
            return []
        since = self.clock() - dt.timedelta(days=settings.similar_window_days)
        query = (
            select(
                Ticket.id,
                Ticket.number,
                Ticket.description,
                Ticket.created_at,
                Ticket.supporters,
                Ticket.resident_id,
            )
            .where(
                Ticket.type == ticket_type,
                Ticket.category == category,
                Ticket.status.in_(OPEN_STATUSES),
                Ticket.created_at >= since,
                Ticket.sample.is_(False),
            )
            .order_by(Ticket.created_at.desc())
            .limit(500)
        )
        async with self.sessions() as session:
            rows = (await session.execute(query)).all()
        candidates = [
            r for r in rows if exclude_resident_id is None or r[5] != exclude_resident_id
        ]
        if not candidates:
            return []
        matches = process.extract(
            _bigrams(text),
            [_bigrams(r[2]) for r in candidates],
            scorer=fuzz.token_set_ratio,
            score_cutoff=settings.similar_min_score,
            limit=limit,
        )
        return [
            SimilarTicket(
                id=candidates[index][0],
                number=candidates[index][1],
                excerpt=masked_excerpt(candidates[index][2]),
                created_at=candidates[index][3],
                supporters=candidates[index][4],
                score=round(score, 1),
            )
            for _, score, index in matches
        ]

    # -- building blocks shared with the clock (bot.tickets.clock) --------------------------------------

    @asynccontextmanager
    async def locked_ticket(
        self, ref: int | str
    ) -> AsyncIterator[tuple[AsyncSession, Ticket, dt.datetime]]:
        """Open a transaction holding the ticket's lock; it commits when the block ends.

        The first statement writes the ticket row: on PostgreSQL that locks the row, on SQLite it
        takes the write lock (pysqlite would otherwise read outside the transaction), so what is
        read next cannot change under the caller's feet.
        """
        now = self.clock()
        async with self._write_gate, self.sessions() as session, session.begin():
            ticket_id = (
                await session.execute(
                    update(Ticket)
                    .where(ticket_ref_filter(ref))
                    .values(updated_at=now)
                    .returning(Ticket.id)
                    .execution_options(synchronize_session=False)
                )
            ).scalar_one_or_none()
            if ticket_id is None:
                raise TicketNotFound(f"no ticket {ref}")
            ticket = await session.get(Ticket, ticket_id, populate_existing=True)
            assert ticket is not None
            yield session, ticket, now
        self._changed()

    async def record(
        self,
        session: AsyncSession,
        ticket: Ticket,
        now: dt.datetime,
        kind: EventKind,
        actor: Actor,
        *,
        body: str = "",
        data: dict[str, Any] | None = None,
        visible: bool = True,
        notify_resident: bool = True,
        former_department: str | None = None,
        deliver: bool = True,
    ) -> TicketEvent:
        """Append an event to a ticket and add the deliveries it causes, in the caller's transaction.

        `deliver=False` leaves the deliveries to the caller (filing adds them once the ticket has
        its number).
        """
        payload = dict(data or {})
        # Texts pass through `clean_text`; who acts comes from elsewhere (a Telegram name, a
        # console account, a department's system) and may hold what PostgreSQL cannot store.
        if actor.name:
            payload.setdefault("actor_name", storable(actor.name))
        if actor.department_id:
            payload.setdefault("actor_department_id", actor.department_id)
        event = TicketEvent(
            ticket_id=ticket.id,
            kind=kind,
            actor_type=actor.type,
            actor_id=storable(actor.id),
            body=body,
            data=payload,
            visible_to_resident=visible,
            created_at=now,
        )
        session.add(event)
        ticket.updated_at = now
        await session.flush()
        if not deliver:
            return event
        await self.outbox.enqueue(
            session,
            ticket,
            event,
            now=now,
            notify_resident=notify_resident,
            former_department=former_department,
        )
        return event

    def _assign(self, ticket: Ticket, department_id: str, now: dt.datetime) -> None:
        ticket.department_id = department_id
        ticket.status = TicketStatus.ASSIGNED
        ticket.assigned_at = now
        ticket.acknowledged_at = None
        ticket.ack_overdue = False
        ticket.ack_reminded_at = None
        ticket.awaiting_resident = False

    def _dept(self, ticket: Ticket) -> dict[str, Any]:
        return {"department_id": ticket.department_id}

    @staticmethod
    def _require(
        ticket: Ticket,
        actor: Actor,
        statuses: frozenset[TicketStatus] | set[TicketStatus],
        action: str,
        *,
        staff_only: bool = False,
    ) -> None:
        if actor.type == "resident":
            raise NotPermitted(f"a resident cannot {action}")
        if staff_only and actor.type == "department":
            raise NotPermitted(f"a department cannot {action}")
        if actor.type == "department" and actor.department_id != ticket.department_id:
            # Checked before the status, so another department learns nothing about the ticket.
            raise NotPermitted(f"{ticket.number} is not with {actor.department_id}")
        if ticket.status not in statuses:
            raise TransitionNotAllowed(
                f"cannot {action} {ticket.number}: it is {ticket.status}", code=ticket.status
            )

    async def _pseudonym(self, session: AsyncSession, resident_id: int) -> str | None:
        """Return the pseudonym the resident's anonymous reports are filed under, if any."""
        pseudonyms = self.pseudonyms
        if pseudonyms is None:
            return None
        telegram_user_id = await session.scalar(
            select(Resident.telegram_user_id).where(Resident.id == resident_id)
        )
        return None if telegram_user_id is None else pseudonyms.pseudonym(telegram_user_id)

    async def _owns(self, session: AsyncSession, ticket: Ticket, resident_id: int) -> bool:
        if ticket.resident_id is not None:
            return ticket.resident_id == resident_id
        if not ticket.resident_pseudonym:
            return False
        return _owned(ticket, resident_id, await self._pseudonym(session, resident_id))

    async def _require_owner(
        self, session: AsyncSession, ticket: Ticket, resident_id: int
    ) -> None:
        if not await self._owns(session, ticket, resident_id):
            raise TicketNotFound(f"no ticket {ticket.number} of this resident")


def _owner_clause(resident_id: int, pseudonym: str | None) -> Any:
    """WHERE clause: the tickets a resident filed, anonymous reports included."""
    if pseudonym is None:
        return Ticket.resident_id == resident_id
    return or_(Ticket.resident_id == resident_id, Ticket.resident_pseudonym == pseudonym)


def _owned(ticket: Ticket, resident_id: int, pseudonym: str | None) -> bool:
    if ticket.resident_id is not None:
        return ticket.resident_id == resident_id
    return pseudonym is not None and ticket.resident_pseudonym == pseudonym


def _type_of(ticket: Ticket) -> TicketType:
    """Return a stored ticket's type, checked (the column is plain text)."""
    try:
        return TicketType(ticket.type)
    except ValueError:
        raise TicketError(f"{ticket.number} has an unknown type {ticket.type!r}") from None


def _document_row(ticket_id: int, document: Document, now: dt.datetime) -> TicketDocument:
    if isinstance(document, DocumentFile):
        return TicketDocument(
            ticket_id=ticket_id,
            file_name=storable(document.file_name),
            media_type=document.media_type,
            size=document.size,
            sha256=document.sha256,
            content=document.content,
            telegram_file_id=storable(document.telegram_file_id)[:256],
            url="",
            created_at=now,
        )
    return TicketDocument(
        ticket_id=ticket_id,
        file_name="",
        media_type="",
        size=0,
        sha256="",
        content=None,
        telegram_file_id="",
        url=storable(document.url),
        created_at=now,
    )


def _summary(ticket: Ticket, role: str) -> TicketSummary:
    return TicketSummary(
        id=ticket.id,
        number=ticket.number,
        type=ticket.type,
        category=ticket.category,
        status=ticket.status,
        department_id=ticket.department_id,
        created_at=ticket.created_at,
        reply_deadline=ticket.reply_deadline,
        overdue=ticket.overdue,
        awaiting_resident=ticket.awaiting_resident,
        role=role,
    )


def triage_filter() -> Any:
    """Return the WHERE clause of the staff triage queue: open tickets with no department."""
    return and_(Ticket.status.in_(TRIAGE_STATUSES), Ticket.department_id.is_(None))
