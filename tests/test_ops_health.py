"""/healthz, /readyz and /metrics over real HTTP: the bot's own listener with the real PTB
Application and the local Bot API server, the console's routes, `python -m bot run` as a whole,
and a database that stops taking connections.

`python -m bot web` and `python -m bot worker` as processes of their own: tests/test_ops_processes.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram import Bot

from bot.answering.store import KnowledgeStore
from bot.core import metrics
from bot.core.config import Settings
from bot.ops.health import OpsServer, serving_ops
from bot.runner import running
from bot.services import Services, open_services
from bot.tickets.delivery import DeliveryWorker
from bot.tickets.desk import FiledTicket, TicketDesk
from bot.workers import delivery_channels
from tests.fixtures_console import free_port
from tests.fixtures_conversation import BotHarness, conversation_settings
from tests.fixtures_db import postgres_admin
from tests.test_department_callbacks import PATH as CALLBACK_PATH
from tests.test_department_callbacks import pollution as pollution  # a fixture, used by name
from tests.test_department_callbacks import post, signed
from tryout.local_bot_api import LocalBotApi


def with_metrics(settings: Settings, **values: Any) -> Settings:
    """Settings whose health listener takes any free port and reads the database every scrape."""
    update = {"bot_port": 0, "web_port": 0, "worker_port": 0, "database_cache_seconds": 0}
    update.update(values)
    return settings.model_copy(update={"metrics": settings.metrics.model_copy(update=update)})


def sample(body: str, name: str, **labels: str) -> float | None:
    """Return the value of one sample of a Prometheus text exposition, None if it is absent."""
    for family in text_string_to_metric_families(body):
        for each in family.samples:
            if each.name == name and all(each.labels.get(k) == v for k, v in labels.items()):
                return float(each.value)
    return None


async def get(url: str, **headers: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as response:
        return response.status, await response.text()


async def get_json(url: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, await response.json()


def base_of(server: OpsServer) -> str:
    assert server.serving, "the health listener did not start"
    return f"http://{server.host}:{server.port}"


@pytest.fixture
async def ops_beside_bot(bot: BotHarness) -> AsyncIterator[OpsServer]:
    """The bot's health listener, attached to the running harness as `python -m bot run` does."""
    settings = with_metrics(bot.settings)
    services = bot.services
    async with serving_ops(
        settings,
        "bot",
        sessions=services.sessions,
        knowledge=lambda: services.knowledge.kb,
        bot_api=bot.app.bot.get_me,
    ) as server:
        yield server


async def test_the_bot_is_alive_and_ready_with_database_knowledge_and_bot_api(
    ops_beside_bot: OpsServer,
) -> None:
    base = base_of(ops_beside_bot)
    status, body = await get_json(f"{base}/healthz")
    assert (status, body) == (200, {"alive": True, "role": "bot"})
    status, body = await get_json(f"{base}/readyz")
    assert status == 200
    assert body["ready"] is True
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["knowledge_base"].endswith(" items")
    assert body["checks"]["bot_api"] == "ok"


async def test_metrics_move_when_residents_ask(bot: BotHarness, ops_beside_bot: OpsServer) -> None:
    url = f"{base_of(ops_beside_bot)}/metrics"
    status, before = await get(url)
    assert status == 200
    assert sample(before, "bot_process_role", role="bot") == 1
    assert sample(before, "bot_escalations_open") == 0
    assert sample(before, "bot_database_figures_up") == 1

    chat = bot.resident()
    await chat.send("社保卡丢了怎么办")
    await chat.send("我家楼下的那棵老槐树是哪一年种的", expect=2)
    status, after = await get(url)
    assert status == 200

    def moved(name: str, **labels: str) -> float:
        return (sample(after, name, **labels) or 0) - (sample(before, name, **labels) or 0)

    assert moved("bot_updates_handled_total") == 2
    assert moved("bot_decisions_total", decision="answer") == 1
    assert moved("bot_decisions_total", decision="escalate") == 1
    assert moved("bot_match_seconds_count") == 2
    assert sample(after, "bot_escalations_open") == 1
    assert (sample(after, "bot_escalation_oldest_age_seconds") or 0) >= 0
    # The escalation's staff post went out directly; nothing waits in the outbox.
    assert sample(after, "bot_outbox_messages", channel="resident", status="pending") == 0
    assert sample(after, "bot_tickets", status="received") == 0
    # No personal data in any label: the question, the name and the chat are nowhere.
    for forbidden in ("社保卡", "槐树", "李雷", str(chat.chat.id)):
        assert forbidden not in after


async def test_leadership_is_exposed_for_the_failover(ops_beside_bot: OpsServer) -> None:
    url = f"{base_of(ops_beside_bot)}/metrics"
    _, before = await get(url)
    metrics.leadership_changed(True)
    _, leading = await get(url)
    metrics.leadership_changed(False)
    _, standing_by = await get(url)
    count = sample(before, "bot_leadership_changes_total") or 0
    assert sample(leading, "bot_is_leader") == 1
    assert sample(leading, "bot_leadership_changes_total") == count + 1
    assert sample(standing_by, "bot_is_leader") == 0
    assert sample(standing_by, "bot_leadership_changes_total") == count + 2


async def test_not_ready_until_the_parts_come_up_while_alive_all_along(
    services: Services,
) -> None:
    """The listener starts first; the database and the knowledge base are attached later."""
    settings = with_metrics(services.settings)
    async with serving_ops(settings, "web") as server:
        base = base_of(server)
        assert (await get_json(f"{base}/healthz"))[0] == 200
        status, body = await get_json(f"{base}/readyz")
        assert status == 503
        assert body == {
            "ready": False,
            "checks": {"database": "not connected yet", "knowledge_base": "not loaded yet"},
        }
        server.readiness.attach(sessions=services.sessions)
        status, body = await get_json(f"{base}/readyz")
        assert status == 503
        assert body["checks"] == {"database": "ok", "knowledge_base": "not loaded yet"}
        # /metrics answers meanwhile.
        status, body_text = await get(f"{base}/metrics")
        assert status == 200
        assert sample(body_text, "bot_process_role", role="web") == 1
        server.readiness.attach(knowledge=lambda: services.knowledge.kb)
        status, body = await get_json(f"{base}/readyz")
        assert status == 200


async def test_not_ready_while_postgresql_refuses_connections(
    postgres_url: str, bundled_store: KnowledgeStore
) -> None:
    name = make_url(postgres_url).database
    settings = with_metrics(conversation_settings(postgres_url))
    async with (
        open_services(settings, knowledge=bundled_store) as services,
        serving_ops(
            settings,
            "worker",
            sessions=services.sessions,
            knowledge=lambda: services.knowledge.kb,
        ) as server,
    ):
        base = base_of(server)
        assert (await get_json(f"{base}/readyz"))[0] == 200
        await postgres_admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        try:
            await postgres_admin(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
            )
            status, body = await get_json(f"{base}/readyz")
            assert status == 503
            assert body["checks"]["database"].startswith("unreachable (")
            assert body["checks"]["knowledge_base"].endswith(" items")
            assert "postgres" not in body["checks"]["database"].lower()
            # /healthz still says alive: the process is fine, its database is not.
            assert (await get_json(f"{base}/healthz"))[0] == 200
            status, body_text = await get(f"{base}/metrics")
            assert status == 200
            assert sample(body_text, "bot_database_figures_up") == 0
        finally:
            await postgres_admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        assert (await get_json(f"{base}/readyz"))[0] == 200


async def test_the_bot_is_not_ready_while_the_bot_api_is_unreachable(services: Services) -> None:
    async with LocalBotApi() as api:
        telegram_bot = Bot(api.token, base_url=api.base_url)
        await telegram_bot.initialize()
    # The Bot API server is gone now: getMe fails.
    try:
        async with serving_ops(
            with_metrics(services.settings),
            "bot",
            sessions=services.sessions,
            knowledge=lambda: services.knowledge.kb,
            bot_api=telegram_bot.get_me,
        ) as server:
            status, body = await get_json(f"{base_of(server)}/readyz")
            assert status == 503
            assert body["checks"]["bot_api"].startswith("getMe failed (")
            assert body["checks"]["database"] == "ok"
            assert api.token not in str(body)
    finally:
        await telegram_bot.shutdown()


async def test_the_console_serves_health_and_metrics_to_a_bearer_token_only(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, bundled_store: KnowledgeStore
) -> None:
    """`python -m bot run` as a whole (the try-out): its listener and the console's routes."""
    from bot.core.config import load_settings
    from tests.fixtures_conversation import REPO_ROOT

    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("BOT_METRICS_TOKEN", "s3cret-scrape-token")
    base = load_settings(REPO_ROOT / "config.toml")
    ops_port, web_port = free_port(), free_port()
    settings = base.model_copy(
        update={
            "database": base.database.model_copy(update={"path": tmp_path / "bot.sqlite3"}),
            "web": base.web.model_copy(update={"port": web_port}),
            "callbacks": base.callbacks.model_copy(update={"port": 0}),
            "metrics": base.metrics.model_copy(
                update={"bot_port": ops_port, "database_cache_seconds": 0}
            ),
        }
    )
    async with running(settings, tryout_port=0, knowledge=bundled_store):
        ops = f"http://127.0.0.1:{ops_port}"
        assert (await get_json(f"{ops}/healthz")) == (200, {"alive": True, "role": "bot"})
        status, body = await get_json(f"{ops}/readyz")
        assert status == 200, body
        assert set(body["checks"]) == {"database", "knowledge_base", "bot_api"}
        status, exposition = await get(f"{ops}/metrics")
        assert status == 200
        assert sample(exposition, "bot_process_role", role="bot") == 1

        console = f"http://127.0.0.1:{web_port}"
        assert (await get_json(f"{console}/healthz"))[0] == 200
        status, body = await get_json(f"{console}/readyz")
        assert status == 200
        assert set(body["checks"]) == {"database", "knowledge_base"}
        assert (await get(f"{console}/metrics"))[0] == 401
        wrong = await get(f"{console}/metrics", Authorization="Bearer nope")
        assert wrong[0] == 401
        status, exposition = await get(
            f"{console}/metrics", Authorization="Bearer s3cret-scrape-token"
        )
        assert status == 200
        assert sample(exposition, "bot_tickets_overdue") == 0


async def test_the_console_has_no_metrics_without_a_token(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aiohttp import web

    from bot.console.app import init_app

    monkeypatch.delenv("BOT_METRICS_TOKEN", raising=False)
    runner = web.AppRunner(init_app(services))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        status, _ = await get(f"http://127.0.0.1:{port}/metrics", Authorization="Bearer ")
        assert status == 404
        assert (await get(f"http://127.0.0.1:{port}/healthz"))[0] == 200
    finally:
        await runner.cleanup()


async def test_a_taken_port_is_reported_and_the_process_goes_on(services: Services) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = with_metrics(services.settings, worker_port=port)
        async with serving_ops(settings, "worker") as server:
            assert not server.serving


async def test_a_disabled_listener_serves_nothing(services: Services) -> None:
    settings = with_metrics(services.settings, enabled=False)
    async with serving_ops(settings, "worker") as server:
        assert not server.serving


async def test_callback_refusals_and_delivery_attempts_are_counted(
    desk: TicketDesk,
    sessions: async_sessionmaker[AsyncSession],
    callback_url: str,
    pollution: FiledTicket,
) -> None:
    """A department's replayed and unsigned callbacks, and a webhook delivery that fails (its
    system is down), move the counters and the outbox gauges of a worker's /metrics."""
    settings = with_metrics(desk.settings)
    async with (
        serving_ops(settings, "worker", sessions=sessions, knowledge=desk.knowledge) as server,
        aiohttp.ClientSession() as http,
    ):
        url = f"{base_of(server)}/metrics"
        _, before = await get(url)
        body, headers = signed({"ticket": pollution.number, "action": "acknowledge"})
        assert (await post(http, callback_url + CALLBACK_PATH, body, headers))[0] == 200
        assert (await post(http, callback_url + CALLBACK_PATH, body, headers))[0] == 409
        unsigned = {"Content-Type": "application/json"}
        assert (await post(http, callback_url + CALLBACK_PATH, body, unsigned))[0] == 401
        # The department's webhook (127.0.0.1:9) refuses the connection: tried once, retried later.
        worker = DeliveryWorker(desk, delivery_channels(desk, None, http))
        assert await worker.run_until_idle() >= 1
        _, after = await get(url)

    def moved(name: str, **labels: str) -> float:
        return (sample(after, name, **labels) or 0) - (sample(before, name, **labels) or 0)

    assert moved("bot_callback_refusals_total", reason="replay") == 1
    assert moved("bot_callback_refusals_total", reason="bad_signature") == 1
    assert moved("bot_delivery_attempts_total", channel="webhook", outcome="retry") >= 1
    assert moved("bot_delivery_attempts_total", channel="webhook", outcome="sent") == 0
    assert (sample(after, "bot_outbox_messages", channel="webhook", status="pending") or 0) >= 1
    assert sample(after, "bot_tickets", status="acknowledged") == 1
    assert pollution.number not in after
