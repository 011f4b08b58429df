"""A whole index on disk: what the last build made, read back by a start over the same inputs.

A start after the first, over a knowledge base indexed before, would build the very index it
built then. The matcher therefore writes every array and table a build makes into one file
(`index-snapshot`, in the folder of its other caches, written as `cache_files` writes), under a
key naming everything the build read: how texts are analysed (code, tables, synonyms, terms),
every text of every item in order and which item each belongs to, and the embeddings' model and
code. A start whose key is the file's reads the file instead of building; any other start builds
(from the other caches, which make a build over a few changed texts quick) and writes the file
anew. Arrays the embedding cache keeps already (an index's text vectors) are not written twice:
the file names them, and they are read from that cache while it holds them.

What a build keeps is written generically (arrays, numbers, strings, lists of strings, token
vocabularies, sets of token ids, tuples and the matcher's own dataclasses of them), so whatever a
later build keeps is kept too; a value of any other kind leaves the index unwritten, and every
start builds.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bot.answering.cache_files import (
    CacheFile,
    CacheFileError,
    join_texts,
    read_arrays,
    split_texts,
    warn_once,
    write_arrays,
)

log = logging.getLogger(__name__)

FILE_NAME = "index-snapshot"
_FILE_KIND = "matcher index"
_FORMAT = 1


class _Unsupported(TypeError):
    """A value the snapshot cannot write."""


def snapshot_key(parts: Iterable[str | bytes | npt.NDArray[Any]]) -> str:
    """The key of a snapshot: the SHA-1 (hex) of its parts, each told apart from the next."""
    digest = hashlib.sha1(f"format {_FORMAT}".encode(), usedforsecurity=False)
    for part in parts:
        data = (
            part.encode("utf-8")
            if isinstance(part, str)
            else part.tobytes()
            if isinstance(part, np.ndarray)
            else part
        )
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


class _Writer:
    def __init__(self, classes: Mapping[str, type]) -> None:
        self.arrays: dict[str, npt.NDArray[Any]] = {}
        self.classes = {cls: name for name, cls in classes.items()}

    def array(self, value: npt.NDArray[Any]) -> str:
        name = f"a{len(self.arrays)}"
        self.arrays[name] = value
        return name

    def encode(self, value: Any) -> Any:
        if isinstance(value, np.ndarray):
            if value.dtype.hasobject:
                raise _Unsupported("an array of objects")
            return {"t": "array", "n": self.array(value)}
        if value is None or isinstance(value, bool | int | float | str):
            return {"t": "value", "v": value}
        if isinstance(value, np.generic):
            return {"t": "scalar", "n": self.array(np.asarray(value))}
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            if any("\0" in v for v in value):
                raise _Unsupported("a text with a NUL")
            return {"t": "texts", "n": self.array(join_texts(value)), "c": len(value)}
        if isinstance(value, list) and value and all(isinstance(v, frozenset) for v in value):
            if not all(isinstance(m, int) for group in value for m in group):
                raise _Unsupported("a set of other than numbers")
            # Kept in ascending order, and built again in that order: a set built so (as the
            # matcher builds its sets of token ids) iterates as it did.
            members = [sorted(group) for group in value]
            flat = np.asarray([m for group in members for m in group], dtype=np.int64)
            sizes = np.asarray([len(group) for group in members], dtype=np.int64)
            return {"t": "int sets", "n": self.array(flat), "s": self.array(sizes)}
        if isinstance(value, tuple | list):
            kind = "tuple" if isinstance(value, tuple) else "list"
            return {"t": kind, "i": [self.encode(v) for v in value]}
        if isinstance(value, dict):
            keys = list(value)
            if not all(isinstance(k, str) for k in keys) or list(value.values()) != list(
                range(len(keys))
            ):
                raise _Unsupported("a mapping other than a vocabulary")
            if any("\0" in k for k in keys):
                raise _Unsupported("a word with a NUL")
            return {"t": "vocabulary", "n": self.array(join_texts(keys)), "c": len(keys)}
        name = self.classes.get(type(value))
        if name is not None and dataclasses.is_dataclass(value):
            fields = {
                f.name: self.encode(getattr(value, f.name)) for f in dataclasses.fields(value)
            }
            return {"t": "class", "c": name, "f": fields}
        raise _Unsupported(type(value).__name__)


class _Reader:
    def __init__(self, data: CacheFile, classes: Mapping[str, type]) -> None:
        self.data = data
        self.classes = classes

    def decode(self, node: Any) -> Any:
        kind = node["t"]
        if kind == "array":
            return self.data[node["n"]]
        if kind == "value":
            return node["v"]
        if kind == "scalar":
            return self.data[node["n"]][()]
        if kind == "texts":
            return split_texts(self.data[node["n"]], int(node["c"]))
        if kind == "vocabulary":
            words = split_texts(self.data[node["n"]], int(node["c"]))
            return dict(zip(words, range(len(words)), strict=True))
        if kind == "int sets":
            flat = self.data[node["n"]].tolist()
            sizes = self.data[node["s"]].tolist()
            if sum(sizes) != len(flat):
                raise CacheFileError("its sets do not fit")
            sets = []
            at = 0
            for size in sizes:
                sets.append(frozenset(flat[at : at + size]))
                at += size
            return sets
        if kind in ("tuple", "list"):
            items = [self.decode(item) for item in node["i"]]
            return tuple(items) if kind == "tuple" else items
        if kind == "class":
            cls = self.classes[node["c"]]
            return cls(**{name: self.decode(field) for name, field in node["f"].items()})
        raise CacheFileError(f"a value of unknown kind {kind!r}")


def save_snapshot(
    path: Path,
    key: str,
    attributes: Mapping[str, Any],
    *,
    classes: Mapping[str, type],
    elsewhere: Mapping[str, str],
    meta: Mapping[str, Any],
) -> None:
    """Write `attributes` under `key`; `elsewhere` names those kept by another cache (written as
    references, not data). A value the snapshot cannot write leaves the file unwritten."""
    writer = _Writer(classes)
    try:
        encoded = {
            name: writer.encode(value)
            for name, value in attributes.items()
            if name not in elsewhere
        }
    except _Unsupported as error:
        log.info("the index is not kept on disk: it holds %s", error)
        path.unlink(missing_ok=True)
        return
    try:
        write_arrays(
            path,
            _FILE_KIND,
            writer.arrays,
            {"key": key, "attributes": encoded, "elsewhere": dict(elsewhere)} | dict(meta),
        )
    except OSError as error:
        warn_once(log, path, f"index snapshot {path} could not be written ({error})")


def load_snapshot(
    path: Path, key: str, *, classes: Mapping[str, type]
) -> tuple[dict[str, Any], dict[str, str], dict[str, Any]] | None:
    """The attributes written under `key`, the names kept elsewhere, and the file's other meta;
    None when the file is absent, of another key, or damaged (said once)."""
    if not path.is_file():
        return None
    try:
        data = read_arrays(path, _FILE_KIND, mapped=True)
        if data.meta.get("key") != key:
            return None
        reader = _Reader(data, classes)
        attributes = {name: reader.decode(node) for name, node in data.meta["attributes"].items()}
        elsewhere = {str(k): str(v) for k, v in data.meta.get("elsewhere", {}).items()}
    except (OSError, CacheFileError, KeyError, TypeError, ValueError, AttributeError) as error:
        warn_once(log, path, f"index snapshot {path} is unreadable ({error}); building the index")
        return None
    return attributes, elsewhere, data.meta
