"""The figures of docs/tickets.md ("Figures and `report`"), per department and per month; the one
definition everybody uses.

For a month M (calendar month in the deployment's time zone) and a department D (the department
holding the ticket now; triage tickets count only in the total):

- response rate (响应率): tickets assigned in M whose acknowledgement (签收, or a reply, which
  acknowledges too) came by the acknowledgement deadline / tickets assigned in M.
- on-time completion rate (按时办结率): tickets replied by their reply deadline / tickets whose
  reply deadline falls in M. A disclosure application's extended deadline is its deadline.
- rating rate (评价率): tickets replied in M that the resident rated / tickets replied in M.
- satisfaction rate (满意率): of those rated, the ratings of 4 or 5 (out of 5).
- answer rate of questions: questions asked in M that the bot answered without a person (an
  answer card, or a suggestion the resident picked, and not escalated) / all questions in M;
  helpful share: questions marked helpful / questions with feedback.

Tickets still inside a deadline that has not been met yet are not counted until they are decided,
so a month in progress is not dragged down by work that is not late. Rejected tickets, and tickets
staff closed without a reply, have no completion to measure and are left out of the on-time rate.
A ticket reopened after "not solved" counts again with its new assignment and reply.

Each figure is a few grouped queries over indexed columns, fast enough for a million tickets.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.models import Question, Ticket, utcnow
from bot.core.vocabulary import TicketStatus
from bot.core.workdays import time_zone

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def _rate(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


@dataclass(frozen=True, slots=True)
class Month:
    """A calendar month, e.g. Month(2026, 11), printed as 2026-11."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        """Read YYYY-MM; raise ValueError with the expected form otherwise."""
        found = _MONTH.match(text.strip())
        if not found or not 1 <= int(found.group(2)) <= 12:
            raise ValueError(f"{text!r} is not a month like 2026-11")
        return cls(int(found.group(1)), int(found.group(2)))

    @classmethod
    def of(cls, moment: dt.datetime, zone: dt.tzinfo) -> Month:
        local = moment.astimezone(zone)
        return cls(local.year, local.month)

    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def bounds(self, zone: dt.tzinfo) -> tuple[dt.datetime, dt.datetime]:
        """Return the month's start (inclusive) and end (exclusive) as UTC moments."""
        start = dt.datetime(self.year, self.month, 1, tzinfo=zone)
        following = self.next()
        end = dt.datetime(following.year, following.month, 1, tzinfo=zone)
        return start.astimezone(dt.UTC), end.astimezone(dt.UTC)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


@dataclass(frozen=True, slots=True)
class TicketFigures:
    """The ticket figures of one department (or of all, `department_id` None) in one month."""

    month: str
    department_id: str | None
    assigned: int = 0
    acknowledged_on_time: int = 0
    due: int = 0
    replied_on_time: int = 0
    replied: int = 0
    rated: int = 0
    satisfied: int = 0

    @property
    def response_rate(self) -> float | None:
        return _rate(self.acknowledged_on_time, self.assigned)

    @property
    def on_time_rate(self) -> float | None:
        return _rate(self.replied_on_time, self.due)

    @property
    def rating_rate(self) -> float | None:
        return _rate(self.rated, self.replied)

    @property
    def satisfaction_rate(self) -> float | None:
        return _rate(self.satisfied, self.rated)

    def plus(self, other: TicketFigures) -> TicketFigures:
        """Return the sum of two rows' counts (for totals)."""
        return TicketFigures(
            month=self.month,
            department_id=self.department_id,
            assigned=self.assigned + other.assigned,
            acknowledged_on_time=self.acknowledged_on_time + other.acknowledged_on_time,
            due=self.due + other.due,
            replied_on_time=self.replied_on_time + other.replied_on_time,
            replied=self.replied + other.replied,
            rated=self.rated + other.rated,
            satisfied=self.satisfied + other.satisfied,
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "month": self.month,
            "department_id": self.department_id,
            "assigned": self.assigned,
            "acknowledged_on_time": self.acknowledged_on_time,
            "response_rate": self.response_rate,
            "due": self.due,
            "replied_on_time": self.replied_on_time,
            "on_time_rate": self.on_time_rate,
            "replied": self.replied,
            "rated": self.rated,
            "rating_rate": self.rating_rate,
            "satisfied": self.satisfied,
            "satisfaction_rate": self.satisfaction_rate,
        }


@dataclass(frozen=True, slots=True)
class QuestionFigures:
    """How the bot answered residents' questions in one month."""

    month: str
    questions: int = 0
    answered_by_bot: int = 0
    with_feedback: int = 0
    helpful: int = 0

    @property
    def answer_rate(self) -> float | None:
        return _rate(self.answered_by_bot, self.questions)

    @property
    def helpful_share(self) -> float | None:
        return _rate(self.helpful, self.with_feedback)

    def as_dict(self) -> dict[str, object]:
        return {
            "month": self.month,
            "questions": self.questions,
            "answered_by_bot": self.answered_by_bot,
            "answer_rate": self.answer_rate,
            "with_feedback": self.with_feedback,
            "helpful": self.helpful,
            "helpful_share": self.helpful_share,
        }


@dataclass(frozen=True, slots=True)
class MonthFigures:
    """All figures of one month: the total, one row per department, and the questions."""

    month: str
    total: TicketFigures
    departments: tuple[TicketFigures, ...] = field(default_factory=tuple)
    questions: QuestionFigures | None = None

    def department(self, department_id: str) -> TicketFigures:
        """Return one department's row (zeros when it had nothing that month)."""
        for row in self.departments:
            if row.department_id == department_id:
                return row
        return TicketFigures(self.month, department_id)

    def as_dict(self) -> dict[str, object]:
        return {
            "month": self.month,
            "total": self.total.as_dict(),
            "departments": [row.as_dict() for row in self.departments],
            "questions": self.questions.as_dict() if self.questions else None,
        }


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


async def figures_for_month(
    session: AsyncSession,
    month: Month | str,
    department_id: str | None = None,
    *,
    timezone: str = "Asia/Shanghai",
    now: dt.datetime | None = None,
) -> MonthFigures:
    """Return the figures of a month, for one department or (None) for each and in total."""
    month = Month.parse(month) if isinstance(month, str) else month
    zone = time_zone(timezone)
    now = now or utcnow()
    start, end = month.bounds(zone)
    label = str(month)
    rows: dict[str | None, dict[str, int]] = {}

    def only_department(query_filter: list[ColumnElement[bool]]) -> list[ColumnElement[bool]]:
        if department_id is not None:
            query_filter.append(Ticket.department_id == department_id)
        return query_filter

    def add(results: Iterable[tuple[str | None, int, int]], names: tuple[str, str]) -> None:
        for department, first, second in results:
            row = rows.setdefault(department, {})
            row[names[0]] = row.get(names[0], 0) + int(first)
            row[names[1]] = row.get(names[1], 0) + int(second)

    # Response: assigned this month, decided (acknowledged, or the deadline passed).
    response = await session.execute(
        select(
            Ticket.department_id,
            func.count(),
            _count(
                and_(
                    Ticket.acknowledged_at.is_not(None),
                    Ticket.acknowledged_at <= Ticket.ack_deadline,
                )
            ),
        )
        .where(
            *only_department(
                [
                    Ticket.assigned_at >= start,
                    Ticket.assigned_at < end,
                    Ticket.department_id.is_not(None),
                    Ticket.status != TicketStatus.REJECTED,
                    or_(Ticket.acknowledged_at.is_not(None), Ticket.ack_deadline < now),
                ]
            )
        )
        .group_by(Ticket.department_id)
    )
    add(response.all(), ("assigned", "acknowledged_on_time"))

    # On time: due this month, decided (replied, or the deadline passed).
    completion = await session.execute(
        select(
            Ticket.department_id,
            func.count(),
            _count(
                and_(Ticket.replied_at.is_not(None), Ticket.replied_at <= Ticket.reply_deadline)
            ),
        )
        .where(
            *only_department(
                [
                    Ticket.reply_deadline >= start,
                    Ticket.reply_deadline < end,
                    Ticket.status != TicketStatus.REJECTED,
                    ~and_(Ticket.status == TicketStatus.CLOSED, Ticket.replied_at.is_(None)),
                    or_(Ticket.replied_at.is_not(None), Ticket.reply_deadline < now),
                ]
            )
        )
        .group_by(Ticket.department_id)
    )
    add(completion.all(), ("due", "replied_on_time"))

    # Ratings: of the tickets replied this month.
    ratings = await session.execute(
        select(
            Ticket.department_id,
            func.count(),
            _count(Ticket.rating.is_not(None)),
            _count(Ticket.rating >= 4),
        )
        .where(*only_department([Ticket.replied_at >= start, Ticket.replied_at < end]))
        .group_by(Ticket.department_id)
    )
    for department, replied, rated, satisfied in ratings.all():
        row = rows.setdefault(department, {})
        row["replied"] = row.get("replied", 0) + int(replied)
        row["rated"] = row.get("rated", 0) + int(rated)
        row["satisfied"] = row.get("satisfied", 0) + int(satisfied)

    departments = tuple(
        TicketFigures(month=label, department_id=department, **counts)
        for department, counts in sorted(rows.items(), key=lambda pair: pair[0] or "")
        if department is not None
    )
    total = TicketFigures(month=label, department_id=department_id)
    for counts in rows.values():
        total = total.plus(TicketFigures(month=label, department_id=department_id, **counts))
    questions = None
    if department_id is None:
        questions = await question_figures_for_month(session, month, timezone=timezone)
    return MonthFigures(month=label, total=total, departments=departments, questions=questions)


async def question_figures_for_month(
    session: AsyncSession, month: Month | str, *, timezone: str = "Asia/Shanghai"
) -> QuestionFigures:
    """Return the answer rate and helpful share of the questions asked in a month."""
    month = Month.parse(month) if isinstance(month, str) else month
    start, end = month.bounds(time_zone(timezone))
    answered = and_(
        Question.escalated.is_(False),
        or_(Question.decision == "answer", Question.chosen_item_id.is_not(None)),
    )
    result = await session.execute(
        select(
            func.count(),
            _count(answered),
            _count(Question.feedback.is_not(None)),
            _count(Question.feedback == "helpful"),
        ).where(Question.created_at >= start, Question.created_at < end)
    )
    questions, by_bot, with_feedback, helpful = result.one()
    return QuestionFigures(
        month=str(month),
        questions=int(questions),
        answered_by_bot=int(by_bot),
        with_feedback=int(with_feedback),
        helpful=int(helpful),
    )


def _padded(text: str, width: int) -> str:
    """Cut and pad text to a width in terminal columns (a Chinese character takes two)."""
    out, used = [], 0
    for char in text:
        size = 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
        if used + size > width:
            break
        out.append(char)
        used += size
    return "".join(out) + " " * (width - used)


def format_report(figures: MonthFigures, names: dict[str, str]) -> str:
    """Return the figures as a plain-text table (for `python -m bot report`)."""

    def percent(value: float | None) -> str:
        return "—" if value is None else f"{value * 100:.1f}%"

    def line(name: str, row: TicketFigures) -> str:
        return (
            f"{_padded(name, 26)} {row.assigned:>8} {percent(row.response_rate):>9}"
            f" {row.due:>5} {percent(row.on_time_rate):>9} {row.replied:>7}"
            f" {percent(row.rating_rate):>9} {row.rated:>5} {percent(row.satisfaction_rate):>9}"
        )

    header = (
        f"{'department':<26} {'assigned':>8} {'response':>9} {'due':>5} {'on time':>9}"
        f" {'replied':>7} {'rating':>9} {'rated':>5} {'satisfied':>9}"
    )
    lines = [
        f"Figures for {figures.month} (response rate 响应率, on-time completion 按时办结率, "
        "rating rate 评价率, satisfaction 满意率)",
        "",
        header,
        "-" * len(header),
    ]
    lines += [
        line(names.get(row.department_id or "", row.department_id or "?"), row)
        for row in figures.departments
    ]
    lines += ["-" * len(header), line("all departments", figures.total)]
    if figures.questions is not None:
        q = figures.questions
        lines += [
            "",
            f"Questions: {q.questions}, answered by the bot: {q.answered_by_bot} "
            f"({percent(q.answer_rate)}); marked helpful: {q.helpful} of {q.with_feedback} "
            f"with feedback ({percent(q.helpful_share)})",
        ]
    return "\n".join(lines)
