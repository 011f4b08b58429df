"""The Telegram front: two processes on PostgreSQL in webhook mode, over real HTTP; polling
from the confirmed offset and recording handled updates, on SQLite and PostgreSQL.

The local Bot API server does not call webhooks, so the webhook test plays Telegram's part: it
takes the update the server queued and POSTs it to the processes, as Telegram (through a reverse
proxy) would, retrying while it is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.answering.store import KnowledgeStore
from bot.core.leadership import Leadership
from bot.core.metrics import REGISTRY
from bot.core.models import TelegramUpdate
from bot.services import Services
from bot.telegram.application import build_application
from bot.telegram.front import (
    WEBHOOK_PATH,
    NotRecorded,
    TelegramFront,
    UpdateLedger,
    UpdateRecorder,
    poll_confirmed,
)
from bot.telegram.journal import SendJournal, UpdateCalls, current, handling, journaled
from bot.telegram.persistence import DatabasePersistence
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


async def recorded(services: Services) -> set[int]:
    async with services.sessions() as session:
        return set(await session.scalars(select(TelegramUpdate.update_id)))


async def test_a_batch_is_answered_once_each_and_recorded_before_it_is_confirmed(
    services: Services, api: LocalBotApi
) -> None:
    residents = [api.private_chat(api.create_user(f"居民{n}")) for n in range(6)]
    for chat in residents:
        api.send_text(chat.user, chat.chat, "社保卡丢了怎么补办")
    last = api.last_update_id
    application = build_application(services, token=api.token, base_url=api.base_url)
    ledger = UpdateLedger(services)
    async with application:
        await application.start()
        # Six questions waiting: they come in one getUpdates and are handled together.
        polling = asyncio.create_task(poll_confirmed(application, ledger, long_poll=1))
        try:
            for _ in range(400):
                if await ledger.next_offset() == last + 1:
                    break
                await asyncio.sleep(0.05)
        finally:
            polling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await polling
            await application.stop()
    assert await ledger.next_offset() == last + 1
    for chat in residents:
        answers = [m for m in chat.bot_messages if m.buttons]
        assert len(answers) == 1, [m.text[:40] for m in chat.bot_messages]
    # Confirmed: the handled marks below the offset are no longer needed.
    assert await recorded(services) == set()


async def test_updates_handled_together_are_recorded_in_one_round_and_never_when_fenced(
    services: Services, api: LocalBotApi
) -> None:
    application = build_application(services, token=api.token, base_url=api.base_url)
    ledger = UpdateLedger(services)
    async with application:
        recorder = UpdateRecorder(application, ledger)
        # Six handlers returning at once: one persistence round, one insert.
        await asyncio.gather(*(recorder.record(update_id) for update_id in range(1, 7)))
        assert recorder.rounds == 1
        assert await recorded(services) == set(range(1, 7))
        await recorder.record(7)
        assert recorder.rounds == 2

        # Another process leads now: what this one's handlers did is not recorded.
        assert isinstance(application.persistence, DatabasePersistence)
        application.persistence.fence()
        with pytest.raises(NotRecorded):
            await recorder.record(8)
        await recorder.close()
        with pytest.raises(NotRecorded):
            await recorder.record(9)
    assert await recorded(services) == set(range(1, 8))
    # The recorder's own connection went back with it.
    assert services.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_a_call_an_update_made_before_is_answered_from_the_journal_and_others_are_made(
    services: Services,
) -> None:
    # What shows or changes something in a chat is journaled; reads and passing signs are not.
    shown = ["sendMessage", "editMessageText", "deleteMessage", "copyMessage", "sendPhoto"]
    passing = ["getUpdates", "getChatMember", "answerCallbackQuery", "sendChatAction"]
    assert [journaled(name) for name in shown + passing] == [True] * 5 + [False] * 4
    ledger = UpdateLedger(services)
    journal = SendJournal(services.engine, services.sessions)
    made: list[str] = []

    def maker(name: str) -> Callable[[], Awaitable[tuple[int, bytes]]]:
        async def make() -> tuple[int, bytes]:
            made.append(name)
            return 200, f'{{"ok":true,"result":{{"message_id":{len(made)}}}}}'.encode()

        return make

    # The first handling of update 41: two messages in chat 7, then an edit in chat 8.
    first = UpdateCalls(journal, 41, {})
    with handling(first):
        assert current() is first
        await first.call("sendMessage", "7", maker("welcome"))
        await first.call("sendMessage", "7", maker("menu"))
        await first.call("editMessageText", "8", maker("edit"))
    assert current() is None
    # A task the handlers left behind calls after the update was handled: made, not numbered.
    await first.call("sendMessage", "7", maker("late"))
    assert made == ["welcome", "menu", "edit", "late"]
    written = (await ledger.sent([41, 42])).get(41)
    assert written is not None
    assert [(n, c.method, c.chat_id) for n, c in sorted(written.items())] == [
        (0, "sendMessage", "7"),
        (1, "sendMessage", "7"),
        (2, "editMessageText", "8"),
    ]
    assert b'"message_id":2' in written[1].result
    # Polling asks for the journal only of updates at or below the highest journaled one.
    assert await ledger.journal_horizon() == 41

    # Handled again after a kill: the same calls come back with Telegram's first answers,
    # except where this handling took another path (another chat), which is made and written.
    made.clear()
    replayed_before = REGISTRY.get_sample_value("bot_telegram_calls_replayed_total") or 0
    again = UpdateCalls(journal, 41, written)
    with handling(again):
        assert await again.call("sendMessage", "7", maker("welcome")) == (200, written[0].result)
        assert await again.call("sendMessage", "7", maker("menu")) == (200, written[1].result)
        status, body = await again.call("editMessageText", "9", maker("other chat"))
        assert status == 200
        assert body != written[2].result
        await again.call("sendMessage", "7", maker("new"))
    assert made == ["other chat", "new"]
    assert again.replayed == 2
    assert REGISTRY.get_sample_value("bot_telegram_calls_replayed_total") == replayed_before + 2
    rewritten = (await ledger.sent([41]))[41]
    assert rewritten[2].chat_id == "9"
    assert rewritten[3].method == "sendMessage"

    # Confirming the offset past the update forgets its journal.
    await ledger.confirm(42)
    assert await ledger.sent([41]) == {}
    assert await ledger.journal_horizon() == -1
    await journal.close()
    assert services.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
