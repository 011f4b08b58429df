"""Reloads built in the builder process: the same index as a build here, handed over in steps,
the old pair kept when the build fails, and no builder left behind.

bot/answering/store.py, builder.py and handover.py; the reload's atomicity as such is covered in
test_knowledge_base.py.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import re
import shutil
import signal
import sys
import textwrap
import time
import tomllib
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bot.answering.builder import BuildFailed, IndexBuilder
from bot.answering.handover import SPLIT_ABOVE, dismantle, read_graph, write_graph
from bot.answering.matching import MatchingThresholds, adopt_index_tables, index_tables
from bot.answering.semantic import cache_for
from bot.answering.store import KnowledgeStore, Signals, build_knowledge
from tests.fixtures_knowledge import (
    BUNDLED_KNOWLEDGE,
    REPO_ROOT,
    KnowledgeFolder,
    best_id,
    toml_table,
)

WORDS_ONLY = Signals(semantic_model="off")

DOG_REGISTRATION: dict[str, Any] = {
    "id": "dog-registration",
    "kind": "guide",
    "title": "养犬登记",
    "category": "公安",
    "department": "public-security",
    "questions": ["养狗要办狗证吗", "狗证在哪里办"],
    "keywords": ["养犬", "狗证"],
    "answer": "在城区养犬须在取得犬只后三十日内到派出所办理养犬登记。",
}


def ended(pid: int) -> bool:
    """Whether a process has ended (gone, or a zombie nobody has reaped yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


async def wait_until(condition: Any, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def signature(result: Any) -> tuple[Any, ...]:
    return (
        result.decision,
        result.intent,
        tuple((c.item.id, round(c.score, 9)) for c in result.candidates),
    )


# -- the index built elsewhere ------------------------------------------------------------------


async def test_a_reload_builds_in_the_builder_what_a_build_here_would(tmp_path: Path) -> None:
    root = tmp_path / "knowledge"
    shutil.copytree(BUNDLED_KNOWLEDGE, root)
    # The semantic signal with a cache on disk, as configured: the builder finds every text's
    # embedding there and never loads the model.
    signals = Signals(embedding_cache=tmp_path / "embeddings")
    thresholds = MatchingThresholds(recent_results=0)
    store = KnowledgeStore(root, thresholds, signals)
    (root / "guides" / "dog-registration.toml").write_text(
        toml_table(DOG_REGISTRATION), encoding="utf-8"
    )

    fresh = await store.reload()
    here = build_knowledge(root, thresholds, signals)

    assert store.current is fresh
    assert sorted(fresh.kb.items) == sorted(here.kb.items)
    # The new pair is this process's own: its items are the knowledge base's, and the
    # embeddings come from this process's cache, not a copy of the builder's.
    assert all(item is fresh.kb.items[item.id] for item in fresh.matcher.items)
    assert fresh.matcher.semantic is cache_for(signals.embedding_cache, store_embedder(signals))
    cases = tomllib.loads(
        (REPO_ROOT / "tests" / "data" / "evaluation.toml").read_text(encoding="utf-8")
    )["cases"]
    # Homophone typos test the syllable ids the build handed out (matching.index_tables).
    questions = [c["question"] for c in cases[::4]] + ["身份正过期了怎么办", "公基金怎么提取"]
    for question in questions:
        assert signature(fresh.matcher.match(question)) == signature(here.matcher.match(question))
    assert best_id(fresh.matcher.match("养狗要办狗证吗")) == "dog-registration"


def store_embedder(signals: Signals) -> Any:
    embedder = signals.embedder().embedder
    assert embedder is not None
    return embedder


def test_syllable_ids_from_elsewhere_are_taken_over_unless_they_clash() -> None:
    saved = index_tables()
    free = max(saved.values(), default=-1) + 1
    try:
        adopt_index_tables({**saved, "zzz-one": free})
        assert index_tables()["zzz-one"] == free

        with pytest.raises(ValueError, match="is 'zzz-one' here"):
            adopt_index_tables({"zzz-two": free})
        some = next(iter(saved))
        with pytest.raises(ValueError, match=f"syllable '{some}' is"):
            adopt_index_tables({some: free + 1})
        assert "zzz-two" not in index_tables()

        adopt_index_tables(saved, replace=True)
        assert index_tables() == saved
    finally:
        adopt_index_tables(saved, replace=True)


# -- failures and the builder's life ------------------------------------------------------------


async def test_a_builder_that_dies_leaves_the_old_pair_and_the_next_reload_starts_another(
    knowledge_folder: KnowledgeFolder, caplog: pytest.LogCaptureFixture
) -> None:
    knowledge_folder.item("id-card-renewal")
    builder = IndexBuilder()
    store = KnowledgeStore(
        knowledge_folder.root, MatchingThresholds(), WORDS_ONLY, builder=builder
    )
    before = store.current
    knowledge_folder.item("dog-registration", **DOG_REGISTRATION)
    try:
        reload = asyncio.create_task(store.reload())
        await wait_until(lambda: builder.pid is not None)
        first = builder.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        with (
            caplog.at_level(logging.ERROR, logger="bot.answering.store"),
            pytest.raises(BuildFailed, match="stopped"),
        ):
            await reload
        assert "could not be reloaded, the old one serves" in caplog.text
        assert store.current is before
        assert best_id(store.matcher.match("身份证快过期了怎么换")) == "id-card-renewal"

        fresh = await store.reload()
        assert store.current is fresh
        assert builder.pid not in (None, first)
        assert best_id(store.matcher.match("养狗要办狗证吗")) == "dog-registration"
    finally:
        folder = builder.folder
        pid = builder.pid
        builder.stop()
    assert pid is not None
    assert ended(pid)
    assert folder is not None
    assert not folder.exists()
    assert builder.pid is None


async def test_the_builder_stops_when_idle_and_starts_again_when_needed(
    knowledge_folder: KnowledgeFolder,
) -> None:
    knowledge_folder.item("id-card-renewal")
    builder = IndexBuilder(idle_seconds=0.3)
    store = KnowledgeStore(
        knowledge_folder.root, MatchingThresholds(), WORDS_ONLY, builder=builder
    )
    try:
        await store.reload()
        folder = builder.folder
        assert folder is not None
        await wait_until(lambda: builder.pid is None)
        assert not folder.exists()

        knowledge_folder.item("dog-registration", **DOG_REGISTRATION)
        await store.reload()
        assert best_id(store.matcher.match("养狗要办狗证吗")) == "dog-registration"
    finally:
        builder.stop()


async def test_the_builder_does_not_outlive_its_parent(
    knowledge_folder: KnowledgeFolder, tmp_path: Path
) -> None:
    knowledge_folder.item("id-card-renewal")
    script = textwrap.dedent(
        f"""
        import asyncio, sys, time
        from pathlib import Path
        from bot.answering.matching import MatchingThresholds
        from bot.answering.store import KnowledgeStore, Signals

        async def main():
            store = KnowledgeStore(
                Path({str(knowledge_folder.root)!r}), MatchingThresholds(),
                Signals(semantic_model="off"),
            )
            await store.reload()
            print(store.builder.pid, store.builder.folder, flush=True)
            time.sleep(600)

        asyncio.run(main())
        """
    )
    parent = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        stdout=asyncio.subprocess.PIPE,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    try:
        assert parent.stdout is not None
        pid_text, folder_text = (await parent.stdout.readline()).decode().split()
    finally:
        parent.kill()
        await parent.wait()
    pid, folder = int(pid_text), Path(folder_text)

    # The builder notices within a second that its parent is gone, and removes its folder.
    await wait_until(lambda: ended(pid) and not folder.exists())


async def test_without_a_builder_process_the_index_is_built_here(
    knowledge_folder: KnowledgeFolder,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    knowledge_folder.item("id-card-renewal")
    builder = IndexBuilder()
    store = KnowledgeStore(
        knowledge_folder.root, MatchingThresholds(), WORDS_ONLY, builder=builder
    )
    knowledge_folder.item("dog-registration", **DOG_REGISTRATION)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python-here"))

    with caplog.at_level(logging.WARNING, logger="bot.answering.store"):
        await store.reload()

    assert "index builder could not be started" in caplog.text
    assert builder.pid is None
    assert best_id(store.matcher.match("养狗要办狗证吗")) == "dog-registration"


# -- the handover and the freeing of the old pair ----------------------------------------------


class Node:
    def __init__(self, name: str, children: list[Any]) -> None:
        self.name = name
        self.children = children


async def test_a_graph_is_handed_over_in_steps_as_it_was(tmp_path: Path) -> None:
    shared_words = frozenset(f"词{i}" for i in range(2000))
    marker = object()
    many = {f"key{i}": [i, f"value {i} " * 10] for i in range(20 * SPLIT_ABOVE)}
    leaf = Node("leaf", [])
    graph: dict[str, Any] = {
        "many": many,
        "same": many,  # twice: one object after reading too
        "nested": [Node(f"n{i}", [leaf, {i, i + 1}]) for i in range(3 * SPLIT_ABOVE)],
        "set": set(range(4 * SPLIT_ABOVE)),
        "words": shared_words | {"extra"},
        "marker": marker,
        "array": np.arange(100_000, dtype=np.int64).reshape(1000, 100),
        "pattern": re.compile(r"(?:身份证|户口)\w+"),
        "text": "长" * 100_000,
    }

    files = write_graph(graph, tmp_path, {"words": shared_words, "marker": marker})
    ticks = 0
    done = False

    async def count_ticks() -> None:
        nonlocal ticks
        while not done:
            ticks += 1
            await asyncio.sleep(0)

    counter = asyncio.create_task(count_ticks())
    read = await read_graph(files, {"words": shared_words, "marker": marker}, step_seconds=0)
    done = True
    await counter

    assert files.pieces > 10
    assert ticks >= files.pieces - 1  # the event loop ran between the steps
    assert read["many"] == many
    assert list(read["many"]) == list(many)  # in order
    assert read["same"] is read["many"]
    assert [n.name for n in read["nested"]] == [n.name for n in graph["nested"]]
    assert read["nested"][0].children[0] is read["nested"][-1].children[0]
    assert read["nested"][7].children[1] == {7, 8}
    assert read["set"] == graph["set"]
    assert read["words"] == graph["words"]
    assert read["marker"] is marker
    assert np.array_equal(read["array"], graph["array"])
    read["array"][0, 0] = -1  # writable, and not written back to the file
    assert read["pattern"].pattern == graph["pattern"].pattern
    assert read["text"] == graph["text"]
    shutil.rmtree(tmp_path)  # the read graph keeps its arrays without the files
    assert int(read["array"].sum()) == int(graph["array"].sum()) - 1


async def test_the_old_pair_is_freed_in_steps_and_what_is_still_used_is_left_whole() -> None:
    used = {f"item{i}": Node(f"item{i}", [f"text{i}"]) for i in range(3 * SPLIT_ABOVE)}
    unused = [Node(f"other{i}", [[i]]) for i in range(3 * SPLIT_ABOVE)]
    watched = weakref.ref(unused[5])
    graph = Node("root", [used, unused, Node("middle", [used])])
    work: collections.deque[object] = collections.deque([graph])
    del graph, unused
    ticks = 0
    done = False

    async def count_ticks() -> None:
        nonlocal ticks
        while not done:
            ticks += 1
            await asyncio.sleep(0)

    counter = asyncio.create_task(count_ticks())
    taken = await dismantle(work, step_seconds=0)
    done = True
    await counter

    assert taken >= 3  # the root, its list of children, the list of unused nodes
    assert ticks > 3 * SPLIT_ABOVE  # the unused nodes were freed one step at a time
    assert watched() is None
    assert len(used) == 3 * SPLIT_ABOVE
    assert used["item7"].children == ["text7"]


async def test_a_pair_still_in_use_after_a_reload_answers_as_before(
    knowledge_folder: KnowledgeFolder,
) -> None:
    knowledge_folder.item("id-card-renewal")
    store = KnowledgeStore(knowledge_folder.root, MatchingThresholds(), WORDS_ONLY)
    in_use = store.current
    question = "身份证快过期了怎么换"
    expected = signature(in_use.matcher.match(question))
    knowledge_folder.item("dog-registration", **DOG_REGISTRATION)

    await store.reload()
    await store.retired()

    assert store.current is not in_use
    assert signature(in_use.matcher.match(question)) == expected
    assert sorted(in_use.kb.items) == ["id-card-renewal"]
    retired = weakref.ref(store.current.matcher)
    await store.reload()
    await store.retired()
    assert retired() is None
