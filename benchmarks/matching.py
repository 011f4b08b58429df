"""Matching benchmark: latency per question, index build time and index memory by size.

`python -m benchmarks matching [--sizes 100,1000,10000] [--repeat 3] [--no-write] [--profile]`

Every knowledge base is measured in a fresh process pinned to one CPU, so that its memory figures
are its own and the one-off process cost (jieba's general vocabulary and the tables of
`bot.answering.matching.prepare_process`) is reported apart from the index build that every load of a
knowledge base pays.

Knowledge bases measured:
- synthetic ones of 100, 1,000 and 10,000 items: the bundled base (96 items), then copies of its
  items with another district name and other documents (身份证 → 护照 …) in their title,
  questions, keywords and answer, so that no two texts are the same;
- the real Taipei City FAQ (1,877 items, traditional Chinese, benchmarks/data/taipei-faq).

The questions are those of both evaluation sets (tests/data), asked in order: one pass to warm up
(its p99 is reported as "first pass"), then `--repeat` timed passes.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import gc
import io
import json
import os
import platform
import pstats
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
BUNDLED = REPO_ROOT / "knowledge"
TAIPEI = REPO_ROOT / "benchmarks" / "data" / "taipei-faq"
EVALUATION_SETS = (
    REPO_ROOT / "tests" / "data" / "evaluation.toml",
    REPO_ROOT / "tests" / "data" / "evaluation-holdout.toml",
)
REPORT = REPO_ROOT / "docs" / "benchmarks.md"
SIZES = (100, 1_000, 10_000)

# The project's targets, at 10,000 items on one core.
TARGET_ITEMS = 10_000
TARGET_P99_MS = 5.0
TARGET_BUILD_S = 3.0

START_MARK = "<!-- matching benchmark: start (written by python -m benchmarks matching) -->"
END_MARK = "<!-- matching benchmark: end -->"

DOC_INTRO = """# Benchmarks

## Matching

What is measured, for knowledge bases of growing size:

- **latency** of `Matcher.match(question)`: each call timed with `time.perf_counter` (and its
  CPU time with `time.thread_time`), one process pinned to one CPU core, over the questions of
  both evaluation sets (`tests/data/`, 540 questions: paraphrases, typos, traditional Chinese,
  English, stories, out-of-scope). One pass warms up (its p99 is the "first pass" column), then
  three timed passes give p50, p99 and max;
- **index build**: the time to build `Matcher(kb)` over a loaded knowledge base, which every load
  and every reload pays (wall and CPU time); loading and validating the TOML files is reported
  beside it;
- **index memory**: what the index keeps after the build (tracemalloc, and the growth of the
  process's resident set), and the tracemalloc peak during the build;
- **process cost**: once per process, jieba's general vocabulary is read
  (`bot.core.text.general_vocabulary`), with the tables derived from it and the pinyin of every
  Chinese character (`bot.answering.matching.prepare_process`); they depend on no knowledge base and are
  shared by every later load, so they are reported apart.

Knowledge bases: synthetic ones of 100, 1,000 and 10,000 items (the bundled 96 items, then
copies whose title, questions, keywords and answer name another district and other documents,
so no two texts are the same), and the real Taipei City FAQ (1,877 items, traditional Chinese,
`benchmarks/data/taipei-faq/`). Each one is measured in a fresh process.

Run it from the repository root (it rewrites the results below):

```
make bench                      # or: PYTHONPATH=. .venv/bin/python -m benchmarks
PYTHONPATH=. .venv/bin/python -m benchmarks matching --sizes 100,1000 --no-write
PYTHONPATH=. .venv/bin/python -m benchmarks matching --profile   # cProfile at the largest size
```

Targets: p99 ≤ 5 ms per question and index build ≤ 3 s at 10,000 items on one core.
"""

# -- synthetic knowledge bases --------------------------------------------------------------------

_PLACE_FIRST = "东西南北中新老上下前后"
_PLACE_SECOND = "湖山河桥城港塘湾岭洲林"
_PLACE_KIND = ("区", "镇", "街道", "乡")
# Documents residents bring or ask about; a copy names another one wherever its original does.
_OBJECTS = (
    "身份证",
    "户口簿",
    "居住证",
    "驾驶证",
    "护照",
    "社保卡",
    "营业执照",
    "结婚证",
    "公积金",
    "医保卡",
    "房产证",
    "残疾证",
)
_OBJECT = re.compile("|".join(sorted(_OBJECTS, key=len, reverse=True)))


def _place(copy: int) -> str:
    first = _PLACE_FIRST[copy % len(_PLACE_FIRST)]
    second = _PLACE_SECOND[(copy // len(_PLACE_FIRST)) % len(_PLACE_SECOND)]
    kind = _PLACE_KIND[(copy // (len(_PLACE_FIRST) * len(_PLACE_SECOND))) % len(_PLACE_KIND)]
    return first + second + kind


def _vary(text: str, copy: int) -> str:
    """Name other documents than the original does, shifted by the copy number."""
    return _OBJECT.sub(
        lambda m: _OBJECTS[(_OBJECTS.index(m.group()) + copy) % len(_OBJECTS)], text
    )


def _toml(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return "[" + ", ".join(_toml(v) for v in value) + "]"


def write_synthetic_knowledge(size: int, folder: Path) -> Path:
    """Write a knowledge base of `size` items: the bundled one, then varied copies of it."""
    from bot.answering.knowledge_base import load_knowledge_base

    base = load_knowledge_base(BUNDLED)
    folder.mkdir(parents=True)
    for name in ("departments.toml", "synonyms.toml"):
        shutil.copy(BUNDLED / name, folder / name)
    originals = list(base.items.values())
    for number in range(size):
        item = originals[number % len(originals)]
        copy = number // len(originals)
        fields: dict[str, Any] = {
            "id": item.id,
            "kind": item.kind,
            "title": item.title,
            "category": item.category,
            "department": item.department,
            "questions": list(item.questions),
            "keywords": list(item.keywords),
            "answer": item.answer,
            "title_en": item.title_en,
            "questions_en": list(item.questions_en),
            "answer_en": item.text.get("answer_en", ""),
        }
        if copy:
            place = _place(copy)
            fields |= {
                "id": f"{item.id}-{copy}",
                "title": place + _vary(item.title, copy),
                "questions": [f"在{place}{_vary(q, copy)}" for q in item.questions],
                "keywords": [_vary(k, copy) for k in item.keywords] + [place],
                "answer": f"{place}：{_vary(item.answer, copy)}",
                "title_en": f"{item.title_en} (district {copy})" if item.title_en else "",
            }
        folder_name = "guides" if item.kind == "guide" else "disclosures"
        text = "".join(f"{key} = {_toml(value)}\n" for key, value in fields.items() if value)
        path = folder / folder_name / f"{fields['id']}.toml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder


# -- one measurement, in a process of its own -----------------------------------------------------


def _rss_mib() -> float:
    """Return the resident set size of this process now, in MiB (Linux)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _pin_to_one_cpu() -> int:
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def _percentile(sorted_values: Sequence[float], share: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(share * len(sorted_values)) - 1))
    return sorted_values[index]


def measure_process_cost() -> dict[str, Any]:
    """Time the imports and the tables shared by every index of a process, and their memory."""
    _pin_to_one_cpu()
    rss_start = _rss_mib()
    started = time.perf_counter()
    import bot.answering.matching  # (the import itself is measured)
    from bot.core.text import general_vocabulary

    import_s = time.perf_counter() - started
    gc.collect()
    rss_before = _rss_mib()
    started = time.perf_counter()
    words = general_vocabulary()
    vocabulary_s = time.perf_counter() - started
    started = time.perf_counter()
    bot.answering.matching.prepare_process()
    tables_s = time.perf_counter() - started
    gc.collect()
    rss_after = _rss_mib()
    tracemalloc.start()
    copy = general_vocabulary.__wrapped__()
    traced, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del copy
    return {
        "import_s": import_s,
        "import_rss_mib": rss_before - rss_start,
        "vocabulary_words": len(words),
        "vocabulary_s": vocabulary_s,
        "tables_s": tables_s,
        "vocabulary_traced_mib": traced / 2**20,
        "vocabulary_rss_mib": rss_after - rss_before,
    }


def measure_point(directory: Path, repeat: int, *, profile: bool = False) -> dict[str, Any]:
    """Load, index and question one knowledge base; return the figures."""
    cpu = _pin_to_one_cpu()
    from bot.answering.evaluation import load_evaluation_set
    from bot.answering.knowledge_base import load_knowledge_base
    from bot.answering.matching import Matcher, prepare_process
    from bot.answering.store import thresholds_from
    from bot.core.config import load_settings

    # Every question is matched afresh: the results the matcher keeps for questions asked again
    # word for word would otherwise make the repeated passes free.
    thresholds = replace(
        thresholds_from(load_settings(REPO_ROOT / "config.toml")), recent_results=0
    )
    questions = [c.question for path in EVALUATION_SETS for c in load_evaluation_set(path)]
    prepare_process()  # the process cost, paid before anything is measured

    started = time.perf_counter()
    kb = load_knowledge_base(directory)
    load_s = time.perf_counter() - started

    profiler = cProfile.Profile() if profile else None
    gc.collect()
    rss_before = _rss_mib()
    if profiler:
        profiler.enable()
    started, started_cpu = time.perf_counter(), time.process_time()
    matcher = Matcher(kb, thresholds)
    build_s = time.perf_counter() - started
    build_cpu_s = time.process_time() - started_cpu
    if profiler:
        profiler.disable()
    gc.collect()
    rss_delta = _rss_mib() - rss_before

    first_pass: list[float] = []
    decisions: dict[str, int] = {}
    if profiler:
        profiler.enable()
    for question in questions:
        started = time.perf_counter()
        result = matcher.match(question)
        first_pass.append(time.perf_counter() - started)
        decisions[result.decision] = decisions.get(result.decision, 0) + 1
    if profiler:
        profiler.disable()
    timings: list[float] = []
    cpu_timings: list[float] = []
    for _ in range(repeat):
        for question in questions:
            started_cpu = time.thread_time()
            started = time.perf_counter()
            matcher.match(question)
            timings.append(time.perf_counter() - started)
            cpu_timings.append(time.thread_time() - started_cpu)
    first_pass.sort()
    timings.sort()
    cpu_timings.sort()

    del matcher
    gc.collect()
    tracemalloc.start()
    traced_matcher = Matcher(kb, thresholds)
    retained, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del traced_matcher

    figures: dict[str, Any] = {
        "items": len(kb.items),
        "questions": len(questions),
        "calls": len(timings),
        "decisions": decisions,
        "cpu": cpu,
        "load_s": load_s,
        "build_s": build_s,
        "build_cpu_s": build_cpu_s,
        "retained_mib": retained / 2**20,
        "peak_mib": peak / 2**20,
        "rss_mib": rss_delta,
        "p50_ms": statistics.median(timings) * 1000,
        "p99_ms": _percentile(timings, 0.99) * 1000,
        "max_ms": timings[-1] * 1000,
        "first_p99_ms": _percentile(first_pass, 0.99) * 1000,
        "cpu_p50_ms": statistics.median(cpu_timings) * 1000,
        "cpu_p99_ms": _percentile(cpu_timings, 0.99) * 1000,
    }
    if profiler:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(25)
        figures["profile"] = out.getvalue()
    return figures


def _run_child(*args: str) -> dict[str, Any]:
    """Run one measurement in a fresh process; return its figures."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    # One core: no thread pools in the numeric libraries either.
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = "1"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.matching", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"benchmark process failed:\n{done.stderr}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


# -- report ---------------------------------------------------------------------------------------


def _machine() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in lscpu.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    commit = subprocess.run(
        ["git", "describe", "--always", "--dirty"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return (
        f"{model}, {os.cpu_count()} logical CPUs (one used); Python "
        f"{platform.python_version()}; {dt.date.today().isoformat()}; code at "
        f"{commit or 'unknown commit'}; load average at the start {load}"
    )


def _table(points: list[tuple[str, dict[str, Any]]], process: dict[str, Any]) -> str:
    lines = [
        "| knowledge base | items | load (s) | index build (s) | build CPU (s)"
        " | index retained (MiB, tracemalloc) | build peak (MiB, tracemalloc) | RSS growth (MiB)"
        " | p50 (ms) | p99 (ms) | max (ms) | p99 CPU (ms) | first pass p99 (ms) |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for label, f in points:
        lines.append(
            f"| {label} | {f['items']:,} | {f['load_s']:.2f} | {f['build_s']:.2f} "
            f"| {f['build_cpu_s']:.2f} | {f['retained_mib']:.1f} | {f['peak_mib']:.1f} "
            f"| {f['rss_mib']:.1f} | {f['p50_ms']:.2f} | {f['p99_ms']:.2f} | {f['max_ms']:.2f} "
            f"| {f['cpu_p99_ms']:.2f} | {f['first_p99_ms']:.2f} |"
        )
    lines.append("")
    lines.append(
        f"Process cost, once per process: importing the matcher {process['import_s']:.2f} s "
        f"(+{process['import_rss_mib']:.0f} MiB RSS); the general vocabulary "
        f"({process['vocabulary_words']:,} words) {process['vocabulary_s']:.2f} s, "
        f"{process['vocabulary_traced_mib']:.0f} MiB (tracemalloc); the tables derived from it "
        f"and the pinyin of every Chinese character (`bot.answering.matching.prepare_process`) "
        f"{process['tables_s']:.2f} s more; +{process['vocabulary_rss_mib']:.0f} MiB RSS in all. "
        f"Not included in the rows above."
    )
    return "\n".join(lines)


def _verdict(points: list[tuple[str, dict[str, Any]]]) -> str:
    at_target = [f for _, f in points if f["items"] == TARGET_ITEMS]
    if not at_target:
        return f"(No {TARGET_ITEMS:,}-item point in this run: targets not checked.)"
    f = at_target[0]
    p99 = "met" if f["p99_ms"] <= TARGET_P99_MS else "MISSED"
    build = "met" if f["build_s"] <= TARGET_BUILD_S else "MISSED"
    return (
        f"Targets at {TARGET_ITEMS:,} items: p99 ≤ {TARGET_P99_MS:g} ms — {p99} "
        f"({f['p99_ms']:.2f} ms wall, {f['cpu_p99_ms']:.2f} ms CPU); index build "
        f"≤ {TARGET_BUILD_S:g} s — {build} ({f['build_s']:.2f} s wall, "
        f"{f['build_cpu_s']:.2f} s CPU). Wall time is what a resident waits; CPU time is "
        "what the code costs when other processes share the machine."
    )


def write_report(section: str, path: Path = REPORT) -> None:
    """Put the results into docs/benchmarks.md between the marks, creating the file if needed."""
    block = f"{START_MARK}\n{section}\n{END_MARK}"
    text = path.read_text(encoding="utf-8") if path.is_file() else DOC_INTRO
    if START_MARK in text and END_MARK in text:
        head, rest = text.split(START_MARK, 1)
        _, tail = rest.split(END_MARK, 1)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n### Results\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")


# -- command line ---------------------------------------------------------------------------------


def main(argv: Sequence[str]) -> int:
    """Measure every knowledge base, print the table, and write it into docs/benchmarks.md."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks matching", description=__doc__)
    parser.add_argument(
        "--sizes",
        default=",".join(str(s) for s in SIZES),
        help="synthetic sizes, comma-separated (default: %(default)s)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="timed passes (default: 3)")
    parser.add_argument("--no-taipei", action="store_true", help="leave out the Taipei FAQ")
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/benchmarks.md")
    parser.add_argument(
        "--profile", action="store_true", help="print cProfile figures at the largest size"
    )
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(",") if s.strip())

    machine = _machine()
    print(f"machine: {machine}", file=sys.stderr)
    process = _run_child("--process")
    points: list[tuple[str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="matching-benchmark-") as scratch:
        for size in sizes:
            print(f"synthetic knowledge base of {size:,} items ...", file=sys.stderr)
            folder = write_synthetic_knowledge(size, Path(scratch) / f"kb-{size}")
            wanted = ["--profile"] if args.profile and size == sizes[-1] else []
            figures = _run_child("--point", str(folder), "--repeat", str(args.repeat), *wanted)
            if "profile" in figures:
                print(figures.pop("profile"), file=sys.stderr)
            points.append((f"synthetic {size:,}", figures))
            shutil.rmtree(folder)
    if not args.no_taipei:
        print("Taipei City FAQ ...", file=sys.stderr)
        taipei = _run_child("--point", str(TAIPEI), "--repeat", str(args.repeat))
        points.append(("Taipei City FAQ (real)", taipei))
    points.sort(key=lambda point: point[1]["items"])

    section = "\n\n".join([f"Machine: {machine}.", _table(points, process), _verdict(points)])
    print(section)
    if not args.no_write:
        write_report(section)
        print(f"\nwritten to {REPORT.relative_to(REPO_ROOT)}", file=sys.stderr)
    return 0


def _child(argv: Sequence[str]) -> int:
    """Entry point of a measuring process: print its figures as one JSON line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--process", action="store_true")
    parser.add_argument("--point", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    if args.process:
        figures = measure_process_cost()
    else:
        figures = measure_point(args.point, args.repeat, profile=args.profile)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
