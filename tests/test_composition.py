"""How a process is put together: the handler modules and the run services are imported, not
named in strings; the product leaves the try-out to the runner; every command opens the database
through bot/services.py."""

from __future__ import annotations

import ast
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.answering.store import KnowledgeStore, LoadedKnowledge
from bot.console.app import serving_console
from bot.core.config import Settings
from bot.runner import RUN_SERVICES
from bot.services import Services, open_database, open_services
from bot.telegram.application import HANDLER_MODULES, register_handlers
from bot.tickets.desk import TicketDesk
from bot.workers import TicketWorkers, serving_ticket_workers
from tests.fixtures_knowledge import REPO_ROOT
from tests.fixtures_tickets import make_settings


def test_the_handler_modules_are_the_modules_themselves_in_registration_order() -> None:
    assert [module.__name__ for module in HANDLER_MODULES] == [
        "handlers.guards",
        "handlers.start",
        "handlers.privacy",
        "handlers.staff",
        "handlers.complaints",
        "handlers.status",
        "handlers.departments",
        "handlers.browse",
        "handlers.questions",
        "handlers.fallback",
    ]


def test_register_handlers_calls_each_module_in_order() -> None:
    called: list[str] = []

    class Module:
        def __init__(self, name: str) -> None:
            self.__name__ = name

        def register(self, application: object) -> None:
            called.append(self.__name__)

    modules = [Module("first"), Module("second")]
    assert register_handlers(None, modules) == ["first", "second"]  # type: ignore[arg-type]
    assert called == ["first", "second"]


def test_the_run_services_are_the_starters_themselves_in_order() -> None:
    assert (serving_console, serving_ticket_workers) == RUN_SERVICES


def _imports_of_tryout(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    lines = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        if any(name == "tryout" or name.startswith("tryout.") for name in names):
            lines.append(node.lineno)
    return lines


def test_only_the_runner_imports_the_try_out() -> None:
    importers = {
        str(path.relative_to(REPO_ROOT))
        for folder in ("bot", "handlers")
        for path in (REPO_ROOT / folder).rglob("*.py")
        if _imports_of_tryout(path)
    }
    assert importers == {"bot/runner.py"}


def test_importing_the_product_loads_nothing_of_the_try_out() -> None:
    script = (
        "import sys, bot.cli, bot.runner, bot.workers, bot.telegram.application\n"
        "loaded = sorted(m for m in sys.modules if m == 'tryout' or m.startswith('tryout.'))\n"
        "print(loaded)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert result.stdout.strip() == "[]"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_the_ticket_workers_serve_more_routes_beside_the_callback_endpoint(
    sessions: async_sessionmaker[AsyncSession], bundled: LoadedKnowledge, webhook_secret: str
) -> None:
    port = _free_port()
    settings = make_settings(callbacks={"enabled": True, "port": port})
    desk = TicketDesk(settings, sessions, lambda: bundled.kb)

    async def hello(_: web.Request) -> web.Response:
        return web.Response(text="hello")

    def add_routes(app: web.Application) -> None:
        app.router.add_get("/hello", hello)

    workers = TicketWorkers(desk, None, run_clock=False, callback_routes=[add_routes])
    await workers.start()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/hello") as response:
                assert response.status == 200
                assert await response.text() == "hello"
            callback = f"http://127.0.0.1:{port}/api/departments/ecology-environment/callback"
            async with http.post(callback, data=b"{}") as response:
                # The endpoint is there, and refuses what is not signed.
                assert response.status == 401
    finally:
        await workers.stop()


def _settings_for(database: Path) -> Settings:
    return Settings(
        source=REPO_ROOT / "config.toml",
        database={"path": database},  # type: ignore[arg-type]
    )


async def test_open_database_migrates_only_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)

    async def tables(sessions: async_sessionmaker[AsyncSession]) -> set[str]:
        async with sessions() as session:
            connection = await session.connection()
            return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))

    async with open_database(_settings_for(tmp_path / "plain.sqlite3"), migrate=False) as plain:
        assert await tables(plain) == set()
    async with open_database(_settings_for(tmp_path / "new.sqlite3"), migrate=True) as sessions:
        assert {"alembic_version", "tickets", "users"} <= await tables(sessions)


async def test_open_database_opens_the_configured_database_on_both_backends(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    settings = Settings(source=REPO_ROOT / "config.toml")
    async with open_database(settings, migrate=True) as sessions, sessions() as session:
        assert (await session.execute(text("SELECT count(*) FROM alembic_version"))).scalar() == 1


async def test_open_services_closes_the_services_even_after_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bundled_store: KnowledgeStore
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    closed: list[Services] = []
    close = Services.close

    async def recording_close(services: Services) -> None:
        closed.append(services)
        await close(services)

    monkeypatch.setattr(Services, "close", recording_close)
    settings = _settings_for(tmp_path / "bot.sqlite3")
    opened: list[Services] = []

    async def fail_inside() -> None:
        async with open_services(settings, knowledge=bundled_store) as services:
            opened.append(services)
            raise RuntimeError("inside")

    with pytest.raises(RuntimeError, match="inside"):
        await fail_inside()
    assert opened[0].knowledge is bundled_store
    assert closed == opened
