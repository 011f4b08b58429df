"""No resident's name, phone or words in the logs at INFO and above.

A whole conversation runs through the real bot and the local Bot API server with distinctive
names, a phone number and texts (a question handed to staff and answered, a complaint that
shares the resident's name and phone and reaches the department, a handler that fails on a
resident's message), logged through the one logging setup every command uses, as JSON. None of
the distinctive strings may appear; every line is one JSON object naming the process's role.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram.ext import MessageHandler, filters

from bot.core.logs import setup_logging
from bot.core.models import BotState
from tests.fixtures_tickets import TicketBot
from tests.test_ticket_chat import choose_category

RESIDENT_NAME = "欧阳翠花"
SHARED_NAME = "司马蓝蓝"
PHONE = "139-1234-5678"
QUESTION = "豆豆球鹦鹉会不会背唐诗"
STAFF_ANSWER = "鹦鹉背诗不归政务服务管"
DESCRIPTION = "青石巷七号门口的水管爆裂了，路面结冰很滑。"
FAILING_TEXT = "boom 紫罗兰暗号 13700001111"
SECRETS = (
    RESIDENT_NAME,
    SHARED_NAME,
    PHONE,
    PHONE.replace("-", ""),
    "豆豆球",
    STAFF_ANSWER,
    "青石巷",
    "紫罗兰暗号",
    "13700001111",
)


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Everything logged at INFO and above, as JSON lines, through setup_logging."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    filters_before = {h: list(h.filters) for h in handlers}
    stream = io.StringIO()
    setup_logging(stream=stream, log_format="json", role="bot")
    yield stream
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    for handler, kept in filters_before.items():
        handler.filters[:] = kept
    root.setLevel(level)


async def test_a_conversation_leaves_no_name_phone_or_text_in_the_logs(
    ticket_bot: TicketBot, captured: io.StringIO
) -> None:
    bot = ticket_bot
    chat = bot.resident(RESIDENT_NAME)
    await chat.send("/start", expect=2)

    # A question for a person, answered by staff in their group.
    replies = await chat.send(QUESTION, expect=2)
    assert "转给工作人员" in replies.text
    post = bot.latest_staff_post()
    await bot.staff_room().reply(post, STAFF_ANSWER, expect=3)

    # A complaint that shares the resident's name and phone with the department.
    await chat.send("/complain")
    before = bot.cursor(bot.department_group)
    await chat.press("📢 投诉", expect=2)
    await choose_category(chat, "市容环境")
    replies = await chat.send(DESCRIPTION)
    if "已经有居民反映过类似的问题" in replies.text:
        await chat.press("📝 不是同一件事，继续提交", expect=2)
    await chat.press("➡️ 下一步", expect=2)
    await chat.press("👤 提供姓名和电话", expect=2)
    await chat.send(SHARED_NAME)
    replies = await chat.send(PHONE)
    assert SHARED_NAME in replies.text
    confirmation = (await chat.press("✅ 确认提交", expect=2))[0]
    assert "✅ 已受理" in confirmation.text
    [department_card] = await bot.messages_after(bot.department_group, before, 1)
    assert DESCRIPTION in department_card.text

    # A handler that fails on a resident's message: the error is logged, not the message.
    async def break_down(update: object, context: object) -> None:
        raise RuntimeError("the handler broke")

    bot.app.add_handler(MessageHandler(filters.Regex("^boom"), break_down), group=-1)
    replies = await chat.send(FAILING_TEXT)
    assert replies.text.startswith("抱歉，系统刚才出了点问题")

    lines = [line for line in captured.getvalue().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]
    assert records, "nothing was logged"
    for record in records:
        assert record["role"] == "bot"
        assert {"time", "level", "logger", "message"} <= set(record)
    logged = captured.getvalue()
    for secret in SECRETS:
        assert secret not in logged, f"{secret!r} reached the log"
    assert str(chat.chat.id) not in logged
    errors = [r for r in records if r["message"].startswith("error while handling update")]
    assert len(errors) == 1
    assert "update_id" in errors[0]
    assert "the handler broke" in errors[0]["exception"]


async def test_a_failed_statement_names_the_sql_but_not_the_residents_words(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """A database error is logged with its traceback; its parameters would carry what a
    resident wrote (a conversation's state here), so the engine hides them."""
    state = {"draft": {"description": DESCRIPTION, "phone": PHONE}}
    async with sessions() as session:
        session.add(BotState(kind="user_data", key="1", value=state))
        await session.commit()
    async with sessions() as session:
        session.add(BotState(kind="user_data", key="1", value=state))
        with pytest.raises(IntegrityError) as raised:
            await session.commit()
    shown = str(raised.value)
    assert "bot_state" in shown
    assert "青石巷" not in shown
    assert PHONE not in shown
