"""The record of every question: what the resident asked, what the matcher decided, how it ended.

Managers read it to see what residents ask and what the bot could not answer (docs/console.md,
"Managers": 未答问题), and the monthly figures count the questions the bot answered without a
person (docs/tickets.md, "Figures and `report`").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.answering.matching import MatchResult
from bot.core.db import GroupCommit, storable, write_gate
from bot.core.models import Question, utcnow

Feedback = Literal["helpful", "not_helpful"]
FeedbackOutcome = Literal["recorded", "already", "not_found"]

# Longer questions are cut before matching and storing: nobody types 2,000 characters to ask
# where to renew an ID card, and an unbounded text would let one message stall the matcher.
MAX_QUESTION_CHARS = 500
# Most question rows written in one statement.
_BATCH = 200
# On the table, not the mapped class: the ORM's bulk insert spends time per row that a plain
# multi-row INSERT … RETURNING does not need.
_QUESTIONS_TABLE = cast(Table, Question.__table__)
_INSERT_QUESTIONS = insert(_QUESTIONS_TABLE).returning(
    _QUESTIONS_TABLE.c.id, sort_by_parameter_order=True
)


@dataclass(frozen=True, slots=True)
class QuestionRecord:
    """A stored question as the handlers need it."""

    id: int
    resident_id: int
    text: str
    language: str
    decision: str
    reason: str
    item_id: str | None
    candidates: tuple[dict[str, Any], ...]
    feedback: str | None
    escalated: bool


def _record(row: Question) -> QuestionRecord:
    return QuestionRecord(
        id=row.id,
        resident_id=row.resident_id,
        text=row.text,
        language=row.language,
        decision=row.decision,
        reason=row.reason,
        item_id=row.item_id,
        candidates=tuple(row.candidates or ()),
        feedback=row.feedback,
        escalated=row.escalated,
    )


def _question_texts(result: MatchResult) -> dict[str, str]:
    """Return the question as typed and normalised, as the questions table stores them."""
    return {
        "text": storable(result.question)[:MAX_QUESTION_CHARS],
        "normalized": storable(result.normalized)[:MAX_QUESTION_CHARS],
    }


def candidates_of(result: MatchResult, limit: int = 5) -> list[dict[str, Any]]:
    """Return the matcher's candidates as stored: id, title in the question's language, score."""
    return [
        {
            "id": c.item.id,
            "title": c.item.get_text("title", result.language),
            "score": round(c.score, 4),
        }
        for c in result.candidates[:limit]
    ]


class QuestionLog:
    """Writes and reads the questions table."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        self._gate = write_gate(sessions)
        self._pending: GroupCommit[dict[str, Any], int] = GroupCommit(
            self._write, batch=_BATCH, name="questions"
        )

    async def record(
        self,
        *,
        resident_id: int,
        chat_id: int,
        message_id: int | None,
        language: str,
        result: MatchResult,
        escalated: bool = False,
    ) -> int:
        """Store a matched question; return its id."""
        best = result.best
        return await self._insert(
            resident_id=resident_id,
            chat_id=chat_id,
            message_id=message_id,
            **_question_texts(result),
            language=language,
            decision=result.decision,
            reason=result.reason[:64],
            score=float(result.score),
            item_id=best.item.id if best and result.decision == "answer" else None,
            candidates=candidates_of(result),
            escalated=escalated,
        )

    async def _insert(self, **values: Any) -> int:
        """Queue one question row and return its id once it is committed."""
        # Every row has the same columns: one multi-row statement takes a whole batch.
        row = {"item_id": None, "escalated": False, "created_at": utcnow(), **values}
        return await self._pending.submit(row)

    async def _write(self, rows: list[dict[str, Any]]) -> list[int]:
        # Group commit: every question runs this, so the rows that queued up while the last
        # batch was being written go in together, in one INSERT … RETURNING and one commit.
        async with self._gate, self.sessions() as session:
            ids = list(await session.scalars(_INSERT_QUESTIONS, rows))
            await session.commit()
        return [int(question_id) for question_id in ids]

    async def record_for_person(
        self,
        *,
        resident_id: int,
        chat_id: int,
        message_id: int | None,
        language: str,
        result: MatchResult,
    ) -> int:
        """Store a question the resident addressed to a person directly; return its id.

        The matcher's candidates are kept so that staff see them and can teach the phrasing.
        """
        return await self._insert(
            resident_id=resident_id,
            chat_id=chat_id,
            message_id=message_id,
            **_question_texts(result),
            language=language,
            decision="escalate",
            reason="person",
            score=float(result.score),
            candidates=candidates_of(result),
            escalated=True,
        )

    async def get(self, question_id: int) -> QuestionRecord | None:
        """Return a question by id."""
        async with self.sessions() as session:
            row = await session.get(Question, question_id)
            return None if row is None else _record(row)

    async def owned(self, question_id: int, resident_id: int) -> QuestionRecord | None:
        """Return the question only if this resident asked it (buttons can be forged)."""
        record = await self.get(question_id)
        if record is None or record.resident_id != resident_id:
            return None
        return record

    async def record_feedback(
        self, question_id: int, resident_id: int, feedback: Feedback
    ) -> FeedbackOutcome:
        """Store the resident's verdict on an answer; the first verdict counts."""
        async with self._gate, self.sessions() as session:
            result = await session.execute(
                update(Question)
                .where(
                    Question.id == question_id,
                    Question.resident_id == resident_id,
                    Question.feedback.is_(None),
                )
                .values(feedback=feedback, feedback_at=utcnow())
            )
            await session.commit()
            if result.rowcount == 1:  # type: ignore[attr-defined]
                return "recorded"
            exists = await session.scalar(
                select(Question.id).where(
                    Question.id == question_id, Question.resident_id == resident_id
                )
            )
        return "already" if exists is not None else "not_found"

    async def record_choice(self, question_id: int, resident_id: int, item_id: str) -> bool:
        """Store which suggested item the resident picked; False if the question is not theirs."""
        async with self._gate, self.sessions() as session:
            result = await session.execute(
                update(Question)
                .where(Question.id == question_id, Question.resident_id == resident_id)
                .values(chosen_item_id=item_id)
            )
            await session.commit()
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]
