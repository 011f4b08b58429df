"""Answering first: an index build in a worker thread steps aside while a question is matched.

A reload builds the new index in a worker thread while the event loop's thread goes on matching
questions, and both need the interpreter lock. Left alone they share it about equally, and a
question matched during a build takes about twice as long, more on a loaded machine, where
every handover of the lock can wait for the operating system to run the other thread.

So the build is given `checkpoint()` calls between its steps (an item file read, a few hundred
texts indexed), and `Matcher.match` runs inside `answering()`. A build reaching a checkpoint
while a question is being matched waits there without the lock until the question is done;
the question then loses at most one step of the build, not half its time. Between questions
the build runs at full speed. A build waits at most `LONGEST_WAIT` at one checkpoint, so a
question matched by the build's own thread (or one that never ends) cannot stall it for good.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

# Seconds a build waits at one checkpoint at most.
LONGEST_WAIT = 0.05

_count_lock = threading.Lock()
_matching = 0
_idle = threading.Event()
_idle.set()
# How many times a build has stepped aside (for tests and diagnostics).
_waits = 0


@contextmanager
def answering() -> Iterator[None]:
    """Mark a question being matched: builds wait at their next checkpoint until it is done."""
    global _matching
    with _count_lock:
        _matching += 1
        _idle.clear()
    try:
        yield
    finally:
        with _count_lock:
            _matching -= 1
            if not _matching:
                _idle.set()


def checkpoint() -> None:
    """Between two steps of an index build: wait (without the lock) while a question is matched."""
    global _waits
    if not _idle.is_set():
        _waits += 1
        _idle.wait(LONGEST_WAIT)


def waits() -> int:
    """How many times builds have waited at a checkpoint in this process."""
    return _waits
