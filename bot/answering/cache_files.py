"""Arrays on disk for the index's caches (text embeddings, text analyses): one file each.

A file is a short header (what it holds, the arrays' places, types and CRC-32 checksums) and the
arrays' bytes. It is written whole beside the old one and renamed over it, so a reader never
sees half a file, and read back with every checksum verified (CRC-32 runs at several GiB/s):
a file cut short, overwritten or written by other code is refused whole (`CacheFileError`), and
its owner starts afresh.
"""

from __future__ import annotations

import json
import logging
import mmap
import os
import struct
import uuid
import zlib
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

_MAGIC = b"BOTCACHE"
_FORMAT = 1
_ALIGN = 64
_LENGTH = struct.Struct("<Q")


class CacheFileError(ValueError):
    """The file is no cache file of the expected kind, or it is damaged."""


def write_arrays(
    path: Path, kind: str, arrays: Mapping[str, npt.NDArray[Any]], meta: Mapping[str, Any]
) -> None:
    """Write `arrays` and `meta` (JSON-able) to `path` atomically (a new file renamed over it).

    Raises OSError when the folder cannot be written; the old file is then left as it was.
    """
    entries: list[dict[str, Any]] = []
    offsets: list[int] = []
    offset = 0
    contiguous = {name: np.ascontiguousarray(array) for name, array in arrays.items()}
    for name, array in contiguous.items():
        offset = -(-offset // _ALIGN) * _ALIGN
        offsets.append(offset)
        entries.append(
            {
                "name": name,
                "dtype": array.dtype.str,
                "shape": list(array.shape),
                "offset": offset,
                "bytes": array.nbytes,
                "crc32": zlib.crc32(_bytes_of(array)),
            }
        )
        offset += array.nbytes
    header = json.dumps(
        {"format": _FORMAT, "kind": kind, "meta": dict(meta), "arrays": entries},
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode("utf-8")
    start = -(-(len(_MAGIC) + _LENGTH.size + len(header)) // _ALIGN) * _ALIGN
    path.parent.mkdir(parents=True, exist_ok=True)
    # Unique to this write: two threads or processes may write the same file at once.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        with temporary.open("wb") as handle:
            handle.write(_MAGIC + _LENGTH.pack(len(header)) + header)
            position = len(_MAGIC) + _LENGTH.size + len(header)
            for at, array in zip(offsets, contiguous.values(), strict=True):
                target = start + at
                handle.write(b"\0" * (target - position))
                handle.write(_bytes_of(array))
                position = target + array.nbytes
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _bytes_of(array: npt.NDArray[Any]) -> memoryview | bytes:
    """The bytes of a C-contiguous array, without a copy."""
    return array.reshape(-1).view(np.uint8).data if array.nbytes else b""


class CacheFile:
    """A cache file read back: its `meta` and its arrays (read-only views of the mapped file)."""

    def __init__(self, meta: dict[str, Any], arrays: dict[str, npt.NDArray[Any]]) -> None:
        self.meta = meta
        self.arrays = arrays

    def __getitem__(self, name: str) -> npt.NDArray[Any]:
        return self.arrays[name]


def read_arrays(
    path: Path, kind: str, *, mapped: bool = False, unchecked: Collection[str] = ()
) -> CacheFile:
    """Read a cache file of `kind`; raises OSError (cannot be read) or CacheFileError.

    The file is read into memory, or with `mapped` mapped (pages are read when first used).
    Every array's checksum is verified, except those named in `unchecked`: a mapped file's large
    arrays whose owner checks the rows it uses, so that a build reads only what it needs.
    """
    with path.open("rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size < len(_MAGIC) + _LENGTH.size:
            raise CacheFileError("shorter than its header")
        if mapped:
            data = memoryview(mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ))
        else:
            data = np.empty(size, dtype=np.uint8).data
            if handle.readinto(data) != size:
                raise CacheFileError("changed while it was read")
    if data[: len(_MAGIC)] != _MAGIC:
        raise CacheFileError("not a cache file")
    (length,) = _LENGTH.unpack_from(data, len(_MAGIC))
    begin = len(_MAGIC) + _LENGTH.size
    if begin + length > size:
        raise CacheFileError("cut short in its header")
    try:
        header = json.loads(bytes(data[begin : begin + length]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CacheFileError(f"unreadable header ({error})") from error
    if not isinstance(header, dict) or header.get("format") != _FORMAT:
        raise CacheFileError("of another format")
    if header.get("kind") != kind:
        raise CacheFileError(f"a cache of {header.get('kind')!r}, not {kind!r}")
    start = -(-(begin + length) // _ALIGN) * _ALIGN
    arrays: dict[str, npt.NDArray[Any]] = {}
    try:
        for entry in header["arrays"]:
            name = str(entry["name"])
            dtype = np.dtype(entry["dtype"])
            shape = tuple(int(n) for n in entry["shape"])
            offset = start + int(entry["offset"])
            nbytes = int(entry["bytes"])
            if nbytes != dtype.itemsize * int(np.prod(shape)) or offset + nbytes > size:
                raise CacheFileError(f"array {name} is cut short")
            view = data[offset : offset + nbytes]
            if name not in unchecked and zlib.crc32(view) != int(entry["crc32"]):
                raise CacheFileError(f"array {name} is damaged (checksum)")
            array = np.frombuffer(view, dtype) if nbytes else np.zeros(0, dtype)
            arrays[name] = array.reshape(shape)
    except (KeyError, TypeError, ValueError) as error:
        if isinstance(error, CacheFileError):
            raise
        raise CacheFileError(f"unreadable header ({error})") from error
    meta = header.get("meta")
    return CacheFile(meta if isinstance(meta, dict) else {}, arrays)


_warned: set[tuple[Path, str]] = set()


def warn_once(log: logging.Logger, path: Path, message: str) -> None:
    """Log a problem with a cache file once per state of the file (a later build meets the same
    file again, and its owner writes a new one when it can)."""
    try:
        stat = os.stat(path)
        identity = f"{stat.st_ino}:{stat.st_size}:{stat.st_mtime_ns}"
    except OSError:
        identity = "absent"
    if (path, identity) not in _warned:
        _warned.add((path, identity))
        log.warning("%s", message)


def join_texts(texts: list[str]) -> npt.NDArray[np.uint8]:
    """Texts as one UTF-8 array, separated by NUL (texts with a NUL of their own are refused)."""
    return np.frombuffer("\0".join(texts).encode("utf-8"), dtype=np.uint8)


def split_texts(blob: npt.NDArray[np.uint8], count: int) -> list[str]:
    """The texts of `join_texts`; raises CacheFileError when there are not `count` of them."""
    if count == 0:
        return []
    try:
        texts = blob.tobytes().decode("utf-8").split("\0")
    except UnicodeDecodeError as error:
        raise CacheFileError(f"texts are not UTF-8 ({error})") from error
    if len(texts) != count:
        raise CacheFileError(f"{len(texts)} texts where {count} were written")
    return texts
