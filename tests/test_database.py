"""The schema is built by migrations on both backends, and migrations go down and up again."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import inspect, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.core.db import create_engine, downgrade_database, upgrade_database
from bot.core.models import Base, Resident, utcnow


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
