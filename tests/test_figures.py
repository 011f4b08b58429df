"""The figures of docs/tickets.md ("Figures and `report`") on both databases, from tickets that went through the real desk,
and `python -m bot report` printing them.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.models import Question
from bot.tickets.desk import Actor, TicketDesk
from bot.tickets.figures import Month, figures_for_month
from tests.fixtures_tickets import REPO_ROOT, MovableClock, add_resident, draft

URBAN = Actor.department("urban-management", "u1")
ECOLOGY = Actor.department("ecology-environment", "e1")


async def a_november(
    desk: TicketDesk, sessions: async_sessionmaker[AsyncSession], clock: MovableClock
) -> None:
    """Six tickets and four questions of November 2026, with known figures."""
    resident = await add_resident(sessions, 5001)
    clock.set_local(2026, 11, 2)
    first = await desk.file(draft(resident))  # acknowledged and replied in time, rated 5
    await desk.acknowledge(first.number, URBAN)
    clock.set_local(2026, 11, 3)
    second = await desk.file(draft(resident))  # acknowledged late, replied in time, rated 3
    clock.set_local(2026, 11, 4)
    await desk.file(draft(resident))  # never acknowledged, never replied
    clock.set_local(2026, 11, 5)
    await desk.reply(first.number, URBAN, "已清理。")
    await desk.rate(first.number, resident, solved=True, rating=5)
    clock.set_local(2026, 11, 6)
    await desk.acknowledge(second.number, URBAN)
    clock.set_local(2026, 11, 10)
    await desk.reply(second.number, URBAN, "已清理。")
    await desk.rate(second.number, resident, solved=True, rating=3)
    clock.set_local(2026, 11, 20)
    pollution = await desk.file(
        draft(resident, category="生态环境", description="工厂排污，河道发黑有臭味。")
    )
    await desk.acknowledge(pollution.number, ECOLOGY)
    clock.set_local(2026, 11, 24)
    await desk.reply(pollution.number, ECOLOGY, "已责令整改。")
    await desk.file(draft(resident, category="其他", description="不知道找谁的一件事。"))
    clock.set_local(2026, 11, 27)
    await desk.file(draft(resident))  # still inside its acknowledgement deadline
    clock.set_local(2026, 11, 30, 12)
    async with sessions() as session, session.begin():
        for decision, chosen, escalated, feedback in (
            ("answer", None, False, "helpful"),
            ("suggest", "item-x", False, "not_helpful"),
            ("escalate", None, True, None),
            ("answer", None, False, None),
        ):
            session.add(
                Question(
                    resident_id=resident,
                    chat_id=5001,
                    text="问题",
                    decision=decision,
                    chosen_item_id=chosen,
                    escalated=escalated,
                    feedback=feedback,
                    created_at=clock(),
                )
            )


async def test_the_four_rates_follow_the_definitions(
    desk: TicketDesk, sessions: async_sessionmaker[AsyncSession], clock: MovableClock
) -> None:
    await a_november(desk, sessions, clock)
    async with sessions() as session:
        figures = await figures_for_month(session, "2026-11", now=clock())

    urban = figures.department("urban-management")
    assert (urban.assigned, urban.acknowledged_on_time) == (3, 1)
    assert (urban.due, urban.replied_on_time) == (3, 2)
    assert (urban.replied, urban.rated, urban.satisfied) == (2, 2, 1)
    ecology = figures.department("ecology-environment")
    assert (ecology.response_rate, ecology.on_time_rate, ecology.rating_rate) == (1.0, None, 0.0)
    assert ecology.satisfaction_rate is None

    total = figures.total
    assert total.response_rate == 0.5
    assert total.on_time_rate == pytest.approx(2 / 3)
    assert total.rating_rate == pytest.approx(2 / 3)
    assert total.satisfaction_rate == 0.5
    assert [row.department_id for row in figures.departments] == [
        "ecology-environment",
        "urban-management",
    ]
    questions = figures.questions
    assert questions is not None
    assert (questions.questions, questions.answered_by_bot, questions.answer_rate) == (4, 3, 0.75)
    assert questions.helpful_share == 0.5


async def test_one_departments_figures_and_an_empty_month(
    desk: TicketDesk, sessions: async_sessionmaker[AsyncSession], clock: MovableClock
) -> None:
    await a_november(desk, sessions, clock)
    async with sessions() as session:
        urban = await figures_for_month(session, Month(2026, 11), "urban-management", now=clock())
        october = await figures_for_month(session, "2026-10", now=clock())
    assert [row.department_id for row in urban.departments] == ["urban-management"]
    assert urban.total.assigned == 3
    assert urban.questions is None
    assert october.total.response_rate is None
    assert october.departments == ()


async def test_the_figures_change_when_a_department_acts(
    desk: TicketDesk, sessions: async_sessionmaker[AsyncSession], clock: MovableClock
) -> None:
    resident = await add_resident(sessions, 5002)
    clock.set_local(2026, 11, 26)
    filed = await desk.file(draft(resident))
    async with sessions() as session:
        before = await figures_for_month(session, "2026-11", now=clock())
    await desk.acknowledge(filed.number, URBAN)
    await desk.reply(filed.number, URBAN, "已处理。")
    await desk.rate(filed.number, resident, solved=True, rating=4)
    async with sessions() as session:
        after = await figures_for_month(session, "2026-11", now=clock())
    assert before.total.response_rate is None
    assert (after.total.response_rate, after.total.rating_rate, after.total.satisfaction_rate) == (
        1.0,
        1.0,
        1.0,
    )


def test_a_month_must_look_like_one() -> None:
    assert str(Month.parse("2026-11")) == "2026-11"
    assert Month.parse("2026-12").next() == Month(2027, 1)
    for wrong in ("2026-13", "11/2026", "2026-1", ""):
        with pytest.raises(ValueError, match="like 2026-11"):
            Month.parse(wrong)


async def run_bot(*arguments: str, database_url: str) -> tuple[int, str, str]:
    """Run `python -m bot ...` in a process of its own; return its exit code and output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *arguments,
        cwd=REPO_ROOT,
        env=os.environ | {"DATABASE_URL": database_url, "PYTHONPATH": str(REPO_ROOT)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    return process.returncode or 0, out.decode(), err.decode()


async def test_report_prints_the_figures(
    desk: TicketDesk,
    sessions: async_sessionmaker[AsyncSession],
    clock: MovableClock,
    database_url: str,
) -> None:
    await a_november(desk, sessions, clock)
    code, table, _ = await run_bot("report", "--month", "2026-11", database_url=database_url)
    assert code == 0
    assert "Figures for 2026-11" in table
    assert "示例市城市管理综合执法局" in table
    assert "all departments" in table
    code, as_json, _ = await run_bot(
        "report",
        "--month",
        "2026-11",
        "--json",
        "--department",
        "ecology-environment",
        database_url=database_url,
    )
    data = json.loads(as_json)
    assert data["total"]["assigned"] == 1
    assert data["total"]["response_rate"] == 1.0
    code, _, error = await run_bot("report", "--month", "November", database_url=database_url)
    assert code == 2
    assert "like 2026-11" in error
