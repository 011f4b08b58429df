"""The database: one async engine per process, sessions from one factory, migrations on start.

SQLite (aiosqlite) is the default, in a file next to the config; PostgreSQL (asyncpg) by URL.
The schema is only ever created by Alembic migrations, never by `create_all`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Generic, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Executable, event, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

from bot.core import audit_chain

log = logging.getLogger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")

# Every session of every process hashes its new audit rows and ticket events into their chains.
audit_chain.install()

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def conflict_insert(dialect: str) -> Any:
    """Return `insert` of the dialect (PostgreSQL or SQLite), which has ON CONFLICT clauses."""
    return postgresql_insert if dialect == "postgresql" else sqlite_insert


def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the web console read while the bot writes; foreign keys are off by default.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def storable(text: str) -> str:
    """Return text as both databases store it: without U+0000 (NUL), which PostgreSQL refuses.

    For whatever people type that goes into a text column (questions, names, answers); the
    character is invisible and means nothing in a message.
    """
    return text.replace("\x00", "")


def is_sqlite(url: str) -> bool:
    """Tell whether a database URL is SQLite."""
    return url.startswith("sqlite")


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """Create the engine for a URL; a SQLite file's folder is created when missing.

    A failed statement's error names the SQL but not its parameters (residents' text, names and
    phones would otherwise reach the log with it), unless [database] echo is on for debugging.
    """
    if is_sqlite(url):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            url, echo=echo, hide_parameters=not echo, connect_args={"timeout": 30}
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        url,
        echo=echo,
        hide_parameters=not echo,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=10,
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Return the one session factory of the process."""
    return async_sessionmaker(engine, expire_on_commit=False)


_WRITE_GATES: weakref.WeakKeyDictionary[Any, asyncio.Lock] = weakref.WeakKeyDictionary()


def write_gate(
    sessions: async_sessionmaker[AsyncSession],
) -> AbstractAsyncContextManager[object]:
    """Return what to hold while writing: one lock per SQLite engine, nothing for PostgreSQL.

    SQLite lets one writer in at a time and makes the others sleep and retry with growing
    pauses (up to 100 ms each), so under load concurrent writers of one process wait far longer
    than the writes take. Queuing them in the process first keeps every write short. Every
    writer of a database (tickets, questions, residents, conversations) holds the same lock, so
    they queue behind each other rather than meeting in SQLite's busy handler.
    """
    engine = sessions.kw.get("bind")
    if engine is None or engine.dialect.name != "sqlite":
        return contextlib.nullcontext()
    gate = _WRITE_GATES.get(engine.sync_engine)
    if gate is None:
        gate = _WRITE_GATES[engine.sync_engine] = asyncio.Lock()
    return gate


class GroupCommit(Generic[Item, Result]):
    """Group commit: each caller hands in one item and waits for its result; the first starts a
    writer, and the items handed in while a batch is being written go in the next one, written
    together by `write` (one statement and one commit for many callers instead of one each,
    one after another behind the write gate). `write` returns one result per item, in order; an
    error fails every caller of its batch. `batch` caps a batch's size."""

    def __init__(
        self,
        write: Callable[[list[Item]], Awaitable[Sequence[Result]]],
        *,
        batch: int | None = None,
        name: str = "group-commit",
    ) -> None:
        self._write = write
        self._batch = batch
        self._name = name
        self._pending: list[tuple[Item, asyncio.Future[Result]]] = []
        self._writing: list[tuple[Item, asyncio.Future[Result]]] = []
        self._writer: asyncio.Task[None] | None = None
        # Batches written so far (failed ones too).
        self.rounds = 0

    async def submit(self, item: Item) -> Result:
        """Queue `item`; return its result once its batch is written (or raise its error)."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_pending(), name=self._name)
        return await future

    async def _write_pending(self) -> None:
        while self._pending:
            size = self._batch or len(self._pending)
            self._writing, self._pending = self._pending[:size], self._pending[size:]
            try:
                results = await self._write([item for item, _ in self._writing])
            except Exception as error:
                self._settle(self._writing, error)
            else:
                for (_, future), result in zip(self._writing, results, strict=True):
                    if not future.done():  # its caller was cancelled
                        future.set_result(result)
            self._writing = []
            self.rounds += 1

    @staticmethod
    def _settle(
        waiting: Sequence[tuple[Item, asyncio.Future[Result]]], error: BaseException
    ) -> None:
        for _, future in waiting:
            if not future.done():
                future.set_exception(error)

    async def close(self, error: BaseException | None = None) -> None:
        """Stop. With `error`, the batch being written is cancelled and every caller still
        waiting gets `error`; without, what is queued is written first (for five seconds at
        most)."""
        writer, self._writer = self._writer, None
        if writer is not None and not writer.done():
            if error is not None:
                writer.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await writer
            else:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.shield(writer), 5)
        left, self._writing, self._pending = self._writing + self._pending, [], []
        self._settle(left, error or RuntimeError("closed before it was written"))


class HeldConnection:
    """A connection of its own for short writes, held and in autocommit.

    Each statement commits by itself: one round trip to PostgreSQL (a session's write is four:
    ping, BEGIN, the statement, COMMIT), one hop to SQLite's driver thread (a session's is
    three), behind SQLite's write gate. A statement that fails drops the connection; the next
    opens another.
    """

    def __init__(self, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.engine = engine
        self._gate = write_gate(sessions)
        self._connection: AsyncConnection | None = None

    async def execute(self, statement: Executable, parameters: Any = None) -> None:
        """Run one statement (with a list of parameter sets: once for each)."""
        if self._connection is None:
            self._connection = await self.engine.connect()
            await self._connection.execution_options(isolation_level="AUTOCOMMIT")
        connection = self._connection
        try:
            async with self._gate:
                await connection.execute(statement, parameters)
        except BaseException:
            self._connection = None
            with contextlib.suppress(Exception):
                await connection.invalidate()
            with contextlib.suppress(Exception):
                await connection.close()
            raise

    async def close(self) -> None:
        """Give the connection back."""
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()


def alembic_config() -> Config:
    """Return an Alembic config pointing at the project's migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _upgrade(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def _downgrade(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.downgrade(config, revision)


# The key of the PostgreSQL advisory lock that migrations hold (any number, the same everywhere;
# advisory locks are per database, so databases on one server do not wait for each other).
MIGRATION_LOCK_KEY = 7_315_029_461
# Alembic keeps the running migration in module globals, so an event loop migrates one database
# at a time, whichever it is (an asyncio.Lock belongs to one loop: one lock per loop).
_MIGRATION_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def _migration_lock() -> asyncio.Lock:
    loop = asyncio.get_running_loop()
    lock = _MIGRATION_LOCKS.get(loop)
    if lock is None:
        lock = _MIGRATION_LOCKS[loop] = asyncio.Lock()
    return lock


async def upgrade_database(engine: AsyncEngine, revision: str = "head") -> None:
    """Apply the migrations up to `revision` (the latest by default).

    Processes started together on a fresh database (the bot and extra workers) would otherwise
    each create the tables and each insert the version row, and all but one would crash. So the
    upgrade holds a lock that only one process can have: on PostgreSQL an advisory lock, on
    SQLite the database's write lock, taken first (BEGIN IMMEDIATE) and held by one transaction
    around every migration. The others wait for it, then find the schema current and do nothing.
    """
    await _migrate(engine, _upgrade, revision)
    log.info("database schema is at %s", revision)


async def downgrade_database(engine: AsyncEngine, revision: str) -> None:
    """Undo migrations down to `revision` (used to test that migrations go both ways)."""
    await _migrate(engine, _downgrade, revision)


# SQLite answers "database is locked" at once, without waiting out its busy timeout, in a few
# cases that processes starting together on a fresh file can meet (a lock upgrade it refuses to
# wait for, lest two connections deadlock). The migrations are one transaction, so trying again a
# moment later is safe: it finds them done, or does them whole.
_SQLITE_LOCKED_TRIES = 5
_SQLITE_LOCKED_PAUSE = 0.5


async def _migrate(
    engine: AsyncEngine, step: Callable[[Connection, str], None], revision: str
) -> None:
    for attempt in range(1, _SQLITE_LOCKED_TRIES + 1):
        try:
            await _migrate_once(engine, step, revision)
            return
        except OperationalError as error:
            locked = engine.dialect.name == "sqlite" and "database is locked" in str(error)
            if not locked or attempt == _SQLITE_LOCKED_TRIES:
                raise
            log.warning(
                "the SQLite database was locked while migrating (attempt %d of %d); trying again",
                attempt,
                _SQLITE_LOCKED_TRIES,
            )
            await asyncio.sleep(_SQLITE_LOCKED_PAUSE * attempt)


async def _migrate_once(
    engine: AsyncEngine, step: Callable[[Connection, str], None], revision: str
) -> None:
    async with _migration_lock(), engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            await _migrate_holding_advisory_lock(connection, step, revision)
            return
        # SQLite alters a table by copying it and dropping the old one (batch mode): with the
        # foreign keys on, dropping a table that other rows refer to fails (or, with ON DELETE
        # CASCADE, would delete them). So they are off while migrating, as SQLite's own
        # procedure for altering tables says, and checked before the migration commits. The
        # pragma works only outside a transaction, hence before BEGIN.
        await connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        await connection.commit()
        try:
            async with connection.begin():
                # pysqlite begins no transaction before DDL by itself: this one takes the write
                # lock at once (waiting while another process migrates), and makes the
                # migrations one transaction that other processes see whole or not at all.
                await connection.exec_driver_sql("BEGIN IMMEDIATE")
                await connection.run_sync(step, revision)
                broken = (await connection.exec_driver_sql("PRAGMA foreign_key_check")).all()
                if broken:
                    raise RuntimeError(
                        f"migrating to {revision} would break {len(broken)} foreign keys "
                        f"(first: {tuple(broken[0])}); nothing was changed"
                    )
        finally:
            await connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            await connection.commit()


async def _migrate_holding_advisory_lock(
    connection: AsyncConnection, step: Callable[[Connection, str], None], revision: str
) -> None:
    lock = {"key": MIGRATION_LOCK_KEY}
    # A session lock, taken and committed before the migrations' transaction begins, so that
    # transaction reads what the previous holder committed whatever the isolation level.
    await connection.execute(text("SELECT pg_advisory_lock(:key)"), lock)
    await connection.commit()
    try:
        async with connection.begin():
            await connection.run_sync(step, revision)
    finally:
        try:
            await connection.execute(text("SELECT pg_advisory_unlock(:key)"), lock)
            await connection.commit()
        except Exception:
            # A connection that cannot release the lock is closed instead, which releases it
            # too; it must not go back to the pool still holding it.
            await connection.invalidate()
            raise


def head_revision() -> str:
    """Return the latest migration's revision id."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def schema_revision(engine: AsyncEngine) -> str | None:
    """Return the revision the database's schema is at (None: never migrated)."""
    async with engine.connect() as connection:
        return await connection.run_sync(_current_revision)
