"""The services of one process, built once and handed to both the Telegram application and the
web console: settings, database, knowledge base. Nothing here knows about Telegram or HTTP.
"""

from __future__ import annotations

import logging
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
        engine = create_engine(settings.database_url, echo=settings.database.echo)
        if migrate:
            await upgrade_database(engine)
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
