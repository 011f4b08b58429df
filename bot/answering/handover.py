"""Hand a large object graph from one process to another in small steps.

An index built in the builder process (bot/answering/builder.py) must become the serving
process's own objects. Unpickling it in one call would hold the interpreter lock, and the event
loop that answers residents, for as long as the whole graph takes (about a second at 10,000
items). So the graph is written as many small pickles that share one memo:

- numpy arrays, most of the bytes, go out of band into a file of their own, which the reader maps
  into memory (copy-on-write): no copy, and no work under the lock;
- a dict, set or list of more than `SPLIT_ABOVE` entries is pickled as an empty container, and
  its entries follow in pieces of about `PIECE_BYTES`, each added by one step of the reader;
- a compiled regular expression is pickled as the call that compiles it, as its maker called
  it, so that the reader finds it in `re`'s cache when it has compiled it before; the writer
  lists them, and `compile_ahead` compiles the others in a thread before the graph is read;
- objects both processes already have (`shared`) are pickled by name only, and a large frozen
  set that holds a shared one (the general vocabulary and a knowledge base's own words) as the
  shared one's name and the other entries: the reader makes it with one union, which copies
  the shared set's table without hashing a string again.

`read_graph` runs on the event loop and gives it back every `STEP_SECONDS`, so a question waits
at most about one step. The cyclic garbage collector is paused while it reads, and what it read
is then moved to the oldest generation at once (`gc.freeze` and `gc.unfreeze` move lists, they
walk nothing), instead of being walked by the next young collection in one long call.

Only containers of exactly these three types are split: their entries can be added after
the objects that refer to them were made. Anything that reads a container's entries while it is
unpickled (a frozen set's, a tuple's, or a class's own `__setstate__`) gets it whole.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import itertools
import mmap
import os
import pickle
import re
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

PIECE_BYTES = 32 * 1024
SPLIT_ABOVE = 256
STEP_SECONDS = 0.002
_ALIGNMENT = 64
_SPLIT = (dict, set, list)
_MOST_PER_PIECE = 1 << 16

GRAPH_FILE = "graph.pickle"
BUFFERS_FILE = "buffers.bin"


@dataclass(frozen=True, slots=True)
class GraphFiles:
    """Where a written graph is, and how to read it back."""

    folder: Path
    pieces: int
    # (offset, length) of each out-of-band buffer in BUFFERS_FILE, in the order they are read.
    spans: tuple[tuple[int, int], ...]
    # The regular expressions in the graph, as (pattern, flags) for `re.compile`.
    patterns: tuple[tuple[str | bytes, int], ...] = ()


class _OutOfBand:
    """Writes the arrays' buffers into their own file, aligned, and notes where each is."""

    def __init__(self, file: BinaryIO) -> None:
        self.file = file
        self.spans: list[tuple[int, int]] = []

    def __call__(self, buffer: pickle.PickleBuffer) -> bool:
        try:
            view = buffer.raw()
        except BufferError:  # not contiguous: pickled in band
            return True
        self.file.write(b"\0" * (-self.file.tell() % _ALIGNMENT))
        self.spans.append((self.file.tell(), view.nbytes))
        self.file.write(view)
        return False


class _Pickler(pickle.Pickler):
    def __init__(self, file: BinaryIO, shared: Mapping[str, object], buffers: _OutOfBand) -> None:
        # The callback is not a method of the pickler: no cycle keeps the pickler, whose memo
        # holds the whole graph, alive after the writing.
        super().__init__(file, protocol=5, buffer_callback=buffers)
        self._by_id = {id(obj): name for name, obj in shared.items()}
        self._frozen = [(obj, name) for name, obj in shared.items() if type(obj) is frozenset]
        self.deferred: collections.deque[tuple[int, Any]] = collections.deque()
        self._numbers: dict[int, int] = {}
        self._kept: list[Any] = []  # keeps every deferred container alive: ids stay unique
        self.piece: Any = None  # the piece being written is never deferred itself
        self.patterns: dict[tuple[str | bytes, int], None] = {}

    def reducer_override(self, obj: Any) -> Any:
        if type(obj) is re.Pattern:
            flags = obj.flags
            if isinstance(obj.pattern, str):
                flags &= ~re.UNICODE  # implied for text: compile() was called without it
            self.patterns[(obj.pattern, flags)] = None
            return re.compile, (obj.pattern, flags)
        return NotImplemented

    def persistent_id(self, obj: Any) -> Any:
        name = self._by_id.get(id(obj))
        if name is not None:
            return ("shared", name)
        kind = type(obj)
        if kind is frozenset and len(obj) > SPLIT_ABOVE:
            for known, known_name in self._frozen:
                if len(known) <= len(obj) and known <= obj:
                    return ("union", known_name, tuple(obj - known))
        if kind in _SPLIT and obj is not self.piece and len(obj) > SPLIT_ABOVE:
            number = self._numbers.get(id(obj))
            if number is None:
                number = self._numbers[id(obj)] = len(self._numbers)
                self._kept.append(obj)
                self.deferred.append((number, obj))
            return ("split", number, kind.__name__)
        return None


def _entries(container: Any) -> Iterator[Any]:
    if type(container) is dict:
        return itertools.chain.from_iterable(container.items())
    return iter(container)


def write_graph(root: object, folder: Path, shared: Mapping[str, object]) -> GraphFiles:
    """Write `root` into `folder` (GRAPH_FILE and BUFFERS_FILE), `shared` objects by name."""
    with (
        (folder / GRAPH_FILE).open("wb") as graph,
        (folder / BUFFERS_FILE).open("wb") as buffers,
    ):
        out_of_band = _OutOfBand(buffers)
        pickler = _Pickler(graph, shared, out_of_band)
        pickler.dump(root)
        pieces = 1
        while pickler.deferred:
            number, container = pickler.deferred.popleft()
            entries = _entries(container)
            # A dict's entries come in pairs: a piece never ends between a key and its value.
            unit = 2 if type(container) is dict else 1
            count = 8
            while piece := list(itertools.islice(entries, count * unit)):
                pickler.piece = piece
                before = graph.tell()
                pickler.dump((number, piece))
                pieces += 1
                per_entry = max((graph.tell() - before) * unit / len(piece), 1.0)
                count = int(min(max(PIECE_BYTES / per_entry, 1), _MOST_PER_PIECE))
            pickler.piece = None
        patterns = tuple(pickler.patterns)
        pickler.clear_memo()
    return GraphFiles(
        folder=folder, pieces=pieces, spans=tuple(out_of_band.spans), patterns=patterns
    )


def compile_ahead(files: GraphFiles) -> None:
    """Compile the graph's regular expressions into `re`'s cache (a few milliseconds to a tenth
    of a second each, in Python: call it in a thread, and the reader finds them compiled)."""
    for pattern, flags in files.patterns:
        re.compile(pattern, flags)


class _Unpickler(pickle.Unpickler):
    def __init__(
        self, file: BinaryIO, shared: Mapping[str, object], buffers: Iterator[memoryview]
    ) -> None:
        super().__init__(file, buffers=buffers)
        self._shared = shared
        self.containers: dict[int, Any] = {}

    def persistent_load(self, pid: Any) -> Any:
        if pid[0] == "shared":
            return self._shared[pid[1]]
        if pid[0] == "union":
            return _union(pid[1], self._shared[pid[1]], pid[2])
        if pid[0] == "split":
            _, number, kind = pid
            container = self.containers.get(number)
            if container is None:
                container = self.containers[number] = {"dict": dict, "set": set, "list": list}[
                    kind
                ]()
            return container
        raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")


# The last large frozen set made by a union, by the shared set's name and the other entries:
# a reload that leaves the knowledge base's own words as they were gets the same set again,
# neither made nor freed anew (each is one call of tens of milliseconds at 300,000 entries).
_last_union: tuple[str, frozenset[Any], frozenset[Any]] | None = None


def _union(name: str, known: object, extra: tuple[Any, ...]) -> frozenset[Any]:
    global _last_union
    if not isinstance(known, frozenset):
        raise pickle.UnpicklingError(f"shared object {name!r} is not a frozen set")
    others = frozenset(extra)
    if _last_union is not None and _last_union[:2] == (name, others):
        return _last_union[2]
    made = known.union(others)
    _last_union = (name, others, made)
    return made


def _fill(container: Any, piece: list[Any]) -> None:
    if type(container) is dict:
        entries = iter(piece)
        container.update(zip(entries, entries, strict=True))
    elif type(container) is set:
        container.update(piece)
    else:
        container.extend(piece)


_pauses = 0
_collector_was_on = False


@contextlib.contextmanager
def collection_deferred() -> Iterator[None]:
    """Pause the cyclic collector while a large graph is made; then move every object it
    tracks to its oldest generation, walking none.

    Otherwise the graph's objects would sit in the youngest generation, and the next young
    collections would walk them all, each in one long call; the oldest generation is walked
    only by the rare full collections. (`gc.freeze` and `gc.unfreeze` move whole lists; an
    object is still freed as soon as nothing refers to it.)
    """
    global _pauses, _collector_was_on
    if _pauses == 0:
        _collector_was_on = gc.isenabled()
        gc.disable()
    _pauses += 1
    try:
        yield
    finally:
        _pauses -= 1
        if _pauses == 0 and _collector_was_on:
            gc.freeze()
            gc.unfreeze()
            gc.enable()


def _mapped(path: Path) -> memoryview:
    with path.open("rb") as file:
        size = os.fstat(file.fileno()).st_size
        if size == 0:
            return memoryview(b"")
        # Copy-on-write: the arrays are writable, and the file's pages are shared until written.
        return memoryview(mmap.mmap(file.fileno(), size, access=mmap.ACCESS_COPY))


async def read_graph(
    files: GraphFiles, shared: Mapping[str, object], *, step_seconds: float = STEP_SECONDS
) -> Any:
    """Read a graph written by `write_graph`, giving the event loop back between steps.

    The files may be deleted once this returns: the arrays keep the mapping, not the name.
    """
    with collection_deferred():
        mapped = _mapped(files.folder / BUFFERS_FILE)
        buffers = (mapped[start : start + length] for start, length in files.spans)
        with (files.folder / GRAPH_FILE).open("rb", buffering=PIECE_BYTES) as stream:
            unpickler = _Unpickler(stream, shared, buffers)
            root = unpickler.load()
            deadline = time.perf_counter() + step_seconds
            for _ in range(files.pieces - 1):
                number, piece = unpickler.load()
                _fill(unpickler.containers[number], piece)
                if time.perf_counter() >= deadline:
                    await asyncio.sleep(0)
                    deadline = time.perf_counter() + step_seconds
        return root


# -- giving a graph back in steps -------------------------------------------------------------------

_ATOMIC = (str, bytes, int, float, complex, bool, type(None))
# Objects this near the graph's root are taken apart (the pair, the index, their attributes);
# below, only large containers are, and anything else is freed whole (an item: a few dozen
# objects).
_TOP = 5


def _light(obj: Any) -> bool:
    """Whether freeing `obj` whole is cheap: an atom, or a container whose entries hold
    nothing (strings, numbers; a set's entries, which are hashable; of a large container,
    only the first entry is looked at)."""
    if isinstance(obj, _ATOMIC):
        return True
    if not isinstance(obj, dict | list | tuple | set | frozenset):
        return False
    if isinstance(obj, set | frozenset) or not obj:
        return True
    entries = obj.values() if isinstance(obj, dict) else obj
    if len(obj) > SPLIT_ABOVE:
        return isinstance(next(iter(entries)), _ATOMIC)
    return all(isinstance(entry, _ATOMIC) for entry in entries)


def _large(obj: Any) -> bool:
    return isinstance(obj, dict | list | tuple) and len(obj) > SPLIT_ABOVE and not _light(obj)


async def dismantle(work: collections.deque[Any], *, step_seconds: float = STEP_SECONDS) -> int:
    """Free the graphs in `work` (the caller's only references) in steps; return how many
    objects were taken apart.

    Dropping the last reference to a large graph frees it in one call (50 to 100 ms at 10,000
    items). Here an object that nobody else refers to is taken apart first, if it is near the
    graph's root or a large container: what it refers to is held in `work` (but for what is
    cheap to free: strings, numbers, small containers of them), so that dropping it frees only
    itself, and each held object is then freed the same way, or whole when it is small.
    Nothing is changed: an object still referred to from elsewhere (a question being answered
    with the old index, a shared table) is only let go, and freed by its last holder.
    """
    queue: collections.deque[tuple[Any, int]] = collections.deque((obj, 0) for obj in work)
    work.clear()
    taken = 0
    deadline = time.perf_counter() + step_seconds
    while queue:
        obj, depth = queue.popleft()
        # Two references: `obj` and getrefcount's argument. More: someone else holds it.
        if sys.getrefcount(obj) == 2:
            if _large(obj):
                entries = obj.values() if isinstance(obj, dict) else obj
                queue.extend(zip(entries, itertools.repeat(_TOP)))
                taken += 1
            elif depth < _TOP and not _light(obj):
                referents = filter(lambda r: not _light(r), gc.get_referents(obj))
                queue.extend(zip(referents, itertools.repeat(depth + 1)))
                taken += 1
        del obj
        if time.perf_counter() >= deadline:
            await asyncio.sleep(0)
            deadline = time.perf_counter() + step_seconds
    return taken
