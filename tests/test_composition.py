"""How a process is put together: the handler modules are imported, not named in strings; every
command opens the database through bot/core/services.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.answering.store import KnowledgeStore
from bot.core.config import Settings
from bot.core.services import Services, open_database, open_services
from bot.telegram.application import HANDLER_MODULES, register_handlers
from tests.fixtures_knowledge import REPO_ROOT


def test_the_handler_modules_are_the_modules_themselves_in_registration_order() -> None:
    assert [module.__name__ for module in HANDLER_MODULES] == [
        "handlers.guards",
        "handlers.start",
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
