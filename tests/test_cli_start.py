"""Commands that cannot start say why in a line, in Chinese and English, with no traceback:
a database that cannot be reached (after a bounded number of tries), a database with no data yet,
a broken knowledge base, a broken config.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures_knowledge import REPO_ROOT

CLOSED_PORT = "postgresql+asyncpg://127.0.0.1:1/x"


def bot(tmp_path: Path, config: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m bot --config CONFIG ARGS` in `tmp_path`."""
    path = tmp_path / "config.toml"
    path.write_text(config, encoding="utf-8")
    environment = {k: v for k, v in os.environ.items() if k not in ("BOT_CONFIG", "DATABASE_URL")}
    environment |= {"PYTHONPATH": str(REPO_ROOT), **env}
    return subprocess.run(
        [sys.executable, "-m", "bot", "--config", str(path), *args],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )


KNOWLEDGE = f'[knowledge]\ndir = "{(REPO_ROOT / "knowledge").as_posix()}"\n'
FEW_TRIES = "[database]\nconnect_attempts = 2\nconnect_backoff_seconds = 0.1\n"


def test_report_on_an_unreachable_database_says_so_in_a_line_after_the_tries(
    tmp_path: Path,
) -> None:
    result = bot(
        tmp_path, KNOWLEDGE + FEW_TRIES, "report", "--month", "2026-01", DATABASE_URL=CLOSED_PORT
    )

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert [line for line in lines if "try 1 of 2" in line]  # each try but the last is logged
    assert lines[-1].startswith("无法连接数据库 / cannot reach the database")
    assert "127.0.0.1:1" in lines[-1]
    assert "after 2 tries" in lines[-1]


def test_report_on_a_fresh_checkout_says_there_is_no_data_and_creates_nothing(
    tmp_path: Path,
) -> None:
    result = bot(tmp_path, KNOWLEDGE, "report", "--month", "2026-01")

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"还没有数据 / no data yet: the database {tmp_path / 'data' / 'bot.sqlite3'} does not "
        "exist (the bot creates it when it first starts: python -m bot run)"
    ]
    assert not (tmp_path / "data").exists()


def test_report_on_a_database_without_tables_says_there_is_no_data(tmp_path: Path) -> None:
    (tmp_path / "empty.sqlite3").write_bytes(b"")

    result = bot(
        tmp_path,
        KNOWLEDGE + '[database]\npath = "empty.sqlite3"\n',
        "report",
        "--month",
        "2026-01",
    )

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("还没有数据 / no data yet")


@pytest.mark.parametrize(
    "command", [["worker", "--once"], ["user", "list"], ["report", "--month", "2026-01"]]
)
def test_a_knowledge_base_with_a_toml_error_is_one_line_per_problem(
    tmp_path: Path, command: list[str]
) -> None:
    knowledge = tmp_path / "kb"
    knowledge.mkdir()
    (knowledge / "departments.toml").write_text("[broken\n", encoding="utf-8")

    result = bot(tmp_path, '[knowledge]\ndir = "kb"\n', *command)

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "departments.toml" in result.stderr
    assert len(result.stderr.splitlines()) <= 5


def test_worker_refuses_a_department_section_the_knowledge_base_lacks(tmp_path: Path) -> None:
    result = bot(tmp_path, KNOWLEDGE + "[departments.ecology-environmnt]\n", "worker", "--once")

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "[departments.ecology-environmnt]" in result.stderr
    assert "not a department of the knowledge base" in result.stderr


def test_kb_check_names_a_department_section_the_knowledge_base_lacks(tmp_path: Path) -> None:
    result = bot(tmp_path, KNOWLEDGE + "[departments.ecology-environmnt]\n", "kb", "check")

    assert result.returncode == 2
    assert "[departments.ecology-environmnt]" in result.stderr


def test_a_config_with_an_unknown_time_zone_is_one_message(tmp_path: Path) -> None:
    result = bot(tmp_path, 'timezone = "Mars/Olympus"\n' + KNOWLEDGE, "worker", "--once")

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert 'timezone = "Mars/Olympus": 未知的时区 / unknown time zone' in result.stderr
