"""Database fixtures: every database test runs on SQLite and on PostgreSQL.

PostgreSQL is the one CI provides on 127.0.0.1:5432 (trust auth, database `test`); the suite
creates its own database there for the session and drops it at the end. Set
TEST_POSTGRES_URL to point elsewhere, or BOT_TEST_SKIP_POSTGRES=1 to run SQLite only on a
machine without PostgreSQL (CI never sets it).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.core.db import create_engine, session_factory, upgrade_database
from bot.core.models import Base

POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
BACKENDS = ["sqlite", "postgresql"]


def _skip_postgres() -> bool:
    return os.environ.get("BOT_TEST_SKIP_POSTGRES") == "1"


async def postgres_admin(statement: str) -> None:
    """Run one statement on the PostgreSQL server's `test` database (creating, dropping)."""
    dsn = POSTGRES_ADMIN_URL.replace("postgresql+asyncpg://", "postgresql://")
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """Create a fresh PostgreSQL database for this test session, migrated to the latest schema."""
    if _skip_postgres():
        pytest.skip("BOT_TEST_SKIP_POSTGRES=1")
    name = f"bot_test_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(postgres_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as error:
        pytest.fail(
            f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL} ({error}); database tests "
            "run on SQLite and PostgreSQL. Start PostgreSQL or set BOT_TEST_SKIP_POSTGRES=1."
        )
    # A test database need not survive a crash of the server: commits return without waiting
    # for the write-ahead log to reach the disk (what other sessions see is the same).
    asyncio.run(postgres_admin(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
    base, _, _ = POSTGRES_ADMIN_URL.rpartition("/")
    url = f"{base}/{name}"

    async def migrate() -> None:
        engine = create_engine(url)
        await upgrade_database(engine)
        await engine.dispose()

    asyncio.run(migrate())
    yield url
    asyncio.run(postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# The sequences behind the tables' identity and serial columns, with their start values.
_OWNED_SEQUENCES = """
SELECT format('%I.%I', namespace.nspname, sequence.relname), settings.seqstart
FROM pg_class AS sequence
JOIN pg_namespace AS namespace ON namespace.oid = sequence.relnamespace
JOIN pg_sequence AS settings ON settings.seqrelid = sequence.oid
JOIN pg_depend AS owner ON owner.classid = 'pg_class'::regclass AND owner.objid = sequence.oid
  AND owner.refclassid = 'pg_class'::regclass AND owner.deptype IN ('a', 'i')
JOIN pg_class AS owning_table ON owning_table.oid = owner.refobjid
WHERE sequence.relkind = 'S' AND owning_table.relname = ANY($1::text[])
ORDER BY 1
"""


async def _empty_all_tables(engine: AsyncEngine) -> None:
    """Leave the database as `TRUNCATE ... RESTART IDENTITY` would: no rows, identities reset.

    DELETE in foreign-key order and `setval` do it in one round trip and some milliseconds;
    TRUNCATE gives every table and index a new file and took about a second per test.
    """
    tables = [table.name for table in Base.metadata.sorted_tables]
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        sequences = await driver.fetch(_OWNED_SEQUENCES, tables)
        deletes = "".join(f'DELETE FROM "{name}";' for name in reversed(tables))
        resets = "".join(f"SELECT setval('{name}', {start}, false);" for name, start in sequences)
        # One simple-protocol script: several statements, one transaction.
        await driver.execute(f"BEGIN;{deletes}{resets}COMMIT;")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file migrated once; each test gets a copy (migrating costs most of a second)."""
    path = tmp_path_factory.mktemp("template") / "bot.sqlite3"

    async def migrate() -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{path}")
        await upgrade_database(engine)
        async with engine.begin() as connection:
            # Fold the write-ahead log into the file, so that copying the file copies it all.
            await connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        await engine.dispose()

    asyncio.run(migrate())
    return path


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database at the latest schema, once per backend."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "bot.sqlite3"
        shutil.copyfile(template, target)
        return f"sqlite+aiosqlite:///{target}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on an empty database at the latest schema (SQLite and PostgreSQL)."""
    engine = create_engine(database_url)
    try:
        yield engine
    finally:
        if not database_url.startswith("sqlite"):
            await _empty_all_tables(engine)
        await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """The session factory on the test database."""
    return session_factory(engine)
