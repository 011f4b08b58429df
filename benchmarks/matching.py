"""Matching benchmark: latency per question, index build time and memory by size.

`python -m benchmarks matching [--sizes 100,1000,10000] [--repeat 3] [--signals semantic,lexical]
[--no-write] [--profile]`

Every knowledge base is measured in fresh processes pinned to one CPU, so that its memory figures
are its own and the one-off process cost (jieba's general vocabulary, the tables of
`bot.answering.matching.prepare_process` and the sentence-embedding model) is reported apart from
the index build that every load of a knowledge base pays.

Each knowledge base is measured with the semantic signal on (the default `[matching]
semantic_model`) and, for comparison, off (words only). With it on, a first process builds the
index with an empty embedding cache (the cold build: every text is encoded) and writes the cache
to a temporary folder; a second process builds it again from that cache (the warm build, what a
start or a reload pays once the texts are known), then measures latency and memory.

Knowledge bases measured:
- synthetic ones of 100, 1,000 and 10,000 items: the bundled base (96 items), then copies of its
  items with another district name and other documents (身份证 → 护照 …) in their title,
  questions, keywords and answer, so that no two texts are the same;
- the real Taipei City FAQ (1,877 items, traditional Chinese, benchmarks/data/taipei-faq).

The questions are those of the three evaluation sets (tests/data), asked in order with no result
remembered (`recent_results = 0`): one pass to warm up (its p99 is reported as "first pass"), then
`--repeat` timed passes.
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
    REPO_ROOT / "tests" / "data" / "evaluation-residents.toml",
)
REPORT = REPO_ROOT / "docs" / "benchmarks.md"
SIZES = (100, 1_000, 10_000)
# The signals a knowledge base is measured with: the semantic one as configured by default, and
# words only, for comparison.
SIGNALS = ("semantic", "lexical")

# The project's targets, at 10,000 items on one core.
TARGET_ITEMS = 10_000
TARGET_P99_MS = 5.0
TARGET_BUILD_S = 3.0

START_MARK = "<!-- matching benchmark: start (written by python -m benchmarks matching) -->"
END_MARK = "<!-- matching benchmark: end -->"

DOC_INTRO = """# Benchmarks

## Matching

What is measured, for knowledge bases of growing size, with the semantic signal on (the
sentence-embedding model of `[matching] semantic_model`, on by default) and off (words only, for
comparison):

- **latency** of `Matcher.match(question)`: each call timed with `time.perf_counter` (and its
  CPU time with `time.thread_time`), one process pinned to one CPU core, over the questions of
  the three evaluation sets (`tests/data/`, 920 questions: paraphrases, typos, traditional
  Chinese, English, stories, residents' own wording, out-of-scope), with no result remembered
  (`recent_results = 0`): every question is matched afresh. One pass warms up (its p99 is the
  "first pass" column), then three timed passes give p50, p99 and max. With the semantic signal
  on, one more pass times the encoding of each question alone (`Matcher.question_vector`), which
  every match pays;
- **index build**: the time to build the index over a loaded knowledge base, which every load
  and every reload pays (wall and CPU time), with a warm embedding cache (every text's
  embedding already on disk, as at any start after the first); the cold build, with an empty
  cache, encodes every text and is reported beside it; loading and validating the TOML files is
  reported too;
- **memory**: what the index keeps after the build (tracemalloc, and the growth of the
  process's resident set) and the tracemalloc peak during the build; of what it keeps, the
  embedding arrays (`_sem_vectors`, `_sem_centroids`, `_sem_reduced`) and the embedding cache
  held in memory;
- **process cost**: once per process, jieba's general vocabulary is read
  (`bot.core.text.general_vocabulary`), with the tables derived from it and the pinyin of every
  Chinese character (`bot.answering.matching.prepare_process`), and the embedding model is
  loaded (`bot.answering.semantic.load_embedder`); they depend on no knowledge base and are
  shared by every later load, so they are reported apart.

Knowledge bases: synthetic ones of 100, 1,000 and 10,000 items (the bundled 96 items, then
copies whose title, questions, keywords and answer name another district and other documents,
so no two texts are the same), and the real Taipei City FAQ (1,877 items, traditional Chinese,
`benchmarks/data/taipei-faq/`). Each one is measured in fresh processes: the cold build (its
embedding cache in a temporary folder), then the warm build from that cache with the latency
and memory, then the same without the semantic signal.

Run it from the repository root (it rewrites the results below):

```
make bench                      # or: PYTHONPATH=. .venv/bin/python -m benchmarks
PYTHONPATH=. .venv/bin/python -m benchmarks matching --sizes 100,1000 --no-write
PYTHONPATH=. .venv/bin/python -m benchmarks matching --signals semantic --no-taipei
PYTHONPATH=. .venv/bin/python -m benchmarks matching --profile   # cProfile at the largest size
```

Targets, with the semantic signal on: p99 ≤ 5 ms per question and index build ≤ 3 s (warm
embedding cache) at 10,000 items on one core. The cold build has no target.
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


def _load_embedder() -> Any:
    """Load the default sentence-embedding model; fail loudly when it does not load."""
    from bot.answering.semantic import DEFAULT_MODEL, load_embedder

    status = load_embedder(DEFAULT_MODEL)
    if status.embedder is None:
        raise RuntimeError(f"the semantic signal is off: {status.reason}")
    return status.embedder


def measure_process_cost() -> dict[str, Any]:
    """Time the imports, the tables and the model shared by every index of a process."""
    _pin_to_one_cpu()
    rss_start = _rss_mib()
    started = time.perf_counter()
    import bot.answering.matching  # (the import itself is measured)
    from bot.core.text import _dictionary_counts, general_vocabulary

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
    started = time.perf_counter()
    embedder = _load_embedder()
    model_s = time.perf_counter() - started
    gc.collect()
    rss_model = _rss_mib()
    tracemalloc.start()
    copy = _dictionary_counts.__wrapped__()
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
        "model": f"{embedder.name} {embedder.version}",
        "model_s": model_s,
        "model_rss_mib": rss_model - rss_after,
    }


def _build(
    kb: Any, thresholds: Any, embedder: Any, cache_dir: Path | None, *, kept: bool = True
) -> tuple[Any, Any | None]:
    """Build the index as `bot.answering.store.build_matcher` does; return it and its cache.

    The embedding cache is a new object each time (build_matcher keeps one per process), so a
    build reads the cache from disk as a start does and tracemalloc counts what it holds. The
    index is kept in (and read back from) `cache_dir` too, as the bot does, unless `kept` is
    False: then it is built from the embeddings, as after an edit of the knowledge base.
    """
    from bot.answering.lexicon import general_lexicon
    from bot.answering.matching import Matcher
    from bot.answering.semantic import EmbeddingCache

    cache = EmbeddingCache(cache_dir, embedder) if embedder is not None else None
    lexicon = general_lexicon(english=embedder is None)
    snapshot = cache_dir if kept else None
    return Matcher(kb, thresholds, semantic=cache, lexicon=lexicon, snapshot=snapshot), cache


def _prepare(semantic: bool) -> tuple[Any, list[str], Any | None, dict[str, float]]:
    """Pin to one core, pay the process cost; return thresholds, questions and the model."""
    _pin_to_one_cpu()
    from bot.answering.evaluation import load_evaluation_set
    from bot.answering.lexicon import general_lexicon
    from bot.answering.matching import prepare_process
    from bot.answering.store import thresholds_from
    from bot.core.config import load_settings

    # Every question is matched afresh: the results the matcher keeps for questions asked again
    # word for word would otherwise make the repeated passes free.
    thresholds = replace(
        thresholds_from(load_settings(REPO_ROOT / "config.toml")), recent_results=0
    )
    questions = [c.question for path in EVALUATION_SETS for c in load_evaluation_set(path)]
    prepare_process()  # the process cost, paid before anything is measured
    general_lexicon(english=not semantic)  # read once per process, too
    figures: dict[str, float] = {}
    embedder = None
    if semantic:
        gc.collect()
        rss_before = _rss_mib()
        started = time.perf_counter()
        embedder = _load_embedder()
        figures["model_s"] = time.perf_counter() - started
        gc.collect()
        figures["model_rss_mib"] = _rss_mib() - rss_before
    return thresholds, questions, embedder, figures


def measure_cold_build(directory: Path, cache_dir: Path) -> dict[str, Any]:
    """Build the index with an empty embedding cache (every text encoded); write the cache."""
    from bot.answering.knowledge_base import load_knowledge_base

    if cache_dir.exists() and any(cache_dir.iterdir()):
        raise RuntimeError(f"{cache_dir} is not empty: the build would not be cold")
    thresholds, _, embedder, _ = _prepare(semantic=True)
    kb = load_knowledge_base(directory)
    gc.collect()
    started, started_cpu = time.perf_counter(), time.process_time()
    _, cache = _build(kb, thresholds, embedder, cache_dir)
    build_s = time.perf_counter() - started
    build_cpu_s = time.process_time() - started_cpu
    files = list(cache_dir.glob("*.npz"))
    kept = list(cache_dir.glob("index-*"))
    return {
        "cold_build_s": build_s,
        "cold_build_cpu_s": build_cpu_s,
        "encoded_texts": cache.misses,
        "cache_file_mib": sum(f.stat().st_size for f in files) / 2**20,
        "snapshot_file_mib": sum(f.stat().st_size for f in kept) / 2**20,
    }


def _embedding_arrays_mib(matcher: Any) -> float:
    """The bytes of the index's embedding arrays: per-text vectors, centroids, reduced scan."""
    arrays = [matcher._sem_vectors, matcher._sem_first, matcher._sem_centroids]
    arrays += list(matcher._sem_reduced or ())
    return sum(a.nbytes for a in arrays) / 2**20


def measure_point(
    directory: Path, repeat: int, *, cache_dir: Path | None, profile: bool = False
) -> dict[str, Any]:
    """Load, index and question one knowledge base; return the figures.

    With `cache_dir` the semantic signal is on and the embeddings come from that folder (written
    by a cold build before); without it, the matcher uses words only.
    """
    from bot.answering.knowledge_base import load_knowledge_base
    from bot.answering.matching import normalize
    from bot.answering.semantic import EmbeddingCache

    semantic = cache_dir is not None
    thresholds, questions, embedder, figures = _prepare(semantic)
    cpu = min(os.sched_getaffinity(0))

    started = time.perf_counter()
    kb = load_knowledge_base(directory)
    load_s = time.perf_counter() - started

    profiler = cProfile.Profile() if profile else None
    gc.collect()
    rss_before = _rss_mib()
    if profiler:
        profiler.enable()
    started, started_cpu = time.perf_counter(), time.process_time()
    matcher, cache = _build(kb, thresholds, embedder, cache_dir)
    build_s = time.perf_counter() - started
    build_cpu_s = time.process_time() - started_cpu
    if profiler:
        profiler.disable()
    gc.collect()
    rss_delta = _rss_mib() - rss_before
    if matcher.thresholds.recent_results != 0:
        raise RuntimeError("results are remembered: repeated passes would not be matched")
    if semantic and cache is not None and cache.misses:
        raise RuntimeError(f"the warm build encoded {cache.misses} texts: the cache was not warm")
    if semantic and not matcher.from_snapshot:
        raise RuntimeError("the warm build did not read the index kept by the cold build")

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
    # The question's embedding alone, which every match with the semantic signal pays.
    encodings: list[float] = []
    cpu_encodings: list[float] = []
    if semantic:
        for text in (normalize(q) for q in questions):
            started_cpu = time.thread_time()
            started = time.perf_counter()
            matcher.question_vector(text)
            encodings.append(time.perf_counter() - started)
            cpu_encodings.append(time.thread_time() - started_cpu)
    first_pass.sort()
    timings.sort()
    cpu_timings.sort()
    encodings.sort()
    cpu_encodings.sort()
    arrays_mib = _embedding_arrays_mib(matcher)

    del matcher, cache
    gc.collect()
    rebuild: dict[str, float] = {}
    if semantic:
        # The build after an edit of the knowledge base: the kept index is of other inputs,
        # every text's embedding is on disk.
        started, started_cpu = time.perf_counter(), time.process_time()
        rebuilt, cache = _build(kb, thresholds, embedder, cache_dir, kept=False)
        rebuild = {
            "rebuild_s": time.perf_counter() - started,
            "rebuild_cpu_s": time.process_time() - started_cpu,
        }
        del rebuilt, cache
        gc.collect()
    tracemalloc.start()
    traced_matcher, _ = _build(kb, thresholds, embedder, cache_dir)
    retained, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del traced_matcher
    gc.collect()
    cache_mib = 0.0
    if semantic:
        # What the embedding cache holds in memory (the bot keeps it for the process's life).
        tracemalloc.start()
        held = EmbeddingCache(cache_dir, embedder)
        held.embed([])
        cache_mib = tracemalloc.get_traced_memory()[0] / 2**20
        tracemalloc.stop()
        del held

    figures |= rebuild | {
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
        "embedding_arrays_mib": arrays_mib,
        "embedding_cache_mib": cache_mib,
        "p50_ms": statistics.median(timings) * 1000,
        "p99_ms": _percentile(timings, 0.99) * 1000,
        "max_ms": timings[-1] * 1000,
        "first_p99_ms": _percentile(first_pass, 0.99) * 1000,
        "first_max_ms": first_pass[-1] * 1000,
        "cpu_p50_ms": statistics.median(cpu_timings) * 1000,
        "cpu_p99_ms": _percentile(cpu_timings, 0.99) * 1000,
    }
    if encodings:
        figures["encode_p50_ms"] = statistics.median(encodings) * 1000
        figures["encode_p99_ms"] = _percentile(encodings, 0.99) * 1000
        figures["encode_cpu_p50_ms"] = statistics.median(cpu_encodings) * 1000
        figures["encode_cpu_p99_ms"] = _percentile(cpu_encodings, 0.99) * 1000
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


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return float("nan")


def _load() -> str:
    return ", ".join(f"{v:.2f}" for v in os.getloadavg())


def _machine() -> str:
    commit = subprocess.run(
        ["git", "describe", "--always", "--dirty"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"{_cpu_model()}, {os.cpu_count()} logical CPUs (one used), {_memory_gib():.0f} GiB RAM, "
        f"shared with other work; Python {platform.python_version()}; {now}; code at "
        f"{commit or 'unknown commit'}; load average (1, 5, 15 min) at the start {_load()}"
    )


Point = tuple[str, str, dict[str, Any]]  # knowledge base, signal, figures

_SIGNAL_LABEL = {"semantic": "semantic + words", "lexical": "words only"}


def _latency_table(points: list[Point]) -> str:
    lines = [
        "| knowledge base | items | signal | p50 (ms) | p99 (ms) | max (ms) | p50 CPU (ms)"
        " | p99 CPU (ms) | first pass p99 (ms) | encoding the question p50 / p99 (ms)"
        " | encoding CPU p50 / p99 (ms) |",
        "|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for label, signal, f in points:
        encode = (
            f"{f['encode_p50_ms']:.2f} / {f['encode_p99_ms']:.2f}" if "encode_p50_ms" in f else ""
        )
        encode_cpu = (
            f"{f['encode_cpu_p50_ms']:.2f} / {f['encode_cpu_p99_ms']:.2f}"
            if "encode_cpu_p50_ms" in f
            else ""
        )
        lines.append(
            f"| {label} | {f['items']:,} | {_SIGNAL_LABEL[signal]} | {f['p50_ms']:.2f} "
            f"| {f['p99_ms']:.2f} | {f['max_ms']:.2f} | {f['cpu_p50_ms']:.2f} "
            f"| {f['cpu_p99_ms']:.2f} | {f['first_p99_ms']:.2f} | {encode} | {encode_cpu} |"
        )
    return "\n".join(lines)


def _build_table(points: list[Point]) -> str:
    lines = [
        "| knowledge base | items | signal | load (s) | index build (s) | build CPU (s)"
        " | build after an edit (s) | cold build (s) | texts encoded | kept index (MiB)"
        " | index retained (MiB, tracemalloc)"
        " | of it embedding arrays (MiB) | of it embedding cache (MiB)"
        " | build peak (MiB, tracemalloc) | RSS growth (MiB) |",
        "|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for label, signal, f in points:
        semantic = signal == "semantic"
        cold = f"{f['cold_build_s']:.1f}" if "cold_build_s" in f else ""
        encoded = f"{f['encoded_texts']:,}" if "encoded_texts" in f else ""
        rebuild = f"{f['rebuild_s']:.2f}" if "rebuild_s" in f else ""
        kept = f"{f['snapshot_file_mib']:.0f}" if "snapshot_file_mib" in f else ""
        arrays = f"{f['embedding_arrays_mib']:.1f}" if semantic else ""
        cache = f"{f['embedding_cache_mib']:.1f}" if semantic else ""
        lines.append(
            f"| {label} | {f['items']:,} | {_SIGNAL_LABEL[signal]} | {f['load_s']:.2f} "
            f"| {f['build_s']:.2f} | {f['build_cpu_s']:.2f} | {rebuild} | {cold} | {encoded} "
            f"| {kept} "
            f"| {f['retained_mib']:.1f} | {arrays} | {cache} | {f['peak_mib']:.1f} "
            f"| {f['rss_mib']:.1f} |"
        )
    return "\n".join(lines)


def _process_cost(process: dict[str, Any]) -> str:
    return (
        f"Process cost, once per process: importing the matcher {process['import_s']:.2f} s "
        f"(+{process['import_rss_mib']:.0f} MiB RSS); the general vocabulary "
        f"({process['vocabulary_words']:,} words) {process['vocabulary_s']:.2f} s, "
        f"{process['vocabulary_traced_mib']:.0f} MiB (tracemalloc); the tables derived from it "
        f"and the pinyin of every Chinese character (`bot.answering.matching.prepare_process`) "
        f"{process['tables_s']:.2f} s more; +{process['vocabulary_rss_mib']:.0f} MiB RSS in all; "
        f"loading the embedding model ({process['model']}, with its probe encoding) "
        f"{process['model_s']:.2f} s, +{process['model_rss_mib']:.0f} MiB RSS. "
        f"Not included in the rows above."
    )


def _verdict(points: list[Point]) -> str:
    at_target = {signal: f for _, signal, f in points if f["items"] == TARGET_ITEMS}
    if "semantic" not in at_target:
        return (
            f"(No {TARGET_ITEMS:,}-item point with the semantic signal in this run: targets "
            "not checked.)"
        )
    f = at_target["semantic"]
    p99 = "met" if f["p99_ms"] <= TARGET_P99_MS else "MISSED"
    build = "met" if f["build_s"] <= TARGET_BUILD_S else "MISSED"
    text = (
        f"Targets at {TARGET_ITEMS:,} items with the semantic signal on: p99 ≤ "
        f"{TARGET_P99_MS:g} ms — {p99} ({f['p99_ms']:.2f} ms wall, {f['cpu_p99_ms']:.2f} ms "
        f"CPU); index build ≤ {TARGET_BUILD_S:g} s with a warm embedding cache — {build} "
        f"({f['build_s']:.2f} s wall, {f['build_cpu_s']:.2f} s CPU, the index read back from "
        f"disk)."
    )
    if "rebuild_s" in f:
        text += (
            f" After an edit of the knowledge base (every embedding on disk, the kept index of "
            f"other inputs) the build takes {f['rebuild_s']:.2f} s ({f['rebuild_cpu_s']:.2f} s "
            "CPU)."
        )
    if "cold_build_s" in f:
        text += (
            f" The cold build (no target) encoded {f['encoded_texts']:,} texts in "
            f"{f['cold_build_s']:.0f} s ({f['cold_build_cpu_s']:.0f} s CPU)."
        )
    if "lexical" in at_target:
        w = at_target["lexical"]
        text += (
            f" Words only, for comparison: p99 {w['p99_ms']:.2f} ms, index build "
            f"{w['build_s']:.2f} s."
        )
    return (
        text + " Wall time is what a resident waits; CPU time is what the code costs when other "
        "processes share the machine."
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


def _measure(
    label: str,
    folder: Path,
    signals: Sequence[str],
    scratch: Path,
    *,
    repeat: int,
    profile: bool = False,
) -> list[Point]:
    """Measure one knowledge base with each signal asked for, each in fresh processes."""
    points: list[Point] = []
    wanted = ["--profile"] if profile else []
    if "semantic" in signals:
        # An empty cache for the cold build, which the warm build then reads.
        cache_dir = Path(tempfile.mkdtemp(prefix="embeddings-", dir=scratch))
        print(f"{label}: cold build (encoding every text) ...", file=sys.stderr)
        cold = _run_child("--cold", str(folder), "--embedding-cache", str(cache_dir))
        print(f"{label}: semantic + words ...", file=sys.stderr)
        figures = _run_child(
            "--point",
            str(folder),
            "--repeat",
            str(repeat),
            "--embedding-cache",
            str(cache_dir),
            *wanted,
        )
        if "profile" in figures:
            print(figures.pop("profile"), file=sys.stderr)
        points.append((label, "semantic", figures | cold))
        shutil.rmtree(cache_dir)
    if "lexical" in signals:
        print(f"{label}: words only ...", file=sys.stderr)
        figures = _run_child("--point", str(folder), "--repeat", str(repeat), *wanted)
        if "profile" in figures:
            print(figures.pop("profile"), file=sys.stderr)
        points.append((label, "lexical", figures))
    return points


def main(argv: Sequence[str]) -> int:
    """Measure every knowledge base, print the tables, and write them into docs/benchmarks.md."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks matching", description=__doc__)
    parser.add_argument(
        "--sizes",
        default=",".join(str(s) for s in SIZES),
        help="synthetic sizes, comma-separated (default: %(default)s)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="timed passes (default: 3)")
    parser.add_argument(
        "--signals",
        default=",".join(SIGNALS),
        help="semantic (the embedding model and words), lexical (words only), or both "
        "(default: %(default)s)",
    )
    parser.add_argument("--no-taipei", action="store_true", help="leave out the Taipei FAQ")
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/benchmarks.md")
    parser.add_argument(
        "--profile", action="store_true", help="print cProfile figures at the largest size"
    )
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(",") if s.strip())
    signals = [s.strip() for s in args.signals.split(",") if s.strip()]
    unknown = set(signals) - set(SIGNALS)
    if unknown or not signals:
        parser.error(f"--signals: choose from {', '.join(SIGNALS)}")

    machine = _machine()
    print(f"machine: {machine}", file=sys.stderr)
    process = _run_child("--process")
    points: list[Point] = []
    with tempfile.TemporaryDirectory(prefix="matching-benchmark-") as directory:
        scratch = Path(directory)
        for size in sizes:
            folder = write_synthetic_knowledge(size, scratch / f"kb-{size}")
            points += _measure(
                f"synthetic {size:,}",
                folder,
                signals,
                scratch,
                repeat=args.repeat,
                profile=args.profile and size == sizes[-1],
            )
            shutil.rmtree(folder)
        if not args.no_taipei:
            points += _measure(
                "Taipei City FAQ (real)", TAIPEI, signals, scratch, repeat=args.repeat
            )
    order = {signal: n for n, signal in enumerate(SIGNALS)}
    points.sort(key=lambda point: (point[2]["items"], order[point[1]]))

    section = "\n\n".join(
        [
            f"Machine: {machine}; at the end {_load()}.",
            f"Latency per question ({points[0][2]['questions']} questions, no result remembered):",
            _latency_table(points),
            "Index build and memory:",
            _build_table(points),
            _process_cost(process),
            _verdict(points),
        ]
    )
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
    parser.add_argument("--cold", type=Path)
    parser.add_argument("--embedding-cache", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    if args.process:
        figures = measure_process_cost()
    elif args.cold:
        figures = measure_cold_build(args.cold, args.embedding_cache)
    else:
        figures = measure_point(
            args.point, args.repeat, cache_dir=args.embedding_cache, profile=args.profile
        )
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
