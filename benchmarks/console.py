"""`python -m benchmarks console`: the web console's complaint log and figures with a million
tickets, on PostgreSQL and on SQLite.

The tickets go into databases of their own (PostgreSQL `bot_bench_console` on the server of
BENCH_POSTGRES_URL or TEST_POSTGRES_URL; SQLite benchmarks/results/console.sqlite3), which are
kept and reused while they hold the requested number of tickets. The console is served on
127.0.0.1 and every page is fetched over HTTP by a logged-in manager, as a browser would: the time
is the whole response, from request to the last byte of HTML.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import asyncpg
from aiohttp import web
from sqlalchemy import func, select

from benchmarks.console_data import load_postgresql, load_sqlite
from bot.answering.store import KnowledgeStore, thresholds_from
from bot.console.accounts import create_user, find_user
from bot.console.app import init_app
from bot.console.views.figures import FIGURES_CACHE, FiguresCache, previous_month
from bot.core.config import load_settings
from bot.core.db import create_engine, upgrade_database
from bot.core.models import Ticket, utcnow
from bot.services import Services

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS = REPO_ROOT / "benchmarks" / "results"
DATABASE = "bot_bench_console"
MANAGER = "bench-manager"
PASSWORD = "benchmark-password-1"


@dataclass(frozen=True)
class Timing:
    """Response times of one page, in milliseconds."""

    backend: str
    page: str
    url: str
    median: float
    p95: float
    worst: float
    rows: int


def _admin_dsn() -> str:
    url = os.environ.get("BENCH_POSTGRES_URL") or os.environ.get(
        "TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
    )
    return url.replace("postgresql+asyncpg://", "postgresql://")


def postgres_url() -> str:
    base, _, _ = _admin_dsn().rpartition("/")
    return f"{base.replace('postgresql://', 'postgresql+asyncpg://')}/{DATABASE}"


async def log_in(http: aiohttp.ClientSession, username: str, password: str) -> None:
    """Log `http` (a session with a cookie jar, based at the console) in as `username`."""
    async with http.get("/login") as response:
        page = await response.text()
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    async with http.post(
        "/login",
        data={"csrf_token": token, "username": username, "password": password},
        allow_redirects=False,
    ) as response:
        assert response.status == 303, f"the benchmark's {username} could not log in"


async def _count(url: str) -> int:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return int(
                (await connection.execute(select(func.count()).select_from(Ticket))).scalar_one()
            )
    except Exception:
        return -1
    finally:
        await engine.dispose()


async def prepare_postgresql(count: int, fresh: bool) -> str:
    """Return the URL of a benchmark database with `count` tickets, loading it if needed."""
    url = postgres_url()
    if not fresh and await _count(url) == count:
        engine = create_engine(url)
        await upgrade_database(engine)
        await engine.dispose()
        print(f"postgresql: reusing {count:,} tickets in {DATABASE}", flush=True)
        return url
    admin = await asyncpg.connect(_admin_dsn())
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await admin.close()
    engine = create_engine(url)
    await upgrade_database(engine)
    await engine.dispose()
    started = time.perf_counter()
    print(f"postgresql: loading {count:,} tickets (COPY) …", flush=True)
    await load_postgresql(url.replace("postgresql+asyncpg://", "postgresql://"), count, utcnow())
    print(f"postgresql: loaded in {time.perf_counter() - started:.0f} s", flush=True)
    return url


def _remove_sqlite_files(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)


async def prepare_sqlite(count: int, fresh: bool) -> str:
    """Return the URL of a benchmark SQLite file with `count` tickets, loading it if needed."""
    path = RESULTS / "console.sqlite3"
    url = f"sqlite+aiosqlite:///{path}"
    if not fresh and path.exists() and await _count(url) == count:
        engine = create_engine(url)
        await upgrade_database(engine)
        await engine.dispose()
        print(f"sqlite: reusing {count:,} tickets in {path}", flush=True)
        return url
    await asyncio.to_thread(_remove_sqlite_files, path)
    engine = create_engine(url)
    await upgrade_database(engine)
    await engine.dispose()
    started = time.perf_counter()
    print(f"sqlite: loading {count:,} tickets (executemany) …", flush=True)
    await asyncio.to_thread(load_sqlite, path, count, utcnow())
    print(f"sqlite: loaded in {time.perf_counter() - started:.0f} s", flush=True)
    return url


def scenarios(middle: str, department: str, number: str) -> list[tuple[str, str]]:
    """Return (name, path) of the pages to time."""
    week_end = dt.date.today() - dt.timedelta(days=30)
    week_start = week_end - dt.timedelta(days=6)

    def log(**query: str) -> str:
        return "/log" + ("?" + urlencode(query) if query else "")

    return [
        ("log: newest page", log()),
        ("log: a page deep in the past (cursor)", log(after=middle)),
        ("log: department + status", log(department=department, status="closed")),
        ("log: category + rating 1", log(category="市容环境", rating="1")),
        ("log: type + status (rare)", log(type="disclosure", status="returned")),
        ("log: overdue only", log(overdue="1")),
        ("log: one week", log(**{"from": str(week_start), "to": str(week_end)})),
        ("log: search common word 噪音", log(q="噪音")),
        ("log: search phrase 井盖缺失", log(q="井盖缺失")),
        ("log: search absent word 地铁", log(q="地铁")),
        ("log: search + department", log(q="垃圾", department=department)),
        ("log: ticket number", log(q=number)),
        ("figures: this month", "/figures"),
        ("figures: last month", "/figures?" + urlencode({"month": "{previous}"})),
        ("figures: one department's trend", "/figures?" + urlencode({"department": department})),
    ]


async def measure(backend: str, url: str, rounds: int) -> list[Timing]:
    """Serve the console on a benchmark database and time its pages."""
    base = load_settings(REPO_ROOT / "config.toml")
    settings = base.model_copy(update={"database": base.database.model_copy(update={"url": url})})
    knowledge = KnowledgeStore(settings.knowledge_dir, thresholds_from(settings))
    services = await Services.start(settings, knowledge=knowledge)
    try:
        async with services.sessions() as session:
            if await find_user(session, MANAGER) is None:
                await create_user(
                    session,
                    username=MANAGER,
                    password=PASSWORD,
                    role="manager",
                    departments=set(knowledge.kb.departments),
                )
                await session.commit()
            oldest, newest = (
                await session.execute(
                    select(func.min(Ticket.created_at), func.max(Ticket.created_at))
                )
            ).one()
            number = (await session.execute(select(Ticket.number).limit(1))).scalar_one()
        middle_moment = oldest + (newest - oldest) / 2
        middle = f"{round(middle_moment.timestamp() * 1_000_000)}.{2**62}"
        # Twelve months of figures from nothing, as after a restart (the console then keeps the
        # finished months and refreshes them in the background).
        started = time.perf_counter()
        await FiguresCache(services.sessions, settings.tickets.timezone).refresh()
        cold_refresh = (time.perf_counter() - started) * 1000
        app = init_app(services)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        console = f"http://{host}:{port}"
        cache = app[FIGURES_CACHE]
        await cache.refresh()
        previous = str(previous_month(cache.current_month()))
        timings = []
        jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=console)
        async with aiohttp.ClientSession(base_url=console, cookie_jar=jar) as http:
            await log_in(http, MANAGER, PASSWORD)
            for name, path in scenarios(middle, "urban-management", number):
                path = path.replace("%7Bprevious%7D", previous)
                samples = []
                rows = 0
                for attempt in range(rounds + 2):
                    started = time.perf_counter()
                    async with http.get(path) as response:
                        body = await response.text()
                        assert response.status == 200, f"{path}: {response.status}"
                    elapsed = (time.perf_counter() - started) * 1000
                    if attempt >= 2:  # the first two warm the caches
                        samples.append(elapsed)
                    rows = body.count('<a href="/tickets/')
                samples.sort()
                timings.append(
                    Timing(
                        backend=backend,
                        page=name,
                        url=path,
                        median=round(statistics.median(samples), 1),
                        p95=round(samples[max(0, round(len(samples) * 0.95) - 1)], 1),
                        worst=round(samples[-1], 1),
                        rows=rows,
                    )
                )
                print(f"{backend:>10}  {name:<40} {timings[-1].median:>8.1f} ms", flush=True)
        timings.append(
            Timing(
                backend,
                "figures: twelve finished months, cold",
                "(cache refresh)",
                round(cold_refresh, 1),
                round(cold_refresh, 1),
                round(cold_refresh, 1),
                0,
            )
        )
        await runner.cleanup()
        return timings
    finally:
        await services.close()


def markdown(timings: Sequence[Timing], count: int) -> str:
    """Return the results as a Markdown table."""
    lines = [
        f"Console pages with {count:,} tickets (median / p95 / worst of the timed requests, ms):",
        "",
        "| page | backend | median | p95 | worst | rows shown |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for t in timings:
        lines.append(f"| {t.page} | {t.backend} | {t.median} | {t.p95} | {t.worst} | {t.rows} |")
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> list[Timing]:
    timings: list[Timing] = []
    backends = ["postgresql", "sqlite"] if args.backend == "both" else [args.backend]
    for backend in backends:
        prepare = prepare_postgresql if backend == "postgresql" else prepare_sqlite
        url = await prepare(args.tickets, args.fresh)
        timings += await measure(backend, url, args.rounds)
    return timings


def main(argv: Sequence[str]) -> int:
    """Run the console benchmark."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks console", description=__doc__)
    parser.add_argument(
        "--tickets", type=int, default=1_000_000, help="tickets (default 1,000,000)"
    )
    parser.add_argument(
        "--backend", choices=("postgresql", "sqlite", "both"), default="both", help="database"
    )
    parser.add_argument("--rounds", type=int, default=15, help="timed requests per page")
    parser.add_argument("--fresh", action="store_true", help="reload the tickets even if present")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args, _ = parser.parse_known_args(list(argv))
    import logging

    logging.getLogger("alembic").setLevel(logging.WARNING)
    timings = asyncio.run(run(args))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "console.json").write_text(
        json.dumps([asdict(t) for t in timings], ensure_ascii=False, indent=2), encoding="utf-8"
    )
    print()
    print(
        json.dumps([asdict(t) for t in timings], ensure_ascii=False, indent=2)
        if args.json
        else markdown(timings, args.tickets)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
