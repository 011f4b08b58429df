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

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import exc, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.answering.department_desk import DepartmentDesk
from bot.answering.escalations import EscalationDesk
from bot.answering.learning import PhrasingTeacher
from bot.answering.publishing import KnowledgeEditor, KnowledgeSync
from bot.answering.question_log import QuestionLog
from bot.answering.replication import CatchUp, KnowledgeReplica
from bot.answering.store import KnowledgeStore, signals_from, thresholds_from
from bot.core.config import Settings
from bot.core.db import (
    create_engine,
    head_revision,
    is_sqlite,
    schema_revision,
    session_factory,
    upgrade_database,
)
from bot.core.residents import ResidentDirectory
from bot.tickets.desk import TicketDesk
from bot.tickets.privacy import PrivacyDesk

log = logging.getLogger(__name__)

# What a database that cannot be reached (yet) raises on connecting.
UNREACHABLE = (OSError, TimeoutError, exc.OperationalError, exc.InterfaceError)


class StartError(Exception):
    """A command cannot start; the message is one line that says what to do (bot/cli.py)."""


class DatabaseUnavailable(StartError):
    """The database could not be reached in [database] connect_attempts tries."""


class NoDataYet(StartError):
    """A command that only reads found no database, or one without the bot's tables."""


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
    # Changes to the knowledge base proposed and reviewed in the console, and the poll that
    # reloads this process's store when another process published one.
    editor: KnowledgeEditor
    sync: KnowledgeSync
    # Departments edited through the same review (bot/answering/department_desk.py).
    departments: DepartmentDesk
    _sync_task: asyncio.Task[None] | None = None

    @property
    def privacy(self) -> PrivacyDesk:
        """Residents' personal data: /mydata, /forget, retention (bot.tickets.privacy)."""
        return PrivacyDesk(
            self.settings,
            self.sessions,
            clock=self.tickets.clock,
            pseudonyms=self.tickets.pseudonyms,
        )

    @classmethod
    async def start(
        cls,
        settings: Settings,
        *,
        migrate: bool = True,
        knowledge: KnowledgeStore | None = None,
    ) -> Services:
        """Open the database (migrating it to the latest schema), bring the knowledge folder to
        the published version (another host may have published since this one last ran) and
        load the knowledge base.

        `knowledge` lets a caller share one loaded knowledge base (tests, benchmarks); it is
        reloaded if bringing its folder up to date changed a file.
        """
        engine = await _open_engine(settings, migrate=migrate)
        sessions = session_factory(engine)
        try:
            directory = knowledge.directory if knowledge is not None else settings.knowledge_dir
            replica = KnowledgeReplica(directory, sessions)
            if knowledge is None:
                # Before the index is built: building it twice would cost seconds.
                await catch_up_folder(replica)
                knowledge = KnowledgeStore(
                    settings.knowledge_dir, thresholds_from(settings), signals_from(settings)
                )
            settings.check_departments(knowledge.kb.departments)
            sync = KnowledgeSync(
                knowledge, sessions, settings.knowledge.reload_poll_seconds, replica
            )
            await sync.start()
        except BaseException:
            await engine.dispose()
            raise
        log.info(
            "services ready: %d knowledge items, database %s",
            len(knowledge.kb.items),
            engine.url.render_as_string(hide_password=True),
        )
        editor = KnowledgeEditor(
            knowledge,
            sessions,
            sync,
            review_days=settings.knowledge.review_days,
            git_commits=settings.knowledge.git_commits,
        )
        services = cls(
            settings=settings,
            engine=engine,
            sessions=sessions,
            knowledge=knowledge,
            residents=ResidentDirectory(sessions),
            questions=QuestionLog(sessions),
            escalations=EscalationDesk(settings, sessions),
            teacher=PhrasingTeacher(knowledge, editor),
            tickets=TicketDesk(settings, sessions, lambda: knowledge.kb),
            editor=editor,
            sync=sync,
            departments=DepartmentDesk(editor, configured=lambda: settings.departments),
        )
        if settings.knowledge.reload_poll_seconds > 0:
            services._sync_task = asyncio.create_task(sync.run_forever(), name="knowledge-sync")
        return services

    async def close(self) -> None:
        """Stop polling the published knowledge version; release the database connections."""
        if self._sync_task is not None:
            self._sync_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sync_task
            self._sync_task = None
        await self.engine.dispose()


async def catch_up_folder(replica: KnowledgeReplica) -> CatchUp | None:
    """Bring this host's knowledge folder to the database's published version before it is
    loaded (bot/answering/replication.py), and say what changed (None: there is no folder, and
    loading it says so); a folder that cannot be written stops the start."""
    if not replica.directory.is_dir():
        return None
    try:
        return await replica.catch_up()
    except OSError as error:
        raise StartError(
            f"知识库文件夹无法更新 / cannot bring the knowledge folder {replica.directory} to the "
            f"published version ({error}): the service must be able to write it"
        ) from error


def _shown_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _missing_sqlite_file(url: str) -> Path | None:
    """Return the SQLite file of `url` if it does not exist (None for anything else)."""
    if not is_sqlite(url):
        return None
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    path = Path(database)
    return None if path.exists() else path


async def _connect(engine: AsyncEngine, settings: Settings) -> None:
    """Reach the database, trying [database] connect_attempts times with a doubling wait."""
    attempts = settings.database.connect_attempts
    wait = settings.database.connect_backoff_seconds
    url = _shown_url(settings.database_url)
    for attempt in range(1, attempts + 1):
        try:
            async with engine.connect():
                return
        except UNREACHABLE as error:
            reason = (
                str(getattr(error, "orig", None) or error).splitlines()[0] or type(error).__name__
            )
            if attempt == attempts:
                raise DatabaseUnavailable(
                    f"无法连接数据库 / cannot reach the database {url} ({reason}) after "
                    f"{attempts} tries: start it, or fix DATABASE_URL / [database] url"
                ) from error
            log.warning(
                "database %s not reachable (try %d of %d: %s); trying again in %.1f s",
                url,
                attempt,
                attempts,
                reason,
                wait,
            )
        await asyncio.sleep(wait)
        wait *= 2


async def _open_engine(
    settings: Settings, *, migrate: bool, require_data: bool = False
) -> AsyncEngine:
    """Create the engine of the settings' database and, if asked, migrate it to the latest schema.

    With `require_data` (commands that only read), a database that does not exist or has no
    tables yet is NoDataYet, and no empty SQLite file is left behind.
    """
    url = settings.database_url
    if require_data and not migrate and (missing := _missing_sqlite_file(url)) is not None:
        raise NoDataYet(
            f"还没有数据 / no data yet: the database {missing} does not exist (the bot creates "
            "it when it first starts: python -m bot run)"
        )
    engine = create_engine(url, echo=settings.database.echo)
    try:
        await _connect(engine, settings)
        if migrate and settings.database.migrate_on_start:
            await upgrade_database(engine)
        elif migrate:
            await _require_current_schema(engine, url)
        elif require_data:
            async with engine.connect() as connection:
                found = await connection.run_sync(lambda sync: inspect(sync).has_table("tickets"))
            if not found:
                raise NoDataYet(
                    f"还没有数据 / no data yet: the database {_shown_url(url)} has no tables "
                    "(the bot creates them when it first starts: python -m bot run)"
                )
    except BaseException:
        await engine.dispose()
        raise
    return engine


class SchemaBehind(StartError):
    """The database's schema is not the latest and this command may not migrate it."""


async def schema_status(engine: AsyncEngine, url: str) -> str | None:
    """Return None if the schema is at the latest revision, else the line that says it is not."""
    current = await schema_revision(engine)
    head = head_revision()
    if current == head:
        return None
    return (
        f"数据库结构不是最新 / the database schema is behind: {_shown_url(url)} is at "
        f"{current or 'no revision'}, the code needs {head} (run: python -m bot db upgrade)"
    )


async def _require_current_schema(engine: AsyncEngine, url: str) -> None:
    problem = await schema_status(engine, url)
    if problem is not None:
        raise SchemaBehind(problem)


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
    settings: Settings, *, migrate: bool, require_data: bool = False
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Open the database alone (migrating it first if asked); release it when the block ends.

    `require_data`: without migrating, refuse (NoDataYet) a database the bot never created.
    """
    engine = await _open_engine(settings, migrate=migrate, require_data=require_data)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


async def upgrade_schema(settings: Settings) -> str:
    """Migrate the settings' database to the latest schema (`python -m bot db upgrade`).

    Several of these (or bots starting) at once take turns: one migrates, the others wait and
    find nothing to do (bot/core/db.py). Return the revision the schema is at.
    """
    engine = create_engine(settings.database_url, echo=settings.database.echo)
    try:
        await _connect(engine, settings)
        await upgrade_database(engine)
        return head_revision()
    finally:
        await engine.dispose()


async def check_schema(settings: Settings) -> str | None:
    """Return None if the database's schema is the latest, else one line saying it is not
    (`python -m bot db check`). Changes nothing (a missing SQLite file is not created)."""
    url = settings.database_url
    if (missing := _missing_sqlite_file(url)) is not None:
        return (
            f"数据库结构不是最新 / the database schema is behind: {missing} does not exist "
            f"(run: python -m bot db upgrade)"
        )
    engine = create_engine(url, echo=settings.database.echo)
    # Alembic says which database it looked at in INFO lines; the answer is one line.
    alembic = logging.getLogger("alembic.runtime.migration")
    level = alembic.level
    alembic.setLevel(logging.WARNING)
    try:
        await _connect(engine, settings)
        return await schema_status(engine, url)
    finally:
        alembic.setLevel(level)
        await engine.dispose()
