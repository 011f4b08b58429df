"""Ticket fixtures: settings with department channels, a clock tests can move, the ticket desk,
residents, and a real department HTTP endpoint on 127.0.0.1 that checks signatures.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.answering.store import KnowledgeStore, LoadedKnowledge
from bot.api.signatures import verified_body
from bot.core.config import DepartmentChannels, Settings
from bot.core.models import Resident
from bot.core.workdays import time_zone
from bot.tickets.desk import TicketDesk, TicketDraft
from bot.tickets.signatures import IDEMPOTENCY_HEADER, SignatureError
from bot.workers import TicketWorkers
from tests.fixtures_conversation import BotHarness
from tryout.local_bot_api import ChatMessage, ChatTranscript, LocalBotApi, SimChat, SimUser

REPO_ROOT = Path(__file__).resolve().parent.parent
CHINA = time_zone("Asia/Shanghai")
# Thursday 26 November 2026, 10:00 in 示例市: an ordinary working day.
START = dt.datetime(2026, 11, 26, 10, 0, tzinfo=CHINA)
WEBHOOK_SECRET_ENV = "TEST_ECOLOGY_SECRET"
WEBHOOK_SECRET = "test-secret-for-ecology-only"
DEPARTMENT_CHAT = -100_111
STAFF_CHAT = -100_222
SUPERVISOR_CHAT = -100_333


class MovableClock:
    """A clock that stands still until a test moves it."""

    def __init__(self, start: dt.datetime = START) -> None:
        self.now = start.astimezone(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> dt.datetime:
        self.now += dt.timedelta(**delta)
        return self.now

    def set_local(self, year: int, month: int, day: int, hour: int = 10) -> dt.datetime:
        self.now = dt.datetime(year, month, day, hour, tzinfo=CHINA).astimezone(dt.UTC)
        return self.now


def make_settings(webhook_url: str = "http://127.0.0.1:9/none", **sections: Any) -> Settings:
    """Settings of the bundled config with test channels: one Telegram, one webhook department."""
    data: dict[str, Any] = {
        "telegram": {"staff_chat_id": STAFF_CHAT, "supervisor_chat_id": SUPERVISOR_CHAT},
        "departments": {
            "urban-management": {"channels": ["telegram"], "telegram_chat_id": DEPARTMENT_CHAT},
            "ecology-environment": {
                "channels": ["webhook", "console"],
                "webhook_url": webhook_url,
                "secret_env": WEBHOOK_SECRET_ENV,
            },
        },
        "delivery": {"backoff_base_seconds": 1, "lease_seconds": 30, "webhook_timeout_seconds": 2},
        # The notice at first contact adds a message other tests do not count.
        "privacy": {"first_contact_notice": False},
    }
    for name, value in sections.items():
        data[name] = data.get(name, {}) | value if isinstance(value, dict) else value
    return Settings(source=REPO_ROOT / "config.toml", **data)


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
def webhook_secret(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(WEBHOOK_SECRET_ENV, WEBHOOK_SECRET)
    return WEBHOOK_SECRET


@pytest.fixture
def ticket_settings() -> Settings:
    return make_settings()


@pytest.fixture
def desk(
    sessions: async_sessionmaker[AsyncSession],
    bundled: LoadedKnowledge,
    ticket_settings: Settings,
    clock: MovableClock,
) -> TicketDesk:
    """The ticket desk on the test database, with the bundled departments and a movable clock."""
    return TicketDesk(ticket_settings, sessions, lambda: bundled.kb, clock=clock)


async def add_resident(
    sessions: async_sessionmaker[AsyncSession], telegram_user_id: int, language: str = "zh"
) -> int:
    """Store a resident as the conversation handlers would, and return their id."""
    async with sessions() as session, session.begin():
        resident = Resident(
            telegram_user_id=telegram_user_id,
            chat_id=telegram_user_id,
            language=language,
            display_name=f"居民{telegram_user_id}",
        )
        session.add(resident)
        await session.flush()
        return resident.id


def draft(resident_id: int | None, **fields: Any) -> TicketDraft:
    """A complaint about rubbish (routed to urban management) unless `fields` say otherwise."""
    values: dict[str, Any] = {
        "type": "complaint",
        "category": "市容环境",
        "description": "幸福小区东门外的垃圾堆了一个星期没人清理，气味很大。",
        "resident_id": resident_id,
    }
    return TicketDraft(**(values | fields))


@dataclass
class ReceivedCall:
    key: str
    event: str
    body: dict[str, Any]


@dataclass
class DepartmentEndpoint:
    """A department's system: verifies signatures, de-duplicates by idempotency key.

    `mode` is "up", "slow" (answers after `delay` seconds), "down" (503) or "error" (500);
    `statuses` lets a test script answers one by one before `mode` applies.
    """

    secret: bytes
    url: str = ""
    mode: str = "up"
    delay: float = 5.0
    statuses: list[int] = field(default_factory=list)
    calls: list[ReceivedCall] = field(default_factory=list)
    unique: dict[str, ReceivedCall] = field(default_factory=dict)
    rejected: list[str] = field(default_factory=list)
    # `arrived` is set once `expected` calls came in.
    expected: int = 1
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        try:
            body = await verified_body(request, self.secret)
        except SignatureError as error:
            self.rejected.append(str(error))
            return web.Response(status=401, text=str(error))
        key = request.headers.get(IDEMPOTENCY_HEADER, "")
        call = ReceivedCall(key, request.headers.get("X-Ticket-Event", ""), json.loads(body))
        self.calls.append(call)
        if len(self.calls) >= self.expected:
            self.arrived.set()
        if self.statuses:
            status = self.statuses.pop(0)
            return web.Response(status=status, text="scripted")
        if self.mode == "slow":
            await asyncio.sleep(self.delay)
        if self.mode == "down":
            return web.Response(status=503, headers={"Retry-After": "1"}, text="maintenance")
        if self.mode == "error":
            return web.Response(status=500, text="<html>stack trace</html>")
        # Exactly-once processing on the department's side, by the idempotency key.
        self.unique.setdefault(key, call)
        return web.json_response({"ok": True})


@pytest.fixture
async def department_endpoint() -> AsyncIterator[DepartmentEndpoint]:
    """A department's HTTP endpoint on 127.0.0.1 (a free port)."""
    endpoint = DepartmentEndpoint(secret=WEBHOOK_SECRET.encode())
    app = web.Application()
    app.router.add_post("/tickets", endpoint.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    endpoint.url = f"http://127.0.0.1:{port}/tickets"
    try:
        yield endpoint
    finally:
        await runner.cleanup()


@pytest.fixture
async def callback_url(desk: TicketDesk, webhook_secret: str) -> AsyncIterator[str]:
    """The department callback endpoint served on 127.0.0.1; returns its base URL."""
    from bot.api.callbacks import build_callback_app

    runner = web.AppRunner(build_callback_app(desk), shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


class TicketBot(BotHarness):
    """The real bot, its delivery worker and clock, against a LocalBotApi on 127.0.0.1.

    Urban management works in a Telegram group (two officers); ecology and environment has a
    webhook (the `department_endpoint`); the staff group and the supervisor's group exist too.
    """

    def __init__(
        self,
        api: LocalBotApi,
        database_url: str,
        knowledge: KnowledgeStore,
        endpoint: DepartmentEndpoint,
    ) -> None:
        # Filing a form is many messages in a row: the flood limit is tested elsewhere.
        # Files officers send are fetched from the local server, as from Telegram's.
        super().__init__(
            api,
            database_url,
            knowledge,
            flood_messages=1000,
            api_base_file_url=api.base_file_url,
        )
        self.endpoint = endpoint
        self.officer = api.create_user("王科员", username="wangkeyuan")
        self.chief = api.create_user("李科长", username="likezhang")
        self.supervisor = api.create_user("赵督查", username="zhaoducha")
        self.department_group = api.create_group(
            "城市管理局工单群",
            {self.chief: "creator", self.officer: "member"},
            bot_status="administrator",
        )
        self.supervisor_group = api.create_group(
            "督办群", {self.supervisor: "creator"}, bot_status="administrator"
        )
        base = self.settings
        self.settings = base.model_copy(
            update={
                "telegram": base.telegram.model_copy(
                    update={"supervisor_chat_id": self.supervisor_group.id}
                ),
                "departments": {
                    "urban-management": DepartmentChannels(
                        channels=("telegram",), telegram_chat_id=self.department_group.id
                    ),
                    "ecology-environment": DepartmentChannels(
                        channels=("webhook", "console"),
                        webhook_url=endpoint.url,
                        secret_env=WEBHOOK_SECRET_ENV,
                    ),
                },
                "delivery": base.delivery.model_copy(
                    update={"poll_interval_seconds": 0.2, "backoff_base_seconds": 0.2}
                ),
            }
        )
        self.workers: TicketWorkers | None = None

    @property
    def desk(self) -> TicketDesk:
        return self.services.tickets

    async def start(self) -> None:
        """Start the bot and its delivery worker (the clock is driven by the tests)."""
        await super().start()
        self.workers = TicketWorkers(
            self.services.tickets, self.app.bot, run_clock=False, callbacks=False
        )
        await self.workers.start()

    async def stop(self) -> None:
        """Stop the worker, then the bot, as a restart would."""
        if self.workers is not None:
            await self.workers.stop()
            self.workers = None
        await super().stop()

    def department_room(self, user: SimUser | None = None) -> ChatTranscript:
        return self.api.group_chat(self.department_group, user or self.officer)

    async def messages_after(
        self, chat: SimChat, cursor: int, count: int = 1
    ) -> list[ChatMessage]:
        """Wait for `count` bot messages in a chat after `cursor` (sent by the delivery worker)."""
        return await self.api.wait_for_bot_messages(chat, count, after=cursor)

    def cursor(self, chat: SimChat) -> int:
        """Return where a chat stands now, to wait for what comes after."""
        messages = self.api.messages(chat)
        return messages[-1].sequence if messages else 0


@pytest.fixture
async def ticket_bot(
    database_url: str,
    engine: AsyncEngine,
    bundled_store: KnowledgeStore,
    department_endpoint: DepartmentEndpoint,
    webhook_secret: str,
) -> AsyncIterator[TicketBot]:
    """The running bot with ticket delivery, on SQLite and on PostgreSQL."""
    async with LocalBotApi() as api:
        harness = TicketBot(api, database_url, bundled_store, department_endpoint)
        await harness.start()
        try:
            yield harness
        finally:
            await harness.stop()
