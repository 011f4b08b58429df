"""Residents' personal data through the real bot over HTTP (LocalBotApi on 127.0.0.1): the notice
at first contact, /privacy, /mydata (the document downloaded from the server), /forget, and an
anonymous report followed in the chat while the database holds no link to the resident.
SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.answering.store import KnowledgeStore
from bot.core.models import AuditEntry, Question, Resident, Ticket
from bot.tickets.desk import Actor
from tests.fixtures_conversation import press_forged
from tests.fixtures_tickets import DepartmentEndpoint, TicketBot
from tests.test_ticket_chat import choose_category, file_rubbish_complaint
from tryout.local_bot_api import ChatMessage, LocalBotApi

NOTICE = "个人信息保护告知"
QUESTION = "居住证怎么办理"


@pytest.fixture
async def privacy_bot(
    database_url: str,
    engine: AsyncEngine,
    bundled_store: KnowledgeStore,
    department_endpoint: DepartmentEndpoint,
    webhook_secret: str,
) -> AsyncIterator[TicketBot]:
    """The running bot with ticket delivery and the notice at first contact switched on."""
    async with LocalBotApi() as api:
        harness = TicketBot(api, database_url, bundled_store, department_endpoint)
        settings = harness.settings
        harness.settings = settings.model_copy(
            update={
                "privacy": settings.privacy.model_copy(
                    update={
                        "first_contact_notice": True,
                        "notice_url": "https://example.gov.cn/privacy",
                    }
                )
            }
        )
        await harness.start()
        try:
            yield harness
        finally:
            await harness.stop()


def number_of(confirmation: ChatMessage) -> str:
    return confirmation.text.split("工单号 ")[1].split("\n")[0]


async def download(api: LocalBotApi, message: ChatMessage) -> tuple[dict[str, Any], bytes]:
    """Fetch a document the bot sent, as a client would: getFile, then the file URL."""
    document = message.data["document"]
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{api.base_url}{api.token}/getFile", json={"file_id": document["file_id"]}
        ) as response:
            found = await response.json()
        assert found["ok"], found
        async with http.get(
            f"{api.base_file_url}{api.token}/{found['result']['file_path']}"
        ) as response:
            assert response.status == 200
            return document, await response.read()


async def test_a_new_resident_is_told_once_what_is_kept_and_can_read_it_again(
    privacy_bot: TicketBot,
) -> None:
    chat = privacy_bot.resident("李雷")
    replies = await chat.send("/start", expect=3)
    assert [m.kind for m in replies] == ["text", "text", "text"]
    notice = replies[0]
    assert NOTICE in notice.text
    assert "保存期限" in notice.text
    assert "180 天" in notice.text
    assert "365 天" in notice.text
    assert "承办部门只有在您同意时才能看到您的姓名和电话" in notice.text
    assert '<a href="https://example.gov.cn/privacy">' in notice.html
    assert "/mydata" in notice.text
    assert "/forget" in notice.text
    assert NOTICE not in replies[1].text  # the welcome follows
    # Only once.
    replies = await chat.send("/start", expect=2)
    assert all(NOTICE not in m.text for m in replies)
    replies = await chat.send("/privacy")
    assert NOTICE in replies.text
    async with privacy_bot.services.sessions() as session:
        resident = await session.scalar(
            select(Resident).where(Resident.telegram_user_id == chat.user.id)
        )
    assert resident is not None
    assert resident.privacy_notice_at is not None


async def test_the_notice_comes_before_the_answer_to_a_first_question_in_english(
    privacy_bot: TicketBot,
) -> None:
    chat = privacy_bot.resident("Alice", language_code="en")
    replies = await chat.send(QUESTION, expect=2)
    assert "How we handle your personal data" in replies[0].text
    assert "Who sees it" in replies[0].text
    assert all("How we handle" not in m.text for m in replies[1:])
    replies = await chat.send(QUESTION)
    assert all("How we handle" not in m.text for m in replies)


async def test_mydata_sends_everything_held_as_a_json_document(privacy_bot: TicketBot) -> None:
    bot = privacy_bot
    chat = bot.resident("韩梅梅")
    await chat.send("/start", expect=3)
    await chat.send(QUESTION)
    number = number_of(await file_rubbish_complaint(chat))
    other = bot.resident("李雷")
    await other.send("/start", expect=3)
    other_number = number_of(await file_rubbish_complaint(other))

    replies = await chat.send("/mydata")
    [message] = [m for m in replies if m.kind == "document"]
    assert "1 件工单" in message.text
    document, content = await download(bot.api, message)
    assert document["file_name"].startswith("mydata-")
    assert document["file_name"].endswith(".json")
    data = json.loads(content.decode("utf-8"))
    assert data["resident"]["telegram_user_id"] == chat.user.id
    assert data["resident"]["name"] == "韩梅梅"
    assert data["consents"]["privacy_notice_shown_at"] is not None
    assert [q["text"] for q in data["questions"]] == [QUESTION]
    [ticket] = data["tickets"]
    assert ticket["number"] == number
    assert "垃圾" in ticket["description"]
    kinds = [e["kind"] for e in ticket["events"]]
    assert "received" in kinds
    assert "assigned" in kinds
    # Only events the resident may see, and nobody else's tickets.
    async with bot.services.sessions() as session:
        hidden = await session.scalar(select(Ticket).where(Ticket.number == number))
    assert hidden is not None
    assert other_number not in content.decode("utf-8")
    assert "李雷" not in content.decode("utf-8")

    replies = await chat.send("/mydata")
    assert replies[0].kind == "text"
    assert "分钟后再试" in replies.text
    async with bot.services.sessions() as session:
        audits = (
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "privacy.export"))
        ).all()
    assert len(audits) == 1


async def test_forget_erases_what_it_may_and_says_what_it_keeps(privacy_bot: TicketBot) -> None:
    bot = privacy_bot
    chat = bot.resident("王小明")
    await chat.send("/start", expect=3)
    await chat.send(QUESTION)
    closed = number_of(await file_rubbish_complaint(chat))
    still_open = number_of(await file_rubbish_complaint(chat))
    cursor = bot.cursor(chat.chat)
    await bot.desk.close(closed, Actor.staff("1", "管理员"), "居民电话撤回。")
    await bot.messages_after(chat.chat, cursor)

    replies = await chat.send("/forget")
    prompt = replies[0]
    assert "删除我的个人信息" in prompt.text
    replies = await chat.press("取消", message=prompt)
    assert "已取消" in prompt.text
    async with bot.services.sessions() as session:
        question = await session.scalar(select(Question).where(Question.text == QUESTION))
    assert question is not None

    prompt = (await chat.send("/forget"))[0]
    replies = await chat.press("🗑 确认删除", message=prompt, expect=2)
    summary = replies[-1].text
    assert "已删除：1 个问题的内容，1 件已办结工单中的个人信息" in summary
    assert f"仍在办理中，暂时保留（办结后按期删除）：{still_open}" in summary
    assert "不含身份的统计数据" in summary
    assert prompt.find_button("🗑 确认删除") is None
    async with bot.services.sessions() as session:
        questions = (await session.scalars(select(Question))).all()
        erased = await session.scalar(select(Ticket).where(Ticket.number == closed))
        kept = await session.scalar(select(Ticket).where(Ticket.number == still_open))
        resident = await session.scalar(
            select(Resident).where(Resident.telegram_user_id == chat.user.id)
        )
    assert [q.text for q in questions] == [""]
    assert erased is not None
    assert erased.personal_data_erased_at is not None
    assert erased.resident_id is None
    assert "垃圾" in erased.description
    assert kept is not None
    assert kept.personal_data_erased_at is None
    # The open ticket still needs the resident: they keep following it, without their name.
    assert resident is not None
    assert resident.forgotten_at is None
    assert resident.display_name == ""
    replies = await chat.send("/status")
    assert still_open in replies.text or any(
        still_open in label for row in replies[0].buttons for label, _ in row
    )


async def test_forged_privacy_buttons_erase_nothing(privacy_bot: TicketBot) -> None:
    bot = privacy_bot
    chat = bot.resident("钱七")
    await chat.send("/start", expect=3)
    await chat.send(QUESTION)
    prompt = (await chat.send("/forget"))[0]
    for data in ("pv:", "pv:forget:1", "pv:FORGET", "pv:keep\x00", "pv:" + "x" * 80):
        answer = await press_forged(bot.api, chat.user, prompt, data)
        assert answer is not None, data
        assert "失效" in answer.text, data
    async with bot.services.sessions() as session:
        texts = (await session.scalars(select(Question.text))).all()
    assert list(texts) == [QUESTION]
    assert prompt.find_button("🗑 确认删除") is not None


async def test_forget_with_nothing_open_forgets_the_account(privacy_bot: TicketBot) -> None:
    bot = privacy_bot
    chat = bot.resident("赵六")
    await chat.send("/start", expect=3)
    await chat.send(QUESTION)
    prompt = (await chat.send("/forget"))[0]
    replies = await chat.press("🗑 确认删除", message=prompt, expect=2)
    assert "您的账号记录也已删除" in replies[-1].text
    async with bot.services.sessions() as session:
        found = await session.scalar(
            select(Resident).where(Resident.telegram_user_id == chat.user.id)
        )
        husks = (
            await session.scalars(select(Resident).where(Resident.forgotten_at.is_not(None)))
        ).all()
    assert found is None
    [husk] = husks
    assert (husk.display_name, husk.chat_id) == ("", 0)
    assert husk.telegram_user_id < 0
    # Writing again is a first contact: the notice comes again.
    replies = await chat.send("/start", expect=3)
    assert NOTICE in replies[0].text


async def test_an_anonymous_report_is_followed_in_the_chat_but_not_linked_in_the_database(
    privacy_bot: TicketBot,
) -> None:
    bot = privacy_bot
    chat = bot.resident("韩梅梅")
    await chat.send("/start", expect=3)
    await chat.send("/complain")
    await chat.press("🚨 举报", expect=2)
    await choose_category(chat, "生态环境")
    await chat.send("河边那家工厂每天凌晨偷偷排污，河道发黑发臭。")
    await chat.press("➡️ 下一步", expect=2)
    await chat.press("🕶 匿名举报", expect=2)
    number = number_of((await chat.press("✅ 确认提交", expect=2))[0])

    async with bot.services.sessions() as session:
        ticket = await session.scalar(select(Ticket).where(Ticket.number == number))
        resident = await session.scalar(
            select(Resident).where(Resident.telegram_user_id == chat.user.id)
        )
    assert ticket is not None
    assert resident is not None
    assert ticket.anonymous
    assert ticket.resident_id is None
    assert ticket.resident_pseudonym
    assert ticket.resident_sealed
    row = json.dumps(
        {c.name: str(getattr(ticket, c.name)) for c in Ticket.__table__.columns},
        ensure_ascii=False,
    )
    assert str(chat.user.id) not in row
    assert str(resident.id) not in (ticket.resident_pseudonym, ticket.resident_sealed)

    # The department answers; the notice reaches the resident through the sealed address.
    cursor = bot.cursor(chat.chat)
    await bot.desk.acknowledge(number, Actor.department("ecology-environment"))
    await bot.desk.reply(number, Actor.department("ecology-environment"), "已责令该厂停产整改。")
    notices = await bot.messages_after(chat.chat, cursor, 2)
    assert any("已责令该厂停产整改" in m.text for m in notices)
    # /status finds it, and rating it works (the resident owns it by pseudonym).
    replies = await chat.send("/status")
    labels = [label for row in replies[0].buttons for label, _ in row]
    assert any(number in label for label in labels)
    answer = notices[-1]
    await chat.press("✅ 已解决", message=answer, expect=2)
    await chat.press("★★★★★", expect=2)
    rated = await bot.desk.get(number)
    assert (rated.status, rated.rating) == ("closed", 5)
    # /mydata includes it; another resident's /status does not.
    data_message = next(m for m in await chat.send("/mydata") if m.kind == "document")
    _, content = await download(bot.api, data_message)
    assert number in content.decode("utf-8")
    other = bot.resident("李雷")
    await other.send("/start", expect=3)
    replies = await other.send("/status")
    assert number not in replies.text
