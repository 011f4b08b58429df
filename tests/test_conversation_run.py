"""`python -m bot run` without a token: the local try-out, with the real bot and a staff group."""

from __future__ import annotations

import argparse
import re
import socket
from pathlib import Path

import pytest

from bot.answering.store import KnowledgeStore
from bot.cli import command_run
from bot.console.accounts import find_user, verify_password
from bot.core.config import load_settings
from bot.runner import running
from tests.fixtures_console import free_port
from tests.fixtures_conversation import REPO_ROOT
from tryout.runner import TRYOUT_ACCOUNTS


async def test_the_try_out_lets_a_newcomer_ask_and_staff_answer(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    bundled_store: KnowledgeStore,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    base = load_settings(REPO_ROOT / "config.toml")
    settings = base.model_copy(
        update={
            "database": base.database.model_copy(update={"path": tmp_path / "bot.sqlite3"}),
            "telegram": base.telegram.model_copy(update={"staff_hours": "00:00-23:59"}),
            # Free ports, so that a bot running on this machine does not get in the way.
            "web": base.web.model_copy(update={"port": free_port()}),
            "callbacks": base.callbacks.model_copy(update={"port": 0}),
        }
    )
    async with running(settings, tryout_port=0, knowledge=bundled_store) as started:
        api = started.tryout
        assert api is not None
        assert (tmp_path / "tryout.sqlite3").is_file()
        assert started.settings.telegram.staff_chat_id == api.tryout.staff_group.id
        world = api.tryout
        resident = api.private_chat(world.resident)
        # A new resident is first told how their personal data is handled.
        replies = await resident.send("/start", expect=3)
        assert "个人信息保护告知" in replies.texts[0]
        assert replies.texts[1].startswith("您好，市民小李！")
        await resident.send("犬只免疫证明怎么开")
        staff = api.group_chat(world.staff_group, world.staff[0])
        post = api.last_bot_message(world.staff_group)
        assert post is not None
        replies = await staff.reply(post, "请不要带宠物进大厅。", expect=3)
        assert replies.elsewhere[0].text.endswith("请不要带宠物进大厅。")

        # The console has an account for each role, with the password the banner printed.
        banner = capsys.readouterr().out
        password = re.search(r"with the password (\S+) ", banner)
        assert password is not None
        async with started.services.sessions() as session:
            for username, role, *_ in TRYOUT_ACCOUNTS:
                user = await find_user(session, username)
                assert user is not None
                assert user.role == role
                assert verify_password(user.password_hash, password.group(1))


def test_a_port_in_use_is_said_plainly_and_the_run_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    base = load_settings(REPO_ROOT / "config.toml")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = base.model_copy(
            update={
                "database": base.database.model_copy(update={"path": tmp_path / "bot.sqlite3"}),
                "telegram": base.telegram.model_copy(update={"tryout_port": port}),
            }
        )
        assert command_run(argparse.Namespace(), settings) == 1
    error = capsys.readouterr().err
    assert f"('127.0.0.1', {port})" in error
    assert "Another copy of the bot may be running" in error
    assert "端口已被占用" in error


async def test_the_try_out_banner_names_the_chat_the_console_and_the_department_system(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from aiohttp import web

    from tryout.department_demo import SECRET_ENV, demo_base_url
    from tryout.runner import banner, start_tryout

    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv(SECRET_ENV, "a-secret-of-the-test")
    base = load_settings(REPO_ROOT / "config.toml")
    settings = base.model_copy(
        update={"callbacks": base.callbacks.model_copy(update={"port": free_port()})}
    )
    async with start_tryout(settings, port=0) as tryout:
        assert tryout.settings.telegram.staff_chat_id == tryout.api.tryout.staff_group.id
        assert tryout.token.split(":")[0].isdigit()
        plain = banner(tryout, None)
        assert plain.startswith("\n  本地试用 Local try-out (no TELEGRAM_BOT_TOKEN set)\n")
        assert f"  Open {tryout.api.tryout_url} in your browser.\n" in plain
        assert "Departments" not in plain
        assert "Web console" not in plain

        tryout.serve_demo_department(web.Application())
        assert tryout.demo is not None
        text = banner(tryout, "pass-word")
        departments, rest = text.split("\n\n\n  本地试用", 1)
        assert demo_base_url(tryout.settings.callbacks) in departments
        assert f"http://{settings.web.host}:{settings.web.port}/" in rest
        assert ", ".join(username for username, *_ in TRYOUT_ACCOUNTS) in rest
        assert "with the password pass-word (new at every start)." in rest
        assert "make samples" in rest
