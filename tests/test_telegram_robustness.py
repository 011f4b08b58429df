"""The bot stays up against what it cannot read or edit: a malformed update, a detached button.

Through the real Application polling `LocalBotApi` on 127.0.0.1 (`BotHarness`).
"""

from __future__ import annotations

import logging

import pytest
from telegram.error import NetworkError

from bot.telegram.request import readable_updates
from tests.fixtures_conversation import BotHarness, press_forged

SECRET = "我的身份证号是110101199003071234"


def _errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.levelno >= logging.ERROR]


async def test_an_unreadable_update_is_skipped_once_and_polling_goes_on(
    bot: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="bot.telegram.request")
    chat = bot.resident("李雷")
    # A message python-telegram-bot cannot parse (its date is no number), last in its batch.
    bad = bot.api.push_raw_update(
        {
            "message": {
                "message_id": 1,
                "date": "yesterday",
                "chat": {"id": 1, "type": "private"},
                "text": SECRET,
            }
        }
    )
    await bot.api.wait_until_delivered(bad)
    replies = await chat.send("/help")
    assert replies.text
    # The offset moved past it: the server forgot it, and it was read (and logged) once.
    assert all(update["update_id"] != bad for update in bot.api.pending_updates)
    skipped = [record for record in caplog.records if "could not be read" in record.getMessage()]
    assert [record.getMessage() for record in skipped] == [
        f"update {bad} could not be read (TypeError) and is skipped"
    ]
    assert SECRET not in caplog.text
    assert not [record for record in caplog.records if record.levelno >= logging.CRITICAL]


async def test_a_batch_with_an_unreadable_update_in_the_middle_serves_the_others(
    bot: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    chat = bot.resident("韩梅梅")
    await bot.stop()
    bad = bot.api.push_raw_update({"callback_query": "not an object"})
    await bot.start()
    replies = await chat.send("/help")
    assert replies.text
    assert all(update["update_id"] != bad for update in bot.api.pending_updates)
    assert SECRET not in caplog.text


def test_readable_updates_replaces_unreadable_entries_and_refuses_no_list() -> None:
    good = {
        "update_id": 7,
        "message": {"message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"}},
    }
    result = readable_updates([{"update_id": 5, "message": {"text": SECRET}}, good, "junk"])
    assert result == [{"update_id": 5}, good]
    with pytest.raises(NetworkError):
        readable_updates({"update_id": 1})


async def test_an_inline_mode_button_is_answered_as_expired(
    bot: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    chat = bot.resident("李雷")
    menu = (await chat.send("/start", expect=2))[1]
    data = next(value for row in menu.buttons for _, value in row if value.startswith("m:"))
    user = menu.chat.id
    resident = next(m.sender for m in chat.messages if not m.from_bot)
    assert resident.id == user
    query_id = f"8{bot.api.sequence}{resident.id}"
    bot.api.open_queries[query_id] = menu
    cursor = bot.api.sequence
    update_id = bot.api.push_update(
        "callback_query",
        {
            "id": query_id,
            "from": resident.to_api(),
            "inline_message_id": "AAAAAQAAAAEAAAAB",
            "chat_instance": "1",
            "data": data,
        },
    )
    await bot.api.wait_for_reply(update_id, cursor, outputs=1)
    answer = bot.api.callback_answers[query_id]
    assert answer.text == "这个按钮已经失效了，请重新打开菜单。"
    assert not _errors(caplog)


async def test_a_press_on_a_message_the_bot_cannot_edit_is_answered_as_expired(
    bot: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    chat = bot.resident("李雷")
    languages = await chat.send("/language")
    english = next(
        value for row in languages[0].buttons for label, value in row if label == "English"
    )
    own = next(m for m in chat.messages if not m.from_bot)
    # The resident's own message: Telegram answers "message can't be edited".
    answer = await press_forged(bot.api, own.sender, own, english)
    assert answer is not None
    assert answer.text == "这个按钮已经失效了，请重新打开菜单。"
    assert not _errors(caplog)


async def test_a_press_telegram_no_longer_lets_the_bot_answer_is_no_error(
    bot: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    # Telegram refuses answerCallbackQuery 15 s after a press (a backlog, a restart), and for a
    # query it never made: the press is still handled, and nobody is told of an error.
    # The server refuses the late answers, as Telegram would: expected here.
    chat = bot.api.private_chat(bot.api.create_user("李雷"), raise_on_refused=False)
    menu = (await chat.send("/start", expect=2))[1]
    resident = next(m.sender for m in chat.messages if not m.from_bot)
    languages = await chat.send("/language")
    english = next(
        value for row in languages[0].buttons for label, value in row if label == "English"
    )
    for message, data in ((menu, "no-such-button"), (languages[0], english)):
        update_id = bot.api.push_update(
            "callback_query",
            {
                "id": f"7{bot.api.sequence}{resident.id}",  # never an open query of the server
                "from": resident.to_api(),
                "message": message.data,
                "chat_instance": "1",
                "data": data,
            },
        )
        await bot.api.wait_until_delivered(update_id)

    def refused() -> list[object]:
        return [c for c in bot.api.failed_calls if c.method == "answerCallbackQuery"]

    # Both presses reached the point of answering, and were refused.
    assert await bot.api.wait_for(lambda: len(refused()) == 2, 10)
    replies = await chat.send("/help")
    # The press on 「English」 did its work: the resident's language changed.
    assert "How to use me" in replies.text
    assert not [record.getMessage() for record in _errors(caplog)]


def test_an_update_whose_texts_are_no_strings_is_unreadable() -> None:
    chat = {"id": 1, "type": "private"}
    message = {"message_id": 1, "date": 0, "chat": chat}
    entries = [
        {"update_id": 1, "message": message | {"text": ["list"]}},
        {"update_id": 2, "edited_message": message | {"caption": 7}},
        {"update_id": 3, "callback_query": {"id": "1", "from": None, "data": {"a": 1}}},
        {"update_id": 4, "message": message | {"text": "好"}},
    ]
    assert readable_updates(entries) == [
        {"update_id": 1},
        {"update_id": 2},
        {"update_id": 3},
        entries[3],
    ]
