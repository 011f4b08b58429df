"""The figures of information-disclosure applications (依申请公开) that a government's annual
disclosure report (政府信息公开工作年度报告) needs, per year, in total and per department.

For a calendar year, in the deployment's time zone:
- received: applications filed in the year; carried_over: filed before it and still open when
  it began; carried_forward: still open when it ended.
- answered: replied to in the year, split into on time / late against the (possibly extended)
  deadline, and by outcome (予以公开, 部分公开, 不予公开, …).
- extended: applications received in the year whose deadline was extended.
- overdue: open applications whose deadline had passed at the end of the year (or now).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.models import Ticket, utcnow
from bot.core.vocabulary import TicketType

UNKNOWN_OUTCOME = "unknown"


@dataclass(slots=True)
class DisclosureFigures:
    """One department's (or, with department_id None, everyone's) figures for a year."""

    department_id: str | None
    received: int = 0
    carried_over: int = 0
    answered: int = 0
    answered_on_time: int = 0
    answered_late: int = 0
    extended: int = 0
    overdue: int = 0
    carried_forward: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)

    def add(self, other: DisclosureFigures) -> None:
        """Add another department's figures to these."""
        for name in (
            "received",
            "carried_over",
            "answered",
            "answered_on_time",
            "answered_late",
            "extended",
            "overdue",
            "carried_forward",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for outcome, count in other.outcomes.items():
            self.outcomes[outcome] = self.outcomes.get(outcome, 0) + count

    @property
    def on_time_rate(self) -> float | None:
        return self.answered_on_time / self.answered if self.answered else None


@dataclass(frozen=True, slots=True)
class DisclosureReport:
    """A year's figures in total and per department (departments with no application left out)."""

    year: int
    total: DisclosureFigures
    departments: list[DisclosureFigures]


def year_bounds(year: int, zone: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """Return the first moment of a local calendar year and of the next, in UTC."""
    start = dt.datetime(year, 1, 1, tzinfo=zone).astimezone(dt.UTC)
    end = dt.datetime(year + 1, 1, 1, tzinfo=zone).astimezone(dt.UTC)
    return start, end


def _open_at(moment: dt.datetime) -> ColumnElement[bool]:
    """Filed before `moment` and neither answered nor closed by then."""
    return and_(
        Ticket.created_at < moment,
        or_(Ticket.replied_at.is_(None), Ticket.replied_at >= moment),
        or_(Ticket.closed_at.is_(None), Ticket.closed_at >= moment),
    )


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.sum(case((condition, 1), else_=0))


async def disclosure_report(
    session: AsyncSession, year: int, zone: ZoneInfo, *, now: dt.datetime | None = None
) -> DisclosureReport:
    """Compute a year's disclosure figures with two grouped queries."""
    start, end = year_bounds(year, zone)
    cutoff = min(end, now or utcnow())
    answered = and_(Ticket.replied_at >= start, Ticket.replied_at < end)
    relevant = and_(
        Ticket.type == TicketType.DISCLOSURE,
        Ticket.created_at < end,
        or_(Ticket.created_at >= start, _open_at(start)),
    )
    query = select(
        Ticket.department_id,
        _count(and_(Ticket.created_at >= start, Ticket.created_at < end)),
        _count(_open_at(start)),
        _count(answered),
        _count(
            and_(
                answered,
                or_(Ticket.reply_deadline.is_(None), Ticket.replied_at <= Ticket.reply_deadline),
            )
        ),
        _count(and_(answered, Ticket.replied_at > Ticket.reply_deadline)),
        _count(and_(Ticket.created_at >= start, Ticket.extended.is_(True))),
        _count(and_(_open_at(cutoff), Ticket.reply_deadline < cutoff)),
        _count(_open_at(end)),
    ).where(relevant)
    per_department: dict[str | None, DisclosureFigures] = {}
    for row in (await session.execute(query.group_by(Ticket.department_id))).all():
        department_id, *values = row
        counts = [int(v or 0) for v in values]
        figures = DisclosureFigures(
            department_id,
            received=counts[0],
            carried_over=counts[1],
            answered=counts[2],
            answered_on_time=counts[3],
            answered_late=counts[4],
            extended=counts[5],
            overdue=counts[6],
            carried_forward=counts[7],
        )
        per_department[department_id] = figures
    outcomes = await session.execute(
        select(Ticket.department_id, Ticket.outcome, func.count())
        .where(Ticket.type == TicketType.DISCLOSURE, answered)
        .group_by(Ticket.department_id, Ticket.outcome)
    )
    for department_id, outcome, count in outcomes.all():
        figures = per_department.setdefault(department_id, DisclosureFigures(department_id))
        figures.outcomes[outcome or UNKNOWN_OUTCOME] = int(count)
    total = DisclosureFigures(None)
    for figures in per_department.values():
        total.add(figures)
    ordered = sorted(
        per_department.values(), key=lambda f: (f.department_id is None, f.department_id or "")
    )
    return DisclosureReport(year=year, total=total, departments=ordered)
