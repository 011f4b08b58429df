"""Gauges read from the database when Prometheus scrapes: escalations, tickets, the outbox.

Three cheap queries (each on an indexed column, counts and minimums only) run at most once per
[metrics] database_cache_seconds, however often and from however many scrapers /metrics is
read. Every process reports the same figures of the one shared database; alert on
`max without (instance, job)` of them.

No label carries personal data: ticket statuses and outbox channels are fixed words.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.models import Escalation, OutboxMessage, Ticket, utcnow
from bot.core.vocabulary import TicketStatus

log = logging.getLogger(__name__)

# Tickets still waiting for a department's reply: the ones that can be overdue.
OPEN_STATUSES = (
    TicketStatus.RECEIVED,
    TicketStatus.ASSIGNED,
    TicketStatus.ACKNOWLEDGED,
    TicketStatus.RETURNED,
)
OUTBOX_WAITING = ("pending", "failed")
# The outbox's channels (bot/tickets/outbox.py), reported at 0 when empty so alerts have a series.
OUTBOX_CHANNELS = ("telegram", "webhook", "resident", "staff", "supervisor")


@dataclass
class Snapshot:
    """The database's figures at one moment."""

    taken_at: dt.datetime
    escalations_open: int = 0
    oldest_escalation: dt.datetime | None = None
    tickets: dict[str, int] = field(default_factory=dict)
    tickets_overdue: int = 0
    # (channel, status) -> (rows, oldest created_at)
    outbox: dict[tuple[str, str], tuple[int, dt.datetime | None]] = field(default_factory=dict)


async def read_snapshot(session: AsyncSession) -> Snapshot:
    """Read the figures (three small queries)."""
    now = utcnow()
    snapshot = Snapshot(taken_at=now)
    row = (
        await session.execute(
            select(func.count(), func.min(Escalation.created_at)).where(
                Escalation.status == "open"
            )
        )
    ).one()
    snapshot.escalations_open, snapshot.oldest_escalation = int(row[0]), row[1]
    for status, count in await session.execute(
        select(Ticket.status, func.count()).group_by(Ticket.status)
    ):
        snapshot.tickets[str(status)] = int(count)
    snapshot.tickets_overdue = int(
        await session.scalar(
            select(func.count()).where(
                Ticket.reply_deadline < now, Ticket.status.in_([str(s) for s in OPEN_STATUSES])
            )
        )
        or 0
    )
    for channel, status, count, oldest in await session.execute(
        select(
            OutboxMessage.channel,
            OutboxMessage.status,
            func.count(),
            func.min(OutboxMessage.created_at),
        )
        .where(OutboxMessage.status.in_(OUTBOX_WAITING))
        .group_by(OutboxMessage.channel, OutboxMessage.status)
    ):
        snapshot.outbox[(str(channel), str(status))] = (int(count), oldest)
    return snapshot


def _age(now: dt.datetime, then: dt.datetime | None) -> float:
    if then is None:
        return 0.0
    if then.tzinfo is None:
        then = then.replace(tzinfo=dt.UTC)
    return max((now - then).total_seconds(), 0.0)


class DatabaseGauges(Collector):
    """A Prometheus collector over the latest snapshot; `refresh` renews it when it is stale."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        cache_seconds: float,
        timeout_seconds: float = 5,
    ) -> None:
        self.sessions = sessions
        self.cache_seconds = cache_seconds
        self.timeout_seconds = timeout_seconds
        self.snapshot: Snapshot | None = None
        self.error: str | None = None
        self._read_at = -float("inf")
        self._lock = asyncio.Lock()

    async def refresh(self) -> None:
        """Read the figures again unless they are fresh enough; a failure is reported, not raised."""
        async with self._lock:
            if time.monotonic() - self._read_at < self.cache_seconds:
                return
            try:
                async with asyncio.timeout(self.timeout_seconds), self.sessions() as session:
                    self.snapshot = await read_snapshot(session)
                self.error = None
            except Exception as error:  # the database may be down: /metrics still answers
                self.error = type(error).__name__
                log.warning("database figures for /metrics could not be read: %s", self.error)
            self._read_at = time.monotonic()

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "bot_database_figures_up",
            "1 if the database figures below were read at the last try, 0 if not",
            value=0 if self.error or self.snapshot is None else 1,
        )
        yield up
        snapshot = self.snapshot
        if snapshot is None:
            return
        now = snapshot.taken_at
        yield GaugeMetricFamily(
            "bot_escalations_open",
            "Questions handed to staff and not answered yet",
            value=snapshot.escalations_open,
        )
        yield GaugeMetricFamily(
            "bot_escalation_oldest_age_seconds",
            "Age of the oldest unanswered escalation (0 when there is none)",
            value=_age(now, snapshot.oldest_escalation),
        )
        tickets = GaugeMetricFamily("bot_tickets", "Tickets by status", labels=["status"])
        for each in TicketStatus:
            tickets.add_metric([str(each)], snapshot.tickets.get(str(each), 0))
        yield tickets
        yield GaugeMetricFamily(
            "bot_tickets_overdue",
            "Tickets not replied to whose reply deadline has passed",
            value=snapshot.tickets_overdue,
        )
        rows = GaugeMetricFamily(
            "bot_outbox_messages",
            "Outbox rows waiting (pending) or given up (failed), by channel",
            labels=["channel", "status"],
        )
        oldest = GaugeMetricFamily(
            "bot_outbox_oldest_age_seconds",
            "Age of the oldest outbox row of a channel and status",
            labels=["channel", "status"],
        )
        keys = {(c, s) for c in OUTBOX_CHANNELS for s in OUTBOX_WAITING} | set(snapshot.outbox)
        for channel, status in sorted(keys):
            count, first = snapshot.outbox.get((channel, status), (0, None))
            rows.add_metric([channel, status], count)
            oldest.add_metric([channel, status], _age(now, first))
        yield rows
        yield oldest
