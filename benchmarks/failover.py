"""The bot under SIGKILL: two bot processes and two workers on PostgreSQL, the leader killed again
and again while residents ask questions and file reports.

    python -m benchmarks failover [--takeovers 10] [--residents 6] [--reporters 3]
                                  [--lease-seconds 10] [--seed 7]

This process runs the local Bot API server, plays the residents, and serves a department's
webhook that fails (HTTP 500) half the time. Four children run against a fresh PostgreSQL
database: two `python -m bot run` (one leads, one stands by) and two `python -m bot worker`.
Every time a standby is ready, the leader (the holder of the `leases` row) gets SIGKILL and is
started again as the next standby, until --takeovers takeovers happened. The ticket clock is kept
busy: every few seconds the acknowledgement deadlines of waiting tickets are moved into the past,
so each sweep escalates them (督办) — four processes run the clock.

Reported:
- questions, per update: each question a resident sends is one Telegram update (one message id).
  Each of the bot's replies is traced to the update it answers by the bot's own record: the
  handler stores the question (chat and message id, `questions`) before it replies, and the
  reply's buttons carry that row's id (`q:…:<question id>`, bot/telegram/callback_data.py).
  Counted: updates sent, answered once, answered twice or more (doubled; "across a kill" when
  the killed leader answered it and the next leader again), never answered (missing), and of
  the answered ones those answered late — sent before a takeover ended and first answered after
  the leader was killed. At the end the residents wait up to a minute for late answers;
- reports filed (the resident saw "✅ 已受理") vs tickets stored, tickets doubled (one resident's
  report stored twice), reports whose confirmation never came;
- webhook deliveries per idempotency key: accepted once, lost (a key the department never
  accepted), doubled (accepted twice — the department must, and may, drop the second by its
  key). The department fails half the time, so the benchmark allows 30 attempts a row with a
  short back-off (see write_config); rows that gave up (status "failed") are reported too;
- clock events doubled: a ticket escalated (OVERDUE) twice for the same deadline;
- takeover time: from the SIGKILL to the standby holding the lease (median, worst).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import collections
import dataclasses
import datetime as dt
import functools
import os
import platform
import random
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from aiohttp import web
from sqlalchemy import func, select, text, update

from bot.answering.knowledge_base import load_knowledge_base
from bot.core.db import create_engine, session_factory, upgrade_database
from bot.core.models import Lease, OutboxMessage, Question, Ticket, TicketEvent
from bot.core.vocabulary import EventKind, TicketStatus
from tryout.local_bot_api import ChatTranscript, LocalBotApi, SimChat

REPO_ROOT = Path(__file__).resolve().parent.parent
POSTGRES = os.environ.get("TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
SECRET_ENV = "BENCH_DEPARTMENT_SECRET"
# Anonymous reports need the privacy secret (bot/core/privacy.py); a benchmark-only value.
PRIVACY_SECRET = "failover-benchmark-privacy-secret-0123456789"
PATIENCE = 60.0
# What a bot logs for a call it does not make again on handling an update a second time.
REPLAYED = "had gone out, not made again"


class Department:
    """A department system's webhook that fails half the time; counts acceptances per key."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        self.accepted: collections.Counter[str] = collections.Counter()
        self.refused = 0
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        if self.random.random() < 0.5:
            self.refused += 1
            return web.Response(status=500, text="down")
        self.accepted[request.headers.get("Idempotency-Key", "")] += 1
        return web.json_response({"ok": True})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


class Child:
    """One child process (`python -m bot run` or `worker`), its stderr kept."""

    def __init__(self, name: str, args: Sequence[str], config: Path, env: dict[str, str]) -> None:
        self.name, self.args, self.config, self.env = name, list(args), config, env
        self.process: asyncio.subprocess.Process | None = None
        self.lines: list[str] = []
        self._reader: asyncio.Task[None] | None = None
        # CPU seconds of the processes killed so far (read from /proc just before the kill).
        self.cpu_seconds = 0.0
        # Calls an earlier life had made, not made again (bot/telegram/journal.py).
        self._replayed_before = 0

    async def start(self) -> None:
        self._replayed_before = self.replayed_calls()
        self.lines = []
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "--config",
            str(self.config),
            *self.args,
            cwd=self.config.parent,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        self._reader = asyncio.create_task(self._read(self.process))

    async def _read(self, process: asyncio.subprocess.Process) -> None:
        assert process.stderr is not None
        while line := await process.stderr.readline():
            self.lines.append(line.decode("utf-8", "replace").rstrip())

    def said(self, fragment: str) -> bool:
        return any(fragment in line for line in self.lines)

    def _cpu(self) -> float:
        assert self.process is not None
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        # utime and stime, the 14th and 15th fields, in clock ticks.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def replayed_calls(self) -> int:
        """Return the journaled calls this child's processes did not make again, so far."""
        return self._replayed_before + sum(REPLAYED in line for line in self.lines)

    def cpu_total(self) -> float:
        """Return the CPU seconds of this child's processes so far, the running one's too."""
        running = self.process is not None and self.process.returncode is None
        return self.cpu_seconds + (self._cpu() if running else 0.0)

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.cpu_seconds += self._cpu()
            self.process.send_signal(signal.SIGKILL)
            await self.process.wait()

    async def wait_for(self, fragment: str, limit: float = 180) -> None:
        deadline = time.monotonic() + limit
        while not self.said(fragment):
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{self.name}: no {fragment!r}:\n" + "\n".join(self.lines[-30:])
                )
            await asyncio.sleep(0.1)


def write_config(folder: Path, api: LocalBotApi, staff_chat: int, hook: int, lease: float) -> Path:
    path = folder / "config.toml"
    path.write_text(
        f"""
[knowledge]
dir = "{(REPO_ROOT / "knowledge").as_posix()}"

[telegram]
api_base_url = "{api.base_url}"
staff_chat_id = {staff_chat}
supervisor_chat_id = {staff_chat}
staff_hours = "00:00-23:59"
rate_limit_per_second = 0
rate_limit_group_per_minute = 0
# The simulated residents type faster than the flood limit lets through.
flood_messages = 100000
leader_lease_seconds = {lease}

[tickets]
sweep_interval_seconds = 2

[delivery]
# The department fails half the time: with the default 8 attempts, 0.5^8 = 1 in 256 rows would
# give up (status "failed"); 30 attempts make that 1 in a billion, and a short back-off keeps
# the retries within the run.
max_attempts = 30
backoff_base_seconds = 0.5
backoff_max_seconds = 4
lease_seconds = 10
webhook_timeout_seconds = 2

[web]
enabled = false

[callbacks]
enabled = false

[privacy]
# The first-contact notice would be one more message before the first answer.
first_contact_notice = false

[metrics]
# Four processes on one host would share the ports.
enabled = false

[departments.ecology-environment]
channels = ["webhook", "console"]
webhook_url = "http://127.0.0.1:{hook}/hook"
secret_env = "{SECRET_ENV}"
""",
        encoding="utf-8",
    )
    return path


# The buttons under a reply to a question carry the id of the question's row
# (bot/telegram/callback_data.py: QuestionButton, SuggestionChoice, ComplaintFromQuestion).
QUESTION_BUTTON = re.compile(r"^(?:q:[a-z]:|q:c:|cmp:q:)(\d+)(?::|$)")


@dataclasses.dataclass
class Asked:
    """One question a resident sent: one message, one Telegram update."""

    chat: int
    message_id: int
    update_id: int | None
    sequence: int


@dataclasses.dataclass
class QuestionCounts:
    """The questions' updates and what became of each (see `Residents.count_questions`)."""

    sent: int = 0
    once: int = 0
    doubled: int = 0
    missing: int = 0
    late: int = 0
    doubled_across: int = 0
    handled_again: int = 0
    other_replies: int = 0
    odd: list[str] = dataclasses.field(default_factory=list)


def replied(chat: SimChat, after: int) -> bool:
    """Tell whether anything was written in `chat` after the point `after` (the bot's reply)."""
    return chat.messages[-1].sequence > after


class Residents:
    """Residents asking questions and filing reports through the whole run."""

    def __init__(self, api: LocalBotApi, questions: Sequence[str], seed: int) -> None:
        self.api = api
        self.questions = list(questions)
        self.random = random.Random(seed)
        self.question_chats: list[ChatTranscript] = []
        self.reporter_chats: list[ChatTranscript] = []
        self.asked: list[Asked] = []
        self.reports_started = 0
        self.reports_confirmed: list[str] = []
        self.reports_stuck = 0
        self.stop = asyncio.Event()
        self.errors: collections.Counter[str] = collections.Counter()

    async def asker(self, index: int) -> None:
        chat = self.api.private_chat(
            self.api.create_user(f"居民{index}"), timeout=PATIENCE, raise_on_refused=False
        )
        self.question_chats.append(chat)
        while not self.stop.is_set():
            question = self.random.choice(self.questions)
            message = self.api.send_text(chat.user, chat.chat, question)
            self.asked.append(
                Asked(chat.chat.id, message.message_id, message.update_id, message.sequence)
            )
            # A resident waits for the bot's reply (a minute at most), then asks the next one.
            # Only the bot writes in this chat after the question.
            await self.api.wait_for(
                functools.partial(replied, chat.chat, message.sequence), PATIENCE
            )
            await asyncio.sleep(self.random.uniform(0.2, 1.0))

    async def reporter(self, index: int) -> None:
        chat = self.api.private_chat(
            self.api.create_user(f"举报人{index}"), timeout=PATIENCE, raise_on_refused=False
        )
        self.reporter_chats.append(chat)
        number = 0
        while not self.stop.is_set():
            number += 1
            marker = f"R{index}-{number}-{uuid.uuid4().hex[:6]}"
            self.reports_started += 1
            try:
                # Whatever form an earlier failure left open is cancelled first.
                await chat.send("/cancel", expect=1)
                await chat.send("/complain", expect=1)
                await chat.press("🚨 举报", expect=2)
                for _ in range(6):
                    latest = chat.last_bot_message
                    if latest is not None and latest.find_button("生态环境") is not None:
                        await chat.press("生态环境", expect=2)
                        break
                    await chat.press("下一页 ➡️", expect=2)
                await chat.send(f"化工厂晚上偷排废水，河水发黑。编号 {marker}")
                await chat.press("➡️ 下一步", expect=2)
                await chat.press("🕶 匿名举报", expect=2)
                before = self._accepted(chat)
                await chat.press("✅ 确认提交", expect=2)
                # The confirmation comes after the button's own answer: wait for it.
                confirmed = functools.partial(self._accepted_more, chat, before)
                if await self.api.wait_for(confirmed, PATIENCE):
                    self.reports_confirmed.append(marker)
                else:
                    self.reports_stuck += 1
            except Exception as error:
                self.reports_stuck += 1
                self.errors[type(error).__name__ + ": " + str(error)[:80]] += 1
                # Leave whatever form is open; the next /complain starts again.
            await asyncio.sleep(self.random.uniform(0.5, 1.5))

    @staticmethod
    def _accepted(chat: ChatTranscript) -> int:
        return sum(1 for m in chat.bot_messages if m.text.startswith("✅ 已受理"))

    @classmethod
    def _accepted_more(cls, chat: ChatTranscript, before: int) -> bool:
        return cls._accepted(chat) > before

    async def count_questions(
        self,
        sessions: object,
        outages: Sequence[tuple[int, int]],
        clock: Callable[[int], float] = float,
    ) -> QuestionCounts:
        """Count, per question update, the bot's replies that answer it.

        A reply answers the update whose question row its buttons name: the row holds the chat
        and the message id the handler was answering. `outages` are the (kill, takeover) points
        of the local Bot API server's sequence: an answer is late when its question was sent
        before a takeover ended and answered after the kill that began it. `clock` turns such a
        point into seconds, for the list of odd cases.
        """
        chats = [chat.chat.id for chat in self.question_chats]
        async with sessions() as session:  # type: ignore[operator]
            rows = (
                await session.execute(
                    select(Question.id, Question.chat_id, Question.message_id).where(
                        Question.chat_id.in_(chats)
                    )
                )
            ).all()
        answering = {row.id: (row.chat_id, row.message_id) for row in rows}
        handlings = collections.Counter((row.chat_id, row.message_id) for row in rows)
        replies: dict[tuple[int, int], list[int]] = collections.defaultdict(list)
        counts = QuestionCounts()
        for chat in self.question_chats:
            for message in chat.bot_messages:
                ids = {
                    int(found.group(1))
                    for row in message.buttons
                    for _, data in row
                    if data and (found := QUESTION_BUTTON.match(data))
                }
                keys = {answering[i] for i in ids if i in answering}
                if len(keys) != 1:
                    # Not a reply to a question (or the parts of a long card before its last).
                    counts.other_replies += 1
                    continue
                replies[keys.pop()].append(message.sequence)
        for asked in self.asked:
            key = (asked.chat, asked.message_id)
            answers = sorted(replies.get(key, []))
            counts.sent += 1
            counts.handled_again += handlings[key] > 1
            if not answers:
                counts.missing += 1
                counts.odd.append(f"missing: chat {asked.chat} update {asked.update_id}")
                continue
            late = any(asked.sequence < taken and answers[0] > killed for killed, taken in outages)
            counts.late += late
            if len(answers) == 1:
                counts.once += 1
            else:
                counts.doubled += 1
                # Answered before a takeover (by the killed leader: what it sent just before the
                # kill may reach the server just after it), and again by the next leader.
                counts.doubled_across += any(
                    answers[0] < taken < answers[-1] for _, taken in outages
                )
                killed = min((k for k, _ in outages if k > asked.sequence), default=None)
                when = ", ".join(f"{clock(a) - clock(asked.sequence):+.2f}" for a in answers)
                counts.odd.append(
                    f"answered {len(answers)} times: chat {asked.chat} update {asked.update_id} "
                    f"(answered {when} s after it was sent; the next kill "
                    + (
                        f"{clock(killed) - clock(asked.sequence):+.2f} s"
                        if killed is not None
                        else "none"
                    )
                    + f"; handled {handlings[key]} times)"
                )
        return counts


class SequenceClock:
    """When each point of the local Bot API server's sequence was reached (sampled every 10 ms)."""

    def __init__(self, api: LocalBotApi) -> None:
        self.api = api
        self.points: list[int] = [api.sequence]
        self.times: list[float] = [time.perf_counter()]

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if self.api.sequence != self.points[-1]:
                self.points.append(self.api.sequence)
                self.times.append(time.perf_counter())
            await asyncio.sleep(0.01)

    def __call__(self, point: int) -> float:
        index = bisect.bisect_left(self.points, point)
        return self.times[min(index, len(self.times) - 1)]


async def leader_pid(sessions: object) -> tuple[int, int] | None:
    async with sessions() as session:  # type: ignore[operator]
        lease = await session.get(Lease, "telegram")
        if lease is None:
            return None
        expired = await session.scalar(
            text("SELECT expires_at < timezone('utc', clock_timestamp()) FROM leases")
        )
        if expired:
            return None
        return int(lease.holder.split(":")[1]), int(lease.term)


async def keep_clock_busy(sessions: object, stop: asyncio.Event) -> None:
    """Move waiting tickets' acknowledgement deadlines into the past, so sweeps escalate them."""
    while not stop.is_set():
        async with sessions() as session:  # type: ignore[operator]
            await session.execute(
                update(Ticket)
                .where(Ticket.status == TicketStatus.ASSIGNED, Ticket.ack_overdue.is_(False))
                .values(ack_deadline=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
            )
            await session.commit()
        await asyncio.sleep(3)


async def run(args: argparse.Namespace) -> int:
    name = f"bot_failover_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES)
    async with admin.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = f"{POSTGRES.rpartition('/')[0]}/{name}"
    engine = create_engine(url)
    await upgrade_database(engine)
    sessions = session_factory(engine)
    department = Department(args.seed)
    await department.start()
    kb = load_knowledge_base(REPO_ROOT / "knowledge")
    questions = [item.questions[0] for item in list(kb.items.values())[:40] if item.questions]
    children: list[Child] = []
    folder = Path(tempfile.mkdtemp(prefix="bot-failover-"))
    takeovers: list[float] = []
    # (kill, takeover) as points of the local Bot API server's sequence.
    outages: list[tuple[int, int]] = []
    loads = [os.getloadavg()[0]]
    cpu_before = time.process_time()
    unexpected_exits = 0
    try:
        async with LocalBotApi() as api:
            staff = api.create_user("值班员")
            group = api.create_group("工作人员群", {staff: "creator"}, bot_status="administrator")
            config = write_config(folder, api, group.id, department.port, args.lease_seconds)
            env = {k: v for k, v in os.environ.items() if k != "BOT_CONFIG"}
            env |= {
                "PYTHONPATH": str(REPO_ROOT),
                "DATABASE_URL": url,
                "TELEGRAM_BOT_TOKEN": api.token,
                SECRET_ENV: "benchmark-secret",
                "BOT_PRIVACY_SECRET": PRIVACY_SECRET,
            }
            bots = [Child(f"bot{i}", ["run"], config, env) for i in (1, 2)]
            workers = [Child(f"worker{i}", ["worker"], config, env) for i in (1, 2)]
            children = bots + workers
            await bots[0].start()
            await bots[0].wait_for("the bot is running (polling, leading)")
            for child in [bots[1], *workers]:
                await child.start()
            await bots[1].wait_for("standing by")
            residents = Residents(api, questions, args.seed)
            tasks = [asyncio.create_task(residents.asker(i)) for i in range(args.residents)]
            tasks += [asyncio.create_task(residents.reporter(i)) for i in range(args.reporters)]
            busy = asyncio.Event()
            clock = SequenceClock(api)
            counted = asyncio.Event()
            sampling = asyncio.create_task(clock.run(counted))
            tasks.append(asyncio.create_task(keep_clock_busy(sessions, busy)))
            started = time.perf_counter()
            await asyncio.sleep(5)
            while len(takeovers) < args.takeovers and time.perf_counter() - started < args.limit:
                held = await leader_pid(sessions)
                victim = next(
                    (b for b in bots if held and b.process and b.process.pid == held[0]), None
                )
                standby = next((b for b in bots if b is not victim), None)
                for child in bots:
                    if child.process is not None and child.process.returncode is not None:
                        # A bot that ended by itself (not killed here): say why, start it again.
                        print(
                            f"{child.name} exited with {child.process.returncode}:\n"
                            + "\n".join(child.lines[-15:]),
                            file=sys.stderr,
                            flush=True,
                        )
                        unexpected_exits += 1
                        await child.start()
                if victim is None or standby is None or not standby.said("standing by"):
                    await asyncio.sleep(0.2)
                    continue
                assert held is not None
                await asyncio.sleep(random.uniform(0, 3))
                killed_at = time.perf_counter()
                killed_seq = api.sequence
                await victim.kill()
                victim.process = None  # killed here, on purpose
                while True:
                    now = await leader_pid(sessions)
                    if now is not None and now[1] > held[1]:
                        break
                    await asyncio.sleep(0.05)
                takeovers.append(time.perf_counter() - killed_at)
                outages.append((killed_seq, api.sequence))
                loads.append(os.getloadavg()[0])
                print(
                    f"takeover {len(takeovers)}: {takeovers[-1]:.1f} s",
                    file=sys.stderr,
                    flush=True,
                )
                await victim.start()  # the next standby
            residents.stop.set()
            busy.set()
            # Each resident still waits (a minute at most) for the reply to its last question.
            await asyncio.gather(*tasks, return_exceptions=True)
            elapsed = time.perf_counter() - started
            loads.append(os.getloadavg()[0])
            # Late answers: wait until every question is answered, a minute at most.
            waited = time.perf_counter()
            while (await residents.count_questions(sessions, outages)).missing:
                if time.perf_counter() - waited > PATIENCE:
                    break
                await asyncio.sleep(2)
            # Let deliveries drain (the department still fails half the time).
            for _ in range(120):
                async with sessions() as session:
                    pending = await session.scalar(
                        select(func.count())
                        .select_from(OutboxMessage)
                        .where(OutboxMessage.status == "pending")
                    )
                if not pending:
                    break
                await asyncio.sleep(1)
            await asyncio.sleep(3)
            questions_seen = await residents.count_questions(sessions, outages, clock)
            counted.set()
            await sampling
            async with sessions() as session:
                descriptions = list(await session.scalars(select(Ticket.description)))
                rows = (
                    await session.execute(
                        select(
                            OutboxMessage.idempotency_key,
                            OutboxMessage.payload,
                            OutboxMessage.status,
                            OutboxMessage.attempts,
                        ).where(OutboxMessage.channel == "webhook")
                    )
                ).all()
                # The key a department sees (bot/tickets/delivery.py WebhookChannel).
                keys = [
                    str(row.payload.get("idempotency_key") or row.idempotency_key) for row in rows
                ]
                gave_up = sum(1 for row in rows if row.status == "failed")
                most_attempts = max((row.attempts for row in rows), default=0)
                overdue = (
                    await session.execute(
                        select(TicketEvent.ticket_id, func.count())
                        .where(TicketEvent.kind == EventKind.OVERDUE)
                        .group_by(TicketEvent.ticket_id)
                    )
                ).all()
                ticks = await session.scalar(text("SELECT count(*) FROM clock_ticks"))
            markers = collections.Counter(
                d.rsplit("编号 ", 1)[-1] for d in descriptions if "编号 " in d
            )
            # Confirmations counted in the transcripts at the end (a slow one arrives after the
            # resident stopped waiting for it).
            confirmed_count = sum(Residents._accepted(chat) for chat in residents.reporter_chats)
            confirmed = set(residents.reports_confirmed)
            lost_keys = [k for k in keys if department.accepted[k] == 0]
            doubled_keys = [k for k in keys if department.accepted[k] > 1]
            cpu_children = sum(child.cpu_total() for child in children)
            print(
                f"run: {elapsed:.0f} s of load, {len(takeovers)} takeovers, lease "
                f"{args.lease_seconds} s, bots exited by themselves {unexpected_exits}"
            )
            print(
                f"machine: {platform.platform()}, {os.cpu_count()} cores, "
                f"Python {platform.python_version()}, load average (1 min) "
                f"{min(loads):.1f}-{max(loads):.1f}"
            )
            print(
                f"CPU: bots and workers {cpu_children:.0f} s, this process (Bot API server, "
                f"residents, department) {time.process_time() - cpu_before:.0f} s"
            )
            q = questions_seen
            print(
                f"questions (updates): sent {q.sent}, answered once {q.once}, answered twice or "
                f"more {q.doubled}, never answered {q.missing}; answered after a takeover {q.late}; "
                f"doubled across a kill {q.doubled_across}; handled more than once {q.handled_again}; "
                f"bot messages that answer no question {q.other_replies}; Bot API calls not made "
                f"again (journaled) {sum(child.replayed_calls() for child in children)}"
            )
            print(
                f"reports: started {residents.reports_started}, confirmed {confirmed_count}, "
                f"stored {len(markers)}, confirmed but not stored {len(confirmed - set(markers))}, "
                f"stored twice {sum(1 for c in markers.values() if c > 1)}, "
                f"unfinished forms {residents.reports_stuck}"
            )
            print(
                f"webhook deliveries: keys {len(keys)}, accepted once "
                f"{sum(1 for k in keys if department.accepted[k] == 1)}, lost {len(lost_keys)}, "
                f"doubled {len(doubled_keys)}, refused attempts {department.refused}, rows "
                f"given up (failed) {gave_up}, most attempts of one row {most_attempts}"
            )
            print(
                f"clock: ticks claimed {ticks}, tickets escalated {len(overdue)}, escalated "
                f"twice {sum(1 for _, c in overdue if c > 1)}"
            )
            if args.verbose:
                async with sessions() as session:
                    statuses = (
                        await session.execute(
                            select(
                                OutboxMessage.channel, OutboxMessage.status, func.count()
                            ).group_by(OutboxMessage.channel, OutboxMessage.status)
                        )
                    ).all()
                    errors = list(
                        await session.scalars(
                            select(OutboxMessage.last_error)
                            .where(OutboxMessage.last_error.is_not(None))
                            .limit(5)
                        )
                    )
                print("outbox:", statuses, errors)
                print("form errors:", dict(residents.errors))
                print("odd questions:", *questions_seen.odd[:30], sep="\n  ")
                for child in children:
                    for line in child.lines:
                        if "ERROR" in line or "Error" in line or "leadership:" in line:
                            print(child.name, line[:300])
            if takeovers:
                print(
                    f"takeover: median {statistics.median(takeovers):.1f} s, worst "
                    f"{max(takeovers):.1f} s"
                )
    finally:
        for child in children:
            await child.kill()
        shutil.rmtree(folder, ignore_errors=True)
        await department.stop()
        await engine.dispose()
        async with admin.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()
    return 0


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks failover")
    parser.add_argument("--takeovers", type=int, default=10)
    parser.add_argument("--residents", type=int, default=6, help="residents asking questions")
    parser.add_argument("--reporters", type=int, default=3, help="residents filing reports")
    parser.add_argument("--lease-seconds", type=float, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--limit", type=float, default=1800, help="stop killing after this many seconds anyway"
    )
    parser.add_argument("--verbose", action="store_true", help="print what went wrong")
    args = parser.parse_args(argv)
    return asyncio.run(run(args))
