"""The ticket clock on both databases: reminders, 督办 after deadlines, closing unrated tickets."""

from __future__ import annotations

import asyncio

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.models import OutboxMessage
from bot.tickets.clock import TicketClock
from bot.tickets.desk import Actor, TicketDesk
from tests.fixtures_tickets import MovableClock, add_resident, draft

URBAN = Actor.department("urban-management", "officer-7")


async def notices(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[str, str, str]]:
    async with sessions() as session:
        rows = (await session.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars()
        return [
            (
                r.channel,
                r.payload["event"]["kind"],
                str(r.payload["event"]["data"].get("which", "")),
            )
            for r in rows
        ]


async def test_reminders_then_escalation_follow_the_deadlines_and_each_happens_once(
    desk: TicketDesk, sessions: async_sessionmaker[AsyncSession], clock: MovableClock
) -> None:
    resident = await add_resident(sessions, 2001)
    filed = await desk.file(draft(resident))  # Thursday 26 November 2026, 10:00
    ticking = TicketClock(desk)

    clock.set_local(2026, 11, 27, 12)  # acknowledgement due by the end of Friday
    assert (await ticking.sweep()).total == 0
    clock.set_local(2026, 11, 27, 21)
    assert (await ticking.sweep()).reminders == 1
    assert (await ticking.sweep()).total == 0
    clock.set_local(2026, 11, 28, 1)
    assert (await ticking.sweep()).overdue == 1
    ticket = await desk.get(filed.number)
    assert ticket.ack_overdue
    assert ticket.supervised
    assert not ticket.overdue

    await desk.acknowledge(filed.number, URBAN)
    clock.set_local(2026, 12, 17, 10)  # reply due by the end of Thursday 17 December
    assert (await ticking.sweep()).reminders == 1
    clock.set_local(2026, 12, 18, 1)
    assert (await ticking.sweep()).overdue == 1
    assert (await ticking.sweep()).total == 0
    ticket = await desk.get(filed.number)
    assert ticket.overdue
    assert ticket.supervised

    sent = await notices(sessions)
    assert ("telegram", "reminder", "ack") in sent
    assert ("telegram", "reminder", "reply") in sent
    assert ("supervisor", "escalated", "ack") in sent
    assert ("supervisor", "escalated", "reply") in sent
    # The resident hears about the late reply, not about a late 签收.
    assert ("resident", "escalated", "reply") in sent
    assert ("resident", "escalated", "ack") not in sent
    timeline = [e.kind for e in await desk.timeline(filed.number, public_only=True)]
    assert timeline.count("reminder") == 2
    assert timeline.count("escalated") == 2


async def test_two_clocks_sweeping_at_once_decide_nothing_twice(
    desk: TicketDesk, sessions: async_sessionmaker[AsyncSession], clock: MovableClock
) -> None:
    resident = await add_resident(sessions, 2002)
    for _ in range(3):
        await desk.file(draft(resident))
    clock.set_local(2026, 11, 28, 1)
    reports = await asyncio.gather(TicketClock(desk).sweep(), TicketClock(desk).sweep())
    assert sum(r.overdue for r in reports) == 3
    supervisor = [n for n in await notices(sessions) if n[0] == "supervisor"]
    assert len(supervisor) == 3


async def test_a_replied_ticket_closes_itself_when_the_resident_never_rates_it(
    desk: TicketDesk, sessions: async_sessionmaker[AsyncSession], clock: MovableClock
) -> None:
    resident = await add_resident(sessions, 2003)
    filed = await desk.file(draft(resident))
    await desk.reply(filed.number, URBAN, "已清理完毕。")
    ticking = TicketClock(desk)
    clock.advance(days=6)
    assert (await ticking.sweep()).closed == 0
    clock.advance(days=2)
    assert (await ticking.sweep()).closed == 1
    ticket = await desk.get(filed.number)
    assert ticket.status == "closed"
    assert ticket.rating is None
    closed = (await desk.timeline(filed.number))[-1]
    assert (closed.kind, closed.actor_type, closed.data["by"]) == ("closed", "system", "system")
    assert ("resident", "closed", "") in await notices(sessions)


async def test_a_ticket_stuck_in_triage_is_escalated_too(
    desk: TicketDesk, sessions: async_sessionmaker[AsyncSession], clock: MovableClock
) -> None:
    resident = await add_resident(sessions, 2004)
    filed = await desk.file(
        draft(resident, category="其他", description="不知道该找谁反映的问题。")
    )
    clock.set_local(2026, 12, 18, 9)
    assert (await TicketClock(desk).sweep()).overdue == 1
    assert (await desk.get(filed.number)).supervised
