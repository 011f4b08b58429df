"""Tickets filed per second end to end, and deliveries per second to a department's endpoint.

    python -m benchmarks tickets [--tickets 300] [--residents 16] [--deliveries 2000]
                                 [--backends sqlite,postgresql] [--no-write]

Three measurements, on each backend (PostgreSQL from BENCH_POSTGRES_URL, default the test server
on 127.0.0.1; skipped with a note when it is not reachable):

- **chat**: residents file complaints through the real bot: `residents` at once, each going
  through the whole form (/complain, type, category, description, attachments, contact, submit)
  against the local Bot API server, with the delivery worker running. Tickets per second is
  confirmations received / wall time; the latency is from /complain to the confirmation with
  the ticket number (every step waits for the bot's answer, as a person would).
- **desk**: `TicketDesk.file` called by 16 tasks at once: routing, numbering, events and outbox
  rows in one transaction, without Telegram.
- **delivery**: `deliveries` outbox rows (signed JSON webhooks) delivered to an aiohttp endpoint
  on 127.0.0.1 by one worker, then by four workers at once; the endpoint checks every signature
  and counts idempotency keys, so the run also shows no row went twice.

Everything runs in this one process (bot, server, endpoint): figures are conservative.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import aiohttp
import asyncpg
from aiohttp import web

from bot.answering.store import KnowledgeStore, thresholds_from
from bot.api.signatures import verified_body
from bot.core.config import DepartmentChannels, Settings, load_settings
from bot.core.db import create_engine, session_factory, upgrade_database
from bot.core.models import Resident
from bot.tickets.delivery import DeliveryWorker, WebhookChannel
from bot.tickets.desk import TicketDesk, TicketDraft
from bot.tickets.signatures import IDEMPOTENCY_HEADER
from tryout.local_bot_api import ChatMessage, LocalBotApi, SimChat, SimUser
from tryout.local_bot_api.ptb import running_application

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS = REPO_ROOT / "benchmarks" / "results" / "tickets.json"
POSTGRES_ADMIN_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
SECRET_ENV = "BENCH_DEPARTMENT_SECRET"
DEPARTMENT = "public-security"
PLACES = ("东湖", "西山", "南港", "北城", "中山", "人民", "和平", "建设", "解放", "光明")


@dataclass
class Result:
    backend: str
    measurement: str
    count: int
    seconds: float
    per_second: float
    p50_ms: float | None = None
    p99_ms: float | None = None
    note: str = ""

    def line(self) -> str:
        latency = ""
        if self.p50_ms is not None and self.p99_ms is not None:
            latency = f", p50 {self.p50_ms:.0f} ms, p99 {self.p99_ms:.0f} ms"
        return (
            f"{self.backend:<10} {self.measurement:<28} {self.count:>6} in {self.seconds:6.2f} s"
            f" = {self.per_second:8.1f}/s{latency} {self.note}"
        )


def _percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def description(index: int) -> str:
    place = PLACES[index % len(PLACES)]
    return f"{place}路{index}号附近的小区晚上有人大声喧哗扰民，已经持续了{index % 7 + 2}天。"


class CountingEndpoint:
    """A department's endpoint: checks signatures and counts idempotency keys."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret
        self.calls = 0
        self.keys: set[str] = set()
        self.bad = 0

    async def handle(self, request: web.Request) -> web.Response:
        try:
            await verified_body(request, self.secret)
        except Exception:
            self.bad += 1
            return web.Response(status=401)
        self.calls += 1
        self.keys.add(request.headers.get(IDEMPOTENCY_HEADER, ""))
        return web.json_response({"ok": True})


@asynccontextmanager
async def serving(endpoint: CountingEndpoint) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/tickets", endpoint.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/tickets"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def database(backend: str, folder: Path) -> AsyncIterator[str]:
    """Yield the URL of an empty, migrated database on a backend."""
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{folder / f'bench-{uuid.uuid4().hex[:8]}.sqlite3'}"
        engine = create_engine(url)
        await upgrade_database(engine)
        await engine.dispose()
        yield url
        return
    dsn = POSTGRES_ADMIN_URL.replace("postgresql+asyncpg://", "postgresql://")
    name = f"bench_tickets_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = f"{POSTGRES_ADMIN_URL.rpartition('/')[0]}/{name}"
    engine = create_engine(url)
    await upgrade_database(engine)
    await engine.dispose()
    try:
        yield url
    finally:
        admin = await asyncpg.connect(dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def bench_settings(
    base: Settings, url: str, webhook_url: str, staff_chat: int | None = None
) -> Settings:
    return base.model_copy(
        update={
            "database": base.database.model_copy(update={"url": url}),
            "telegram": base.telegram.model_copy(
                update={
                    "staff_chat_id": staff_chat,
                    "rate_limit_per_second": 0,
                    "rate_limit_group_per_minute": 0,
                    "flood_messages": 100000,
                }
            ),
            "departments": {
                DEPARTMENT: DepartmentChannels(
                    channels=("webhook",), webhook_url=webhook_url, secret_env=SECRET_ENV
                )
            },
            "delivery": base.delivery.model_copy(
                update={"poll_interval_seconds": 0.2, "batch_size": 50, "max_attempts": 50}
            ),
        }
    )


async def add_residents(desk: TicketDesk, count: int) -> list[int]:
    async with desk.sessions() as session, session.begin():
        rows = [
            Resident(telegram_user_id=9_000_000 + i, chat_id=9_000_000 + i) for i in range(count)
        ]
        session.add_all(rows)
        await session.flush()
        return [row.id for row in rows]


async def measure_desk(
    settings: Settings, knowledge: KnowledgeStore, count: int, backend: str
) -> Result:
    engine = create_engine(settings.database_url)
    desk = TicketDesk(settings, session_factory(engine), lambda: knowledge.kb)
    residents = await add_residents(desk, 16)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(count):
        queue.put_nowait(index)
    latencies: list[float] = []

    async def filer(resident: int) -> None:
        while not queue.empty():
            index = queue.get_nowait()
            started = time.perf_counter()
            await desk.file(
                TicketDraft(
                    type="report",
                    category="治安与消防",
                    description=description(index),
                    resident_id=resident,
                )
            )
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(filer(r) for r in residents))
    seconds = time.perf_counter() - started
    await engine.dispose()
    return Result(
        backend,
        "desk: TicketDesk.file x16",
        count,
        seconds,
        count / seconds,
        _percentile(latencies, 0.5) * 1000,
        _percentile(latencies, 0.99) * 1000,
    )


async def measure_delivery(
    settings: Settings,
    knowledge: KnowledgeStore,
    count: int,
    backend: str,
    endpoint: CountingEndpoint,
) -> list[Result]:
    engine = create_engine(settings.database_url)
    desk = TicketDesk(settings, session_factory(engine), lambda: knowledge.kb)
    results = []
    [resident] = await add_residents(desk, 1)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200)) as http:
        for workers in (1, 4):
            # The outbox rows are prepared (not timed) by 16 filers, as in the desk measurement:
            # filing all `count` at once would wait on the connection pool, and on a busy
            # machine the last ones would give up after the pool's 30 s timeout.
            pending = iter(range(count))

            async def filer(pending: Iterator[int]) -> None:
                for i in pending:
                    await desk.file(
                        TicketDraft(
                            type="report",
                            category="治安与消防",
                            description=description(i),
                            resident_id=resident,
                        )
                    )

            await asyncio.gather(*(filer(pending) for _ in range(16)))
            before = endpoint.calls
            # Keys repeat across databases (TS-2026-000001:3 in each): count this run's only.
            endpoint.keys.clear()
            pool = [
                DeliveryWorker(desk, {"webhook": WebhookChannel(settings, http)})
                for _ in range(workers)
            ]
            started = time.perf_counter()
            done = await asyncio.gather(*(w.run_until_idle() for w in pool))
            seconds = time.perf_counter() - started
            delivered = endpoint.calls - before
            results.append(
                Result(
                    backend,
                    f"delivery: {workers} worker{'s' if workers > 1 else ''}",
                    sum(done),
                    seconds,
                    sum(done) / seconds,
                    note=f"(endpoint got {delivered} posts, {len(endpoint.keys)} keys)",
                )
            )
    await engine.dispose()
    return results


async def file_in_chat(api: LocalBotApi, user: SimUser, chat: SimChat, index: int) -> float:
    """Go through the whole form as a resident; return the seconds it took."""

    async def after(action: object) -> ChatMessage:
        messages = api.messages(chat)
        cursor = messages[-1].sequence if messages else 0
        if callable(action):
            action()
        [message] = (await api.wait_for_bot_messages(chat, 1, after=cursor, timeout=60))[-1:]
        return message

    def press(message: ChatMessage, data: str) -> None:
        api.push_callback_query(user, message, data)

    started = time.perf_counter()
    prompt = await after(lambda: api.send_text(user, chat, "/complain"))
    prompt = await after(lambda: press(prompt, "cmp:t:complaint"))
    prompt = await after(lambda: press(prompt, "cmp:c:治安与消防"))
    prompt = await after(lambda: api.send_text(user, chat, description(index)))
    if any(data == "cmp:own" for row in prompt.buttons for _, data in row):
        prompt = await after(lambda: press(prompt, "cmp:own"))
    prompt = await after(lambda: press(prompt, "cmp:next"))
    prompt = await after(lambda: press(prompt, "cmp:k:private"))
    confirmation = await after(lambda: press(prompt, "cmp:submit"))
    if "TS-" not in confirmation.text:
        raise RuntimeError(f"no ticket number in {confirmation.text!r}")
    return time.perf_counter() - started


async def measure_chat(
    settings: Settings, knowledge: KnowledgeStore, count: int, residents: int, backend: str
) -> Result:
    from bot.services import Services
    from bot.telegram.application import build_application
    from bot.workers import TicketWorkers

    async with LocalBotApi() as api:
        staff = api.create_user("工作人员")
        group = api.create_group("工作人员群", {staff: "creator"}, bot_status="administrator")
        settings = settings.model_copy(
            update={"telegram": settings.telegram.model_copy(update={"staff_chat_id": group.id})}
        )
        services = await Services.start(settings, knowledge=knowledge)
        app = build_application(services, token=api.token, base_url=api.base_url)
        async with running_application(app):
            workers = TicketWorkers(services.tickets, app.bot, run_clock=False, callbacks=False)
            await workers.start()
            people = [api.create_user(f"居民{i}") for i in range(residents)]
            chats = [api.create_private_chat(p) for p in people]
            for chat in chats:
                chat.started = True
            queue: asyncio.Queue[int] = asyncio.Queue()
            for index in range(count):
                queue.put_nowait(index)
            latencies: list[float] = []

            async def resident(user: SimUser, chat: SimChat) -> None:
                while not queue.empty():
                    latencies.append(await file_in_chat(api, user, chat, queue.get_nowait()))

            started = time.perf_counter()
            await asyncio.gather(*(resident(u, c) for u, c in zip(people, chats, strict=True)))
            seconds = time.perf_counter() - started
            await workers.stop()
        await services.close()
    return Result(
        backend,
        f"chat: {residents} residents",
        count,
        seconds,
        count / seconds,
        _percentile(latencies, 0.5) * 1000,
        _percentile(latencies, 0.99) * 1000,
        note="(/complain to confirmation, 8 steps)",
    )


async def _postgres_reachable() -> bool:
    try:
        connection = await asyncpg.connect(
            POSTGRES_ADMIN_URL.replace("postgresql+asyncpg://", "postgresql://")
        )
    except (OSError, asyncpg.PostgresError):
        return False
    await connection.close()
    return True


async def benchmark(args: argparse.Namespace) -> list[Result]:
    os.environ.setdefault(SECRET_ENV, uuid.uuid4().hex)
    base = load_settings(REPO_ROOT / "config.toml")
    knowledge = KnowledgeStore(base.knowledge_dir, thresholds_from(base))
    endpoint = CountingEndpoint(os.environ[SECRET_ENV].encode())
    results: list[Result] = []
    backends = [b for b in args.backends.split(",") if b]
    if "postgresql" in backends and not await _postgres_reachable():
        print(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: skipped", file=sys.stderr)
        backends.remove("postgresql")
    with tempfile.TemporaryDirectory() as folder:
        async with serving(endpoint) as url:
            for backend in backends:
                async with database(backend, Path(folder)) as database_url:
                    settings = bench_settings(base, database_url, url)
                    results.append(
                        await measure_chat(
                            settings, knowledge, args.tickets, args.residents, backend
                        )
                    )
                    print(results[-1].line(), flush=True)
                async with database(backend, Path(folder)) as database_url:
                    settings = bench_settings(base, database_url, url)
                    results.append(
                        await measure_desk(settings, knowledge, args.tickets * 3, backend)
                    )
                    print(results[-1].line(), flush=True)
                async with database(backend, Path(folder)) as database_url:
                    settings = bench_settings(base, database_url, url)
                    for result in await measure_delivery(
                        settings, knowledge, args.deliveries, backend, endpoint
                    ):
                        results.append(result)
                        print(result.line(), flush=True)
    if endpoint.bad:
        print(f"warning: {endpoint.bad} posts had a bad signature", file=sys.stderr)
    return results


def report(results: list[Result]) -> str:
    """Return the results as a Markdown table for docs/benchmarks.md."""
    lines = [
        f"Run {time.strftime('%Y-%m-%d')} on {os.cpu_count()} cores "
        f"({platform.processor() or platform.machine()}), Python {platform.python_version()}.",
        "",
        "| backend | measurement | count | seconds | per second | p50 | p99 |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        p50 = f"{r.p50_ms:.0f} ms" if r.p50_ms is not None else ""
        p99 = f"{r.p99_ms:.0f} ms" if r.p99_ms is not None else ""
        lines.append(
            f"| {r.backend} | {r.measurement} | {r.count} | {r.seconds:.2f} | "
            f"{r.per_second:.1f} | {p50} | {p99} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str]) -> int:
    """Run the benchmark, print the results, and keep them in benchmarks/results/tickets.json."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks tickets")
    parser.add_argument("--tickets", type=int, default=300, help="tickets filed in the chat")
    parser.add_argument("--residents", type=int, default=16, help="residents filing at once")
    parser.add_argument("--deliveries", type=int, default=2000, help="outbox rows delivered")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--no-write", action="store_true", help="do not write the results file")
    args = parser.parse_args(list(argv))
    results = asyncio.run(benchmark(args))
    print()
    print(report(results))
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(
            json.dumps([asdict(r) for r in results], ensure_ascii=False, indent=2),
            encoding="utf-8",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
