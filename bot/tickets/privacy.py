"""Residents' personal data (PIPL): their own copy, forgetting, and retention.

- `PrivacyDesk.export`: everything held about a resident, as JSON (/mydata), at most once per
  [privacy] export_interval_minutes.
- `PrivacyDesk.forget`: a resident's personal data erased or pseudonymised where no open ticket
  and no legal retention needs it (/forget); what is kept is listed, with why.
- `PrivacyDesk.sweep`: the retention job. Closed tickets lose their names, phones, photos,
  places and Telegram accounts after [privacy] closed_ticket_days (disclosure applications
  after disclosure_days); questions lose their texts after question_days; residents not seen
  for as long, and with nothing left to follow, become husks. Texts of tickets and every figure
  stay. Anonymous reports from before pseudonyms are pseudonymised (bot/core/privacy.py).

Every run and every export or erasure is written to the audit log.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, delete, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.audit import record_audit
from bot.core.config import Settings
from bot.core.db import write_gate
from bot.core.models import (
    AttachmentFile,
    Escalation,
    OutboxMessage,
    Question,
    Resident,
    Ticket,
    TicketAttachment,
    TicketEvent,
    TicketSupporter,
    utcnow,
)
from bot.core.privacy import Pseudonyms
from bot.core.vocabulary import TicketStatus, TicketType

log = logging.getLogger(__name__)

FINAL = (TicketStatus.CLOSED, TicketStatus.REJECTED)
EXPORT_VERSION = 1
# Tickets erased in one transaction.
_BATCH = 200
_LONG_DIGITS = re.compile(r"\d[\d\s-]{5,}\d")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")


def mask_contacts_in_text(text: str) -> str:
    """Return a text with phone-like numbers and e-mail addresses masked (what a resident may
    have typed into a ticket's description)."""
    masked = _EMAIL.sub("***@***", text)
    return _LONG_DIGITS.sub(lambda m: "*" * (len(m.group()) - 4) + m.group()[-4:], masked)


@dataclass(frozen=True, slots=True)
class ExportReady:
    """A resident's data, ready to send."""

    content: bytes
    filename: str
    tickets: int
    questions: int


@dataclass(frozen=True, slots=True)
class ExportTooSoon:
    """The resident took a copy a short while ago."""

    minutes: int


@dataclass(slots=True)
class ForgetReport:
    """What /forget erased and what it kept, with why."""

    known: bool = True
    questions: int = 0
    tickets_erased: int = 0
    # Ticket numbers kept because they are still being handled.
    open_tickets: list[str] = field(default_factory=list)
    # Disclosure applications kept for the law's retention period.
    retained_disclosures: list[str] = field(default_factory=list)
    # True when the Telegram account itself was forgotten (nothing left to follow).
    account_forgotten: bool = False


@dataclass(slots=True)
class RetentionReport:
    """What one retention sweep erased."""

    tickets: int = 0
    questions: int = 0
    residents: int = 0
    pseudonymised: int = 0

    @property
    def total(self) -> int:
        return self.tickets + self.questions + self.residents + self.pseudonymised

    def as_dict(self) -> dict[str, int]:
        return {
            "tickets": self.tickets,
            "questions": self.questions,
            "residents": self.residents,
            "pseudonymised": self.pseudonymised,
        }


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment else None


class PrivacyDesk:
    """Exports, forgets and sweeps residents' personal data; shared by the bot, the worker and
    the command line."""

    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        *,
        clock: Callable[[], dt.datetime] = utcnow,
        pseudonyms: Pseudonyms | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.clock = clock
        self._pseudonyms = pseudonyms
        self._gate = write_gate(sessions)

    @property
    def pseudonyms(self) -> Pseudonyms | None:
        """The keyed pseudonyms, from BOT_PRIVACY_SECRET unless given."""
        return self._pseudonyms or Pseudonyms.from_environment()

    def _owned(self, resident: Resident) -> Any:
        """WHERE clause: the tickets a resident filed, anonymous ones included."""
        clauses = [Ticket.resident_id == resident.id]
        pseudonyms = self.pseudonyms
        if pseudonyms is not None:
            clauses.append(
                Ticket.resident_pseudonym == pseudonyms.pseudonym(resident.telegram_user_id)
            )
        return or_(*clauses)

    # -- /mydata ------------------------------------------------------------------------------

    async def export(self, telegram_user_id: int) -> ExportReady | ExportTooSoon | None:
        """Return everything held about a resident as JSON (None for a stranger)."""
        now = self.clock()
        interval = dt.timedelta(minutes=self.settings.privacy.export_interval_minutes)
        async with self._gate, self.sessions() as session, session.begin():
            resident = await session.scalar(
                select(Resident).where(Resident.telegram_user_id == telegram_user_id)
            )
            if resident is None:
                return None
            last = resident.data_exported_at
            if last is not None and now - last < interval:
                left = interval - (now - last)
                return ExportTooSoon(minutes=max(1, -(-int(left.total_seconds()) // 60)))
            data = await self._collect(session, resident, now)
            resident.data_exported_at = now
            await record_audit(
                session,
                user_id=None,
                action="privacy.export",
                target_type="resident",
                target_id=str(resident.id),
                detail={"tickets": len(data["tickets"]), "questions": len(data["questions"])},
            )
        content = json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8")
        stamp = now.strftime("%Y%m%d")
        return ExportReady(
            content=content,
            filename=f"mydata-{stamp}.json",
            tickets=len(data["tickets"]),
            questions=len(data["questions"]),
        )

    async def _collect(
        self, session: AsyncSession, resident: Resident, now: dt.datetime
    ) -> dict[str, Any]:
        questions = (
            await session.scalars(
                select(Question)
                .where(Question.resident_id == resident.id)
                .order_by(Question.created_at, Question.id)
            )
        ).all()
        answers = {
            e.question_id: e
            for e in (
                await session.scalars(
                    select(Escalation).where(Escalation.resident_id == resident.id)
                )
            ).all()
        }
        tickets = (
            await session.scalars(
                select(Ticket).where(self._owned(resident)).order_by(Ticket.created_at, Ticket.id)
            )
        ).all()
        ids = [t.id for t in tickets]
        events: dict[int, list[TicketEvent]] = {}
        photos: dict[int, int] = {}
        if ids:
            for event in (
                await session.scalars(
                    select(TicketEvent)
                    .where(
                        TicketEvent.ticket_id.in_(ids),
                        TicketEvent.visible_to_resident.is_(True),
                    )
                    .order_by(TicketEvent.created_at, TicketEvent.id)
                )
            ).all():
                events.setdefault(event.ticket_id, []).append(event)
            for ticket_id, count in (
                await session.execute(
                    select(TicketAttachment.ticket_id, func.count())
                    .where(TicketAttachment.ticket_id.in_(ids))
                    .group_by(TicketAttachment.ticket_id)
                )
            ).all():
                photos[ticket_id] = int(count)
        supported = (
            await session.scalars(
                select(Ticket.number)
                .join(TicketSupporter, TicketSupporter.ticket_id == Ticket.id)
                .where(TicketSupporter.resident_id == resident.id)
                .order_by(Ticket.number)
            )
        ).all()
        return {
            "format": "city-bot-personal-data",
            "version": EXPORT_VERSION,
            "generated_at": now.isoformat(),
            "resident": {
                "telegram_user_id": resident.telegram_user_id,
                "name": resident.display_name,
                "language": resident.language,
                "first_contact_at": _iso(resident.created_at),
                "last_seen_at": _iso(resident.last_seen_at),
                "blocked_bot": resident.blocked_bot,
            },
            "consents": {
                "privacy_notice_shown_at": _iso(resident.privacy_notice_at),
                "previous_export_at": _iso(resident.data_exported_at),
                "identity_shared_with_department": [t.number for t in tickets if t.share_identity],
                "anonymous_reports": [t.number for t in tickets if t.anonymous],
            },
            "questions": [
                {
                    "asked_at": _iso(q.created_at),
                    "text": q.text,
                    "erased_at": _iso(q.text_erased_at),
                    "decision": q.decision,
                    "answer_item": q.chosen_item_id or q.item_id,
                    "feedback": q.feedback,
                    "escalated": q.escalated,
                    "staff_answer": answers[q.id].answer_text if q.id in answers else None,
                }
                for q in questions
            ],
            "tickets": [
                {
                    "number": t.number,
                    "type": t.type,
                    "category": t.category,
                    "status": t.status,
                    "description": t.description,
                    "location": {
                        "text": t.location_text,
                        "latitude": t.latitude,
                        "longitude": t.longitude,
                    },
                    "contact_name": t.contact_name,
                    "contact_phone": t.contact_phone,
                    "share_identity": t.share_identity,
                    "anonymous": t.anonymous,
                    "photos": photos.get(t.id, 0),
                    "created_at": _iso(t.created_at),
                    "reply_deadline": _iso(t.reply_deadline),
                    "closed_at": _iso(t.closed_at),
                    "solved": t.solved,
                    "rating": t.rating,
                    "rating_comment": t.rating_comment,
                    "personal_data_erased_at": _iso(t.personal_data_erased_at),
                    "events": [
                        {"at": _iso(e.created_at), "kind": e.kind, "text": e.body}
                        for e in events.get(t.id, [])
                    ],
                }
                for t in tickets
            ],
            "supported_tickets": list(supported),
        }

    # -- /forget ------------------------------------------------------------------------------

    async def forget(self, telegram_user_id: int) -> ForgetReport:
        """Erase what can be erased of a resident; return what was kept and why."""
        now = self.clock()
        report = ForgetReport()
        async with self._gate, self.sessions() as session, session.begin():
            resident = await session.scalar(
                select(Resident).where(Resident.telegram_user_id == telegram_user_id)
            )
            if resident is None:
                report.known = False
                return report
            tickets = (
                await session.scalars(
                    select(Ticket).where(self._owned(resident)).order_by(Ticket.id)
                )
            ).all()
            disclosure_kept = dt.timedelta(days=self.settings.privacy.disclosure_days)
            erase: list[Ticket] = []
            for ticket in tickets:
                if ticket.status not in FINAL:
                    report.open_tickets.append(ticket.number)
                elif (
                    ticket.type == TicketType.DISCLOSURE
                    and now - (ticket.closed_at or ticket.updated_at) < disclosure_kept
                ):
                    report.retained_disclosures.append(ticket.number)
                elif ticket.personal_data_erased_at is None:
                    erase.append(ticket)
            for ticket in erase:
                await _erase_ticket(session, ticket, now)
            report.tickets_erased = len(erase)
            report.questions = await _erase_questions(
                session, Question.resident_id == resident.id, now
            )
            await session.execute(
                delete(TicketSupporter).where(TicketSupporter.resident_id == resident.id)
            )
            await session.execute(
                update(Escalation)
                .where(Escalation.resident_id == resident.id, Escalation.status == "open")
                .values(status="closed")
            )
            resident.display_name = ""
            if not report.open_tickets and not report.retained_disclosures:
                _husk(resident, now)
                report.account_forgotten = True
            await record_audit(
                session,
                user_id=None,
                action="privacy.forget",
                target_type="resident",
                target_id=str(resident.id),
                detail={
                    "questions": report.questions,
                    "tickets_erased": report.tickets_erased,
                    "open_tickets": report.open_tickets,
                    "retained_disclosures": report.retained_disclosures,
                    "account_forgotten": report.account_forgotten,
                },
            )
        log.info(
            "resident %d forgotten: %d questions, %d tickets erased, %d kept",
            resident.id,
            report.questions,
            report.tickets_erased,
            len(report.open_tickets) + len(report.retained_disclosures),
        )
        return report

    # -- retention ----------------------------------------------------------------------------

    async def sweep(self) -> RetentionReport:
        """Erase what is past its retention period; return the counts (audited when not zero)."""
        now = self.clock()
        privacy = self.settings.privacy
        report = RetentionReport()
        ticket_cut = now - dt.timedelta(days=privacy.closed_ticket_days)
        disclosure_cut = now - dt.timedelta(days=privacy.disclosure_days)
        ended = func.coalesce(Ticket.closed_at, Ticket.updated_at)
        due = and_(
            Ticket.status.in_(FINAL),
            Ticket.personal_data_erased_at.is_(None),
            or_(
                and_(Ticket.type != TicketType.DISCLOSURE, ended < ticket_cut),
                and_(Ticket.type == TicketType.DISCLOSURE, ended < disclosure_cut),
            ),
        )
        numbers: list[str] = []
        while True:
            async with self._gate, self.sessions() as session, session.begin():
                batch = (
                    await session.scalars(
                        select(Ticket)
                        .where(due)
                        .order_by(Ticket.id)
                        .limit(_BATCH)
                        .with_for_update(skip_locked=True)
                    )
                ).all()
                for ticket in batch:
                    await _erase_ticket(session, ticket, now)
                    numbers.append(ticket.number)
            report.tickets += len(batch)
            if len(batch) < _BATCH:
                break
        async with self._gate, self.sessions() as session, session.begin():
            report.questions = await _erase_questions(
                session, Question.created_at < now - dt.timedelta(days=privacy.question_days), now
            )
            report.pseudonymised = await self._pseudonymise_legacy(session)
            report.residents = await self._husk_idle(
                session, now - dt.timedelta(days=privacy.question_days), now
            )
            if report.total:
                await record_audit(
                    session,
                    user_id=None,
                    action="privacy.sweep",
                    target_type="retention",
                    detail=report.as_dict()
                    | {
                        "ticket_numbers": numbers[:500],
                        "closed_ticket_days": privacy.closed_ticket_days,
                        "disclosure_days": privacy.disclosure_days,
                        "question_days": privacy.question_days,
                    },
                )
        if report.total:
            log.info(
                "privacy sweep: %d tickets, %d questions, %d residents erased; "
                "%d anonymous reports pseudonymised",
                report.tickets,
                report.questions,
                report.residents,
                report.pseudonymised,
            )
        return report

    async def run_forever(self, stop: asyncio.Event | None = None) -> None:
        """Sweep every [privacy] sweep_interval_minutes until `stop` is set (or cancelled)."""
        stop = stop or asyncio.Event()
        while not stop.is_set():
            try:
                await self.sweep()
            except Exception:
                log.exception("privacy sweep failed; trying again next time")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    stop.wait(), timeout=self.settings.privacy.sweep_interval_minutes * 60
                )

    async def _pseudonymise_legacy(self, session: AsyncSession) -> int:
        """Give anonymous reports stored with their resident a pseudonym instead."""
        pseudonyms = self.pseudonyms
        if pseudonyms is None:
            return 0
        rows = (
            await session.execute(
                select(Ticket, Resident.telegram_user_id)
                .join(Resident, Resident.id == Ticket.resident_id)
                .where(Ticket.anonymous.is_(True))
            )
        ).all()
        for ticket, telegram_user_id in rows:
            ticket.resident_pseudonym = pseudonyms.pseudonym(telegram_user_id)
            ticket.resident_sealed = (
                None if ticket.status in FINAL else pseudonyms.seal(telegram_user_id)
            )
            ticket.resident_id = None
            for row in (
                await session.scalars(
                    select(OutboxMessage).where(
                        OutboxMessage.ticket_id == ticket.id, OutboxMessage.channel == "resident"
                    )
                )
            ).all():
                payload = dict(row.payload)
                payload["resident_id"] = None
                if ticket.resident_sealed and row.status == "pending":
                    payload["resident_sealed"] = ticket.resident_sealed
                row.payload = payload
        return len(rows)

    async def _husk_idle(self, session: AsyncSession, cut: dt.datetime, now: dt.datetime) -> int:
        """Forget residents not seen since `cut` who have nothing left to follow."""
        holds = exists().where(
            Ticket.resident_id == Resident.id, Ticket.personal_data_erased_at.is_(None)
        )
        idle = (
            await session.scalars(
                select(Resident).where(
                    Resident.forgotten_at.is_(None), Resident.last_seen_at < cut, ~holds
                )
            )
        ).all()
        pseudonyms = self.pseudonyms
        husked = 0
        for resident in idle:
            if pseudonyms is not None:
                # An anonymous report still being followed needs its resident to be found.
                pseudonym = pseudonyms.pseudonym(resident.telegram_user_id)
                following = await session.scalar(
                    select(Ticket.id)
                    .where(
                        Ticket.resident_pseudonym == pseudonym,
                        Ticket.personal_data_erased_at.is_(None),
                    )
                    .limit(1)
                )
                if following is not None:
                    continue
            await session.execute(
                delete(TicketSupporter).where(TicketSupporter.resident_id == resident.id)
            )
            _husk(resident, now)
            husked += 1
        return husked


def _husk(resident: Resident, now: dt.datetime) -> None:
    """Leave a resident row that names nobody: its questions and figures still count."""
    resident.telegram_user_id = -resident.id
    resident.chat_id = 0
    resident.display_name = ""
    resident.forgotten_at = now


async def _erase_questions(session: AsyncSession, where: Any, now: dt.datetime) -> int:
    """Erase the texts of questions (and the chat they came from); return how many."""
    chosen = and_(where, Question.text_erased_at.is_(None))
    ids = list((await session.scalars(select(Question.id).where(chosen))).all())
    for start in range(0, len(ids), 500):
        part = ids[start : start + 500]
        await session.execute(
            update(Question)
            .where(Question.id.in_(part))
            .values(text="", normalized="", chat_id=0, message_id=None, text_erased_at=now)
            .execution_options(synchronize_session=False)
        )
        # A staff answer in the outbox quotes the question.
        escalations = (
            await session.scalars(select(Escalation.id).where(Escalation.question_id.in_(part)))
        ).all()
        if escalations:
            keys = [f"escalation:{e}:answer" for e in escalations]
            for row in (
                await session.scalars(
                    select(OutboxMessage).where(OutboxMessage.idempotency_key.in_(keys))
                )
            ).all():
                row.payload = dict(row.payload) | {"question": ""}
    return len(ids)


async def _erase_ticket(session: AsyncSession, ticket: Ticket, now: dt.datetime) -> None:
    """Erase a ticket's personal data; its text (numbers masked), dates and figures stay."""
    ticket.contact_name = None
    ticket.contact_phone = None
    ticket.location_text = None
    ticket.latitude = None
    ticket.longitude = None
    ticket.resident_id = None
    ticket.resident_pseudonym = None
    ticket.resident_sealed = None
    ticket.description = mask_contacts_in_text(ticket.description)
    if ticket.rating_comment:
        ticket.rating_comment = mask_contacts_in_text(ticket.rating_comment)
    ticket.personal_data_erased_at = now
    # The photos' kept bytes go with them (they reference the attachment rows).
    photos = select(TicketAttachment.id).where(TicketAttachment.ticket_id == ticket.id)
    await session.execute(
        delete(AttachmentFile)
        .where(AttachmentFile.attachment_id.in_(photos))
        .execution_options(synchronize_session=False)
    )
    await session.execute(delete(TicketAttachment).where(TicketAttachment.ticket_id == ticket.id))
    await session.execute(delete(TicketSupporter).where(TicketSupporter.ticket_id == ticket.id))
    await session.execute(
        update(TicketEvent)
        .where(TicketEvent.ticket_id == ticket.id, TicketEvent.actor_type == "resident")
        .values(actor_id="")
        .execution_options(synchronize_session=False)
    )
    rows: Sequence[OutboxMessage] = (
        await session.scalars(select(OutboxMessage).where(OutboxMessage.ticket_id == ticket.id))
    ).all()
    for row in rows:
        row.payload = _scrubbed(row.payload)


def _scrubbed(payload: dict[str, Any]) -> dict[str, Any]:
    """Return an outbox payload without the resident's identity, place or chat."""
    cleaned = dict(payload)
    for key in ("resident_id", "resident_sealed"):
        if key in cleaned:
            cleaned[key] = None
    if isinstance(cleaned.get("description"), str):
        cleaned["description"] = mask_contacts_in_text(cleaned["description"])
    inner = cleaned.get("ticket")
    if isinstance(inner, dict):
        inner = dict(inner)
        for key in ("resident", "location"):
            if key in inner:
                inner[key] = None
        if isinstance(inner.get("description"), str):
            inner["description"] = mask_contacts_in_text(inner["description"])
        cleaned["ticket"] = inner
    return cleaned
