"""Several processes on one database: the Telegram lease, and periodic jobs once per tick.

The lease tests run on PostgreSQL (SQLite serves one process, which always leads); a network
cut between a leader and the database is a real TCP relay that stops relaying.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.core import metrics
from bot.core.db import create_engine, session_factory
from bot.core.leadership import Leadership, claim_tick, on_leadership_change
from bot.core.models import ClockTick, Lease, TicketEvent
from bot.core.vocabulary import EventKind
from bot.tickets.clock import CLOCK_JOB, TicketClock
from bot.tickets.desk import TicketDesk
from tests.fixtures_knowledge import LoadedKnowledge
from tests.fixtures_tickets import MovableClock, add_resident, draft, make_settings

TTL = 2.0


@pytest.fixture
def postgres_engine(engine: AsyncEngine) -> AsyncEngine:
    if engine.dialect.name != "postgresql":
        pytest.skip("one process serves SQLite; it always leads")
    return engine


async def wait_until(condition: object, limit: float = 30) -> None:
    """Wait (up to a generous limit, never asserted as a duration) until condition() holds."""
    assert callable(condition)
    for _ in range(int(limit / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the condition never held")


class Relay:
    """A TCP relay to PostgreSQL that can be cut, as a network partition cuts a host off."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.cut = False
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                if self.cut:
                    # Packets vanish: nothing is answered and nothing is closed.
                    await asyncio.Event().wait()
                writer.write(data)
                await writer.drain()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        self._tasks.add(asyncio.current_task())  # type: ignore[arg-type]
        if self.cut:
            await asyncio.Event().wait()
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        self._writers.append(upstream_writer)
        await asyncio.gather(
            self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer)
        )

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for writer in self._writers:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


@pytest.fixture
async def relay(postgres_engine: AsyncEngine) -> AsyncIterator[tuple[Relay, str]]:
    url = postgres_engine.url
    relay = Relay(url.host or "127.0.0.1", url.port or 5432)
    port = await relay.start()
    try:
        yield relay, url.set(port=port).render_as_string(hide_password=False)
    finally:
        await relay.close()


async def test_one_process_leads_and_a_standby_takes_over_when_it_stops_renewing(
    postgres_engine: AsyncEngine,
) -> None:
    first = Leadership(postgres_engine, ttl=TTL, holder="first")
    second = Leadership(postgres_engine, ttl=TTL, holder="second")
    changes = metrics.LEADERSHIP_CHANGES._value.get()
    assert await first.try_acquire()
    # The change shows on /metrics (bot/core/metrics.py).
    assert metrics.LEADERSHIP_CHANGES._value.get() == changes + 1
    assert metrics.IS_LEADER._value.get() == 1
    assert not await second.try_acquire()
    assert first.leading
    assert not second.leading
    assert await first.try_acquire()  # renewing keeps the term
    assert first.term == 1

    # The first process dies: nobody renews, and the lease expires on the database's clock.
    stop = asyncio.Event()
    standby = asyncio.create_task(second.run(stop))
    try:
        await wait_until(lambda: second.leading)
        assert second.term == 2
        async with session_factory(postgres_engine)() as session:
            lease = await session.get(Lease, "telegram")
            assert lease is not None
            assert (lease.holder, lease.term) == ("second", 2)
        # The old leader, back from the dead, is refused and knows it does not lead.
        assert not await first.try_acquire()
        assert not first.leading
        assert metrics.LEADERSHIP_CHANGES._value.get() == changes + 3
        assert metrics.IS_LEADER._value.get() == 0
    finally:
        stop.set()
        await standby
        await first.release()
    # A clean stop releases the lease: the next one takes it at once, without waiting.
    assert await first.try_acquire()
    assert first.term == 3
    await first.release()


async def test_a_leader_cut_off_from_the_database_stops_before_a_standby_starts(
    postgres_engine: AsyncEngine, relay: tuple[Relay, str]
) -> None:
    cable, url = relay
    cut_off_engine = create_engine(url)
    events: list[tuple[str, bool]] = []
    on_leadership_change(lambda _name, leading, _term: None)  # listeners may be many
    leader = Leadership(cut_off_engine, ttl=TTL, holder="leader")
    standby = Leadership(postgres_engine, ttl=TTL, holder="standby")
    leader.on_change(lambda leading, _term: events.append(("leader", leading)))
    standby.on_change(lambda leading, _term: events.append(("standby", leading)))
    stop = asyncio.Event()
    leading = asyncio.create_task(leader.run(stop))
    try:
        await wait_until(lambda: leader.leading)
        standing_by = asyncio.create_task(standby.run(stop))
        await asyncio.sleep(TTL)  # a few renewals go through
        assert leader.leading
        assert not standby.leading
        cable.cut = True
        await wait_until(lambda: standby.leading)
        # The leader gave up on its own, before the standby took over: never two leaders.
        assert events == [("leader", True), ("leader", False), ("standby", True)]
        assert not leader.leading
    finally:
        stop.set()
        cable.cut = False
        await asyncio.wait_for(asyncio.gather(leading, standing_by), 30)
        await cut_off_engine.dispose()


async def test_sqlite_has_one_process_and_it_always_leads(engine: AsyncEngine) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite only")
    leadership = Leadership(engine, ttl=TTL)
    assert await leadership.try_acquire()
    assert leadership.leading
    assert leadership.term == 1
    assert not leadership.expired()


async def test_each_tick_is_claimed_by_exactly_one_of_many_processes(database_url: str) -> None:
    engines = [create_engine(database_url) for _ in range(3)]
    try:
        factories = [session_factory(e) for e in engines]
        for tick in range(1, 21):
            won = await asyncio.gather(
                *(claim_tick(f, "job", tick, holder=f"p{i}") for i, f in enumerate(factories))
            )
            assert sorted(won) == [False, False, True]
        async with factories[0]() as session:
            rows = await session.scalar(select(func.count()).select_from(ClockTick))
        assert rows == 20
    finally:
        for engine in engines:
            await engine.dispose()


class CountingClock(TicketClock):
    """The ticket clock, counting its sweeps."""

    sweeps = 0

    async def sweep(self):  # type: ignore[no-untyped-def]
        self.sweeps += 1
        return await super().sweep()


async def test_two_processes_running_the_ticket_clock_sweep_once_per_tick(
    database_url: str, engine: AsyncEngine, clock: MovableClock, bundled: LoadedKnowledge
) -> None:
    settings = make_settings(tickets={"sweep_interval_seconds": 0.2})
    engines = [engine, create_engine(database_url)]
    desks = [
        TicketDesk(settings, session_factory(e), lambda: bundled.kb, clock=clock) for e in engines
    ]
    sessions: async_sessionmaker[AsyncSession] = desks[0].sessions
    resident = await add_resident(sessions, 3001)
    await desks[0].file(draft(resident))
    clock.set_local(2026, 11, 28, 1)  # the acknowledgement is overdue
    clocks = [CountingClock(d) for d in desks]
    stop = asyncio.Event()
    running = [asyncio.create_task(c.run_forever(stop)) for c in clocks]
    try:

        async def ticks() -> int:
            async with sessions() as session:
                count = await session.scalar(
                    select(func.count()).select_from(ClockTick).where(ClockTick.job == CLOCK_JOB)
                )
                return int(count or 0)

        for _ in range(600):
            if await ticks() >= 8:
                break
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.gather(*running)
        await engines[1].dispose()
    # Without the claims each process sweeps every tick: twice as many sweeps as ticks.
    assert sum(c.sweeps for c in clocks) == await ticks()
    async with sessions() as session:
        overdue = await session.scalar(
            select(func.count())
            .select_from(TicketEvent)
            .where(TicketEvent.kind == EventKind.OVERDUE)
        )
    assert overdue == 1
