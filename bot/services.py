"""The services of one process, built once and handed to both the Telegram application and the
web console: settings, database, knowledge base. Nothing here knows about Telegram or HTTP.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.db import create_engine, session_factory, upgrade_database
from bot.knowledge import KnowledgeStore, thresholds_from

log = logging.getLogger(__name__)


@dataclass
class Services:
    """Everything the bot, the workers and the web console share."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    knowledge: KnowledgeStore

    @classmethod
    async def start(cls, settings: Settings, *, migrate: bool = True) -> Services:
        """Open the database (migrating it to the latest schema) and load the knowledge base."""
        knowledge = KnowledgeStore(settings.knowledge_dir, thresholds_from(settings))
        engine = create_engine(settings.database_url, echo=settings.database.echo)
        if migrate:
            await upgrade_database(engine)
        log.info(
            "services ready: %d knowledge items, database %s",
            len(knowledge.kb.items),
            engine.url.render_as_string(hide_password=True),
        )
        return cls(
            settings=settings,
            engine=engine,
            sessions=session_factory(engine),
            knowledge=knowledge,
        )

    async def close(self) -> None:
        """Release the database connections."""
        await self.engine.dispose()
