"""The knowledge base's TOML files as parsed, kept by their content between loads.

Python's TOML parser reads a string character by character: at 10,000 items, parsing the files
is most of loading them. What a file parses into depends on its bytes alone, so a load keeps
each file's parse (as JSON, dates tagged) in one file of the index's cache folder
(`parsed-files`, written as `cache_files` writes), by the SHA-1 of the file's bytes; a load parses
only files whose bytes it has not seen, and checks every item as before. A file whose parse
JSON cannot hold exactly is parsed each time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import tomllib
from pathlib import Path
from typing import Any

import numpy as np

from bot.answering.cache_files import (
    CacheFileError,
    join_texts,
    read_arrays,
    split_texts,
    warn_once,
    write_arrays,
)

log = logging.getLogger(__name__)

FILE_NAME = "parsed-files"
_FILE_KIND = "parsed TOML files"
_DIGEST = 20


class _NotKept(ValueError):
    """A parse that JSON cannot hold exactly."""


def _tagged(value: Any) -> Any:
    """A TOML value as JSON can hold it: dates and times as one-key objects."""
    if isinstance(value, dict):
        if any(not isinstance(k, str) or k.startswith("$") for k in value):
            raise _NotKept("a key JSON's tags would take for one of theirs")
        return {k: _tagged(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_tagged(v) for v in value]
    if isinstance(value, dt.datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$date": value.isoformat()}
    if isinstance(value, dt.time):
        return {"$time": value.isoformat()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise _NotKept(type(value).__name__)


def _untagged(node: dict[str, Any]) -> Any:
    if len(node) == 1:
        ((tag, text),) = node.items()
        if tag == "$datetime":
            return dt.datetime.fromisoformat(text)
        if tag == "$date":
            return dt.date.fromisoformat(text)
        if tag == "$time":
            return dt.time.fromisoformat(text)
    return node


class ParsedFiles:
    """Parses of TOML files by their bytes (None: nothing kept, every file parsed)."""

    def __init__(self, folder: Path | None) -> None:
        self.path = folder / FILE_NAME if folder is not None else None
        self._kept: dict[bytes, str] | None = None
        self._used: dict[bytes, str] = {}
        self.parsed = 0

    def load(self, path: Path) -> dict[str, Any]:
        """Parse a file as `tomllib.load` does (and raise as it does), from its bytes' parse
        when that is kept."""
        data = path.read_bytes()
        if self.path is None:
            return tomllib.loads(data.decode("utf-8"))
        digest = hashlib.sha1(data, usedforsecurity=False).digest()
        kept = self._read().get(digest)
        if kept is not None:
            self._used[digest] = kept
            parsed: dict[str, Any] = json.loads(kept, object_hook=_untagged)
            return parsed
        parsed = tomllib.loads(data.decode("utf-8"))
        with contextlib.suppress(_NotKept):  # (parsed again at each load)
            self._used[digest] = json.dumps(_tagged(parsed), ensure_ascii=False)
            self.parsed += 1
        return parsed

    def save(self) -> None:
        """Keep the parses of the files loaded since the last save, if any was new."""
        if self.path is None or not self.parsed:
            return
        used, self._used, self.parsed = self._used, {}, 0
        digests = np.frombuffer(b"".join(used), dtype=np.uint8).reshape(len(used), _DIGEST)
        try:
            write_arrays(
                self.path,
                _FILE_KIND,
                {"digests": digests, "parses": join_texts(list(used.values()))},
                {"count": len(used)},
            )
        except OSError as error:
            warn_once(log, self.path, f"parsed files {self.path} could not be written ({error})")
        self._kept = used

    def _read(self) -> dict[bytes, str]:
        if self._kept is not None:
            return self._kept
        self._kept = {}
        if self.path is None or not self.path.is_file():
            return self._kept
        try:
            data = read_arrays(self.path, _FILE_KIND)
            count = int(data.meta["count"])
            digests = data["digests"]
            if digests.shape != (count, _DIGEST):
                raise CacheFileError("its digests do not fit")
            parses = split_texts(data["parses"], count)
        except (OSError, CacheFileError, KeyError, TypeError, ValueError) as error:
            warn_once(log, self.path, f"parsed files {self.path} are unreadable ({error})")
            return self._kept
        flat = digests.tobytes()
        self._kept = {flat[n * _DIGEST : (n + 1) * _DIGEST]: parses[n] for n in range(count)}
        return self._kept
