"""The services of one process, built once and handed to both the Telegram application and the
web console: settings, database, knowledge base. Nothing here knows about Telegram or HTTP.

Every command opens what it needs here, and only here:

    async with open_services(settings) as services:              # run, web
        ...
    async with open_database(settings, migrate=True) as sessions:  # user, worker, report
        ...

`open_database` is the part of `open_services` for commands that need the database but not the
matcher (whose index takes seconds to build).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.answering.escalations import EscalationDesk
from bot.answering.learning import PhrasingTeacher
from bot.answering.question_log import QuestionLog
from bot.answering.store import KnowledgeStore, signals_from, thresholds_from
from bot.core.config import Settings
from bot.core.db import create_engine, session_factory, upgrade_database
from bot.core.residents import ResidentDirectory
from bot.tickets.desk import TicketDesk

log = logging.getLogger(__name__)


@dataclass
class Services:
    """Everything the bot, the workers and the web console share."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    knowledge: KnowledgeStore
    # Residents talking to the bot, their questions, and the questions handed to staff.
    residents: ResidentDirectory
    questions: QuestionLog
    escalations: EscalationDesk
    teacher: PhrasingTeacher
    # Complaints, reports, suggestions, help requests, disclosure applications (bot.tickets.desk).
    tickets: TicketDesk

    @classmethod
    async def start(
        cls,
        settings: Settings,
        *,
        migrate: bool = True,
        knowledge: KnowledgeStore | None = None,
    ) -> Services:
        """Open the database (migrating it to the latest schema) and load the knowledge base.

        `knowledge` lets a caller share one loaded knowledge base (tests, benchmarks).
        """
        knowledge = knowledge or KnowledgeStore(
            settings.knowledge_dir, thresholds_from(settings), signals_from(settings)
        )
        engine = await _open_engine(settings, migrate=migrate)
        log.info(
            "services ready: %d knowledge items, database %s",
            len(knowledge.kb.items),
            engine.url.render_as_string(hide_password=True),
        )
        sessions = session_factory(engine)
        return cls(
            settings=settings,
            engine=engine,
            sessions=sessions,
            knowledge=knowledge,
            residents=ResidentDirectory(sessions),
            questions=QuestionLog(sessions),
            escalations=EscalationDesk(settings, sessions),
            teacher=PhrasingTeacher(knowledge),
            tickets=TicketDesk(settings, sessions, lambda: knowledge.kb),
        )

    async def close(self) -> None:
        """Release the database connections."""
        await self.engine.dispose()


async def _open_engine(settings: Settings, *, migrate: bool) -> AsyncEngine:
    """Create the engine of the settings' database and, if asked, migrate it to the latest schema."""
    engine = create_engine(settings.database_url, echo=settings.database.echo)
    if migrate:
        try:
            await upgrade_database(engine)
        except BaseException:
            await engine.dispose()
            raise
    return engine


@contextlib.asynccontextmanager
async def open_services(
    settings: Settings, *, migrate: bool = True, knowledge: KnowledgeStore | None = None
) -> AsyncIterator[Services]:
    """Start the services (see `Services.start`) and close them when the block ends."""
    services = await Services.start(settings, migrate=migrate, knowledge=knowledge)
    try:
        yield services
    finally:
        await services.close()


@contextlib.asynccontextmanager
async def open_database(
    settings: Settings, *, migrate: bool
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Open the database alone (migrating it first if asked); release it when the block ends."""
    engine = await _open_engine(settings, migrate=migrate)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()
