"""Teach the knowledge base a new phrasing: append a resident's question to an item's questions.

The item's TOML file is edited with tomlkit (comments and layout stay as staff wrote them),
checked, written atomically (a temporary file renamed over the old one) and the knowledge base is
reloaded. If the reloaded knowledge base is invalid, the old file is put back and the old
knowledge base keeps serving. With a publisher (bot/answering/publishing.py), the folder is
brought up to date from the database first and the new file is published for every process and
host; a file published meanwhile by another host is put back and the phrasing refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import tomllib
import unicodedata
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import tomlkit
from tomlkit.exceptions import TOMLKitError

from bot.answering.editing import file_hash
from bot.answering.knowledge_base import KnowledgeBaseError
from bot.answering.replication import FileChange, PublishConflict
from bot.answering.store import KnowledgeStore
from bot.core.text import normalize

LearnStatus = Literal["learned", "duplicate", "unknown_item", "invalid"]
MAX_PHRASING_CHARS = 200


@dataclass(frozen=True, slots=True)
class LearnResult:
    """What became of a phrasing: learned, already there, no such item, or refused (why)."""

    status: LearnStatus
    item_id: str
    title: str = ""
    problem: str = ""


def clean_phrasing(text: str) -> str:
    """Return the question as one tidy line: no control characters, single spaces, bounded."""
    kept = "".join(" " if unicodedata.category(c).startswith("C") else c for c in text)
    return " ".join(kept.split())[:MAX_PHRASING_CHARS]


def _write_atomically(path: Path, content: str) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _with_phrasing(original: str, phrasing: str) -> str:
    """Return the file's text with `phrasing` appended to `questions`, checked by re-parsing."""
    document = tomlkit.parse(original)
    questions = document.get("questions")
    if not isinstance(questions, list):
        raise ValueError("the item has no questions array")
    questions.append(phrasing)
    updated = tomlkit.dumps(document)
    before = tomllib.loads(original)
    after = tomllib.loads(updated)
    expected = dict(before, questions=[*before["questions"], phrasing])
    if after != expected:
        raise ValueError("editing the file would change more than the questions")
    return updated


class Publisher(Protocol):
    """Tells every process and host about a changed file (KnowledgeEditor in publishing.py)."""

    def publishing(self, *paths: Path) -> AbstractAsyncContextManager[object]: ...

    async def announce(self, changes: Sequence[FileChange]) -> object: ...


class PhrasingTeacher:
    """Adds phrasings to items of a live knowledge base, one edit at a time."""

    def __init__(self, store: KnowledgeStore, publisher: Publisher | None = None) -> None:
        self.store = store
        # Brings the folder up to date first and publishes the new file (None: this process
        # alone, as in tests of the teacher by itself).
        self.publisher = publisher
        self._lock = asyncio.Lock()

    async def add_phrasing(self, item_id: str, question: str) -> LearnResult:
        """Append `question` to the item's questions and reload the knowledge base."""
        phrasing = clean_phrasing(question)
        known_item = self.store.kb.items.get(item_id)
        # The item's file is compared with the published one first, whatever its version.
        files = [self.store.directory / known_item.source] if known_item is not None else []
        holding = (
            self.publisher.publishing(*files)
            if self.publisher is not None
            else contextlib.nullcontext()
        )
        async with self._lock, holding:
            kb = self.store.kb
            item = kb.items.get(item_id)
            if item is None:
                return LearnResult("unknown_item", item_id)
            if not phrasing:
                return LearnResult("invalid", item_id, item.title, "empty question")
            known = {normalize(q) for q in (*item.questions, *item.questions_en)}
            if normalize(phrasing) in known:
                return LearnResult("duplicate", item_id, item.title)
            path = kb.directory / item.source
            try:
                original = path.read_text(encoding="utf-8")
                updated = _with_phrasing(original, phrasing)
            except (OSError, ValueError, TOMLKitError, tomllib.TOMLDecodeError) as error:
                return LearnResult("invalid", item_id, item.title, str(error))
            _write_atomically(path, updated)
            try:
                await self.store.reload()
            except KnowledgeBaseError as error:
                # Something else in the folder is broken (another edit in progress): undo ours
                # so the file on disk matches the knowledge base that keeps serving.
                _write_atomically(path, original)
                return LearnResult("invalid", item_id, item.title, str(error).splitlines()[0])
            if self.publisher is not None:
                change = FileChange(
                    path.relative_to(self.store.directory).as_posix(),
                    updated,
                    file_hash(original),
                )
                try:
                    await self.publisher.announce([change])
                except BaseException as error:
                    # Not published (another host changed the file meanwhile, or the database
                    # failed): the folder goes back to what every host has.
                    _write_atomically(path, original)
                    await self.store.reload()
                    if isinstance(error, PublishConflict):
                        return LearnResult("invalid", item_id, item.title, str(error))
                    raise
            return LearnResult("learned", item_id, item.title)
