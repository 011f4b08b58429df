"""Freshness of the knowledge base: items whose department changed its name or phone since
their last review are due again, with the reason; each department is reminded of its items
through its own channel, exactly once per interval even with several processes, delivered to a
real webhook endpoint; and the worker process follows the published knowledge version. On
SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.answering.freshness import (
    DEPARTMENT_PHONE_CHANGED,
    DEPARTMENT_RENAMED,
    KNOWLEDGE_REVIEW,
    MAX_ITEMS_LISTED,
    OVERDUE,
    Freshness,
    ReviewReminders,
    reminder_payload,
    reminder_text,
)
from bot.answering.knowledge_base import load_knowledge_base
from bot.answering.publishing import raise_published_version
from bot.core.config import DepartmentChannels, Settings, load_settings
from bot.core.models import OutboxMessage
from bot.tickets.delivery import DeliveryWorker, WebhookChannel
from bot.tickets.desk import TicketDesk
from bot.workers import TelegramChannel
from tests.fixtures_console import ConsoleClient, serving
from tests.fixtures_conversation import BotHarness
from tests.fixtures_knowledge_editor import (
    CIVIL,
    CIVIL_ITEM,
    POLICE,
    EditedKnowledge,
    copy_knowledge,
)
from tests.fixtures_tickets import (
    DEPARTMENT_CHAT,
    REPO_ROOT,
    WEBHOOK_SECRET_ENV,
    DepartmentEndpoint,
    MovableClock,
    make_settings,
)

# Departments with items in the bundled knowledge base: one pushes to a webhook, one to a
# Telegram group.
WEBHOOK_DEPARTMENT = CIVIL
TELEGRAM_DEPARTMENT = POLICE


def _set_department(directory: Path, department_id: str, **values: str) -> None:
    """Change fields of one department in a knowledge base copy's departments.toml."""
    path = directory / "departments.toml"
    text = path.read_text(encoding="utf-8")
    start = text.index(f'id = "{department_id}"')
    end = text.find("[[departments]]", start)
    end = len(text) if end < 0 else end
    block = text[start:end]
    for name, value in values.items():
        block, count = re.subn(
            rf'^{name} = ".*"$', f'{name} = "{value}"', block, count=1, flags=re.M
        )
        assert count == 1, name
    path.write_text(text[:start] + block + text[end:], encoding="utf-8")


async def test_an_item_is_due_again_when_its_department_changes_its_phone_or_name(
    edited: EditedKnowledge,
) -> None:
    services = edited.services
    officer = edited.editors["civil-officer"]
    await services.editor.confirm_current(officer, CIVIL_ITEM)
    fresh = {f.item_id: f for f in await services.editor.freshness()}
    assert fresh[CIVIL_ITEM].reasons == ()
    assert not fresh[CIVIL_ITEM].stale

    _set_department(edited.directory, CIVIL, phone="012-89990000")
    await services.knowledge.reload()
    fresh = {f.item_id: f for f in await services.editor.freshness()}
    assert fresh[CIVIL_ITEM].reasons == (DEPARTMENT_PHONE_CHANGED,)
    assert fresh[CIVIL_ITEM].stale
    # Items never reviewed in the console have nothing recorded to compare with.
    others = [f for f in fresh.values() if f.department_id == CIVIL and f.item_id != CIVIL_ITEM]
    assert others
    assert all(DEPARTMENT_PHONE_CHANGED not in f.reasons for f in others)

    _set_department(edited.directory, CIVIL, name="示例市民政服务局")
    await services.knowledge.reload()
    fresh = {f.item_id: f for f in await services.editor.freshness()}
    assert fresh[CIVIL_ITEM].reasons == (DEPARTMENT_RENAMED, DEPARTMENT_PHONE_CHANGED)

    async with serving(services) as console:
        client = ConsoleClient(console)
        try:
            await client.login("civil-officer")
            status, page = await client.get("/knowledge/freshness")
            assert status == 200
            row = page[page.index(f"/knowledge/items/{CIVIL_ITEM}") :]
            row = row[: row.index("</tr>")]
            assert "部门名称已变更" in row
            assert "部门电话已变更" in row
        finally:
            await client.close()

    # Confirming it again records the new name and phone: nothing is due any more.
    await services.editor.confirm_current(officer, CIVIL_ITEM)
    fresh = {f.item_id: f for f in await services.editor.freshness()}
    assert fresh[CIVIL_ITEM].reasons == ()


def reminder_settings(
    webhook_url: str = "http://127.0.0.1:9/none", **knowledge: float
) -> Settings:
    """Civil affairs pushes to a webhook, public security to a Telegram group; every bundled
    item is older than a day, so with review_days = 1 all of them are overdue."""
    return make_settings(
        webhook_url=webhook_url,
        departments={
            WEBHOOK_DEPARTMENT: {
                "channels": ["webhook", "console"],
                "webhook_url": webhook_url,
                "secret_env": WEBHOOK_SECRET_ENV,
            },
            TELEGRAM_DEPARTMENT: {"channels": ["telegram"], "telegram_chat_id": DEPARTMENT_CHAT},
        },
        knowledge={"review_days": 1, "reminder_days": 7, **knowledge},
    )


async def reminder_rows(sessions: async_sessionmaker[AsyncSession]) -> list[OutboxMessage]:
    async with sessions() as session:
        result = await session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.idempotency_key.like("knowledge-review:%"))
            .order_by(OutboxMessage.id)
        )
        return list(result)


async def test_each_department_is_reminded_once_per_interval_even_by_several_processes(
    sessions: async_sessionmaker[AsyncSession], bundled_kb_copy: Path
) -> None:
    kb = load_knowledge_base(bundled_kb_copy)
    clock = MovableClock(dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.UTC))
    settings = reminder_settings()
    processes = [ReviewReminders(settings, sessions, lambda: kb, clock=clock) for _ in range(3)]
    added = await asyncio.gather(*(p.sweep() for p in processes))
    keys = sorted(k for found in added for k in found)
    assert [k.split(":")[1:3] for k in keys] == [
        [WEBHOOK_DEPARTMENT, "webhook"],
        [TELEGRAM_DEPARTMENT, "telegram"],
    ]
    rows = await reminder_rows(sessions)
    assert sorted(r.idempotency_key for r in rows) == keys
    ecology = next(r for r in rows if r.department_id == WEBHOOK_DEPARTMENT)
    listed = {i["id"] for i in ecology.payload["items"]}
    assert listed == {i.id for i in kb.items.values() if i.department == WEBHOOK_DEPARTMENT}
    assert all(i["reasons"] == [OVERDUE] for i in ecology.payload["items"])
    assert ecology.payload["idempotency_key"] == ecology.idempotency_key
    assert ecology.payload["kind"] == KNOWLEDGE_REVIEW
    # Console-only departments get no row: the console lists their items.
    assert {r.department_id for r in rows} == {WEBHOOK_DEPARTMENT, TELEGRAM_DEPARTMENT}

    assert await processes[0].sweep() == []
    clock.advance(days=6, hours=23)
    assert await processes[1].sweep() == []
    clock.advance(hours=1)
    again = await asyncio.gather(*(p.sweep() for p in processes))
    assert len([k for found in again for k in found]) == 2
    assert len(await reminder_rows(sessions)) == 4


async def test_reminders_can_be_turned_off(
    sessions: async_sessionmaker[AsyncSession], bundled_kb_copy: Path
) -> None:
    kb = load_knowledge_base(bundled_kb_copy)
    reminders = ReviewReminders(reminder_settings(reminder_days=0), sessions, lambda: kb)
    assert await reminders.sweep() == []
    assert await reminder_rows(sessions) == []


@pytest.fixture
def bundled_kb_copy(tmp_path: Path) -> Path:
    return copy_knowledge(tmp_path / "knowledge")


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def test_the_reminder_reaches_the_department_webhook_signed_with_its_key(
    sessions: async_sessionmaker[AsyncSession],
    bundled_kb_copy: Path,
    department_endpoint: DepartmentEndpoint,
    webhook_secret: str,
    http: aiohttp.ClientSession,
) -> None:
    kb = load_knowledge_base(bundled_kb_copy)
    settings = reminder_settings(department_endpoint.url)
    [_, _] = await ReviewReminders(settings, sessions, lambda: kb).sweep()
    desk = TicketDesk(settings, sessions, lambda: kb)
    worker = DeliveryWorker(desk, {"webhook": WebhookChannel(settings, http)})
    assert await worker.run_until_idle() == 1

    [call] = department_endpoint.calls
    assert department_endpoint.rejected == []
    assert call.event == KNOWLEDGE_REVIEW
    assert call.key.startswith(f"knowledge-review:{WEBHOOK_DEPARTMENT}:webhook:")
    assert call.body["department_name"] == kb.departments[WEBHOOK_DEPARTMENT].name
    assert call.body["count"] == len(call.body["items"]) > 0
    rows = {r.channel: r for r in await reminder_rows(sessions)}
    assert rows["webhook"].status == "sent"
    # The Telegram row waits for a worker with a bot.
    assert rows["telegram"].status == "pending"


def test_the_reminder_text_escapes_what_the_knowledge_base_says() -> None:
    kb = load_knowledge_base(REPO_ROOT / "knowledge")
    due = [
        Freshness("x", WEBHOOK_DEPARTMENT, None, "", (OVERDUE,)),
        Freshness("y", WEBHOOK_DEPARTMENT, dt.date(2025, 1, 2), "", (OVERDUE, DEPARTMENT_RENAMED)),
    ]
    payload = reminder_payload(
        kb,
        WEBHOOK_DEPARTMENT,
        due,
        key="k",
        review_days=365,
        now=dt.datetime(2026, 12, 3, tzinfo=dt.UTC),
    )
    payload["items"][0]["title"] = "<b>排污</b>\x00"
    zh = reminder_text(payload, "zh")
    assert "&lt;b&gt;排污&lt;/b&gt;" in zh
    assert "从未审核" in zh
    assert "上次审核：2025-01-02；部门名称已变更" in zh
    en = reminder_text(payload, "en")
    assert "never reviewed" in en
    assert "the department's name changed" in en
    assert "\x00" not in zh + en


async def run_worker(environment: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    with log.open("wb") as errors:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "worker",
            cwd=REPO_ROOT,
            env=os.environ | environment,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=errors,
        )


@pytest.mark.slow
async def test_the_worker_process_reminds_and_follows_the_published_knowledge_version(
    sessions: async_sessionmaker[AsyncSession],
    bundled_kb_copy: Path,
    department_endpoint: DepartmentEndpoint,
    webhook_secret: str,
    database_url: str,
    tmp_path: Path,
) -> None:
    config = tmp_path / "config.toml"
    # A reminder every 1.7 seconds, so the test sees the one after the change.
    config.write_text(
        f"""
[knowledge]
dir = "{bundled_kb_copy}"
reload_poll_seconds = 0.2
review_days = 1
reminder_days = 0.00002
[tickets]
sweep_interval_seconds = 3600
[delivery]
poll_interval_seconds = 0.2
[departments.{WEBHOOK_DEPARTMENT}]
channels = ["webhook"]
webhook_url = "{department_endpoint.url}"
secret_env = "{WEBHOOK_SECRET_ENV}"
""",
        encoding="utf-8",
    )
    load_settings(config)
    old_name = load_knowledge_base(bundled_kb_copy).departments[WEBHOOK_DEPARTMENT].name
    new_name = "示例市民政服务中心"
    worker = await run_worker(
        {
            "BOT_CONFIG": str(config),
            "DATABASE_URL": database_url,
            "PYTHONPATH": str(REPO_ROOT),
            "TELEGRAM_BOT_TOKEN": "",
        },
        tmp_path / "worker.log",
    )

    async def named(name: str) -> None:
        while not any(c.body.get("department_name") == name for c in department_endpoint.calls):
            department_endpoint.arrived.clear()
            department_endpoint.expected = len(department_endpoint.calls) + 1
            await department_endpoint.arrived.wait()

    try:
        await asyncio.wait_for(named(old_name), timeout=60)
        _set_department(bundled_kb_copy, WEBHOOK_DEPARTMENT, name=new_name)
        async with sessions() as session:
            await raise_published_version(session)
            await session.commit()
        await asyncio.wait_for(named(new_name), timeout=60)
    except TimeoutError:
        pytest.fail((tmp_path / "worker.log").read_text(errors="replace")[-3000:])
    finally:
        worker.terminate()
        await worker.wait()
    assert department_endpoint.rejected == []
    keys = [c.key for c in department_endpoint.calls]
    assert len(keys) == len(set(keys))
    assert all(c.event == KNOWLEDGE_REVIEW for c in department_endpoint.calls)


async def test_the_reminder_reaches_the_departments_telegram_group_through_the_bot(
    bot: BotHarness,
) -> None:
    """The running bot's Application, against the local Bot API server, posts the reminder to
    the department's group; the row is sent once."""
    officer = bot.api.create_user("公安赵科长", username="zhaokezhang")
    group = bot.api.create_group("公安局知识库群", {officer: "creator"}, bot_status="member")
    services = bot.services
    settings = services.settings.model_copy(
        update={
            "departments": {
                TELEGRAM_DEPARTMENT: DepartmentChannels(
                    channels=("telegram",), telegram_chat_id=group.id
                )
            },
            "knowledge": services.settings.knowledge.model_copy(
                update={"review_days": 1, "reminder_days": 7}
            ),
        }
    )
    kb = services.knowledge.kb
    [key] = await ReviewReminders(settings, services.sessions, lambda: kb).sweep()
    assert key.startswith(f"knowledge-review:{TELEGRAM_DEPARTMENT}:telegram:")
    desk = TicketDesk(settings, services.sessions, lambda: kb)
    worker = DeliveryWorker(desk, {"telegram": TelegramChannel(desk, bot.app.bot)})
    assert await worker.run_until_idle() == 1

    post = bot.api.last_bot_message(group)
    assert post is not None
    department = kb.departments[TELEGRAM_DEPARTMENT]
    due = [i for i in kb.items.values() if i.department == TELEGRAM_DEPARTMENT]
    assert 0 < len(due) <= MAX_ITEMS_LISTED
    assert post.text.startswith(f"📋 知识库内容待审核：{department.name}有 {len(due)} 个条目")
    for item in due:
        assert f"• {item.title}（{item.id}）：上次审核：" in post.text
    [row] = await reminder_rows(services.sessions)
    assert row.status == "sent"
    assert await worker.run_until_idle() == 0
    assert len(bot.api.bot_messages(group)) == 1
