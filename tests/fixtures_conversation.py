"""Fixtures for the resident conversation: settings, a shared knowledge base, services."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.answering.store import KnowledgeStore, thresholds_from
from bot.core.config import Settings, load_settings
from bot.services import Services
from bot.telegram.application import build_application
from bot.telegram.context import BotApplication
from tryout.local_bot_api import (
    CallbackAnswer,
    ChatMessage,
    ChatTranscript,
    LocalBotApi,
    SimUser,
    running_application,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
STAFF_CHAT_ID = -100777


def conversation_settings(
    database_url: str, *, privacy_notice: bool = False, **telegram: Any
) -> Settings:
    """Return the bundled settings with this database and these [telegram] settings.

    The privacy notice at first contact is off unless asked for: it adds a message before the
    first answer, which tests of other conversations do not count (tests/test_privacy_chat.py
    tests it).
    """
    base = load_settings(REPO_ROOT / "config.toml")
    values: dict[str, Any] = {
        "staff_chat_id": STAFF_CHAT_ID,
        # Tests see every answer at once; office hours are tested on their own.
        "staff_hours": "00:00-23:59",
        "rate_limit_per_second": 0,
        "rate_limit_group_per_minute": 0,
    }
    values.update(telegram)
    return base.model_copy(
        update={
            "database": base.database.model_copy(update={"url": database_url}),
            "telegram": base.telegram.model_copy(update=values),
            "privacy": base.privacy.model_copy(update={"first_contact_notice": privacy_notice}),
        }
    )


@pytest.fixture(scope="session")
def bundled_store() -> KnowledgeStore:
    """The bundled knowledge base, loaded once for the session (never written to)."""
    settings = load_settings(REPO_ROOT / "config.toml")
    return KnowledgeStore(settings.knowledge_dir, thresholds_from(settings))


@pytest.fixture
def knowledge_copy(tmp_path: Path) -> Path:
    """A private copy of the bundled knowledge base that a test may change."""
    target = tmp_path / "knowledge"
    shutil.copytree(REPO_ROOT / "knowledge", target)
    return target


@pytest.fixture
async def services(
    database_url: str, engine: AsyncEngine, bundled_store: KnowledgeStore
) -> AsyncIterator[Services]:
    """Services on an empty database (SQLite and PostgreSQL) and the bundled knowledge base.

    Depends on `engine`, which empties the PostgreSQL tables after the test.
    """
    built = await Services.start(conversation_settings(database_url), knowledge=bundled_store)
    try:
        yield built
    finally:
        await built.close()


class BotHarness:
    """The real Application against a LocalBotApi on 127.0.0.1, with a staff group."""

    def __init__(
        self,
        api: LocalBotApi,
        database_url: str,
        knowledge: KnowledgeStore,
        **telegram: Any,
    ) -> None:
        self.api = api
        self.database_url = database_url
        self.knowledge = knowledge
        self.staff = api.create_user("王芳", username="wangfang")
        self.second_staff = api.create_user("张伟", username="zhangwei")
        self.staff_group = api.create_group(
            "工作人员群",
            {self.staff: "creator", self.second_staff: "member"},
            bot_status="administrator",
        )
        self.settings = conversation_settings(
            database_url, staff_chat_id=self.staff_group.id, **telegram
        )
        self._services: Services | None = None
        self._running: AbstractAsyncContextManager[BotApplication] | None = None
        self._app: BotApplication | None = None

    @property
    def services(self) -> Services:
        assert self._services is not None, "the bot is not running"
        return self._services

    @property
    def app(self) -> BotApplication:
        assert self._app is not None, "the bot is not running"
        return self._app

    async def start(self) -> None:
        """Start the services and the bot (polling the local server)."""
        self._services = await Services.start(self.settings, knowledge=self.knowledge)
        self._app = build_application(
            self._services, token=self.api.token, base_url=self.api.base_url
        )
        self._running = running_application(self._app)
        await self._running.__aenter__()

    async def stop(self) -> None:
        """Stop the bot and close the services, as a restart would."""
        if self._running is not None:
            await self._running.__aexit__(None, None, None)
            self._running = None
        if self._services is not None:
            await self._services.close()
            self._services = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    def resident(self, name: str = "李雷", language_code: str = "zh-hans") -> ChatTranscript:
        """Return a new resident's private chat with the bot."""
        return self.api.private_chat(self.api.create_user(name, language_code=language_code))

    def staff_room(self, user: SimUser | None = None) -> ChatTranscript:
        """Return the staff group as one staff member (the first by default) sees it."""
        return self.api.group_chat(self.staff_group, user or self.staff)

    def latest_staff_post(self) -> ChatMessage:
        """Return the bot's latest message in the staff group."""
        message = self.api.last_bot_message(self.staff_group)
        assert message is not None, "the bot posted nothing to the staff group"
        return message


@pytest.fixture
async def bot(
    database_url: str, engine: AsyncEngine, bundled_store: KnowledgeStore
) -> AsyncIterator[BotHarness]:
    """The running bot on SQLite and on PostgreSQL, with the bundled knowledge base."""
    async with LocalBotApi() as api:
        harness = BotHarness(api, database_url, bundled_store)
        await harness.start()
        try:
            yield harness
        finally:
            await harness.stop()


async def press_forged(
    api: LocalBotApi, user: SimUser, message: ChatMessage, data: str
) -> CallbackAnswer | None:
    """Send a callback query with any data, as a modified client could, and return the answer."""
    query_id = f"9{api.sequence}{user.id}"
    api.open_queries[query_id] = message
    cursor = api.sequence
    update_id = api.push_update(
        "callback_query",
        {
            "id": query_id,
            "from": user.to_api(),
            "message": message.data,
            "chat_instance": "1",
            "data": data,
        },
    )
    await api.wait_for_reply(update_id, cursor, outputs=1)
    return api.callback_answers.get(query_id)
