"""`python -m bot run` processes killed with SIGKILL: the next one carries on.

Real processes against the local Bot API server of this test: a resident fills half a complaint
form, the process serving them is killed (no clean shutdown, nothing flushed), and the resident's
next button works in the process that takes over — a standby on PostgreSQL, or the same bot
started again on SQLite. No update is lost or answered twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core.db import session_factory
from bot.core.models import Lease, TelegramSend, Ticket
from tests.fixtures_knowledge import EMBEDDING_CACHE, REPO_ROOT
from tryout.local_bot_api import ChatTranscript, LocalBotApi
from tryout.local_bot_api.errors import ApiError

pytestmark = pytest.mark.slow

LEASE_SECONDS = 3


class BotProcess:
    """One `python -m bot run` against the test's local Bot API server."""

    def __init__(self, config: Path, database_url: str, token: str) -> None:
        self.config = config
        self.env = {k: v for k, v in os.environ.items() if k not in ("BOT_CONFIG",)}
        self.env |= {
            "PYTHONPATH": str(REPO_ROOT),
            "DATABASE_URL": database_url,
            "TELEGRAM_BOT_TOKEN": token,
        }
        self.process: asyncio.subprocess.Process | None = None
        self.lines: list[str] = []
        self._reader: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "--config",
            str(self.config),
            "run",
            cwd=self.config.parent,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process is not None
        assert self.process.stderr is not None
        while line := await self.process.stderr.readline():
            self.lines.append(line.decode("utf-8", "replace").rstrip())

    async def wait_for_line(self, fragment: str, limit: float = 120) -> None:
        for _ in range(int(limit / 0.1)):
            if any(fragment in line for line in self.lines):
                return
            assert self.process is not None
            if self.process.returncode is not None:
                break
            await asyncio.sleep(0.1)
        raise AssertionError(f"no {fragment!r} in:\n" + "\n".join(self.lines[-40:]))

    async def kill(self) -> None:
        """SIGKILL: no clean shutdown, nothing flushed, the lease not released."""
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
            await self.process.wait()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, 5)


def write_config(tmp_path: Path, api: LocalBotApi, staff_chat_id: int) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[knowledge]
dir = "{(REPO_ROOT / "knowledge").as_posix()}"

[matching]
embedding_cache = "{EMBEDDING_CACHE.as_posix()}"

[telegram]
api_base_url = "{api.base_url}"
staff_chat_id = {staff_chat_id}
staff_hours = "00:00-23:59"
rate_limit_per_second = 0
rate_limit_group_per_minute = 0
leader_lease_seconds = {LEASE_SECONDS}

[web]
enabled = false

[callbacks]
enabled = false

[privacy]
# The first-contact notice is tested in tests/test_privacy_chat.py.
first_contact_notice = false

[metrics]
# Two processes on one host; health and metrics are tested in tests/test_ops_processes.py.
enabled = false
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
async def api() -> AsyncIterator[LocalBotApi]:
    async with LocalBotApi() as server:
        yield server


async def choose_category(chat: ChatTranscript, name: str) -> None:
    for _ in range(6):
        latest = chat.last_bot_message
        assert latest is not None
        if latest.find_button(name) is not None:
            await chat.press(name, expect=2)
            return
        await chat.press("下一页 ➡️", expect=2)
    raise AssertionError(f"no category {name}")


async def half_a_report(chat: ChatTranscript) -> None:
    """Start a report and give its category and description (the form is half filled)."""
    await chat.send("/complain")
    await chat.press("🚨 举报", expect=2)
    await choose_category(chat, "生态环境")
    replies = await chat.send("化工厂晚上偷排废水，河水发黑。")
    assert "➡️ 下一步" in [label for row in replies[-1].buttons for label, _ in row]


async def finish_the_report(chat: ChatTranscript) -> str:
    """Carry on from the description to the filed ticket; return its number."""
    await chat.press("➡️ 下一步", expect=2)
    await chat.press("🕶 匿名举报", expect=2)
    confirmation = await chat.press("✅ 确认提交", expect=2)
    return confirmation.text.split("工单号 ")[1].split("\n")[0]


def bot_texts(chat: ChatTranscript) -> list[str]:
    return [message.text for message in chat.bot_messages]


async def test_a_standby_takes_over_a_killed_leader_and_the_half_filled_form_goes_on(
    postgres_url: str, engine: AsyncEngine, api: LocalBotApi, tmp_path: Path
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("several processes need PostgreSQL")
    staff = api.create_user("王芳")
    group = api.create_group("工作人员群", {staff: "creator"}, bot_status="administrator")
    config = write_config(tmp_path, api, group.id)
    first = BotProcess(config, postgres_url, api.token)
    second = BotProcess(config, postgres_url, api.token)
    sessions = session_factory(engine)
    try:
        await first.start()
        await first.wait_for_line("the bot is running (polling, leading)")
        await second.start()
        await second.wait_for_line("the bot is running (polling, standing by)")

        chat = api.private_chat(api.create_user("李雷"), timeout=60)
        replies = await chat.send("/start", expect=2)
        assert replies.texts[0].startswith("您好，李雷！")
        await half_a_report(chat)
        answered = len(chat.bot_messages)

        await first.kill()
        # The next button is pressed at once; it is answered once the standby has taken over.
        number = await finish_the_report(chat)
        await second.wait_for_line("serving Telegram (term 2")
        assert number.startswith("TS-")
        async with sessions() as session:
            lease = await session.get(Lease, "telegram")
            assert lease is not None
            assert lease.holder.split(":")[1] == str(second.pid)
            assert lease.term == 2
            tickets = await session.scalar(select(func.count()).select_from(Ticket))
            assert tickets == 1
            ticket = (await session.scalars(select(Ticket))).one()
            assert "化工厂晚上偷排废水" in ticket.description
        # Every update answered exactly once: three presses, a message each.
        texts = bot_texts(chat)
        assert len(texts) == answered + 3
        assert sum(text.startswith("✅ 已受理") for text in texts) == 1
    finally:
        await first.kill()
        await second.kill()


async def test_a_bot_killed_right_after_a_form_step_loses_nothing_when_started_again(
    api: LocalBotApi, tmp_path: Path
) -> None:
    staff = api.create_user("王芳")
    group = api.create_group("工作人员群", {staff: "creator"}, bot_status="administrator")
    config = write_config(tmp_path, api, group.id)
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.sqlite3'}"
    bot = BotProcess(config, url, api.token)
    try:
        await bot.start()
        await bot.wait_for_line("the bot is running (polling, leading)")
        chat = api.private_chat(api.create_user("韩梅梅"), timeout=60)
        await half_a_report(chat)
        # Killed right after the step: before, the step waited up to 5 s to be written.
        await bot.kill()
        again = BotProcess(config, url, api.token)
        bot = again
        await again.start()
        await again.wait_for_line("the bot is running (polling, leading)")
        number = await finish_the_report(chat)
        assert number.startswith("TS-")
        texts = bot_texts(chat)
        assert sum(text.startswith("✅ 已受理") for text in texts) == 1
        assert len(texts) == len(set(texts))
    finally:
        await bot.kill()


async def test_a_bot_killed_between_the_two_messages_of_one_answer_says_neither_twice(
    database_url: str, engine: AsyncEngine, api: LocalBotApi, tmp_path: Path
) -> None:
    """/start answers with two messages. The process is killed the moment the second reaches
    the Bot API server (which refuses it, as a call that never arrived): the first had gone out,
    the update was not recorded as handled. The bot started again handles /start again; the
    first message is not sent a second time (its call was journaled), the second is sent."""
    staff = api.create_user("王芳")
    group = api.create_group("工作人员群", {staff: "creator"}, bot_status="administrator")
    config = write_config(tmp_path, api, group.id)
    bot = BotProcess(config, database_url, api.token)
    resident = api.create_user("韩梅梅")
    chat = api.private_chat(resident, timeout=60)
    calls_in_chat: list[str] = []
    killed = asyncio.Event()

    async def kill_at_the_second_message(method: str, params: dict[str, object]) -> None:
        if method.lower() != "sendmessage" or str(params.get("chat_id")) != str(chat.chat.id):
            return
        calls_in_chat.append(str(params.get("text")))
        if len(calls_in_chat) == 2 and not killed.is_set():
            assert bot.process is not None
            bot.process.send_signal(signal.SIGKILL)
            killed.set()
            raise ApiError(502, "Bad Gateway")

    try:
        await bot.start()
        await bot.wait_for_line("the bot is running (polling, leading)")
        api.interceptor = kill_at_the_second_message
        api.send_text(resident, chat.chat, "/start")
        await asyncio.wait_for(killed.wait(), 60)
        await bot.kill()
        api.interceptor = None
        assert bot_texts(chat) == calls_in_chat[:1]
        assert bot_texts(chat)[0].startswith("您好，韩梅梅！")

        bot = BotProcess(config, database_url, api.token)
        await bot.start()
        await bot.wait_for_line("the bot is running (polling, leading)")
        for _ in range(600):
            if len(chat.bot_messages) >= 2:
                break
            await asyncio.sleep(0.1)
        # A straggler would show up here.
        await asyncio.sleep(1)
        texts = bot_texts(chat)
        assert len(texts) == 2, texts
        assert texts[0] == calls_in_chat[0]
        assert texts[1] == calls_in_chat[1]
        await bot.wait_for_line("handled again: its call 0 (sendMessage) had gone out", 10)
        # Confirmed: the journal of the update is gone with it.
        async with session_factory(engine)() as session:
            for _ in range(100):
                if not await session.scalar(select(func.count()).select_from(TelegramSend)):
                    break
                await asyncio.sleep(0.1)
            assert await session.scalar(select(func.count()).select_from(TelegramSend)) == 0
    finally:
        api.interceptor = None
        await bot.kill()
