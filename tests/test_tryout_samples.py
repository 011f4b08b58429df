"""The try-out's sample tickets: realistic enough for the console's figures, marked as samples
in the database and the console, left alone by the ticket clock, removed without touching
anything else, and refused outside the try-out. SQLite and PostgreSQL; the console in Chromium.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bot.core.models import OutboxMessage, Ticket, TicketEvent
from bot.core.vocabulary import TicketStatus, TicketType
from bot.services import Services
from bot.tickets.clock import TicketClock
from bot.tickets.figures import Month, figures_for_month
from tests.fixtures_console import Console
from tests.fixtures_conversation import REPO_ROOT
from tests.fixtures_tickets import CHINA, add_resident, draft
from tests.test_console_browser import open_as
from tryout.samples import SAMPLE_MARK, add_samples, remove_samples

NOW = dt.datetime(2026, 11, 26, 10, 0, tzinfo=CHINA)


async def test_samples_cover_types_statuses_ratings_overdue_and_departments(
    services: Services,
) -> None:
    assert await add_samples(services, count=300, now=NOW) == 300
    async with services.sessions() as session:
        tickets = (await session.execute(select(Ticket))).scalars().all()
        outbox = await session.scalar(select(func.count()).select_from(OutboxMessage))
        events = await session.scalar(select(func.count()).select_from(TicketEvent))
    assert len(tickets) == 300
    assert all(t.sample and t.number.startswith("SAMPLE-") for t in tickets)
    assert all(t.description.startswith(SAMPLE_MARK) for t in tickets)
    assert {t.type for t in tickets} == set(TicketType)
    assert {t.status for t in tickets} == set(TicketStatus)
    assert {t.rating for t in tickets if t.rating} == {1, 2, 3, 4, 5}
    assert any(t.rating_comment for t in tickets)
    assert any(t.overdue for t in tickets)
    assert any(t.overdue and t.status in ("assigned", "acknowledged") for t in tickets)
    assert any(t.ack_overdue for t in tickets)
    assert any(t.outcome for t in tickets if t.type == TicketType.DISCLOSURE)
    assert any(t.anonymous for t in tickets)
    assert len({t.department_id for t in tickets if t.department_id}) >= 8
    months = {Month.of(t.created_at, CHINA) for t in tickets}
    assert len(months) >= 6
    assert all(t.created_at <= NOW for t in tickets)
    assert events is not None
    assert events > 300
    # Nothing is sent for a sample.
    assert outbox == 0
    async with services.sessions() as session:
        figures = await figures_for_month(session, Month.of(NOW - dt.timedelta(days=40), CHINA))
    assert figures.total.assigned > 10
    assert figures.total.replied > 5
    assert figures.total.rated > 0


async def test_the_clock_leaves_samples_alone_and_removing_them_keeps_real_tickets(
    services: Services,
) -> None:
    resident = await add_resident(services.sessions, 7001)
    real = await services.tickets.file(draft(resident))
    await add_samples(services, count=120, now=NOW)
    async with services.sessions() as session:
        before = await session.scalar(select(func.count()).select_from(TicketEvent))
    report = await TicketClock(services.tickets).sweep()
    assert (report.reminders, report.overdue, report.closed) == (0, 0, 0)
    async with services.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(TicketEvent)) == before
    assert await remove_samples(services) == 120
    async with services.sessions() as session:
        left = (await session.execute(select(Ticket.number))).scalars().all()
        events = (await session.execute(select(TicketEvent.ticket_id))).scalars().all()
    assert left == [real.number]
    assert set(events) == {real.id}
    assert await remove_samples(services) == 0


def test_the_command_adds_and_removes_samples_and_refuses_with_a_bot_token(
    tmp_path: Path,
) -> None:
    environment = dict(os.environ)
    environment.pop("TELEGRAM_BOT_TOKEN", None)
    environment["PYTHONPATH"] = str(REPO_ROOT)
    environment["DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'tryout.sqlite3'}"

    def samples(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tryout.samples", *args],
            cwd=REPO_ROOT,
            env=environment | extra,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    refused = samples("add", TELEGRAM_BOT_TOKEN="123456:real-token")
    assert refused.returncode != 0
    assert "try-out only" in refused.stderr
    assert not (tmp_path / "tryout.sqlite3").exists()
    added = samples("add", "--count", "40")
    assert added.returncode == 0, added.stderr
    assert "added 40 sample tickets" in added.stdout
    removed = samples("remove")
    assert removed.returncode == 0, removed.stderr
    assert "removed 40 sample tickets" in removed.stdout


async def test_the_console_marks_samples_with_a_banner_and_a_label(
    console: Console, chromium: Any
) -> None:
    page = await open_as(chromium, console.url, "manager")
    await page.goto(f"{console.url}/figures")
    assert await page.locator(".notice.sample").count() == 0
    await add_samples(console.services, count=60)
    await page.goto(f"{console.url}/figures")
    banner = page.locator(".notice.sample")
    assert "示例数据" in await banner.inner_text()
    assert "60" in await banner.inner_text()
    async with console.services.sessions() as session:
        number = await session.scalar(select(Ticket.number).limit(1))
    await page.goto(f"{console.url}/tickets/{number}")
    assert await page.locator("h1 .badge.sample").inner_text() == "示例"
    await remove_samples(console.services)
    await page.goto(f"{console.url}/figures")
    assert await page.locator(".notice.sample").count() == 0
