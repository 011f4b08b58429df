"""Questions handed to staff: posting them to the staff group, answering them, re-posting them.

`EscalationDesk.answer_escalation` is the one way an answer reaches a resident, whether staff
replied in the Telegram staff group or in the web console: the first answer wins (a conditional
UPDATE on the row, so two staff members, or two processes, cannot both answer), the answer is
sent to the resident's stored chat, and the staff post is edited to show who answered.

The desk needs a `telegram.Bot` to send. In the bot process it is the Application's bot; a web
console running in a process of its own attaches `standalone_bot(settings)` instead.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import bindparam, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, TelegramError

from bot.core.config import Settings
from bot.core.db import storable, write_gate
from bot.core.i18n import Html, t
from bot.core.models import Escalation, Question, Resident, utcnow
from bot.telegram.message_split import pack_lines, text_lines

log = logging.getLogger(__name__)

Cause = Literal["escalate", "person", "not_helpful"]
Via = Literal["telegram", "console"]
AnswerStatus = Literal["delivered", "undeliverable", "already_answered", "not_found", "invalid"]

MAX_ANSWER_CHARS = 3000
_QUOTE_CHARS = 300


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


def standalone_bot(settings: Settings, token: str | None = None) -> Bot:
    """Return a Bot for a process without the Telegram application (e.g. the web console).

    Call `await bot.initialize()` before use and `await bot.shutdown()` at the end.
    """
    return Bot(
        token or settings.telegram_token,
        base_url=settings.telegram_api_base_url,
    )


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class EscalationDesk:
    """Opens, posts, answers and re-posts escalations."""

    def __init__(self, settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.settings = settings
        self.sessions = sessions
        self._gate = write_gate(sessions)
        self.bot: Bot | None = None

    def attach_bot(self, bot: Bot) -> None:
        """Use this bot to post to staff and to deliver answers."""
        self.bot = bot

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

    def render_post(self, view: EscalationView) -> Html:
        """Return the staff-group post of an escalation (HTML, everything escaped)."""
        lang = self.staff_language
        if view.candidates:
            lines = "\n".join(
                f"{n}. {c.get('title', '')} ({c.get('id', '')}, {float(c.get('score', 0)):.2f})"
                for n, c in enumerate(view.candidates[:3], start=1)
            )
            candidates = t("staff_candidates", lang, reason=view.reason, lines=lines)
        else:
            candidates = t("staff_no_candidates", lang, reason=view.reason or "-")
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

    def learn_markup(self, view: EscalationView) -> InlineKeyboardMarkup | None:
        """Return the staff button that teaches the knowledge base this question."""
        if view.status != "answered" or view.learned_item_id:
            return None
        return InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton(
                        t("staff_learn_button", self.staff_language),
                        callback_data=f"s:l:{view.id}",
                    )
                ]
            ]
        )

    async def post(self, escalation: int | EscalationView) -> bool:
        """Post (or post again) an open escalation to the staff group; True if it was posted.

        A view just returned by `open` is posted as it is; an id is read first.
        """
        chat_id = self.staff_chat_id
        if chat_id is None or self.bot is None:
            return False
        view = await self.get(escalation) if isinstance(escalation, int) else escalation
        if view is None or view.status != "open":
            return False
        text = self.render_post(view)
        reposting = view.staff_message_id is not None and view.staff_chat_id == chat_id
        if reposting:
            minutes = int((utcnow() - (view.posted_at or view.created_at)).total_seconds() // 60)
            prefix = t(
                "staff_repost_prefix",
                self.staff_language,
                minutes=minutes,
                count=view.repost_count + 1,
            )
            text = Html(prefix + text)
        try:
            message = await self.bot.send_message(chat_id, text, parse_mode=ParseMode.HTML)
        except TelegramError as error:
            log.error(
                "escalation %d could not be posted to staff chat %d: %s", view.id, chat_id, error
            )
            return False
        if reposting and view.staff_message_id is not None:
            try:
                await self.bot.edit_message_text(
                    Html(
                        self.render_post(view)
                        + "\n\n"
                        + t("staff_reposted_below", self.staff_language)
                    ),
                    chat_id=chat_id,
                    message_id=view.staff_message_id,
                    parse_mode=ParseMode.HTML,
                )
            except TelegramError as error:
                log.info("old post of escalation %d not edited: %s", view.id, error)
        async with self._gate, self.sessions() as session:
            await session.execute(
                _NOTE_POSTED,
                {
                    "escalation": view.id,
                    "chat": chat_id,
                    "message": message.message_id,
                    "at": utcnow(),
                    "reposted": 1 if reposting else 0,
                },
            )
            await session.commit()
        return True

    async def repost_due(self, now: dt.datetime | None = None) -> int:
        """Post the escalations never posted, and re-post those unanswered for too long."""
        if self.staff_chat_id is None or self.bot is None:
            return 0
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
            ids = list(due)
        posted = 0
        for escalation_id in ids:
            posted += await self.post(escalation_id)
        return posted

    # -- answering ------------------------------------------------------------------------------

    async def answer_escalation(
        self, escalation_id: int, text: str, staff_name: str, via: Via
    ) -> AnswerOutcome:
        """Answer an escalation and deliver the answer to the resident; the first answer wins."""
        answer = storable(text).strip()
        if not answer:
            return AnswerOutcome("invalid", problem="empty")
        if len(answer) > MAX_ANSWER_CHARS:
            return AnswerOutcome("invalid", problem="too_long")
        name = _clip(" ".join(storable(staff_name).split()) or "?", 200)
        async with self._gate, self.sessions() as session:
            claimed = await session.execute(
                update(Escalation)
                .where(Escalation.id == escalation_id, Escalation.status == "open")
                .values(
                    status="answered",
                    answered_by=name,
                    answered_via=via,
                    answer_text=answer,
                    answered_at=utcnow(),
                )
            )
            await session.commit()
        view = await self.get(escalation_id)
        if view is None:
            return AnswerOutcome("not_found")
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return AnswerOutcome("already_answered", view)
        delivered = await self._deliver(view)
        await self.refresh_staff_post(view)
        return AnswerOutcome("delivered" if delivered else "undeliverable", view)

    async def _deliver(self, view: EscalationView) -> bool:
        if self.bot is None:
            log.error("escalation %d answered but no bot is attached to deliver it", view.id)
            return False
        header = t(
            "staff_answer_to_resident",
            view.language,
            question=_clip(view.question, _QUOTE_CHARS),
            answer="",
        )
        lines = [header.rstrip(), "", *text_lines(view.answer_text or "")]
        try:
            for message in pack_lines(lines):
                await self.bot.send_message(
                    view.resident_chat_id, message, parse_mode=ParseMode.HTML
                )
        except Forbidden:
            async with self._gate, self.sessions() as session:
                await session.execute(
                    update(Resident)
                    .where(Resident.id == view.resident_id)
                    .values(blocked_bot=True)
                )
                await session.commit()
            log.info("escalation %d: the resident blocked the bot", view.id)
            return False
        except TelegramError as error:
            log.error("escalation %d: answer not delivered: %s", view.id, error)
            return False
        return True

    async def refresh_staff_post(self, view: EscalationView) -> None:
        """Show the escalation's current state on its staff post (answered by whom, learned)."""
        if self.bot is None or view.staff_chat_id is None or view.staff_message_id is None:
            return
        try:
            await self.bot.edit_message_text(
                self.render_post(view),
                chat_id=view.staff_chat_id,
                message_id=view.staff_message_id,
                parse_mode=ParseMode.HTML,
                reply_markup=self.learn_markup(view),
            )
        except BadRequest as error:
            # "message is not modified" and posts deleted by staff are harmless.
            log.info("staff post of escalation %d not edited: %s", view.id, error)
        except TelegramError as error:
            log.warning("staff post of escalation %d not edited: %s", view.id, error)

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
