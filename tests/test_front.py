"""The Telegram front of two processes on PostgreSQL in webhook mode, over real HTTP.

The local Bot API server does not call webhooks, so this test plays Telegram's part: it takes the
update the server queued and POSTs it to the processes, as Telegram (through a reverse proxy)
would, retrying while it is refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.answering.store import KnowledgeStore
from bot.core.leadership import Leadership
from bot.services import Services
from bot.telegram.front import WEBHOOK_PATH, TelegramFront
from tests.fixtures_console import free_port
from tests.fixtures_conversation import conversation_settings
from tryout.local_bot_api import LocalBotApi

pytestmark = pytest.mark.slow


@pytest.fixture
async def api() -> AsyncIterator[LocalBotApi]:
    async with LocalBotApi() as server:
        yield server


async def front(
    url: str, api: LocalBotApi, knowledge: KnowledgeStore, holder: str
) -> tuple[TelegramFront, str]:
    port = free_port()
    settings = conversation_settings(
        url,
        mode="webhook",
        webhook_url="https://bot.example.gov.cn/telegram",
        webhook_listen="127.0.0.1",
        webhook_port=port,
    )
    services = await Services.start(settings, knowledge=knowledge)
    leadership = Leadership(services.engine, ttl=2, holder=holder)
    built = TelegramFront(
        services, leadership, token=api.token, base_url=api.base_url, webhook=True
    )
    await built.start()
    return built, f"http://127.0.0.1:{port}{WEBHOOK_PATH}"


async def post(http: aiohttp.ClientSession, url: str, update: dict[str, object]) -> int:
    async with http.post(url, json=update) as response:
        return response.status


async def test_the_standby_refuses_the_leader_handles_once_and_the_standby_takes_over(
    postgres_url: str, engine: AsyncEngine, api: LocalBotApi, bundled_store: KnowledgeStore
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("several processes need PostgreSQL")
    first, first_url = await front(postgres_url, api, bundled_store, "first")
    second, second_url = await front(postgres_url, api, bundled_store, "second")
    try:
        assert first.leadership.leading
        assert not second.leadership.leading
        assert api.webhook is not None
        assert api.webhook["url"] == "https://bot.example.gov.cn/telegram"
        resident = api.create_user("李雷")
        chat = api.private_chat(resident).chat
        api.send_text(resident, chat, "/start")
        update = first_update = api.pending_updates.pop()
        async with aiohttp.ClientSession() as http:
            assert await post(http, second_url, update) == 503
            assert api.bot_messages(chat) == []
            assert await post(http, first_url, update) == 200
            greeted = len(api.bot_messages(chat))
            assert greeted == 2
            # Telegram delivers it again (its answer was lost): handled once all the same.
            assert await post(http, first_url, update) == 200
            assert len(api.bot_messages(chat)) == greeted

            await first.stop()
            for _ in range(200):
                if second.leadership.leading and second.accepting():
                    break
                await asyncio.sleep(0.05)
            assert second.accepting()
            api.send_text(resident, chat, "/help")
            update = api.pending_updates.pop()
            assert await post(http, second_url, update) == 200
            assert len(api.bot_messages(chat)) > greeted
            # The first update again, now at the new leader: still not answered twice.
            messages = len(api.bot_messages(chat))
            assert await post(http, second_url, first_update) == 200
            assert len(api.bot_messages(chat)) == messages
            # A body that is no update is dropped, not retried for ever.
            assert await post(http, second_url, {"no": "update"}) == 200
            assert len(api.bot_messages(chat)) == messages
    finally:
        await first.stop()
        await second.stop()
        await first.services.close()
        await second.services.close()
