"""`python -m bot db upgrade` and `db check`, for deployments that migrate apart from starting.

Several upgrades started together on one fresh database (SQLite and PostgreSQL) all succeed and
migrate once; `db check` says in one line when the schema is behind and exits 1.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.core.db import create_engine, downgrade_database, head_revision
from tests.fixtures_knowledge import REPO_ROOT
from tests.test_database import fresh_database_url  # noqa: F401  (a fixture)

pytestmark = pytest.mark.slow


async def bot(tmp_path: Path, url: str, *args: str) -> tuple[int, str, str]:
    config = tmp_path / "config.toml"
    config.write_text(f'[knowledge]\ndir = "{(REPO_ROOT / "knowledge").as_posix()}"\n')
    environment = {k: v for k, v in os.environ.items() if k != "BOT_CONFIG"}
    environment |= {"PYTHONPATH": str(REPO_ROOT), "DATABASE_URL": url}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "--config",
        str(config),
        *args,
        cwd=tmp_path,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 180)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def versions(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            result = await connection.execute(text("SELECT version_num FROM alembic_version"))
            return list(result.scalars())
    finally:
        await engine.dispose()


async def test_upgrades_started_together_all_succeed_and_check_then_passes(
    fresh_database_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    status, _, err = await bot(tmp_path, fresh_database_url, "db", "check")
    assert status == 1
    [line] = err.strip().splitlines()
    assert line.startswith("数据库结构不是最新 / the database schema is behind")
    assert line.endswith("(run: python -m bot db upgrade)")

    results = await asyncio.gather(
        *(bot(tmp_path, fresh_database_url, "db", "upgrade") for _ in range(3))
    )
    assert [status for status, _, _ in results] == [0, 0, 0]
    ran = sum(err.count("Running upgrade") for _, _, err in results)
    assert ran == len(await _all_revisions())
    assert await versions(fresh_database_url) == [head_revision()]

    status, out, err = await bot(tmp_path, fresh_database_url, "db", "check")
    assert (status, out.strip(), err.strip()) == (0, "the database schema is the latest", "")


async def test_a_schema_one_step_behind_is_named_and_bots_that_may_not_migrate_refuse_to_start(
    fresh_database_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    assert (await bot(tmp_path, fresh_database_url, "db", "upgrade"))[0] == 0
    engine = create_engine(fresh_database_url)
    try:
        await downgrade_database(engine, "-1")
    finally:
        await engine.dispose()
    status, _, err = await bot(tmp_path, fresh_database_url, "db", "check")
    assert status == 1
    assert f"the code needs {head_revision()}" in err.strip().splitlines()[-1]

    config = tmp_path / "config.toml"
    config.write_text(
        config.read_text() + "[database]\nmigrate_on_start = false\n", encoding="utf-8"
    )
    environment = {k: v for k, v in os.environ.items() if k != "BOT_CONFIG"}
    environment |= {"PYTHONPATH": str(REPO_ROOT), "DATABASE_URL": fresh_database_url}
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "--config",
        str(config),
        "worker",
        "--once",
        cwd=tmp_path,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, worker_err = await asyncio.wait_for(worker.communicate(), 180)
    assert worker.returncode == 1
    assert "the database schema is behind" in worker_err.decode().strip().splitlines()[-1]
    assert await versions(fresh_database_url) != [head_revision()]


async def _all_revisions() -> list[str]:
    from alembic.script import ScriptDirectory

    from bot.core.db import alembic_config

    return [r.revision for r in ScriptDirectory.from_config(alembic_config()).walk_revisions()]
