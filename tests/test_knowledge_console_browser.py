"""The knowledge base edited in Debian's headless Chromium, end to end: an officer proposes, a
reviewer publishes, and a resident asking the running bot (the real python-telegram-bot
Application on the local Bot API server) gets the new answer. The console and the bot are two
sets of services with two stores of the same folder, as two processes would be: the bot's store
reloads only because the published version in the database moved.

A browser adds nothing that differs between databases, so these run on SQLite; the desk is
tested on both (test_knowledge_editor.py).
"""

from __future__ import annotations

import asyncio
import tomllib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.answering.publishing import Editor
from bot.answering.store import KnowledgeStore, thresholds_from
from bot.console.accounts import create_user
from bot.core.models import User
from bot.services import Services
from bot.workers import TicketWorkers
from tests.fixtures_console import PASSWORD, Console, serving
from tests.fixtures_conversation import BotHarness
from tests.fixtures_knowledge_editor import (
    CIVIL_ITEM,
    POLICE_ITEM,
    copy_knowledge,
    create_kb_accounts,
    knowledge_settings,
)
from tryout.local_bot_api import LocalBotApi

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

NEW_ID = "pet-dog-licence"
# A question the bundled base has no item for, far enough from every item that a person answers
# it ("养狗要办狗证吗" and "犬只登记怎么办理" sit at the edge of a choice of unrelated items).
NEW_QUESTION = "犬只免疫证明怎么开"
NEW_ANSWER = "养犬人应当在取得犬只之日起 30 日内到居住地的犬只登记点办理登记，领取犬牌。"
# How long a wait for the bot's store may take before the test gives up (not a timing check:
# the poll runs every 0.2 s).
PATIENCE = 60.0


@dataclass
class TwoProcesses:
    """The bot (its own services and store) and the console (its own), one folder, one database."""

    directory: Path
    bot: BotHarness
    console: Console


@pytest.fixture
async def two_processes(
    database_url: str, engine: AsyncEngine, tmp_path: Path
) -> AsyncIterator[TwoProcesses]:
    directory = copy_knowledge(tmp_path / "knowledge")
    settings = knowledge_settings(database_url, directory)
    async with LocalBotApi() as api:
        bot = BotHarness(api, database_url, KnowledgeStore(directory, thresholds_from(settings)))
        bot.settings = bot.settings.model_copy(update={"knowledge": settings.knowledge})
        await bot.start()
        console_services = await Services.start(
            settings, knowledge=KnowledgeStore(directory, thresholds_from(settings))
        )
        try:
            await create_kb_accounts(console_services)
            async with serving(console_services) as console:
                yield TwoProcesses(directory, bot, console)
        finally:
            await console_services.close()
            await bot.stop()


async def open_as(browser: Any, url: str, username: str) -> Any:
    page = await (await browser.new_context()).new_page()
    await page.goto(f"{url}/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("form button[type=submit]")
    await page.wait_for_load_state()
    return page


async def until(condition: Callable[[], bool]) -> None:
    """Wait for the bot's process to catch up (it polls the published version)."""
    step = 0.05
    for _ in range(int(PATIENCE / step)):
        if condition():
            return
        await asyncio.sleep(step)
    raise AssertionError("the bot's process never reloaded the published knowledge base")


async def approve_latest(browser: Any, url: str) -> None:
    """The reviewer opens the review queue, the newest change, and publishes it."""
    page = await open_as(browser, url, "kb-editor")
    assert page.url == f"{url}/knowledge/changes"
    await page.click("table.changes tbody tr:first-child a")
    await page.fill("textarea[name=comment]", "内容核对无误")
    await page.click("button[value=approve]")
    assert "已发布" in await page.inner_text("[role=status]")
    assert await page.inner_text(".meta .status") == "已发布"


async def test_an_officers_new_guide_is_reviewed_published_and_answered_in_the_chat(
    two_processes: TwoProcesses, chromium: Any
) -> None:
    url = two_processes.console.url
    bot = two_processes.bot
    chat = bot.resident()
    before = await chat.send(NEW_QUESTION, expect=2)
    assert NEW_ANSWER not in before.text

    page = await open_as(chromium, url, "civil-officer")
    await page.goto(f"{url}/knowledge")
    await page.click("text=新建办事指南")
    # The department is the officer's own, the only one offered.
    assert await page.eval_on_selector_all(
        "select[name=department] option", "els => els.map(e => e.value)"
    ) == ["civil-affairs"]
    await page.fill("input[name=id]", NEW_ID)
    await page.fill("input[name=title]", "犬只登记")
    await page.fill("input[name=title_en]", "Registering a dog")
    await page.fill("input[name=category]", "婚姻登记")
    await page.fill("textarea[name=questions]", f"{NEW_QUESTION}\n狗证去哪里办")
    await page.fill("textarea[name=keywords]", "狗证\n犬只登记")
    await page.fill("textarea[name=answer]", NEW_ANSWER)
    await page.fill("textarea[name=answer_en]", "Register your dog within 30 days.")
    await page.fill("textarea[name=materials]", "居民身份证\n犬只免疫证明")
    await page.fill("input[name=fee]", "不收费")
    await page.click("button[value=preview]")
    assert await page.inner_text("[role=status]") == "检查通过。"
    cards = page.locator(".card-preview article")
    assert "犬只登记" in await cards.nth(0).inner_text()
    assert "需要带的材料" in await cards.nth(0).inner_text()
    assert "Registering a dog" in await cards.nth(1).inner_text()
    assert "What to bring" in await cards.nth(1).inner_text()
    preview = await page.inner_text(".answer-preview")
    assert NEW_QUESTION in preview
    assert "修改后" in preview
    await page.click("button[value=propose]")
    assert "等待审核" in await page.inner_text("[role=status]")
    # Nothing is published before review: the files are as they were.
    assert not (two_processes.directory / "guides" / f"{NEW_ID}.toml").exists()

    await approve_latest(chromium, url)
    written = tomllib.loads(
        (two_processes.directory / "guides" / f"{NEW_ID}.toml").read_text(encoding="utf-8")
    )
    assert written["answer"] == NEW_ANSWER
    await until(lambda: NEW_ID in bot.services.knowledge.kb.items)
    replies = await chat.send(NEW_QUESTION)
    assert replies.text.startswith("犬只登记\n")
    assert NEW_ANSWER in replies.text


async def test_an_edit_and_restoring_the_earlier_version_both_reach_the_chat(
    two_processes: TwoProcesses, chromium: Any
) -> None:
    url = two_processes.console.url
    bot = two_processes.bot
    question = "结婚登记需要什么材料"
    old_answer = bot.services.knowledge.kb.items[CIVIL_ITEM].answer
    changed = "结婚登记已实行全市通办：双方带身份证和户口簿，到任一婚姻登记处即可办理。"

    page = await open_as(chromium, url, "civil-officer")
    await page.goto(f"{url}/knowledge/items/{CIVIL_ITEM}")
    await page.click("a.button:has-text('修改')")
    await page.fill("textarea[name=answer]", changed)
    await page.fill("textarea[name=note]", "婚姻登记全市通办")
    await page.click("button[value=propose]")
    assert "等待审核" in await page.inner_text("[role=status]")
    await approve_latest(chromium, url)
    await until(lambda: bot.services.knowledge.kb.items[CIVIL_ITEM].answer == changed)
    chat = bot.resident()
    assert changed in (await chat.send(question)).text

    # The reviewer restores version 1 (the file as it was) and publishes the restore.
    reviewer = await open_as(chromium, url, "kb-editor")
    await reviewer.goto(f"{url}/knowledge/items/{CIVIL_ITEM}")
    assert "政务公开办张审核" in await reviewer.inner_text("table.versions")
    await reviewer.click("table.versions a:text-is('1')")
    diff = await reviewer.inner_text("#against-current table.diff")
    assert changed in diff
    assert old_answer in diff
    assert "kind" not in diff  # only what differs
    await reviewer.click("text=恢复为此版本")
    assert "等待审核" in await reviewer.inner_text("[role=status]")
    await reviewer.click("button[value=approve]")
    assert "已发布" in await reviewer.inner_text("[role=status]")
    await until(lambda: bot.services.knowledge.kb.items[CIVIL_ITEM].answer == old_answer)
    assert old_answer in (await chat.send(question)).text


async def test_an_officer_cannot_edit_another_departments_item_and_sees_errors_by_the_field(
    two_processes: TwoProcesses, chromium: Any
) -> None:
    url = two_processes.console.url
    page = await open_as(chromium, url, "civil-officer")
    await page.goto(f"{url}/knowledge/items/{POLICE_ITEM}")
    assert await page.locator("a.button:has-text('修改')").count() == 0
    response = await page.goto(f"{url}/knowledge/items/{POLICE_ITEM}/edit")
    assert response is not None
    assert response.status == 403

    await page.goto(f"{url}/knowledge/items/{CIVIL_ITEM}/edit")
    await page.fill("input[name=title]", "")
    await page.fill("textarea[name=questions]", "")
    await page.fill("input[name=url]", "javascript:alert(1)")
    await page.click("button[value=preview]")
    # Each message is inside the field it is about, right under its input.
    title_error = page.locator(".field:has(#f-title) .field-error")
    assert await title_error.inner_text() == "必须填写"
    assert await page.locator(".field:has(#f-questions) .field-error").inner_text() == (
        "至少填写一个问法"
    )
    assert await page.locator(".field:has(#f-url) .field-error").inner_text() == (
        "须以 https:// 或 http:// 开头"
    )
    assert await page.get_attribute("#f-title", "aria-invalid") == "true"
    await page.click("text=English")
    await page.fill("input[name=title]", "")
    await page.click("button[value=preview]")
    assert await title_error.inner_text() == "missing field"


async def test_a_resident_who_asked_to_be_told_hears_when_the_answer_is_published(
    two_processes: TwoProcesses,
) -> None:
    bot = two_processes.bot
    console = two_processes.console.services
    chat = bot.resident()
    other = bot.resident("韩梅梅")
    await chat.send(NEW_QUESTION, expect=2)
    await other.send(NEW_QUESTION, expect=2)  # asks too, but does not ask to be told
    pressed = await chat.press("🔔 知识库补充后通知我", expect=0)
    assert pressed.answer is not None
    assert pressed.answer.text == "好的，知识库有了答复会在这里告诉您。"
    again = await chat.press("🔔 知识库补充后通知我", expect=0)
    assert again.answer is not None
    assert again.answer.text == "已经记下了，有答复会告诉您。"

    accounts = await _editors(console)
    change = await console.editor.propose(
        accounts["civil-officer"],
        action="create",
        item_id=NEW_ID,
        kind="guide",
        content={
            "id": NEW_ID,
            "kind": "guide",
            "title": "犬只登记",
            "category": "婚姻登记",
            "department": "civil-affairs",
            "questions": [NEW_QUESTION, "狗证去哪里办"],
            "keywords": ["狗证"],
            "answer": NEW_ANSWER,
        },
    )
    cursor = chat.world.sequence
    workers = TicketWorkers(bot.services.tickets, bot.app.bot, run_clock=False, callbacks=False)
    await workers.start()
    try:
        await console.editor.decide(accounts["kb-editor"], change, approve=True)
        told = await bot.api.wait_for_bot_messages(chat.chat, 1, after=cursor, timeout=PATIENCE)
    finally:
        await workers.stop()
    assert told[0].text.startswith(f"🔔 您之前问的“{NEW_QUESTION}”现在有答复了：")
    assert NEW_ANSWER in told[0].text
    assert [m for m in other.bot_messages if NEW_ANSWER in m.text] == []


async def _editors(services: Services) -> dict[str, Editor]:
    async with services.sessions() as session:
        users = (await session.scalars(select(User))).all()
    return {u.username: Editor(u.id, u.display_name, u.role, u.department_id) for u in users}


FINANCE = "finance"
# An item of finance without a phone of its own: its card shows the department's.
FINANCE_ITEM = "department-budget"
FINANCE_QUESTION = "部门预算在哪里公开"
OLD_FINANCE_PHONE = "012-81119500"
NEW_FINANCE_PHONE = "012-81119599"


async def test_a_departments_new_phone_is_reviewed_and_reaches_the_bots_card(
    two_processes: TwoProcesses, chromium: Any
) -> None:
    """An officer proposes their department's new phone (a wrong one is refused beside the
    field, another department's form refused even when forged), a reviewer publishes it, the
    bot's card shows it, the department's items are due for review, and the department, still
    answering for items, cannot be retired."""
    url = two_processes.console.url
    bot = two_processes.bot
    console = two_processes.console.services
    async with console.sessions() as session:
        await create_user(
            session,
            username="finance-officer",
            password=PASSWORD,
            role="officer",
            departments=set(console.knowledge.kb.departments),
            department_id=FINANCE,
            display_name="财政局赵科长",
        )
        await session.commit()
    chat = bot.resident()
    assert f"咨询电话：{OLD_FINANCE_PHONE}" in (await chat.send(FINANCE_QUESTION)).text

    page = await open_as(chromium, url, "finance-officer")
    await page.goto(f"{url}/knowledge/departments")
    edits = await page.eval_on_selector_all(
        "table.departments a[href$='/edit']", "links => links.map(a => a.getAttribute('href'))"
    )
    assert edits == [f"/knowledge/departments/{FINANCE}/edit"]
    response = await page.goto(f"{url}/knowledge/departments/civil-affairs/edit")
    assert response is not None
    assert response.status == 403

    await page.goto(f"{url}/knowledge/departments/{FINANCE}")
    await page.click("a.button:has-text('修改')")
    # Delivery channels are no fields of this form; the page says where they are set.
    assert "config.toml" in await page.inner_text("p.channels")
    assert await page.locator("form.department-form [name*=webhook], [name*=chat]").count() == 0
    # The officer's own form, forged to post to another department, is refused.
    await page.eval_on_selector(
        "form.department-form",
        "form => { form.action = '/knowledge/departments/civil-affairs/edit'; }",
    )
    await page.fill("input[name=phone]", "012-81113101")
    async with page.expect_response(lambda r: r.request.method == "POST") as forged:
        await page.click("button[value=propose]")
    assert (await forged.value).status == 403

    await page.goto(f"{url}/knowledge/departments/{FINANCE}/edit")
    await page.fill("input[name=phone]", "12-34")
    await page.click("button[value=preview]")
    assert await page.locator(".field:has(#f-phone) .field-error").inner_text() == (
        "“12-34”不是能拨通的电话号码"
    )
    assert await page.get_attribute("#f-phone", "aria-invalid") == "true"
    await page.fill("input[name=phone]", NEW_FINANCE_PHONE)
    await page.click("button[value=preview]")
    assert await page.inner_text("[role=status]") == "检查通过。"
    # The made-up area code of the bundled city is unknown to the numbering plan: a warning.
    assert "区号" in await page.locator(".field:has(#f-phone) .field-warning").inner_text()
    cards = page.locator(".before-after article")
    assert f"咨询电话：{OLD_FINANCE_PHONE}" in await cards.nth(0).inner_text()
    assert f"咨询电话：{NEW_FINANCE_PHONE}" in await cards.nth(1).inner_text()
    assert f"Phone: {NEW_FINANCE_PHONE}" in await cards.nth(3).inner_text()
    # The budget item's answer writes the old number itself: the officer is told to edit it.
    assert FINANCE_ITEM in await page.inner_text("section.old-phone")
    await page.fill("textarea[name=note]", "财政局咨询电话调整")
    await page.click("button[value=propose]")
    assert "等待审核" in await page.inner_text("[role=status]")
    path = two_processes.directory / "departments.toml"
    assert OLD_FINANCE_PHONE in path.read_text(encoding="utf-8")

    await approve_latest(chromium, url)
    written = path.read_text(encoding="utf-8")
    assert written.startswith("# Departments of 示例市")  # the file's comments stay
    finance = [d for d in tomllib.loads(written)["departments"] if d["id"] == FINANCE]
    assert finance[0]["phone"] == NEW_FINANCE_PHONE
    await until(lambda: bot.services.knowledge.kb.departments[FINANCE].phone == NEW_FINANCE_PHONE)
    assert f"咨询电话：{NEW_FINANCE_PHONE}" in (await chat.send(FINANCE_QUESTION)).text

    reviewer = await open_as(chromium, url, "kb-editor")
    await reviewer.goto(f"{url}/knowledge/freshness")
    row = reviewer.locator(f"tr:has(a[href='/knowledge/items/{FINANCE_ITEM}'])")
    assert "部门电话已变更" in await row.inner_text()
    await reviewer.goto(f"{url}/knowledge/departments/{FINANCE}")
    await reviewer.click("table.versions a:text-is('1')")
    assert OLD_FINANCE_PHONE in await reviewer.inner_text("#against-current table.diff")
    await reviewer.goto(f"{url}/knowledge/departments/{FINANCE}")
    await reviewer.click("text=申请撤销该部门")
    assert "不能撤销该部门" in await reviewer.inner_text("h1")
    assert FINANCE_ITEM in await reviewer.inner_text("ul.in-use")
    assert FINANCE in console.knowledge.kb.departments
