"""Console accounts, logins and sessions on both databases, and `python -m bot user`."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.cli import main
from bot.console.accounts import (
    AccountError,
    create_user,
    find_user,
    reset_password,
    set_disabled,
    verify_password,
)
from bot.console.sessions import close_session, find_session, log_in, sweep_expired, token_hash
from bot.core.config import WebSettings
from bot.core.models import AuditEntry, LoginAttempt, User, WebSession, utcnow

DEPARTMENTS = {"urban-management", "ecology-environment"}
PASSWORD = "a-long-enough-password"
WEB = WebSettings(login_attempts=5, login_attempts_per_ip=20, login_window_minutes=15)


async def add(
    sessions: async_sessionmaker[AsyncSession],
    username: str = "wangfang",
    role: str = "staff",
    department: str | None = None,
) -> int:
    async with sessions() as session:
        user = await create_user(
            session,
            username=username,
            password=PASSWORD,
            role=role,
            departments=DEPARTMENTS,
            department_id=department,
        )
        await session.commit()
        return user.id


async def attempt(
    sessions: async_sessionmaker[AsyncSession],
    username: str,
    password: str,
    ip: str = "10.0.0.1",
    web: WebSettings = WEB,
) -> str:
    return (await log_in(sessions, web, username, password, ip)).outcome


async def test_a_password_is_kept_only_as_an_argon2_hash(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await add(sessions)
    async with sessions() as session:
        user = await find_user(session, "WangFang")
    assert user is not None
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    assert verify_password(user.password_hash, PASSWORD)
    assert not verify_password(user.password_hash, PASSWORD + "x")


async def test_an_officer_needs_a_known_department_and_nobody_else_has_one(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    with pytest.raises(AccountError, match="bound to one department"):
        await add(sessions, "officer1", "officer")
    with pytest.raises(AccountError, match="unknown id"):
        await add(sessions, "officer1", "officer", "no-such-department")
    with pytest.raises(AccountError, match="only officers"):
        await add(sessions, "manager1", "manager", "urban-management")
    await add(sessions, "officer1", "officer", "urban-management")
    with pytest.raises(AccountError, match="taken"):
        await add(sessions, "Officer1", "staff")


@pytest.mark.parametrize(
    ("username", "password", "problem"),
    [
        ("ab", PASSWORD, "user name"),
        ("<script>", PASSWORD, "user name"),
        ("wang fang", PASSWORD, "user name"),
        ("wangfang", "short", "at least 10"),
        ("wangfang", "aaaaaaaaaaaa", "too simple"),
        ("wangfang", "x" * 300, "at most"),
    ],
)
async def test_bad_user_names_and_weak_passwords_are_refused(
    sessions: async_sessionmaker[AsyncSession], username: str, password: str, problem: str
) -> None:
    async with sessions() as session:
        with pytest.raises(AccountError, match=problem) as refused:
            await create_user(
                session,
                username=username,
                password=password,
                role="staff",
                departments=DEPARTMENTS,
            )
    assert refused.value.text("zh") != refused.value.text("en")


async def test_a_right_password_opens_a_session_stored_only_as_a_hash(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await add(sessions)
    result = await log_in(sessions, WEB, "wangfang", PASSWORD, "10.0.0.1")
    assert result.outcome == "ok"
    async with sessions() as session:
        stored = (await session.execute(select(WebSession))).scalar_one()
        found = await find_session(session, result.token)
    assert stored.token_hash == token_hash(result.token) != result.token
    assert found is not None
    assert found[1].username == "wangfang"
    assert len(stored.csrf_token) >= 32


async def test_five_failures_lock_the_user_name_even_with_the_right_password(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await add(sessions)
    for number in range(5):
        assert await attempt(sessions, "wangfang", f"guess-{number}", ip=f"10.0.0.{number}") == (
            "invalid"
        )
    assert await attempt(sessions, "wangfang", PASSWORD, ip="10.9.9.9") == "throttled"
    async with sessions() as session:
        actions = list(await session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
    assert actions == ["user.create"] + ["login.failed"] * 5 + ["login.throttled"]


async def test_the_lock_ends_when_the_window_has_passed(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await add(sessions)
    for _ in range(5):
        await attempt(sessions, "wangfang", "wrong-password")
    async with sessions() as session:
        await session.execute(
            update(LoginAttempt).values(created_at=utcnow() - dt.timedelta(minutes=16))
        )
        await session.commit()
    assert await attempt(sessions, "wangfang", PASSWORD) == "ok"


async def test_many_failures_from_one_address_lock_it_for_every_user_name(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await add(sessions)
    web = WebSettings(login_attempts=5, login_attempts_per_ip=8)
    for number in range(8):
        await attempt(sessions, f"guess{number}", "whatever-password", ip="10.6.6.6", web=web)
    assert await attempt(sessions, "wangfang", PASSWORD, ip="10.6.6.6", web=web) == "throttled"
    assert await attempt(sessions, "wangfang", PASSWORD, ip="10.1.1.1", web=web) == "ok"


async def test_a_disabled_account_cannot_log_in_and_its_sessions_end(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await add(sessions)
    result = await log_in(sessions, WEB, "wangfang", PASSWORD, "10.0.0.1")
    async with sessions() as session:
        user = await find_user(session, "wangfang")
        assert user is not None
        await set_disabled(session, user, True)
        await session.commit()
    async with sessions() as session:
        assert await find_session(session, result.token) is None
    assert await attempt(sessions, "wangfang", PASSWORD) == "invalid"


async def test_a_reset_gives_a_one_time_password_that_must_be_changed(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await add(sessions)
    async with sessions() as session:
        user = await find_user(session, "wangfang")
        assert user is not None
        one_time = await reset_password(session, user)
        await session.commit()
    assert await attempt(sessions, "wangfang", PASSWORD) == "invalid"
    result = await log_in(sessions, WEB, "wangfang", one_time, "10.0.0.1")
    assert result.outcome == "ok"
    assert result.user is not None
    assert result.user.must_change_password


async def test_logging_out_and_expiry_end_a_session(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await add(sessions)
    tokens = []
    for _ in range(2):
        tokens.append((await log_in(sessions, WEB, "wangfang", PASSWORD, "10.0.0.1")).token)
    async with sessions() as session:
        found = await find_session(session, tokens[0])
        assert found is not None
        await close_session(session, found[0], "10.0.0.1")
        await session.execute(
            update(WebSession)
            .where(WebSession.token_hash == token_hash(tokens[1]))
            .values(expires_at=utcnow() - dt.timedelta(seconds=1))
        )
        await session.commit()
    async with sessions() as session:
        assert await find_session(session, tokens[0]) is None
        assert await find_session(session, tokens[1]) is None
        await sweep_expired(session)
        await session.commit()
        assert list(await session.scalars(select(WebSession))) == []


async def test_forged_and_oversized_tokens_find_nothing(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        assert await find_session(session, "") is None
        assert await find_session(session, "x" * 5000) is None
        assert await find_session(session, "' OR 1=1 --") is None


# -- python -m bot user ---------------------------------------------------------------------------


@pytest.fixture
def cli_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.sqlite3'}"
    monkeypatch.setenv("DATABASE_URL", url)
    return url


def run_cli(monkeypatch: pytest.MonkeyPatch, *argv: str, stdin: str = "") -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return main(list(argv))


def test_user_add_reads_the_password_from_standard_input(
    cli_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        run_cli(monkeypatch, "user", "add", "liu", "--role", "manager", stdin=PASSWORD + "\n") == 0
    )
    assert "created liu (manager)" in capsys.readouterr().out
    assert run_cli(monkeypatch, "user", "list") == 0
    assert "liu" in capsys.readouterr().out


def test_user_add_has_no_password_option(
    cli_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        run_cli(monkeypatch, "user", "add", "liu", "--role", "manager", "--password", PASSWORD)
    assert "unrecognized arguments" in capsys.readouterr().err


def test_user_add_refuses_a_weak_password_and_an_officer_without_department(
    cli_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(monkeypatch, "user", "add", "liu", "--role", "staff", stdin="short\n") == 2
    assert "at least 10" in capsys.readouterr().err
    assert run_cli(monkeypatch, "user", "add", "lilei", "--role", "officer", stdin=PASSWORD) == 2
    assert "bound to one department" in capsys.readouterr().err


def test_reset_password_prints_a_one_time_password_and_disable_locks_out(
    cli_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run_cli(
        monkeypatch,
        "user",
        "add",
        "zhao",
        "--role",
        "officer",
        "--department",
        "urban-management",
        stdin=PASSWORD,
    )
    capsys.readouterr()
    assert run_cli(monkeypatch, "user", "reset-password", "zhao") == 0
    printed = capsys.readouterr().out
    one_time = printed.strip().splitlines()[-1]
    assert "one-time password for zhao" in printed
    assert len(one_time) == 19
    assert one_time.count("-") == 3
    assert run_cli(monkeypatch, "user", "disable", "zhao") == 0
    assert run_cli(monkeypatch, "user", "reset-password", "nobody") == 2
    assert "no account" in capsys.readouterr().err


async def test_the_cli_writes_its_changes_to_the_audit_log(
    cli_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from bot.core.db import create_engine, session_factory

    await asyncio.to_thread(
        run_cli, monkeypatch, "user", "add", "zhao", "--role", "staff", stdin=PASSWORD
    )
    await asyncio.to_thread(run_cli, monkeypatch, "user", "disable", "zhao")
    engine = create_engine(cli_database)
    try:
        async with session_factory(engine)() as session:
            actions = list(
                await session.scalars(select(AuditEntry.action).order_by(AuditEntry.id))
            )
            user = (await session.execute(select(User))).scalar_one()
    finally:
        await engine.dispose()
    assert actions == ["user.create", "user.disable"]
    assert user.disabled
