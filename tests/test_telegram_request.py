"""The bot's aiohttp Bot API client sends what python-telegram-bot's own client sends."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest
from aiohttp import web
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, NetworkError, TimedOut

from bot.telegram.request import AiohttpRequest
from tryout.local_bot_api import LocalBotApi

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84"
    b"\x00\x00\x00\x00IEND\xaeB`\x82"
)


async def test_messages_buttons_and_uploads_reach_the_bot_api_server() -> None:
    async with LocalBotApi() as api:
        resident = api.create_user("市民")
        chat = api.create_private_chat(resident)
        api.send_text(resident, chat, "你好")
        async with Bot(api.token, base_url=api.base_url, request=AiohttpRequest()) as bot:
            keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("办理", callback_data="b:1")]])
            await bot.send_message(
                chat.id, "<b>居民身份证</b> &amp; 护照", reply_markup=keyboard, parse_mode="HTML"
            )
            await bot.send_photo(chat.id, PNG, caption="照片")
            with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
                await bot.send_message(chat.id, "<b>没有关闭", parse_mode="HTML")
        sent = api.bot_messages(chat)
    assert sent[0].text == "居民身份证 & 护照"
    assert sent[0].buttons == [[("办理", "b:1")]]
    assert sent[1].kind == "photo"
    assert sent[1].text == "照片"


async def test_a_server_that_does_not_answer_in_time_is_a_timeout() -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.json_response({"ok": True, "result": True})

    app = web.Application()
    app.router.add_post("/bot1:A/deleteWebhook", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        request = AiohttpRequest(read_timeout=0.2)
        await request.initialize()
        bot = Bot("1:A", base_url=f"http://127.0.0.1:{port}/bot", request=request)
        with pytest.raises(TimedOut):
            await bot.delete_webhook()
        await request.shutdown()
    finally:
        await runner.cleanup()


async def test_a_server_that_is_down_is_a_network_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    request = AiohttpRequest(connect_timeout=1)
    await request.initialize()
    bot = Bot("1:A", base_url=f"http://127.0.0.1:{port}/bot", request=request)
    with pytest.raises(NetworkError) as caught:
        await bot.delete_webhook()
    assert not isinstance(caught.value, TimedOut)
    await request.shutdown()


async def test_a_request_is_refused_before_initialize_and_after_shutdown() -> None:
    request = AiohttpRequest()
    with pytest.raises(RuntimeError, match="not initialized"):
        await request.do_request("http://127.0.0.1:9/bot1:A/getMe", "POST")
    await request.initialize()
    await request.shutdown()
    with pytest.raises(RuntimeError, match="not initialized"):
        await request.do_request("http://127.0.0.1:9/bot1:A/getMe", "POST")


async def test_parameters_go_as_a_json_body_with_python_telegram_bots_values() -> None:
    seen: list[tuple[str, object]] = []

    async def send_message(request: web.Request) -> web.Response:
        seen.append((request.content_type, await request.json()))
        message = {
            "message_id": 1,
            "date": 1_700_000_000,
            "chat": {"id": 7, "type": "private", "first_name": "市民"},
            "text": "居民身份证",
        }
        return web.json_response({"ok": True, "result": message})

    async def get_me(request: web.Request) -> web.Response:
        me = {"id": 1, "is_bot": True, "first_name": "政务服务", "username": "service_bot"}
        return web.json_response({"ok": True, "result": me})

    app = web.Application()
    app.router.add_post("/bot1:A/getMe", get_me)
    app.router.add_post("/bot1:A/sendMessage", send_message)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with Bot(
            "1:A", base_url=f"http://127.0.0.1:{port}/bot", request=AiohttpRequest()
        ) as bot:
            keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("办理", callback_data="b:1")]])
            sent = await bot.send_message(7, "居民身份证 & 护照", reply_markup=keyboard)
    finally:
        await runner.cleanup()
    assert sent.text == "居民身份证"
    content_type, body = seen[0]
    assert content_type == "application/json"
    # The same values python-telegram-bot puts in a form: numbers and objects as JSON text.
    assert isinstance(body, dict)
    assert body["chat_id"] == "7"
    assert body["text"] == "居民身份证 & 护照"
    assert json.loads(body["reply_markup"]) == {
        "inline_keyboard": [[{"text": "办理", "callback_data": "b:1"}]]
    }
    assert set(body) == {"chat_id", "text", "reply_markup"}
