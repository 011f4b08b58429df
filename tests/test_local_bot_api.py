"""The local Bot API server, driven by python-telegram-bot's real Application over HTTP."""

from __future__ import annotations

import asyncio
import hashlib
import html
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.error import BadRequest, Forbidden
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from tryout.local_bot_api import (
    BotCallRefused,
    LocalBotApi,
    application_builder,
    format_text,
    running_application,
    sample_png,
)
from tryout.local_bot_api.formatting import (
    EntityParseError,
    detect_entities,
    entities_to_html,
    parse_html,
    parse_markdown_v2,
)

TOKEN = "123:ABC"
SERVICE_URL = "https://www.example.gov.cn/services"


# ---------------------------------------------------------------------------------------------
# A small bot: echo, buttons, files, membership checks


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Greet with the resident's name escaped, and offer topics."""
    assert update.effective_message
    assert update.effective_user
    keyboard = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("社保卡", callback_data="topic:card"),
                InlineKeyboardButton("公积金", callback_data="topic:fund"),
            ],
            [InlineKeyboardButton("same", callback_data="same")],
            [InlineKeyboardButton("官网 Website", url=SERVICE_URL)],
        ]
    )
    name = html.escape(update.effective_user.first_name)
    await update.effective_message.reply_html(f"<b>欢迎</b>，{name}！", reply_markup=keyboard)


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Echo the text, escaped, quoting the resident's message."""
    message = update.effective_message
    assert message
    assert message.text
    await message.reply_html(f"你说：<i>{html.escape(message.text)}</i>", do_quote=True)


async def raw(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Forget to escape user text (the bug the server must catch)."""
    assert update.effective_message
    await update.effective_message.reply_html(f"你说：{' '.join(context.args or [])}")


async def too_long(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Send one character more than Telegram allows."""
    assert update.effective_message
    await update.effective_message.reply_text("字" * 4097)


async def bad_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Put 65 bytes of callback data on a button."""
    assert update.effective_message
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="数" * 22)]])
    await update.effective_message.reply_text("太长", reply_markup=markup)


async def keyboard(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Show a reply keyboard with a phone number button."""
    assert update.effective_message
    markup = ReplyKeyboardMarkup(
        [["办事指南", "我要投诉"], [KeyboardButton("分享手机号", request_contact=True)]],
        one_time_keyboard=True,
        input_field_placeholder="选择一项",
    )
    await update.effective_message.reply_text("请选择：", reply_markup=markup)


async def hide_keyboard(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Remove the reply keyboard."""
    assert update.effective_message
    await update.effective_message.reply_text("好的", reply_markup=ReplyKeyboardRemove())


async def topic(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Answer the press and show the chosen topic in place."""
    query = update.callback_query
    assert query
    assert query.data
    label = {"topic:card": "社保卡", "topic:fund": "公积金"}[query.data]
    await query.answer(f"已选择 {label}")
    assert isinstance(query.message, Message)
    await query.edit_message_text(
        f"您选择了<b>{label}</b>", parse_mode="HTML", reply_markup=query.message.reply_markup
    )


async def same(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Edit the message to exactly what it already is."""
    query = update.callback_query
    assert query
    assert isinstance(query.message, Message)
    await query.answer()
    await query.edit_message_text(
        query.message.text_html, parse_mode="HTML", reply_markup=query.message.reply_markup
    )


async def photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Download the photo and report its size and digest."""
    message = update.effective_message
    assert message
    assert message.photo
    file = await message.photo[-1].get_file()
    data = await file.download_as_bytearray()
    digest = hashlib.sha256(data).hexdigest()[:12]
    await message.reply_text(f"收到照片 {len(data)} {digest} {file.file_path}")


async def document(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Send the document back by file_id, and a photo by upload."""
    message = update.effective_message
    assert message
    assert message.document
    await message.reply_document(message.document.file_id, caption="原件退回")
    await message.reply_photo(sample_png(20, 10), caption="<b>示意图</b>", parse_mode="HTML")


async def location(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Reply with the nearest office's location."""
    message = update.effective_message
    assert message
    assert message.location
    await message.reply_chat_action("find_location")
    await message.reply_location(latitude=30.27, longitude=120.15)


async def edited(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Acknowledge an edited message."""
    assert update.edited_message
    assert update.edited_message.text
    await update.edited_message.reply_text(f"已更新：{update.edited_message.text}")


async def whoami(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Report the sender's status in this chat, from getChatMember."""
    message, user = update.effective_message, update.effective_user
    assert message
    assert user
    member = await context.bot.get_chat_member(message.chat_id, user.id)
    await message.reply_text(f"status={member.status}")


async def record_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Keep every error for the test to inspect."""
    context.bot_data.setdefault("errors", []).append(context.error)


def build_bot(api: LocalBotApi) -> Application[Any, Any, Any, Any, Any, Any]:
    """Return the test bot, pointed at the local server."""
    app = application_builder(api).build()
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CommandHandler("raw", raw))
    app.add_handler(CommandHandler("long", too_long))
    app.add_handler(CommandHandler("badbutton", bad_button))
    app.add_handler(CommandHandler("keyboard", keyboard))
    app.add_handler(CommandHandler("hide", hide_keyboard))
    app.add_handler(CommandHandler("whoami", whoami))
    app.add_handler(CallbackQueryHandler(topic, pattern=r"^topic:"))
    app.add_handler(CallbackQueryHandler(same, pattern=r"^same$"))
    app.add_handler(MessageHandler(filters.UpdateType.EDITED_MESSAGE & filters.TEXT, edited))
    app.add_handler(MessageHandler(filters.PHOTO, photo))
    app.add_handler(MessageHandler(filters.Document.ALL, document))
    app.add_handler(MessageHandler(filters.LOCATION, location))
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    app.add_error_handler(record_error)
    return app


# ---------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture
async def api() -> AsyncIterator[LocalBotApi]:
    """A local Bot API server on a free port."""
    async with LocalBotApi(token=TOKEN) as server:
        yield server


@pytest.fixture
async def bot_app(api: LocalBotApi) -> AsyncIterator[Application[Any, Any, Any, Any, Any, Any]]:
    """The test bot, polling the local server."""
    async with running_application(build_bot(api)) as app:
        yield app


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain HTTP client for calls python-telegram-bot would not make."""
    async with aiohttp.ClientSession() as session:
        yield session


def errors_of(app: Application[Any, Any, Any, Any, Any, Any]) -> list[BaseException]:
    """Return the errors the bot's error handler saw."""
    return list(app.bot_data.get("errors", []))


# ---------------------------------------------------------------------------------------------
# Round trips through python-telegram-bot


async def test_start_command_gets_html_greeting_with_buttons(
    api: LocalBotApi, bot_app: Application[Any, Any, Any, Any, Any, Any]
) -> None:
    resident = api.create_user("小<李>")
    chat = api.private_chat(resident)

    replies = await chat.send("/start")

    assert len(replies) == 1
    greeting = replies[0]
    assert greeting.text == "欢迎，小<李>！"
    assert greeting.html == "<b>欢迎</b>，小&lt;李&gt;！"
    assert greeting.entities == [{"offset": 0, "length": 2, "type": "bold"}]
    assert greeting.buttons == [
        [("社保卡", "topic:card"), ("公积金", "topic:fund")],
        [("same", "same")],
        [("官网 Website", None)],
    ]
    assert greeting.button_urls == {"官网 Website": SERVICE_URL}
    assert [call.method for call in api.calls][:2] == ["getMe", "deleteWebhook"]


async def test_text_is_echoed_escaped_as_a_reply(
    api: LocalBotApi, bot_app: Application[Any, Any, Any, Any, Any, Any]
) -> None:
    chat = api.private_chat(api.create_user("小李"))

    replies = await chat.send("<script> & 社保卡怎么补办 😀")

    [reply] = replies
    assert reply.text == "你说：<script> & 社保卡怎么补办 😀"
    assert reply.html == "你说：<i>&lt;script&gt; &amp; 社保卡怎么补办 😀</i>"
    # The emoji is two UTF-16 code units; entity lengths count those.
    assert reply.entities == [{"offset": 3, "length": 21, "type": "italic"}]
    assert reply.reply_to_message_id == chat.messages[0].message_id


async def test_unescaped_user_text_in_html_is_refused(
    api: LocalBotApi, bot_app: Application[Any, Any, Any, Any, Any, Any]
) -> None:
    chat = api.private_chat(api.create_user("小李"))

    with pytest.raises(BotCallRefused, match="can't parse entities"):
        await chat.send("/raw <b>加粗")

    [refused] = api.failed_calls
    assert refused.method == "sendMessage"
    assert refused.status == 400
    assert refused.description == (
        "Bad Request: can't parse entities: Can't find end tag corresponding to start tag \"b\""
    )
    [error] = errors_of(bot_app)
    assert isinstance(error, BadRequest)
    assert chat.bot_messages == []


@pytest.mark.parametrize(
    ("user_text", "reason"),
    [
        ("a < b", 'Unsupported start tag "" at byte offset 11'),
        ("<br>", 'Unsupported start tag "br" at byte offset 9'),
        ("R&D", 'Unescaped "&" at byte offset 10; write &amp;'),
    ],
)
async def test_each_kind_of_forgotten_escape_is_refused(
    api: LocalBotApi,
    bot_app: Application[Any, Any, Any, Any, Any, Any],
    user_text: str,
    reason: str,
) -> None:
    chat = api.private_chat(api.create_user("小李"), raise_on_refused=False)

    replies = await chat.send(f"/raw {user_text}")

    assert list(replies) == []
    assert [call.description for call in replies.refused] == [
        f"Bad Request: can't parse entities: {reason}"
    ]


async def test_too_long_message_is_refused(
    api: LocalBotApi, bot_app: Application[Any, Any, Any, Any, Any, Any]
) -> None:
    chat = api.private_chat(api.create_user("小李"), raise_on_refused=False)

    replies = await chat.send("/long")

    assert [call.description for call in replies.refused] == ["Bad Request: message is too long"]
    assert "Message is too long" in str(errors_of(bot_app)[0])


async def test_empty_text_and_unknown_chat_are_refused(
    api: LocalBotApi, bot_app: Application[Any, Any, Any, Any, Any, Any]
) -> None:
    resident = api.create_user("小李")
    chat = api.create_private_chat(resident)
    api.send_text(resident, chat, "hi")
    await api.wait_until_idle()

    with pytest.raises(BadRequest, match="Message text is empty"):
        await bot_app.bot.send_message(chat.id, "<b> </b>", parse_mode="HTML")
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot_app.bot.send_message(424242, "hello")


async def test_bot_cannot_write_first_or_to_a_user_who_blocked_it(
    api: LocalBotApi, bot_app: Application[Any, Any, Any, Any, Any, Any]
) -> None:
    resident = api.create_user("小李")
    chat = api.create_private_chat(resident)

    with pytest.raises(Forbidden, match="can't initiate conversation"):
        await bot_app.bot.send_message(chat.id, "您好")

    await api.private_chat(resident).send("你好")
    api.block_bot(resident)
    with pytest.raises(Forbidden, match="blocked by the user"):
        await bot_app.bot.send_message(chat.id, "您好")


async def test_callback_data_longer_than_64_bytes_is_refused(
    api: LocalBotApi, bot_app: Application[Any, Any, Any, Any, Any, Any]
) -> None:
    chat = api.private_chat(api.create_user("小李"), raise_on_refused=False)

    replies = await chat.send("/badbutton")

    assert [call.description for call in replies.refused] == ["Bad Request: BUTTON_DATA_INVALID"]


async def test_pressing_a_button_gets_an_answer_and_an_edit(
    api: LocalBotApi, bot_app: Application[Any, Any, Any, Any, Any, Any]
) -> None:
    chat = api.private_chat(api.create_user("小李"))
    [greeting] = await chat.send("/start")

    replies = await chat.press("公积金")

    assert replies.answer is not None
    assert replies.answer.text == "已选择 公积金"
    assert not replies.answer.show_alert
    assert list(replies) == []
    assert replies.edited == [greeting]
    assert greeting.html == "您选择了<b>公积金</b>"
    assert greeting.edited
    assert greeting.history[0]["text"] == "欢迎，小李！"
    assert greeting.buttons[0] == [("社保卡", "topic:card"), ("公积金", "topic:fund")]


async def test_press_button_returns_the_callback_answer(
    api: LocalBotApi, bot_app: Application[Any, Any, Any, Any, Any, Any]
) -> None:
    resident = api.create_user("小李")
    chat = api.create_private_chat(resident)
    api.send_text(resident, chat, "/start")
    [greeting] = await api.wait_for_bot_messages(chat)

    answer = await api.press_button(resident, greeting, "topic:card")

    assert answer is not None
    assert answer.text == "已选择 社保卡"
    with pytest.raises(ValueError, match="no button"):
        api.push_callback_query(resident, greeting, "topic:unknown")


async def test_editing_to_identical_content_is_not_modified(
    api: LocalBotApi, bot_app: Application[Any, Any, Any, Any, Any, Any]
) -> None:
    chat = api.private_chat(api.create_user("小李"), raise_on_refused=False)
    await chat.send("/start")

    replies = await chat.press("same")

    assert replies.answer is not None
    [refused] = replies.refused
    assert refused.method == "editMessageText"
    assert refused.description is not None
    assert refused.description.startswith("Bad Request: message is not modified")


async def test_answer_callback_query_text_is_limited_and_answered_once(
    api: LocalBotApi, bot_app: Application[Any, Any, Any, Any, Any, Any]
) -> None:
    resident = api.create_user("小李")
    chat = api.private_chat(resident)
    await chat.send("你好")
    # No handler takes this button, so the test answers the query itself.
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("手动", callback_data="manual")]])
    sent = await bot_app.bot.send_message(chat.chat.id, "请按", reply_markup=markup)
    query_id = api.push_callback_query(resident, chat.bot_messages[-1], "manual")
    await api.wait_until_idle()
    assert chat.bot_messages[-1].message_id == sent.message_id

    with pytest.raises(BadRequest, match="Message_too_long"):
        await bot_app.bot.answer_callback_query(query_id, "长" * 201)
    assert await bot_app.bot.answer_callback_query(query_id, "好", show_alert=True)
    with pytest.raises(BadRequest, match="Query is too old"):
        await bot_app.bot.answer_callback_query(query_id)
    assert api.callback_answers[query_id].show_alert


async def test_photo_sent_by_user_downloads_through_get_file(
    api: LocalBotApi, bot_app: Application[Any, Any, Any, Any, Any, Any]
) -> None:
    chat = api.private_chat(api.create_user("小李"))
    picture = sample_png(40, 30)

    [reply] = await chat.send_photo(picture, caption="材料")

    digest = hashlib.sha256(picture).hexdigest()[:12]
    assert reply.text.startswith(f"收到照片 {len(picture)} {digest} {api.base_file_url}{TOKEN}/")
    [photo_size] = chat.messages[0].data["photo"]
    assert (photo_size["width"], photo_size["height"]) == (40, 30)


async def test_document_is_resent_by_file_id_and_photo_uploaded(
    api: LocalBotApi, bot_app: Application[Any, Any, Any, Any, Any, Any]
) -> None:
    chat = api.private_chat(api.create_user("小李"))

    returned, picture = await chat.send_document(
        "申请表".encode(), file_name="申请表.txt", caption="附件", expect=2
    )

    sent_file_id = chat.messages[0].data["document"]["file_id"]
    assert returned.data["document"]["file_id"] == sent_file_id
    assert returned.text == "原件退回"
    assert picture.kind == "photo"
    assert picture.html == "<b>示意图</b>"
    assert api.file_bytes(picture.data["photo"][-1]["file_id"]) == sample_png(20, 10)


async def test_location_gets_chat_action_and_location_reply(
    api: LocalBotApi, bot_app: Application[Any, Any, Any, Any, Any, Any]
) -> None:
    chat = api.private_chat(api.create_user("小李"))

    [reply] = await chat.send_location(30.25, 120.16)

    assert reply.kind == "location"
    assert reply.data["location"] == {"latitude": 30.27, "longitude": 120.15}
    assert [call.params["action"] for call in api.calls_to("sendChatAction")] == ["find_location"]


async def test_edited_message_reaches_the_bot(
    api: LocalBotApi, bot_app: Application[Any, Any, Any, Any, Any, Any]
) -> None:
    chat = api.private_chat(api.create_user("小李"))
    await chat.send("社保卡补办")
    question = chat.messages[0]

    [reply] = await chat.edit(question, "社保卡挂失")

    assert reply.text == "已更新：社保卡挂失"
    assert question.edited


async def test_reply_keyboard_is_kept_per_chat_until_removed(
    api: LocalBotApi, bot_app: Application[Any, Any, Any, Any, Any, Any]
) -> None:
    chat = api.private_chat(api.create_user("小李"))

    [shown] = await chat.send("/keyboard")

    assert shown.keyboard == [["办事指南", "我要投诉"], ["分享手机号"]]
    assert "reply_markup" not in shown.data  # Telegram echoes only inline keyboards
    assert chat.chat.reply_keyboard is not None
    assert chat.chat.reply_keyboard["input_field_placeholder"] == "选择一项"
    [hidden] = await chat.send("/hide")
    assert hidden.removes_keyboard
    assert chat.chat.reply_keyboard is None


async def test_get_chat_member_reads_the_member_list(
    api: LocalBotApi, bot_app: Application[Any, Any, Any, Any, Any, Any]
) -> None:
    chief, clerk, stranger = (api.create_user(name) for name in ("王科长", "张专员", "路人"))
    group = api.create_group("工作人员群", {chief: "creator", clerk: "member"})
    bot = bot_app.bot

    assert (await bot.get_chat_member(group.id, chief.id)).status == "creator"
    assert (await bot.get_chat_member(group.id, clerk.id)).status == "member"
    assert (await bot.get_chat_member(group.id, stranger.id)).status == "left"
    assert (await bot.get_chat_member(group.id, 987654)).status == "left"
    admins = await bot.get_chat_administrators(group.id)
    assert [admin.user.id for admin in admins] == [chief.id]
    api.set_member_status(group, clerk, "administrator")
    assert (await bot.get_chat_member(group.id, clerk.id)).status == "administrator"
    api.remove_member(group, clerk)
    assert (await bot.get_chat_member(group.id, clerk.id)).status == "left"
    full = await bot.get_chat(group.id)
    assert (full.type, full.title) == ("supergroup", "工作人员群")


async def test_group_privacy_mode_hides_plain_messages_but_not_replies_or_commands(
    api: LocalBotApi, bot_app: Application[Any, Any, Any, Any, Any, Any]
) -> None:
    chief = api.create_user("王科长")
    group = api.create_group("工作人员群", {chief: "creator"})
    staff = api.group_chat(group, chief)

    [status] = await staff.send(f"/whoami@{api.bot_user.username}")
    chatter = await staff.send("大家好", expect=0)
    [echoed] = await staff.reply(status, "收到")

    assert status.text == "status=creator"
    assert list(chatter) == []
    assert echoed.text == "你说：收到"
    with pytest.raises(AssertionError, match="privacy mode"):
        await staff.send("又一条")


async def test_commands_and_menu_button_are_stored(
    api: LocalBotApi, bot_app: Application[Any, Any, Any, Any, Any, Any]
) -> None:
    bot = bot_app.bot
    await bot.set_my_commands([("start", "开始"), ("help", "帮助")])
    await bot.set_my_commands([("start", "Start")], language_code="en")

    assert [(c.command, c.description) for c in await bot.get_my_commands()] == [
        ("start", "开始"),
        ("help", "帮助"),
    ]
    assert api.my_commands(language_code="en") == [("start", "Start")]
    with pytest.raises(BadRequest, match="Bot_command_invalid"):
        await bot.set_my_commands([("Start", "大写不行")])
    assert await bot.delete_my_commands(language_code="en")
    assert api.my_commands(language_code="en") == []
    assert await bot.set_chat_menu_button()
    assert (await bot.get_chat_menu_button()).type == "default"


async def test_forward_copy_and_delete(
    api: LocalBotApi, bot_app: Application[Any, Any, Any, Any, Any, Any]
) -> None:
    resident, chief = api.create_user("小李"), api.create_user("王科长")
    chat = api.private_chat(resident)
    group = api.create_group("工作人员群", {chief: "creator"})
    await chat.send("路灯坏了")
    question = chat.messages[0]
    bot = bot_app.bot

    forwarded = await bot.forward_message(group.id, chat.chat.id, question.message_id)
    copied = await bot.copy_message(group.id, chat.chat.id, question.message_id)

    assert forwarded.forward_origin is not None
    assert forwarded.text == "路灯坏了"
    [_, copy] = api.bot_messages(group)
    assert copy.message_id == copied.message_id
    assert copy.text == "路灯坏了"
    assert "forward_origin" not in copy.data
    assert await bot.delete_message(group.id, copied.message_id)
    assert copy.deleted
    with pytest.raises(BadRequest, match="Message to delete not found"):
        await bot.delete_message(group.id, copied.message_id)


# ---------------------------------------------------------------------------------------------
# HTTP details


async def test_unknown_method_and_wrong_token_answer_like_telegram(
    api: LocalBotApi, http: aiohttp.ClientSession
) -> None:
    async with http.post(f"{api.base_url}{TOKEN}/sendTelepathy") as response:
        assert response.status == 404
        assert await response.json() == {
            "ok": False,
            "error_code": 404,
            "description": "Not Found",
        }
    async with http.get(f"{api.base_url}999:WRONG/getMe") as response:
        assert response.status == 401
        assert (await response.json())["description"] == "Unauthorized"
    async with http.get(f"{api.base_url}{TOKEN}/getme") as response:
        body = await response.json()
        assert body["ok"] is True
        assert body["result"]["username"] == api.bot_user.username


async def test_json_body_and_query_string_are_accepted(
    api: LocalBotApi, http: aiohttp.ClientSession
) -> None:
    user = api.create_user("小李")
    chat = api.create_private_chat(user)
    api.send_text(user, chat, "/start")
    markup = {"inline_keyboard": [[{"text": "好", "callback_data": "ok"}]]}

    async with http.post(
        f"{api.base_url}{TOKEN}/sendMessage",
        json={
            "chat_id": chat.id,
            "text": "*粗体*",
            "parse_mode": "MarkdownV2",
            "reply_markup": markup,
        },
    ) as response:
        body = await response.json()
    async with http.get(
        f"{api.base_url}{TOKEN}/sendMessage", params={"chat_id": str(chat.id), "text": "1.5"}
    ) as response:
        dotted = await response.json()

    assert body["result"]["entities"] == [{"offset": 0, "length": 2, "type": "bold"}]
    assert body["result"]["reply_markup"] == markup
    assert dotted["result"]["text"] == "1.5"


async def test_get_updates_returns_as_soon_as_an_update_arrives(
    api: LocalBotApi, http: aiohttp.ClientSession
) -> None:
    user = api.create_user("小李")
    chat = api.create_private_chat(user)

    async def write_soon() -> None:
        await asyncio.sleep(0.2)
        api.send_text(user, chat, "在吗")

    started = time.monotonic()
    writer = asyncio.create_task(write_soon())
    async with http.post(
        f"{api.base_url}{TOKEN}/getUpdates",
        data={"timeout": "10", "allowed_updates": '["message"]'},
    ) as response:
        body = await response.json()
    await writer

    assert time.monotonic() - started < 2
    [update] = body["result"]
    assert update["message"]["text"] == "在吗"
    assert update["message"]["from"]["language_code"] == "zh-hans"
    async with http.post(
        f"{api.base_url}{TOKEN}/getUpdates", data={"offset": str(update["update_id"] + 1)}
    ) as response:
        assert (await response.json())["result"] == []


async def test_webhook_blocks_get_updates_until_deleted(
    api: LocalBotApi, http: aiohttp.ClientSession
) -> None:
    base = f"{api.base_url}{TOKEN}"
    async with http.post(f"{base}/setWebhook", data={"url": "http://insecure"}) as response:
        assert response.status == 400
    async with http.post(
        f"{base}/setWebhook", data={"url": "https://bot.example/hook"}
    ) as response:
        assert (await response.json())["description"] == "Webhook was set"
    async with http.post(f"{base}/getUpdates") as response:
        assert response.status == 409
    async with http.post(f"{base}/getWebhookInfo") as response:
        assert (await response.json())["result"]["url"] == "https://bot.example/hook"
    async with http.post(f"{base}/deleteWebhook") as response:
        assert (await response.json())["description"] == "Webhook was deleted"


# ---------------------------------------------------------------------------------------------
# The try-out page and its JSON endpoints


async def test_tryout_page_is_self_contained(
    api: LocalBotApi, http: aiohttp.ClientSession
) -> None:
    async with http.get(api.tryout_url) as response:
        page = await response.text()
        policy = response.headers["Content-Security-Policy"]
    async with http.get(f"{api.url}/_tryout/assets/tryout.js") as response:
        script = await response.text()

    assert "default-src 'none'" in policy
    assert "试用" in page
    assert "http://" not in page
    assert "https://" not in page
    for sink in (".innerHTML", ".outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script
    assert "/_tryout/messages" in script


async def test_tryout_resident_chats_and_presses_buttons(
    api: LocalBotApi,
    bot_app: Application[Any, Any, Any, Any, Any, Any],
    http: aiohttp.ClientSession,
) -> None:
    async with http.get(f"{api.url}/_tryout/world") as response:
        world = await response.json()
    resident_view, group_view = world["views"][:2]
    chat_id, user_id = resident_view["chat_id"], resident_view["speakers"][0]["id"]
    assert group_view["group"] is True
    assert len(group_view["speakers"]) == 2

    async with http.post(
        f"{api.url}/_tryout/send",
        json={"chat_id": chat_id, "user_id": user_id, "kind": "text", "text": "/start"},
    ) as response:
        assert (await response.json())["ok"] is True
    messages = await poll_until(http, api, chat_id, lambda views: len(views) >= 2)

    greeting = messages[-1]
    assert greeting["from"]["is_bot"] is True
    assert greeting["text"] == f"欢迎，{api.tryout.resident.first_name}！"
    assert greeting["entities"] == [{"offset": 0, "length": 2, "type": "bold"}]
    callback = greeting["buttons"][0][0]["callback_data"]
    async with http.post(
        f"{api.url}/_tryout/press",
        json={
            "chat_id": chat_id,
            "user_id": user_id,
            "message_id": greeting["id"],
            "callback_data": callback,
        },
    ) as response:
        pressed = await response.json()
    assert pressed["answer"]["text"] == "已选择 社保卡"


async def test_tryout_sends_photo_and_location_and_replies_in_staff_group(
    api: LocalBotApi,
    bot_app: Application[Any, Any, Any, Any, Any, Any],
    http: aiohttp.ClientSession,
) -> None:
    tryout = api.tryout
    resident_chat, group = tryout.resident_chat.id, tryout.staff_group.id
    resident, chief = tryout.resident.id, tryout.staff[0].id

    for body in ({"kind": "photo"}, {"kind": "location"}):
        async with http.post(
            f"{api.url}/_tryout/send", json={"chat_id": resident_chat, "user_id": resident, **body}
        ) as response:
            assert (await response.json())["ok"] is True
    views = await poll_until(
        http, api, resident_chat, lambda views: sum(v["from"]["is_bot"] for v in views) >= 2
    )
    assert views[0]["photo"].startswith("/_tryout/files/")
    async with http.get(f"{api.url}{views[0]['photo']}") as response:
        assert response.content_type == "image/png"

    posted = await bot_app.bot.send_message(group, "新工单 #12：<b>路灯</b>", parse_mode="HTML")
    async with http.post(
        f"{api.url}/_tryout/send",
        json={
            "chat_id": group,
            "user_id": chief,
            "kind": "text",
            "text": "已处理",
            "reply_to": posted.message_id,
        },
    ) as response:
        reply = (await response.json())["message"]
    assert reply["reply_to"]["id"] == posted.message_id
    [echo_view] = [
        v
        for v in await poll_until(http, api, group, lambda views: len(views) >= 3)
        if v["from"]["is_bot"] and v["text"].startswith("你说")
    ]
    assert echo_view["text"] == "你说：已处理"


async def test_tryout_refuses_strangers_and_cross_site_posts(
    api: LocalBotApi, http: aiohttp.ClientSession
) -> None:
    tryout = api.tryout
    outsider = api.create_user("外人")
    body = {"chat_id": tryout.resident_chat.id, "kind": "text", "text": "hi"}

    async with http.post(
        f"{api.url}/_tryout/send", json=body | {"user_id": outsider.id}
    ) as response:
        assert response.status == 403
    async with http.post(
        f"{api.url}/_tryout/send",
        json=body | {"user_id": tryout.resident.id},
        headers={"Origin": "https://evil.example"},
    ) as response:
        assert response.status == 403
    async with http.post(
        f"{api.url}/_tryout/send",
        data=json.dumps(body | {"user_id": tryout.resident.id}),
        headers={"Content-Type": "text/plain"},
    ) as response:
        assert response.status == 415
    assert api.messages(tryout.resident_chat) == []


async def poll_until(
    http: aiohttp.ClientSession,
    api: LocalBotApi,
    chat_id: int,
    done: Callable[[list[dict[str, Any]]], bool],
) -> list[dict[str, Any]]:
    """Long-poll the try-out messages endpoint like the page does, until `done(messages)`."""
    views: dict[int, dict[str, Any]] = {}
    since = 0
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        async with http.get(
            f"{api.url}/_tryout/messages",
            params={"chat_id": str(chat_id), "since": str(since), "wait": "1"},
        ) as response:
            body = await response.json()
        since = body["version"]
        for view in body["messages"]:
            views[view["id"]] = view
        ordered = [views[key] for key in sorted(views) if not views[key]["deleted"]]
        if done(ordered):
            return ordered
    raise AssertionError(f"the try-out chat never got there: {list(views.values())}")


# ---------------------------------------------------------------------------------------------
# Formatting, without a server


def test_html_parses_nested_tags_entities_and_utf16_offsets() -> None:
    parsed = parse_html(
        '😀 <b>粗<i>斜</i></b> &lt;&#x4e2d;&gt; <a href="https://a.example/?a=1&amp;b=2">链</a>'
    )

    assert parsed.text == "😀 粗斜 <中> 链"
    assert [entity.to_api() for entity in parsed.entities] == [
        {"offset": 3, "length": 2, "type": "bold"},
        {"offset": 4, "length": 1, "type": "italic"},
        {"offset": 10, "length": 1, "type": "text_link", "url": "https://a.example/?a=1&b=2"},
    ]
    assert entities_to_html(parsed.text, parsed.entities_api()) == (
        '😀 <b>粗<i>斜</i></b> &lt;中&gt; <a href="https://a.example/?a=1&amp;b=2">链</a>'
    )


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("<b>x</i>", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("<b", "Unclosed start tag at byte offset 0"),
        ('<span class="x">y</span>', 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
        ("<p>段落</p>", 'Unsupported start tag "p" at byte offset 0'),
    ],
)
def test_malformed_html_is_refused_with_telegrams_reason(source: str, reason: str) -> None:
    with pytest.raises(EntityParseError) as caught:
        parse_html(source)
    assert str(caught.value) == reason


def test_html_supports_pre_with_language_spoilers_and_blockquotes() -> None:
    parsed = parse_html(
        '<pre><code class="language-python">x = 1</code></pre>'
        "<tg-spoiler>秘</tg-spoiler><blockquote expandable>引</blockquote>"
    )
    assert [(e.type, e.language) for e in parsed.entities] == [
        ("pre", "python"),
        ("spoiler", None),
        ("expandable_blockquote", None),
    ]


def test_markdown_v2_requires_escaping_reserved_characters() -> None:
    parsed = parse_markdown_v2(r"*粗* _斜_ __下__ ~删~ ||剧|| `a.b` [链](https://a.example) 1\.5")
    assert parsed.text == "粗 斜 下 删 剧 a.b 链 1.5"
    assert [e.type for e in parsed.entities] == [
        "bold",
        "italic",
        "underline",
        "strikethrough",
        "spoiler",
        "code",
        "text_link",
    ]
    with pytest.raises(EntityParseError, match=r"Character '\.' is reserved"):
        parse_markdown_v2("1.5")
    with pytest.raises(EntityParseError, match="Can't find end of the entity"):
        parse_markdown_v2("*粗")


def test_text_is_trimmed_and_commands_are_detected() -> None:
    assert format_text("  你好 \n", None).text == "你好"
    assert detect_entities("/start@shili_bot 查 https://a.example/x。") == [
        {"offset": 0, "length": 16, "type": "bot_command"},
        {"offset": 19, "length": 19, "type": "url"},
    ]
