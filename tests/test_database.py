"""The schema is built by migrations on both backends, and migrations go down and up again;
processes started together on a fresh database migrate it once and all start; the writers of
one SQLite database queue at one gate."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import shutil
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.answering.question_log import QuestionLog
from bot.answering.store import LoadedKnowledge
from bot.core import db
from bot.core.config import Settings
from bot.core.db import (
    alembic_config,
    create_engine,
    downgrade_database,
    session_factory,
    upgrade_database,
    write_gate,
)
from bot.core.models import Base, Resident, utcnow
from bot.tickets.desk import TicketDesk
from tests.fixtures_db import BACKENDS, POSTGRES_ADMIN_URL, postgres_admin
from tests.fixtures_knowledge import REPO_ROOT
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


async def test_migrations_go_down_past_table_copies_and_up_again_keeping_the_data(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    bundled: LoadedKnowledge,
    ticket_settings: Settings,
    clock: MovableClock,
) -> None:
    # On SQLite, undoing 0009 copies the tickets table, which other tables refer to; with the
    # foreign keys on, dropping the old copy failed (or would have deleted the rows referring
    # to it).
    desk = TicketDesk(ticket_settings, sessions, lambda: bundled.kb, clock=clock)
    filed = await desk.file(draft(await add_resident(sessions, 5002)))

    async def counts() -> tuple[int, int]:
        async with engine.connect() as connection:
            tickets = (await connection.execute(text("SELECT count(*) FROM tickets"))).scalar()
            events = (
                await connection.execute(text("SELECT count(*) FROM ticket_events"))
            ).scalar()
        return int(tickets or 0), int(events or 0)

    before = await counts()
    assert before[0] == 1
    assert before[1] >= 1
    await downgrade_database(engine, "0008_sample_data")
    assert await counts() == before
    await upgrade_database(engine)
    assert await counts() == before
    async with sessions() as session:
        number = (await session.execute(text("SELECT number FROM tickets"))).scalar()
    assert number == filed.number


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


# -- processes that start together on a fresh database ----------------------------------------

STARTERS = 4
# A starter as `python -m bot worker` is one: it imports the bot, waits until every starter is
# ready (a line on standard input), then migrates.
STARTER_SCRIPT = """
import asyncio, sys
from bot.core.db import create_engine, upgrade_database

async def main(url):
    engine = create_engine(url)
    try:
        await upgrade_database(engine)
    finally:
        await engine.dispose()

print("ready", flush=True)
sys.stdin.readline()
asyncio.run(main(sys.argv[1]))
"""


@pytest.fixture(params=BACKENDS)
async def fresh_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of a database nothing has migrated yet, once per backend."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/fresh.sqlite3"
        return
    if os.environ.get("BOT_TEST_SKIP_POSTGRES") == "1":
        pytest.skip("BOT_TEST_SKIP_POSTGRES=1")
    name = f"bot_fresh_{uuid.uuid4().hex[:12]}"
    await postgres_admin(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES_ADMIN_URL.rpartition('/')[0]}/{name}"
    finally:
        await postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _revisions() -> list[str]:
    return [r.revision for r in ScriptDirectory.from_config(alembic_config()).walk_revisions()]


async def _assert_at_head_once(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            versions = await connection.execute(text("SELECT version_num FROM alembic_version"))
            assert versions.scalars().all() == [_revisions()[0]]
        assert {t.name for t in Base.metadata.sorted_tables} <= await _tables(engine)
    finally:
        await engine.dispose()


async def test_engines_migrating_a_fresh_database_together_run_each_migration_once(
    fresh_database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    engines = [create_engine(fresh_database_url) for _ in range(STARTERS)]
    try:
        with caplog.at_level(logging.INFO, logger="alembic.runtime.migration"):
            results = await asyncio.gather(
                *(upgrade_database(e) for e in engines), return_exceptions=True
            )
    finally:
        for engine in engines:
            await engine.dispose()
    assert [r for r in results if r is not None] == []
    ran = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Running upgrade")]
    assert len(ran) == len(_revisions()), ran
    await _assert_at_head_once(fresh_database_url)


async def test_a_locked_sqlite_database_is_migrated_on_a_later_try(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/fresh.sqlite3"
    once = db._migrate_once
    calls: list[str] = []

    async def locked_at_first(*args: Any) -> None:
        calls.append("try")
        if len(calls) == 1:
            raise OperationalError("BEGIN IMMEDIATE", {}, Exception("database is locked"))
        await once(*args)

    monkeypatch.setattr(db, "_migrate_once", locked_at_first)
    monkeypatch.setattr(db, "_SQLITE_LOCKED_PAUSE", 0.01)
    engine = create_engine(url)
    try:
        with caplog.at_level(logging.WARNING, logger="bot.core.db"):
            await upgrade_database(engine)
    finally:
        await engine.dispose()

    assert calls == ["try", "try"]
    assert "locked while migrating (attempt 1 of 5)" in caplog.text
    await _assert_at_head_once(url)


async def test_another_database_error_while_migrating_is_not_tried_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    async def broken(*args: Any) -> None:
        calls.append("try")
        raise OperationalError("CREATE TABLE", {}, Exception("disk I/O error"))

    monkeypatch.setattr(db, "_migrate_once", broken)
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/fresh.sqlite3")
    try:
        with pytest.raises(OperationalError, match="disk I/O error"):
            await upgrade_database(engine)
    finally:
        await engine.dispose()
    assert calls == ["try"]


@pytest.mark.slow
async def test_processes_started_together_on_a_fresh_database_all_start(
    fresh_database_url: str,
) -> None:
    env = os.environ | {"PYTHONPATH": str(REPO_ROOT)}
    starters = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            STARTER_SCRIPT,
            fresh_database_url,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=REPO_ROOT,
            env=env,
        )
        for _ in range(STARTERS)
    ]
    try:
        for starter in starters:
            assert starter.stdout is not None
            assert await asyncio.wait_for(starter.stdout.readline(), 60) == b"ready\n"
        for starter in starters:
            assert starter.stdin is not None
            starter.stdin.write(b"go\n")
            await starter.stdin.drain()
        outcomes = [await asyncio.wait_for(s.communicate(), 60) for s in starters]
    finally:
        for starter in starters:
            if starter.returncode is None:
                starter.kill()
                await starter.wait()
    failures = [
        err.decode() for s, (_, err) in zip(starters, outcomes, strict=True) if s.returncode
    ]
    assert failures == []
    await _assert_at_head_once(fresh_database_url)


async def test_group_commit_writes_what_arrives_meanwhile_together_and_fails_a_batch_alike() -> (
    None
):
    batches: list[list[int]] = []
    release = asyncio.Event()

    async def write(items: list[int]) -> list[int]:
        batches.append(items)
        if len(batches) == 1:
            await release.wait()
        if 13 in items:
            raise ValueError("unlucky batch")
        return [item * 10 for item in items]

    rounds: db.GroupCommit[int, int] = db.GroupCommit(write, batch=3)
    first = asyncio.create_task(rounds.submit(1))
    await asyncio.sleep(0)
    # While the first batch is being written, four more arrive: the next batches take three
    # and one (the cap), each a write of its own.
    later = [asyncio.create_task(rounds.submit(n)) for n in (2, 3, 4, 5)]
    await asyncio.sleep(0)
    release.set()
    assert await first == 10
    assert await asyncio.gather(*later) == [20, 30, 40, 50]
    assert batches == [[1], [2, 3, 4], [5]]
    assert rounds.rounds == 3

    # An error fails every caller of its batch, and only those.
    release.clear()
    batches.clear()
    blocked = asyncio.create_task(rounds.submit(6))
    await asyncio.sleep(0)
    unlucky = [asyncio.create_task(rounds.submit(n)) for n in (12, 13)]
    await asyncio.sleep(0)
    release.set()
    assert await blocked == 60
    for task in unlucky:
        with pytest.raises(ValueError, match="unlucky"):
            await task

    # Closed with an error: the batch being written is cancelled, its callers get the error.
    release.clear()
    batches.clear()
    stuck = asyncio.create_task(rounds.submit(7))
    for _ in range(3):  # the caller queues it and starts the writer, which takes the batch
        await asyncio.sleep(0)
    assert batches == [[7]]
    queued = asyncio.create_task(rounds.submit(8))
    await asyncio.sleep(0)
    await rounds.close(LookupError("stopped"))
    for task in (stuck, queued):
        with pytest.raises(LookupError):
            await task
    assert batches == [[7]]  # 8 was never written
