"""Least exposure in the web console, in real headless Chromium: phone numbers are masked for
everyone but the handling department with the resident's consent, and the privacy page residents
are linked to is public, in Chinese and English, with this deployment's periods.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from bot.core.models import AuditEntry, User
from tests.fixtures_console import Console, SampleWork
from tests.test_console_browser import open_as

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

FULL = "+862155501234"  # stored as E.164
MASKED = "+86 215***1234"


async def test_phones_are_masked_except_for_the_handling_department_with_consent(
    console: Console, work: SampleWork, chromium: Any
) -> None:
    # Urban management handles work.urban, and the resident agreed to share their contact.
    officer = await open_as(chromium, console.url, "officer")
    await officer.goto(f"{console.url}/tickets/{work.urban}")
    shown = await officer.inner_text("main")
    assert FULL in shown
    assert MASKED not in shown
    manager = await open_as(chromium, console.url, "manager")
    for number in (work.urban, work.ecology, work.triage):
        await manager.goto(f"{console.url}/tickets/{number}")
        shown = await manager.inner_text("main")
        assert MASKED in shown, number
        assert FULL not in await manager.content(), number
    # Staff triaging see no identity at all.
    staff = await open_as(chromium, console.url, "staff")
    await staff.goto(f"{console.url}/tickets/{work.triage}")
    assert "0123" not in await staff.inner_text("main")
    # The audit log says who saw the whole number.
    async with console.services.sessions() as session:
        views = (
            await session.execute(
                select(User.username, AuditEntry.target_id, AuditEntry.detail)
                .join(User, User.id == AuditEntry.user_id)
                .where(AuditEntry.action == "ticket.view_personal_data")
                .order_by(AuditEntry.id)
            )
        ).all()
    assert [(name, number, detail["phone_masked"]) for name, number, detail in views] == [
        ("officer", work.urban, False),
        ("manager", work.urban, True),
        ("manager", work.ecology, True),
        ("manager", work.triage, True),
    ]


async def test_the_privacy_page_is_public_and_names_the_configured_periods(
    console: Console, chromium: Any
) -> None:
    privacy = console.services.settings.privacy
    page = await (await chromium.new_context()).new_page()
    await page.goto(f"{console.url}/privacy")
    assert page.url == f"{console.url}/privacy"
    text = await page.inner_text("#privacy-text")
    assert "个人信息保护说明" in text
    assert f"提问后 {privacy.question_days} 天删除" in text
    assert f"工单办结后 {privacy.closed_ticket_days} 天删除" in text
    assert "/forget" in text
    assert "/mydata" in text
    await page.goto(f"{console.url}/lang/en")
    await page.goto(f"{console.url}/privacy")
    text = await page.inner_text("#privacy-text")
    assert "How long" in text
    assert f"{privacy.closed_ticket_days} days after the ticket is closed" in text
