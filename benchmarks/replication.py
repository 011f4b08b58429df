"""Knowledge replication at 10,000 items: what carrying the knowledge base through the database
costs a host (bot/answering/replication.py), on SQLite and PostgreSQL.

`python -m benchmarks replication [--items 10000] [--rounds 30] [--backend both] [--no-write]`

With a synthetic knowledge base of `--items` item files (benchmarks/synthetic_knowledge.py, padded
with numbered copies) in host A's folder:

1. `kb publish` of the whole folder on host A (every file stored once: the first publish).
2. A new host whose folder is empty catches up: every file read from the database, checked
   against its hash and written.
3. A host already up to date, the first check after its start: every published file hashed
   (nothing is cached yet), nothing written.
4. One changed file published on host A (the transaction that stores it and raises the version),
   then host B's poll bringing it in — what each published change costs every other process,
   `--rounds` times (median and p99).

Wall time and the process's CPU time (all its threads; PostgreSQL's server work is not in it).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import tomlkit
from sqlalchemy import func, select, text

from benchmarks.synthetic_knowledge import write_synthetic_knowledge
from bot.answering.editing import file_hash
from bot.answering.replication import (
    FileChange,
    KnowledgeReplica,
    folder_files,
    raise_published_version,
)
from bot.core.db import create_engine, session_factory, upgrade_database
from bot.core.models import KnowledgeFile

REPO_ROOT = Path(__file__).resolve().parent.parent
DOC = REPO_ROOT / "docs" / "benchmarks.md"
START = "<!-- replication benchmark: start (written by python -m benchmarks replication) -->"
END = "<!-- replication benchmark: end -->"
POSTGRES = os.environ.get("TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
T = TypeVar("T")


def _percentile(samples: Sequence[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(len(ordered) * share) - 1))]


async def timed(work: Callable[[], Awaitable[T]]) -> tuple[T, float, float]:
    """Run `work`; return its result, wall milliseconds and CPU milliseconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = await work()
    return result, (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000


def write_items(directory: Path, items: int) -> None:
    """A synthetic knowledge base of `items` item files: the district copies of
    benchmarks/synthetic_knowledge.py, then numbered copies of those until there are enough."""
    written = write_synthetic_knowledge(directory, items)
    sources = sorted((directory / "guides").glob("*.toml"))
    for number in range(items - written):
        source = sources[number % len(sources)]
        document = tomlkit.parse(source.read_text(encoding="utf-8"))
        new_id = f"{document['id']}-n{number // len(sources) + 1}"
        document["id"] = new_id
        (directory / "guides" / f"{new_id}.toml").write_text(
            tomlkit.dumps(document), encoding="utf-8"
        )


@dataclass(frozen=True)
class Result:
    """One backend's figures: (wall ms, CPU ms) pairs, or (median ms, p99 ms) of the rounds."""

    files: int
    stored_mb: float
    publish: tuple[float, float]
    fresh: tuple[float, float]
    check: tuple[float, float]
    record: tuple[float, float]
    poll: tuple[float, float]
    poll_cpu: float


async def measure(url: str, root: Path, items: int, rounds: int) -> Result:
    host_a = root / "host-a"
    host_b = root / "host-b"
    write_items(host_a, items)
    host_b.mkdir()
    engine = create_engine(url)
    try:
        await upgrade_database(engine)
        sessions = session_factory(engine)
        a = KnowledgeReplica(host_a, sessions)
        published, publish_ms, publish_cpu = await timed(a.publish_folder)
        async with sessions() as session:
            stored = await session.scalar(select(func.sum(func.length(KnowledgeFile.content))))
        b = KnowledgeReplica(host_b, sessions)
        fresh, fresh_ms, fresh_cpu = await timed(b.catch_up)
        assert len(fresh.written) == len(published.published)
        current, check_ms, check_cpu = await timed(KnowledgeReplica(host_b, sessions).catch_up)
        assert not current.changed

        paths = [p for p in folder_files(host_a) if p.startswith("guides/")]
        record_ms: list[float] = []
        poll_ms: list[float] = []
        poll_cpu: list[float] = []
        for number in range(rounds):
            path = host_a / paths[(number * 7919) % len(paths)]
            before = path.read_text(encoding="utf-8")
            after = before + f"# edit {number}\n"
            path.write_text(after, encoding="utf-8")
            change = FileChange(a.relative(path), after, file_hash(before))

            async def publish(change: FileChange = change) -> None:
                async with a.exclusive(), sessions() as session:
                    version = await raise_published_version(session)
                    await a.record(session, version, [change])
                    await session.commit()

            _, ms, _ = await timed(publish)
            record_ms.append(ms)
            caught, ms, cpu = await timed(b.catch_up)
            assert caught.written == (change.path,)
            poll_ms.append(ms)
            poll_cpu.append(cpu)
    finally:
        await engine.dispose()
    return Result(
        files=len(published.published),
        stored_mb=int(stored or 0) / 1e6,
        publish=(publish_ms, publish_cpu),
        fresh=(fresh_ms, fresh_cpu),
        check=(check_ms, check_cpu),
        record=(statistics.median(record_ms), _percentile(record_ms, 0.99)),
        poll=(statistics.median(poll_ms), _percentile(poll_ms, 0.99)),
        poll_cpu=statistics.median(poll_cpu),
    )


async def on_postgresql(root: Path, items: int, rounds: int) -> Result:
    name = f"bench_replication_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES)
    try:
        async with admin.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            return await measure(f"{POSTGRES.rpartition('/')[0]}/{name}", root, items, rounds)
        finally:
            async with admin.connect() as connection:
                await connection.execution_options(isolation_level="AUTOCOMMIT")
                await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


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


def markdown(items: int, rounds: int, results: dict[str, Result]) -> str:
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())

    def row(name: str, cells: Sequence[str]) -> str:
        return f"| {name} | " + " | ".join(cells) + " |"

    def pair(value: tuple[float, float]) -> str:
        return f"{value[0]:,.0f} ms (CPU {value[1]:,.0f} ms)"

    figures = list(results.values())
    lines = [
        START,
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, "
        f"shared with other work; Python {platform.python_version()}; "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; code at {_commit()}; "
        f"load average at the end {load}.",
        "",
        f"{items:,} items; one changed file published and taken in {rounds} times.",
        "",
        row("", list(results)),
        "|---|" + "--:|" * len(results),
        row(
            "files stored by `kb publish` (text)",
            [f"{r.files:,} ({r.stored_mb:.1f} MB)" for r in figures],
        ),
        row("`kb publish` of the whole folder", [pair(r.publish) for r in figures]),
        row(
            "a new host's empty folder caught up (every file written)",
            [pair(r.fresh) for r in figures],
        ),
        row(
            "first check of an up-to-date folder (every file hashed)",
            [pair(r.check) for r in figures],
        ),
        row(
            "publishing one file: the transaction, median / p99",
            [f"{r.record[0]:.1f} / {r.record[1]:.1f} ms" for r in figures],
        ),
        row(
            "another host's poll taking it in, median / p99 (median CPU)",
            [f"{r.poll[0]:.1f} / {r.poll[1]:.1f} ms ({r.poll_cpu:.1f} ms)" for r in figures],
        ),
        END,
    ]
    return "\n".join(lines)


def write_results(text_block: str) -> None:
    doc = DOC.read_text(encoding="utf-8")
    if START in doc and END in doc:
        before, rest = doc.split(START, 1)
        after = rest.split(END, 1)[1]
        doc = before + text_block + after
    else:
        doc = doc.rstrip("\n") + "\n\n" + text_block + "\n"
    DOC.write_text(doc, encoding="utf-8")


async def run(args: argparse.Namespace) -> str:
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    results: dict[str, Result] = {}
    for backend in backends:
        with tempfile.TemporaryDirectory(prefix="bench-replication-") as folder:
            root = Path(folder)
            print(f"{backend}: {args.items:,} items …", flush=True)
            if backend == "sqlite":
                url = f"sqlite+aiosqlite:///{root / 'bench.sqlite3'}"
                results["SQLite"] = await measure(url, root, args.items, args.rounds)
            else:
                results["PostgreSQL"] = await on_postgresql(root, args.items, args.rounds)
    return markdown(args.items, args.rounds, results)


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks replication")
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument(
        "--no-write", action="store_true", help="do not rewrite docs/benchmarks.md"
    )
    args = parser.parse_args(list(argv))
    text_block = asyncio.run(run(args))
    if not args.no_write:
        write_results(text_block)
    print(text_block)
    return 0
