"""The schema is built by migrations on both backends, and migrations go down and up again;
the writers of one SQLite database queue at one gate."""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
from pathlib import Path

from sqlalchemy import inspect, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.answering.question_log import QuestionLog
from bot.answering.store import LoadedKnowledge
from bot.core.config import Settings
from bot.core.db import (
    create_engine,
    downgrade_database,
    session_factory,
    upgrade_database,
    write_gate,
)
from bot.core.models import Base, Resident, utcnow
from bot.tickets.desk import TicketDesk
from tests.fixtures_tickets import MovableClock, add_resident, draft


async def _tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as connection:
        names = await connection.run_sync(lambda c: inspect(c).get_table_names())
    return set(names)


async def test_migrations_create_every_table_of_the_models(engine: AsyncEngine) -> None:
    tables = await _tables(engine)
    assert {t.name for t in Base.metadata.sorted_tables} <= tables
    assert "alembic_version" in tables


async def test_migrations_go_down_to_nothing_and_up_again(engine: AsyncEngine) -> None:
    await downgrade_database(engine, "base")
    assert await _tables(engine) <= {"alembic_version"}
    await upgrade_database(engine)
    assert {t.name for t in Base.metadata.sorted_tables} <= await _tables(engine)


async def test_a_new_sqlite_file_and_its_folder_are_created(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/new/folder/bot.sqlite3")
    try:
        await upgrade_database(engine)
        assert (tmp_path / "new" / "folder" / "bot.sqlite3").is_file()
    finally:
        await engine.dispose()


async def test_times_come_back_aware_in_utc(sessions: async_sessionmaker[AsyncSession]) -> None:
    moment = dt.datetime(2026, 11, 26, 18, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    async with sessions() as session:
        session.add(Resident(telegram_user_id=42, chat_id=42, created_at=moment))
        await session.commit()
    async with sessions() as session:
        resident = (await session.execute(select(Resident))).scalar_one()
    assert resident.created_at == moment
    assert resident.created_at.tzinfo is not None
    assert resident.last_seen_at <= utcnow()


async def test_ticket_and_question_writes_queue_at_the_one_gate_of_an_sqlite_database(
    sqlite_template: Path,
    tmp_path: Path,
    bundled: LoadedKnowledge,
    ticket_settings: Settings,
    clock: MovableClock,
) -> None:
    target = tmp_path / "bot.sqlite3"
    shutil.copyfile(sqlite_template, target)
    engine = create_engine(f"sqlite+aiosqlite:///{target}")
    try:
        sessions = session_factory(engine)
        desk = TicketDesk(ticket_settings, sessions, lambda: bundled.kb, clock=clock)
        questions = QuestionLog(sessions)
        resident = await add_resident(sessions, 5001)
        # One gate per database, whichever session factory asks for it.
        gate = write_gate(sessions)
        assert write_gate(session_factory(engine)) is gate

        async with gate:
            filing = asyncio.create_task(desk.file(draft(resident)))
            asking = asyncio.create_task(
                questions.record(
                    resident_id=resident,
                    chat_id=5001,
                    message_id=None,
                    language="zh",
                    result=bundled.matcher.match("身份证丢了怎么补办"),
                )
            )
            done, _ = await asyncio.wait({filing, asking}, timeout=0.5)
            assert done == set(), "a write went past the gate while it was held"
        filed = await asyncio.wait_for(filing, timeout=10)
        question_id = await asyncio.wait_for(asking, timeout=10)
        assert filed.number.startswith("TS-")
        assert await questions.get(question_id) is not None
    finally:
        await engine.dispose()


def test_postgresql_writers_have_no_gate_to_queue_at() -> None:
    engine = create_engine("postgresql+asyncpg://nobody@127.0.0.1:9/none")
    gate = write_gate(session_factory(engine))
    assert not isinstance(gate, asyncio.Lock)
