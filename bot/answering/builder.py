"""A process of its own that builds indexes for reloads, so the serving process keeps answering.

Building an index holds the interpreter lock in long single calls (large sets and dicts, numpy,
TOML parsing, normalising whole batches of text: docs/benchmarks.md), and a thread beside the
event loop made answering three times slower while it ran. `IndexBuilder` runs the build in a
child process instead (`python -m bot.answering.builder`): started on the first reload, it waits
for the next one and stops by itself after `IDLE_SECONDS` without work, so an idle process holds
no second copy of anything.

The child runs at a lower priority (`NICENESS`) with one BLAS thread: on a machine with as many
cores as busy processes, the process answering residents comes first. It stops when its parent
is gone (checked every second), when its standard input closes, and on SIGTERM; its work folder
(`work_folder()`) goes with it.

`IndexBuilder.call(module, function, argument)` runs `module.function(argument)` in the child and
returns its result, both pickled over the child's standard input and output (the child's
prints go to its standard error). Log records at INFO and above from `bot` (WARNING and above
from the rest) come back with the result and are logged in the parent, with the parent's
format. An exception in the child is raised in the parent as `BuildFailed` with the child's
traceback; a child that dies raises `BuildFailed` too, and the next call starts a new child.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import gc
import importlib
import logging
import os
import pickle
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)

IDLE_SECONDS = 60.0
NICENESS = 10
_HEADER = struct.Struct("!Q")
_PROTOCOL = pickle.HIGHEST_PROTOCOL
# How the child ends: idle or told to (its input closed), stopped (SIGTERM), orphaned, or unable
# to send its reply.
_IDLE_EXIT = 0
_STOPPED_EXIT = 128 + signal.SIGTERM
_ORPHANED_EXIT = 3
_REPLY_FAILED_EXIT = 4
_ORPHAN_CHECK_SECONDS = 1.0


class BuildFailed(RuntimeError):
    """The builder process failed or died; the serving process keeps what it had."""


class BuilderUnavailable(BuildFailed):
    """The builder process could not be started at all."""


def _send(stream: IO[bytes], data: bytes) -> None:
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    chunks: list[bytes] = []
    while size:
        chunk = stream.read(size)
        if not chunk:
            raise EOFError("the other side closed the pipe")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _receive(stream: IO[bytes]) -> Any:
    (size,) = _HEADER.unpack(_read_exactly(stream, _HEADER.size))
    # Only ever our own two processes on each end of a private pipe.
    return pickle.loads(_read_exactly(stream, size))  # noqa: S301


class IndexBuilder:
    """The handle of one builder process, started on first use; thread-safe."""

    def __init__(self, idle_seconds: float = IDLE_SECONDS) -> None:
        self.idle_seconds = idle_seconds
        self._process: subprocess.Popen[bytes] | None = None
        self._folder: Path | None = None
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        """The running child's process id, or None when none runs."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    @property
    def folder(self) -> Path | None:
        """The running child's work folder (removed when it stops), or None."""
        return self._folder if self.pid is not None else None

    def call(self, module: str, function: str, argument: object) -> Any:
        """Run `module.function(argument)` in the child and return its result (blocking)."""
        with self._lock:
            for attempt in (1, 2):
                process = self._running()
                assert process.stdin is not None
                assert process.stdout is not None
                try:
                    _send(process.stdin, pickle.dumps((module, function, argument), _PROTOCOL))
                    reply = _receive(process.stdout)
                except (OSError, EOFError, pickle.UnpicklingError) as error:
                    code = self._reap()
                    # A child that stopped by itself for idleness just as the call came is
                    # started again; any other end of the child fails this call.
                    if attempt == 1 and code == _IDLE_EXIT:
                        continue
                    raise BuildFailed(f"the index builder stopped (exit status {code})") from error
                break
        status, records, payload = reply
        for level, name, message in records:
            logging.getLogger(name).log(level, "%s", message)
        if status == "ok":
            return payload
        kind, message, trace = payload
        log.debug("index builder traceback:\n%s", trace)
        raise BuildFailed(f"{kind}: {message}")

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the child (if any) and remove its work folder; it is started again when needed."""
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        with self._lock:
            self._reap()

    def _running(self) -> subprocess.Popen[bytes]:
        if self._process is not None and self._process.poll() is None:
            return self._process
        self._reap()
        folder = Path(tempfile.mkdtemp(prefix="bot-index-builder-"))
        environment = dict(os.environ)
        # The child imports this project as the parent does, wherever it came from.
        paths = [p for p in sys.path if p and Path(p).is_dir()]
        environment["PYTHONPATH"] = os.pathsep.join(
            [*paths, *filter(None, [os.environ.get("PYTHONPATH")])]
        )
        for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            environment[variable] = "1"
        command = [
            sys.executable,
            "-m",
            __name__,
            str(folder),
            repr(self.idle_seconds),
            str(os.getpid()),
        ]
        try:
            self._process = subprocess.Popen(  # noqa: S603 (this interpreter, this module)
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=environment
            )
        except OSError as error:
            shutil.rmtree(folder, ignore_errors=True)
            raise BuilderUnavailable(f"the index builder could not be started: {error}") from error
        self._folder = folder
        log.info("index builder started (pid %d)", self._process.pid)
        return self._process

    def _reap(self) -> int | None:
        """Forget a finished child, its pipes and its folder; return its exit status."""
        process, self._process = self._process, None
        code = None
        if process is not None:
            if process.poll() is None:
                process.kill()
            code = process.wait()
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None
        return code


_shared: IndexBuilder | None = None
_shared_lock = threading.Lock()


def shared_builder() -> IndexBuilder:
    """The process's one builder, used by every knowledge store that is given none."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = IndexBuilder()
            atexit.register(_shared.stop)
        return _shared


def stop_shared_builder() -> None:
    """Stop the shared builder's child, if it runs (at shutdown; a later call starts it again)."""
    if _shared is not None:
        _shared.stop()


# -- the child ------------------------------------------------------------------------------------

_work_folder: Path | None = None


def work_folder() -> Path:
    """The child's own folder, removed when it stops (only in the builder process)."""
    if _work_folder is None:
        raise RuntimeError("work_folder() is only available in the index builder process")
    return _work_folder


class _Records(logging.Handler):
    """Keeps the log records of one call, to be sent with its result."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[tuple[int, str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno < logging.WARNING and not record.name.startswith("bot"):
            return
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
        self.records.append((record.levelno, record.name, message))


def _give_back_memory() -> None:
    """Return freed heap pages to the system (glibc keeps them otherwise; elsewhere a no-op)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)


def _leave(code: int) -> None:
    if _work_folder is not None:
        shutil.rmtree(_work_folder, ignore_errors=True)
    os._exit(code)


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(_ORPHAN_CHECK_SECONDS)
        if os.getppid() != parent:
            _leave(_ORPHANED_EXIT)


def serve(folder: Path, idle_seconds: float, parent: int) -> None:
    """The child's loop: one call at a time from standard input, until idle, closed or orphaned."""
    global _work_folder
    _work_folder = folder
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything printed goes to standard error, never into the replies
    sys.stdout = sys.stderr
    requests = os.fdopen(os.dup(0), "rb", buffering=0)
    signal.signal(signal.SIGTERM, lambda *_: _leave(_STOPPED_EXIT))
    with contextlib.suppress(OSError):
        os.nice(NICENESS)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    handler = _Records()
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    while True:
        ready, _, _ = select.select([requests], [], [], idle_seconds)
        if not ready:
            _leave(_IDLE_EXIT)
        try:
            module, function, argument = _receive(requests)
        except EOFError:
            _leave(_IDLE_EXIT)
        handler.records = []
        try:
            result = getattr(importlib.import_module(module), function)(argument)
            reply = pickle.dumps(("ok", handler.records, result), _PROTOCOL)
        except Exception as error:
            failure = (type(error).__name__, str(error), traceback.format_exc())
            reply = pickle.dumps(("error", handler.records, failure), _PROTOCOL)
        try:
            _send(replies, reply)
        except OSError:
            _leave(_REPLY_FAILED_EXIT)
        # What the call made is garbage now: give the memory back while the child waits.
        del reply
        gc.collect()
        _give_back_memory()


def main(argv: Sequence[str]) -> None:
    folder, idle_seconds, parent = argv
    serve(Path(folder), float(idle_seconds), int(parent))


if __name__ == "__main__":
    # As the module the built code imports, not as a second copy of it named __main__.
    importlib.import_module("bot.answering.builder").main(sys.argv[1:])
