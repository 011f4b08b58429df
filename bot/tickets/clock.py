"""The ticket clock: reminders before deadlines, escalation (督办) after them, and auto-closing.

`TicketClock.sweep()` runs once per [tickets] sweep_interval_seconds across all processes (each tick
is claimed by one of them in clock_ticks), and at start if that tick is still free, so a bot that
was down catches up. Each decision locks the ticket, checks again that it still applies, and is
recorded as an event the resident and managers can read; so running two sweeps at once, or the
same sweep twice, decides nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, select

from bot.core.leadership import claim_tick, database_seconds
from bot.core.models import Ticket
from bot.core.vocabulary import EventKind, TicketStatus
from bot.tickets.desk import HELD_STATUSES, OPEN_STATUSES, Actor, TicketDesk

log = logging.getLogger(__name__)

_CLOCK = Actor.system("clock")
# The name of the clock's ticks in clock_ticks.
CLOCK_JOB = "ticket-clock"


@dataclass
class SweepReport:
    """What one sweep decided."""

    reminders: int = 0
    overdue: int = 0
    closed: int = 0

    @property
    def total(self) -> int:
        return self.reminders + self.overdue + self.closed


class TicketClock:
    """Applies the deadlines of config.toml to the tickets in the database."""

    def __init__(self, desk: TicketDesk) -> None:
        self.desk = desk
        self.settings = desk.settings.tickets

    async def sweep(self) -> SweepReport:
        """Send due reminders, escalate overdue tickets and close unrated ones; return the counts."""
        now = self.desk.clock()
        report = SweepReport()
        ack_window = dt.timedelta(hours=self.settings.ack_reminder_hours)
        reply_window = dt.timedelta(hours=self.settings.reply_reminder_hours)
        # Overdue first: a ticket past its deadline needs no reminder any more.
        report.overdue += await self._each(
            and_(
                Ticket.status == TicketStatus.ASSIGNED,
                Ticket.ack_overdue.is_(False),
                Ticket.ack_deadline < now,
            ),
            lambda ref: self._ack_overdue(ref),
        )
        report.overdue += await self._each(
            and_(
                Ticket.status.in_(OPEN_STATUSES),
                Ticket.overdue.is_(False),
                Ticket.reply_deadline < now,
            ),
            lambda ref: self._reply_overdue(ref),
        )
        if self.settings.ack_reminder_hours > 0:
            report.reminders += await self._each(
                and_(
                    Ticket.status == TicketStatus.ASSIGNED,
                    Ticket.ack_reminded_at.is_(None),
                    Ticket.ack_deadline >= now,
                    Ticket.ack_deadline <= now + ack_window,
                ),
                lambda ref: self._remind(ref, "ack"),
            )
        if self.settings.reply_reminder_hours > 0:
            report.reminders += await self._each(
                and_(
                    Ticket.status.in_(HELD_STATUSES),
                    Ticket.reply_reminded_at.is_(None),
                    Ticket.reply_deadline >= now,
                    Ticket.reply_deadline <= now + reply_window,
                ),
                lambda ref: self._remind(ref, "reply"),
            )
        timeout = dt.timedelta(days=self.settings.rating_timeout_days)
        report.closed += await self._each(
            and_(Ticket.status == TicketStatus.REPLIED, Ticket.replied_at < now - timeout),
            lambda ref: self._close_unrated(ref),
        )
        if report.total:
            log.info(
                "ticket clock: %d reminders, %d overdue, %d closed without a rating",
                report.reminders,
                report.overdue,
                report.closed,
            )
        return report

    async def _each(
        self, condition: ColumnElement[bool], decide: Callable[[int], Awaitable[bool]]
    ) -> int:
        async with self.desk.sessions() as session:
            ids = (
                (
                    await session.execute(
                        # Sample tickets (the try-out's) are never reminded, escalated or closed.
                        select(Ticket.id)
                        .where(condition, Ticket.sample.is_(False))
                        .order_by(Ticket.id)
                    )
                )
                .scalars()
                .all()
            )
        done = 0
        for ticket_id in ids:
            try:
                done += await decide(ticket_id)
            except Exception:
                # One broken ticket must not stop the clock for all others.
                log.exception("ticket clock failed on ticket %s", ticket_id)
        return done

    async def _remind(self, ref: int, which: str) -> bool:
        async with self.desk.locked_ticket(ref) as (session, ticket, now):
            if which == "ack":
                deadline = ticket.ack_deadline
                if (
                    ticket.status != TicketStatus.ASSIGNED
                    or ticket.ack_reminded_at
                    or not deadline
                ):
                    return False
                ticket.ack_reminded_at = now
            else:
                deadline = ticket.reply_deadline
                if ticket.status not in HELD_STATUSES or ticket.reply_reminded_at or not deadline:
                    return False
                ticket.reply_reminded_at = now
            if deadline < now:
                return False
            await self.desk.record(
                session,
                ticket,
                now,
                EventKind.REMINDER,
                _CLOCK,
                data={
                    "which": which,
                    "deadline": deadline.isoformat(),
                    "deadline_date": self.desk.policy.local_date(deadline).isoformat(),
                    "department_id": ticket.department_id,
                },
            )
            return True

    async def _ack_overdue(self, ref: int) -> bool:
        async with self.desk.locked_ticket(ref) as (session, ticket, now):
            deadline = ticket.ack_deadline
            if (
                ticket.status != TicketStatus.ASSIGNED
                or ticket.ack_overdue
                or not deadline
                or deadline >= now
            ):
                return False
            ticket.ack_overdue = True
            ticket.supervised = True
            data = {
                "which": "ack",
                "deadline": deadline.isoformat(),
                "deadline_date": self.desk.policy.local_date(deadline).isoformat(),
                "department_id": ticket.department_id,
            }
            await self.desk.record(session, ticket, now, EventKind.OVERDUE, _CLOCK, data=data)
            # A late 签收 is the supervisor's business; the resident hears when the reply is late.
            await self.desk.record(
                session, ticket, now, EventKind.ESCALATED, _CLOCK, data=data, notify_resident=False
            )
            return True

    async def _reply_overdue(self, ref: int) -> bool:
        async with self.desk.locked_ticket(ref) as (session, ticket, now):
            deadline = ticket.reply_deadline
            if (
                ticket.status not in OPEN_STATUSES
                or ticket.overdue
                or not deadline
                or deadline >= now
            ):
                return False
            ticket.overdue = True
            ticket.supervised = True
            data = {
                "which": "reply",
                "deadline": deadline.isoformat(),
                "deadline_date": self.desk.policy.local_date(deadline).isoformat(),
                "department_id": ticket.department_id,
                "working_days_late": self.desk.calendar.working_days_between(
                    self.desk.policy.local_date(deadline), self.desk.policy.local_date(now)
                ),
            }
            await self.desk.record(session, ticket, now, EventKind.OVERDUE, _CLOCK, data=data)
            await self.desk.record(session, ticket, now, EventKind.ESCALATED, _CLOCK, data=data)
            return True

    async def _close_unrated(self, ref: int) -> bool:
        timeout = dt.timedelta(days=self.settings.rating_timeout_days)
        async with self.desk.locked_ticket(ref) as (session, ticket, now):
            if (
                ticket.status != TicketStatus.REPLIED
                or not ticket.replied_at
                or ticket.replied_at >= now - timeout
            ):
                return False
            ticket.status = TicketStatus.CLOSED
            ticket.closed_at = now
            await self.desk.record(
                session,
                ticket,
                now,
                EventKind.CLOSED,
                _CLOCK,
                data={
                    "by": "system",
                    "reason": "no_rating",
                    "days": self.settings.rating_timeout_days,
                },
            )
            return True

    async def run_forever(self, stop: asyncio.Event | None = None) -> None:
        """Sweep once per tick of sweep_interval_seconds until `stop` is set (or cancelled).

        Ticks are counted on the database's clock from the epoch; every process running the
        clock tries each tick, and the one that claims it (`claim_tick`) sweeps: one sweep per
        tick across all processes. A process that starts mid-tick tries that tick at once, so a
        bot that was down catches up.
        """
        stop = stop or asyncio.Event()
        interval = self.settings.sweep_interval_seconds
        while not stop.is_set():
            wait = interval
            try:
                now = await database_seconds(self.desk.sessions)
                tick = int(now // interval)
                if await claim_tick(self.desk.sessions, CLOCK_JOB, tick):
                    await self.sweep()
                # Wake just after the next tick begins.
                wait = (tick + 1) * interval - now + 0.05
            except Exception:
                log.exception("ticket clock sweep failed; trying again next time")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=max(0.05, wait))
