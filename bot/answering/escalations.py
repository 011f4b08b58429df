"""Questions handed to staff: when a question goes to them and what the resident is told,
opening escalations, recording staff answers, and which escalations are due to be posted.

`EscalationDesk.answer_escalation` is the one way an answer reaches a resident, whether staff
replied in the Telegram staff group or in the web console: the first answer wins (a conditional
UPDATE on the row, so two staff members, or two processes, cannot both answer), and the answer
is written to the outbox in the same transaction (bot/tickets/outbox.py), so that it is
delivered, and retried after a failure, like every other message to a resident.

The desk knows nothing of Telegram. What it needs from there is attached, not imported:

- a `StaffBoard` shows escalations to staff (the staff group: bot/telegram/escalation_posts.py);
- a `Courier` makes the first delivery of an answer at once, so that staff hear whether it
  reached the resident (the delivery worker with a Telegram channel).

Without a board, escalations wait in the database for the web console; without a courier,
answers wait in the outbox for a delivery worker. How staff answer is described in
docs/telegram.md.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from sqlalchemy import bindparam, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.answering.matching import MatchResult
from bot.answering.staff_hours import OfficeHours
from bot.core.config import Settings
from bot.core.db import storable, write_gate
from bot.core.i18n import Html, t
from bot.core.models import Escalation, Question, Resident, utcnow
from bot.core.workdays import WorkCalendar
from bot.tickets.delivery import Delivery
from bot.tickets.outbox import escalation_answer_message

log = logging.getLogger(__name__)

Cause = Literal["escalate", "person", "not_helpful"]
Via = Literal["telegram", "console"]
# delivered: the resident has it; queued: the first try failed, the outbox tries again;
# undeliverable: it could not be sent (the resident blocked the bot, or nothing here can send).
AnswerStatus = Literal[
    "delivered", "queued", "undeliverable", "already_answered", "not_found", "invalid"
]
# What the delivery worker made of the first try, as the answer's outcome.
_DELIVERY_OUTCOMES: dict[str, AnswerStatus] = {
    "sent": "delivered",
    "pending": "queued",
    "lost": "queued",
    "dropped": "undeliverable",
    "failed": "undeliverable",
}

MAX_ANSWER_CHARS = 3000


# The statements every escalation runs, built once (Core, not the ORM's unit of work: an
# escalation costs a resident's question a few of them, on the bot's busiest path).
_QUESTION_FOR_ESCALATION = (
    select(
        Question.resident_id,
        Question.text,
        Question.language,
        Question.reason,
        Question.candidates,
        Resident.chat_id,
    )
    .join(Resident, Resident.id == Question.resident_id)
    .where(Question.id == bindparam("id"))
)
_OPEN_ESCALATION = insert(Escalation).returning(Escalation.id)
_MARK_ESCALATED = (
    update(Question)
    .where(Question.id == bindparam("question"))
    .values(escalated=True)
    .execution_options(synchronize_session=False)
)
_NOTE_POSTED = (
    update(Escalation)
    .where(Escalation.id == bindparam("escalation"))
    .values(
        staff_chat_id=bindparam("chat"),
        staff_message_id=bindparam("message"),
        posted_at=bindparam("at"),
        repost_count=Escalation.repost_count + bindparam("reposted"),
    )
    .execution_options(synchronize_session=False)
)


@dataclass(frozen=True, slots=True)
class EscalationView:
    """An escalation with its question and resident, as staff and the bot see it."""

    id: int
    question_id: int
    resident_id: int
    resident_chat_id: int
    question: str
    language: str
    cause: str
    reason: str
    candidates: tuple[dict[str, Any], ...]
    status: str
    staff_chat_id: int | None
    staff_message_id: int | None
    posted_at: dt.datetime | None
    repost_count: int
    answered_by: str | None
    answered_via: str | None
    answer_text: str | None
    answered_at: dt.datetime | None
    learned_item_id: str | None
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class AnswerOutcome:
    """What became of a staff answer; `problem` says why an answer was refused."""

    status: AnswerStatus
    escalation: EscalationView | None = None
    problem: str = ""


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class StaffBoard(Protocol):
    """Where staff see escalations (the Telegram staff group)."""

    async def post(self, view: EscalationView) -> bool:
        """Post an open escalation (again, if it was posted before); True if it was posted."""
        ...

    async def refresh(self, view: EscalationView) -> None:
        """Show an escalation's current state (answered by whom, learned) where it was posted."""
        ...


class Courier(Protocol):
    """Delivers a claimed outbox row now (bot.tickets.delivery.DeliveryWorker.deliver)."""

    async def deliver(self, item: Delivery) -> str:
        """Deliver and record the outcome; return the row's new status (sent, pending, …)."""
        ...


@dataclass(frozen=True, slots=True)
class Handover:
    """A question handed to staff: the new escalation (None if it was with them already) and
    what the resident is told."""

    escalation: EscalationView | None
    notice: Html


class EscalationDesk:
    """Opens and answers escalations, and says which are due to be posted to staff."""

    def __init__(self, settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.settings = settings
        self.sessions = sessions
        self._gate = write_gate(sessions)
        self.board: StaffBoard | None = None
        self.courier: Courier | None = None

    def attach(self, board: StaffBoard | None = None, courier: Courier | None = None) -> None:
        """Show escalations to staff on `board`; deliver answers at once with `courier`."""
        if board is not None:
            self.board = board
        if courier is not None:
            self.courier = courier

    @property
    def staff_chat_id(self) -> int | None:
        return self.settings.telegram.staff_chat_id

    @property
    def staff_language(self) -> str:
        return self.settings.telegram.staff_language

    # -- reading ---------------------------------------------------------------------------

    async def get(self, escalation_id: int) -> EscalationView | None:
        """Return one escalation with its question."""
        async with self.sessions() as session:
            rows = await self._select(session, Escalation.id == escalation_id)
        return rows[0] if rows else None

    async def find_by_staff_message(self, chat_id: int, message_id: int) -> EscalationView | None:
        """Return the escalation whose current staff post is this message."""
        async with self.sessions() as session:
            rows = await self._select(
                session,
                Escalation.staff_chat_id == chat_id,
                Escalation.staff_message_id == message_id,
            )
        return rows[0] if rows else None

    async def open_escalations(self) -> list[EscalationView]:
        """Return the unanswered escalations, oldest first (the console's queue)."""
        async with self.sessions() as session:
            return await self._select(session, Escalation.status == "open")

    @staticmethod
    async def _select(session: AsyncSession, *conditions: Any) -> list[EscalationView]:
        result = await session.execute(
            select(Escalation, Question, Resident.chat_id)
            .join(Question, Question.id == Escalation.question_id)
            .join(Resident, Resident.id == Escalation.resident_id)
            .where(*conditions)
            .order_by(Escalation.id)
        )
        return [
            EscalationView(
                id=e.id,
                question_id=q.id,
                resident_id=e.resident_id,
                resident_chat_id=chat_id,
                question=q.text,
                language=q.language,
                cause=e.cause,
                reason=q.reason,
                candidates=tuple(q.candidates or ()),
                status=e.status,
                staff_chat_id=e.staff_chat_id,
                staff_message_id=e.staff_message_id,
                posted_at=e.posted_at,
                repost_count=e.repost_count,
                answered_by=e.answered_by,
                answered_via=e.answered_via,
                answer_text=e.answer_text,
                answered_at=e.answered_at,
                learned_item_id=e.learned_item_id,
                created_at=e.created_at,
            )
            for e, q, chat_id in result.all()
        ]

    # -- opening and posting ----------------------------------------------------------------

    async def open(self, question_id: int, cause: Cause) -> EscalationView | None:
        """Hand a question to staff; None if it is already with them."""
        created_at = utcnow()
        async with self._gate, self.sessions() as session:
            found = (await session.execute(_QUESTION_FOR_ESCALATION, {"id": question_id})).first()
            if found is None:
                raise LookupError(f"no question {question_id}")
            try:
                escalation_id = (
                    await session.execute(
                        _OPEN_ESCALATION,
                        {
                            "question_id": question_id,
                            "resident_id": found.resident_id,
                            "cause": cause,
                            "status": "open",
                            "repost_count": 0,
                            "created_at": created_at,
                        },
                    )
                ).scalar_one()
                await session.execute(_MARK_ESCALATED, {"question": question_id})
                await session.commit()
            except IntegrityError:
                await session.rollback()
                return None
        # Built from what was just read and written: the escalation is new, nobody else has it.
        return EscalationView(
            id=escalation_id,
            question_id=question_id,
            resident_id=found.resident_id,
            resident_chat_id=found.chat_id,
            question=found.text,
            language=found.language,
            cause=cause,
            reason=found.reason,
            candidates=tuple(found.candidates or ()),
            status="open",
            staff_chat_id=None,
            staff_message_id=None,
            posted_at=None,
            repost_count=0,
            answered_by=None,
            answered_via=None,
            answer_text=None,
            answered_at=None,
            learned_item_id=None,
            created_at=created_at,
        )

    async def hand_over(
        self,
        question_id: int,
        cause: Cause,
        language: str,
        calendar: WorkCalendar | None = None,
        now: dt.datetime | None = None,
    ) -> Handover:
        """Hand a question to staff and say what the resident is told (posting is separate)."""
        opened = await self.open(question_id, cause)
        if opened is None:
            return Handover(None, t("escalation_already_open", language))
        return Handover(opened, staff_answer_notice(self.settings, language, calendar, now))

    def render_post(self, view: EscalationView) -> Html:
        """Return the staff-group post of an escalation (HTML, everything escaped)."""
        lang = self.staff_language
        if view.candidates:
            lines = "\n".join(
                f"{n}. {c.get('title', '')} ({c.get('id', '')}, {float(c.get('score', 0)):.2f})"
                for n, c in enumerate(view.candidates[:3], start=1)
            )
            candidates = t(
                "staff_candidates", lang, reason=reason_phrase(view.reason, lang), lines=lines
            )
        else:
            candidates = t(
                "staff_no_candidates", lang, reason=reason_phrase(view.reason, lang) or "-"
            )
        text = t(
            "staff_escalation",
            lang,
            number=view.id,
            language=t(f"staff_language_{'en' if view.language == 'en' else 'zh'}", lang),
            cause=t(f"staff_cause_{view.cause}", lang),
            question=_clip(view.question, 1500),
            candidates=candidates,
        )
        if view.status == "answered" and view.answer_text is not None:
            when = view.answered_at.astimezone(self._zone()) if view.answered_at else None
            text = Html(
                text
                + "\n\n"
                + t(
                    "staff_answered",
                    lang,
                    name=view.answered_by or "?",
                    when=f"{when:%Y-%m-%d %H:%M}" if when else "",
                    via=t(f"staff_via_{view.answered_via or 'telegram'}", lang),
                    answer=_clip(view.answer_text, 1500),
                )
            )
        return text

    def _zone(self) -> dt.tzinfo:
        from zoneinfo import ZoneInfo

        return ZoneInfo(self.settings.telegram.timezone)

    async def post(self, escalation: int | EscalationView) -> bool:
        """Post (or post again) an open escalation to staff; True if it was posted.

        A view just returned by `open` is posted as it is; an id is read first.
        """
        if self.staff_chat_id is None or self.board is None:
            return False
        view = await self.get(escalation) if isinstance(escalation, int) else escalation
        if view is None or view.status != "open":
            return False
        return await self.board.post(view)

    async def note_posted(
        self, escalation_id: int, chat_id: int, message_id: int, *, reposted: bool
    ) -> None:
        """Remember where an escalation's current staff post is (replies to it answer it)."""
        async with self._gate, self.sessions() as session:
            await session.execute(
                _NOTE_POSTED,
                {
                    "escalation": escalation_id,
                    "chat": chat_id,
                    "message": message_id,
                    "at": utcnow(),
                    "reposted": 1 if reposted else 0,
                },
            )
            await session.commit()

    async def due_for_posting(self, now: dt.datetime | None = None) -> list[int]:
        """Return the escalations never posted and those unanswered for too long (50 at most)."""
        telegram = self.settings.telegram
        cutoff = (now or utcnow()) - dt.timedelta(minutes=telegram.escalation_repost_minutes)
        async with self.sessions() as session:
            due = await session.scalars(
                select(Escalation.id)
                .where(
                    Escalation.status == "open",
                    or_(
                        Escalation.posted_at.is_(None),
                        Escalation.staff_chat_id != self.staff_chat_id,
                        (Escalation.posted_at <= cutoff)
                        & (Escalation.repost_count < telegram.escalation_max_reposts),
                    ),
                )
                .order_by(Escalation.id)
                .limit(50)
            )
            return list(due)

    async def repost_due(self, now: dt.datetime | None = None) -> int:
        """Post the escalations never posted, and re-post those unanswered for too long."""
        if self.staff_chat_id is None or self.board is None:
            return 0
        posted = 0
        for escalation_id in await self.due_for_posting(now):
            posted += await self.post(escalation_id)
        return posted

    # -- answering ------------------------------------------------------------------------------

    async def answer_escalation(
        self, escalation_id: int, text: str, staff_name: str, via: Via
    ) -> AnswerOutcome:
        """Answer an escalation and send the answer to the resident; the first answer wins."""
        answer = storable(text).strip()
        if not answer:
            return AnswerOutcome("invalid", problem="empty")
        if len(answer) > MAX_ANSWER_CHARS:
            return AnswerOutcome("invalid", problem="too_long")
        name = _clip(" ".join(storable(staff_name).split()) or "?", 200)
        now = utcnow()
        # With a courier the row is leased to this call, which delivers it at once; no worker
        # takes it meanwhile, and if this process dies the lease runs out and a worker does.
        claim = secrets.token_hex(16) if self.courier is not None else None
        lease = now + dt.timedelta(seconds=self.settings.delivery.lease_seconds)
        async with self._gate, self.sessions() as session:
            claimed = await session.execute(
                update(Escalation)
                .where(Escalation.id == escalation_id, Escalation.status == "open")
                .values(
                    status="answered",
                    answered_by=name,
                    answered_via=via,
                    answer_text=answer,
                    answered_at=now,
                )
            )
            found = await self._select(session, Escalation.id == escalation_id)
            view = found[0] if found else None
            first = claimed.rowcount == 1  # type: ignore[attr-defined]
            message = None
            if first and view is not None:
                message = escalation_answer_message(
                    escalation_id=view.id,
                    resident_id=view.resident_id,
                    language=view.language,
                    question=view.question,
                    answer=answer,
                    now=now,
                    claim=(claim, lease) if claim is not None else None,
                )
                session.add(message)
            await session.commit()
        if view is None:
            return AnswerOutcome("not_found")
        if message is None:
            return AnswerOutcome("already_answered", view)
        status: AnswerStatus = "undeliverable"
        if self.courier is not None and claim is not None:
            delivered = await self.courier.deliver(
                Delivery(
                    id=message.id,
                    ticket_id=None,
                    event_id=None,
                    department_id=message.department_id,
                    channel=message.channel,
                    idempotency_key=message.idempotency_key,
                    payload=dict(message.payload),
                    attempts=0,
                    claim_token=claim,
                )
            )
            status = _DELIVERY_OUTCOMES.get(delivered, "queued")
        else:
            log.warning(
                "escalation %d answered; nothing here can send it, it waits in the outbox",
                view.id,
            )
        await self.refresh_staff_post(view)
        return AnswerOutcome(status, view)

    async def refresh_staff_post(self, view: EscalationView) -> None:
        """Show the escalation's current state on its staff post (answered by whom, learned)."""
        if self.board is not None:
            await self.board.refresh(view)

    async def mark_learned(self, escalation_id: int, item_id: str) -> EscalationView | None:
        """Note that staff taught the knowledge base this escalation's question."""
        async with self._gate, self.sessions() as session:
            await session.execute(
                update(Escalation)
                .where(Escalation.id == escalation_id)
                .values(learned_item_id=item_id, learned_at=utcnow())
            )
            await session.commit()
        return await self.get(escalation_id)


# -- the escalation policy: what happens to a resident's question ---------------------------------

Reply = Literal[
    "small_talk",
    "venting",
    "empty",
    "person",
    "answer",
    "suggest",
    "report",
    "out_of_scope",
    "staff",
]


@dataclass(frozen=True, slots=True)
class QuestionRoute:
    """How the bot replies to a question, and why staff get it when they do."""

    reply: Reply
    # Set when the question goes to staff.
    cause: Cause | None = None
    # Told before the question goes to staff (e.g. that it is about another city).
    preface: Html | None = None
    # The message describes a problem: offer to file it as a ticket (beside a card or a choice,
    # or instead of one for a report).
    offer_ticket: bool = False


def route_question(
    result: MatchResult, *, wants_person: bool, settings: Settings, language: str
) -> QuestionRoute:
    """Decide what becomes of a matched question.

    A resident who asked for a person gets one whatever the matcher says. Nothing goes to staff
    unless the resident asks, or the matcher found nothing and the message is a question:

    - a typed request for a person ("转人工") is answered as the menu's button is: the resident
      is asked for the question a person will answer (also when they had asked already);
    - small talk and messages with nothing to read get a friendly word;
    - a message outside what a city's public services deal with (the matcher's `decline`)
      gets a polite word and a button to reach a person;
    - a problem to report that nothing answers (`report`) is offered as a ticket;
    - the matcher's answer or choice is given when it has one, with the offer of a ticket
      when the message also describes a problem;
    - everything else goes to staff, and a question about another city is first told that the
      bot only knows this one.
    """
    if result.reason == "asks_person":
        return QuestionRoute("person")
    if wants_person:
        return QuestionRoute("staff", cause="person")
    if result.reason == "small_talk":
        return QuestionRoute("small_talk")
    if result.reason == "venting":
        return QuestionRoute("venting")
    if result.reason == "empty":
        return QuestionRoute("empty")
    problem = result.intent == "report"
    if result.decision == "answer" and result.best is not None:
        return QuestionRoute("answer", offer_ticket=problem)
    if result.decision == "suggest":
        return QuestionRoute("suggest", offer_ticket=problem)
    if result.decision == "report":
        return QuestionRoute("report", offer_ticket=True)
    if result.decision == "decline":
        return QuestionRoute("out_of_scope")
    preface = None
    if result.reason.startswith("other_place:"):
        preface = t(
            "escalated_other_place",
            language,
            place=result.reason.removeprefix("other_place:"),
            city=settings.city_en if language == "en" else settings.city,
        )
    return QuestionRoute("staff", cause="escalate", preface=preface)


def staff_answer_notice(
    settings: Settings,
    language: str,
    calendar: WorkCalendar | None = None,
    now: dt.datetime | None = None,
) -> Html:
    """Tell the resident roughly when a person will answer (office hours, working days).

    `calendar` should be the tickets' (one per process, so a year it does not know is logged
    once).
    """
    telegram = settings.telegram
    hours = OfficeHours.parse(telegram.staff_hours, telegram.timezone, calendar)
    moment = now or utcnow()
    if hours.is_open(moment):
        return t("escalated_in_hours", language, hours=telegram.staff_answer_hours)
    opening = hours.next_opening(moment)
    when = f"{opening:%Y-%m-%d %H:%M}" if language == "en" else f"{opening:%m月%d日 %H:%M}"
    return t("escalated_after_hours", language, hours=hours.label, when=when)


# Why the matcher decided as it did, in words staff read (the codes of MatchResult.reason).
_REASONS: dict[str, tuple[str, str]] = {
    "confident": ("很有把握", "sure of it"),
    "exact": ("与条目的问法一致", "asked as the item's own phrasing"),
    "close_candidates": ("几个条目难分高下", "several items are close"),
    "unsure": ("把握不大", "not sure"),
    "vague": ("问题太笼统", "too vague to pick one item"),
    "unknown_term": ("问到的事项知识库里没有", "asks about something no item mentions"),
    "no_match": ("知识库里没有合适的条目", "nothing in the knowledge base fits"),
    "problem_words": ("像是需要反映的问题", "sounds like a problem to report"),
    "out_of_scope": ("不属于政务服务范围", "outside public services"),
    "small_talk": ("闲聊", "small talk"),
    "venting": ("对机器人的抱怨", "venting at the bot"),
    "asks_person": ("要求转人工", "asked for a person"),
    "empty": ("没有可读的文字", "nothing readable"),
}


def reason_phrase(reason: str | None, language: str) -> str:
    """Return the matcher's reason as a phrase (never its internal code) for staff to read."""
    if not reason:
        return ""
    if reason.startswith("other_place:"):
        place = reason.removeprefix("other_place:")
        return f"问的是{place}的事务" if language != "en" else f"about the affairs of {place}"
    names = _REASONS.get(reason)
    if names is None:
        return reason
    return names[1] if language == "en" else names[0]
