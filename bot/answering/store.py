"""The live knowledge base and its matcher, reloaded atomically.

A reload builds a new knowledge base and a new index beside the old ones and swaps one reference;
a question being answered meanwhile keeps the pair it started with, and an invalid new knowledge
base leaves the old pair serving.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

from bot.answering.knowledge_base import KnowledgeBase, load_knowledge_base
from bot.answering.matching import Matcher, MatchingThresholds
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
    home = ("本市", "我市", settings.city.removesuffix("市"), settings.city_en.split()[0].lower())
    return MatchingThresholds(
        answer=matching.answer_threshold,
        suggest=matching.suggest_threshold,
        margin=matching.margin,
        max_candidates=matching.max_suggestions,
        recent_results=matching.recent_results,
        home_names=home,
    )


def build_knowledge(directory: Path, thresholds: MatchingThresholds) -> LoadedKnowledge:
    """Load a knowledge base and index it (raises KnowledgeBaseError when it is invalid)."""
    kb = load_knowledge_base(directory)
    return LoadedKnowledge(kb=kb, matcher=Matcher(kb, thresholds))


class KnowledgeStore:
    """Holds the current knowledge base and matcher; `reload` swaps them only when valid."""

    def __init__(self, directory: Path, thresholds: MatchingThresholds) -> None:
        self.directory = directory
        self.thresholds = thresholds
        self._current = build_knowledge(directory, thresholds)
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
        async with self._lock:
            fresh = await asyncio.to_thread(build_knowledge, self.directory, self.thresholds)
            self._current = fresh
            log.info("knowledge base reloaded: %d items", len(fresh.kb.items))
            return fresh
