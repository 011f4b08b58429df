"""Changes to the knowledge base proposed in the console, reviewed, published and versioned.

An officer proposes a change to an item of their own department (`propose`); a reviewer (the
`editor` role, or a manager) approves it or sends it back with a comment (`decide`). Approving
writes the item's TOML file (bot/answering/editing.py), checks the whole knowledge base as
`kb check` would (an invalid result puts the old file back), commits the file when the
knowledge base folder is a git repository, keeps the version, stores the file's text with it for
the other hosts (bot/answering/replication.py) and raises the published version in
`knowledge_state`: every process polls it (`KnowledgeSync`), brings its own folder up to date
from the database and reloads its store, atomically (bot/answering/store.py). Every change is in
the audit log, in the transaction that makes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import tempfile
import tomllib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.answering.cards import build_card, render_html
from bot.answering.editing import (
    FOLDER_OF_KIND,
    KINDS,
    check_draft,
    check_synonym_groups,
    content_of_item_file,
    file_hash,
    first_lines,
    render_item_file,
    render_synonyms_file,
    with_item,
)
from bot.answering.freshness import (
    Freshness,
    item_freshness,
    load_department_history,
    load_reviews,
)
from bot.answering.knowledge_base import (
    Item,
    KnowledgeBase,
    KnowledgeBaseError,
    load_knowledge_base,
)
from bot.answering.matching import MatchResult
from bot.answering.replication import (
    CatchUp,
    FileChange,
    KnowledgeReplica,
    PublishConflict,
    published_version,
    raise_published_version,
)
from bot.answering.store import KnowledgeStore, build_matcher
from bot.answering.unanswered import knowledge_gap
from bot.core.audit import record_audit
from bot.core.db import write_gate
from bot.core.models import (
    AnswerWatch,
    KnowledgeChange,
    KnowledgeReview,
    KnowledgeVersion,
    Question,
    utcnow,
)
from bot.tickets.outbox import published_answer_message

log = logging.getLogger(__name__)

REVIEWER_ROLES = frozenset({"editor", "manager"})
EDITOR_ROLES = frozenset({"officer", "editor", "manager"})
ACTIONS = ("create", "edit", "retire", "restore")
PREVIEW_OWN_QUESTIONS = 4
PREVIEW_RESIDENT_QUESTIONS = 6
RECENT_QUESTIONS_SCANNED = 200
MAX_NOTE_CHARS = 1000
# Residents waiting for an answer are told about questions asked in this many days.
WATCH_DAYS = 180
MAX_WATCHES_CHECKED = 2000


@dataclass(frozen=True, slots=True)
class Editor:
    """Who is editing: a console account as the desk needs it."""

    user_id: int | None
    name: str
    role: str
    department_id: str | None

    def may_edit(self, department_id: str) -> bool:
        """Officers edit their own department's items; reviewers every department's."""
        if self.role in REVIEWER_ROLES:
            return True
        return (
            self.role == "officer" and bool(department_id) and department_id == self.department_id
        )

    @property
    def may_review(self) -> bool:
        return self.role in REVIEWER_ROLES


# Publishes an approved change of another kind than an item's (a department's:
# bot/answering/department_desk.py), under the editor's lock: (session, change, reviewer,
# comment, ip).
Publisher = Callable[[AsyncSession, "KnowledgeChange", "Editor", str, str], Awaitable[None]]


class EditError(Exception):
    """A change cannot be made; `code` says why (forbidden, not_found, invalid, outdated, …)."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(detail or code)
        self.code = code
        self.detail = detail


def _write_atomically(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
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


def _put_back(path: Path, original: str | None) -> None:
    if original is None:
        path.unlink(missing_ok=True)
    else:
        _write_atomically(path, original)


# -- telling every process -----------------------------------------------------------------------


class Reloadable(Protocol):
    """What KnowledgeSync keeps current: the bot's store, or the worker's knowledge files."""

    @property
    def directory(self) -> Path: ...

    async def reload(self) -> object: ...


class KnowledgeSync:
    """Keeps one process's store at the published version: polls `knowledge_state`, brings the
    folder up to date from the database (another host may have published) and reloads.

    PostgreSQL's LISTEN/NOTIFY would tell sooner, but a poll of one row every few seconds works
    the same on SQLite and survives lost connections without any bookkeeping.
    """

    def __init__(
        self,
        store: Reloadable,
        sessions: async_sessionmaker[AsyncSession],
        poll_seconds: float,
        replica: KnowledgeReplica | None = None,
    ) -> None:
        self.store = store
        self.sessions = sessions
        self.poll_seconds = poll_seconds
        self.replica = replica or KnowledgeReplica(store.directory, sessions)
        self.seen: int | None = None

    async def start(self) -> None:
        """Bring the folder to the published version (reloading the store if that changed a
        file) and remember the version."""
        caught = await self.replica.catch_up()
        if caught.changed:
            await self._reload(caught.version)
        self.seen = caught.version

    async def check(self) -> bool:
        """When the published version moved: bring the folder up to date and reload; tell
        whether it moved."""
        async with self.sessions() as session:
            version = await published_version(session)
        if self.seen is not None and version == self.seen:
            return False
        # A failure here (the database or the disk) leaves `seen` alone: the next poll retries.
        caught = await self.replica.catch_up()
        await self._reload(caught.version)
        self.seen = caught.version
        return True

    async def _reload(self, version: int) -> None:
        try:
            await self.store.reload()
        except KnowledgeBaseError as error:
            # Left as it was: the next change that makes the folder valid reloads it.
            log.error("published knowledge base version %d is invalid: %s", version, error)

    async def run_forever(self) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("checking the published knowledge base version failed")

    @contextlib.asynccontextmanager
    async def running(self) -> Any:
        """Poll in the background while the block runs."""
        await self.start()
        task = asyncio.create_task(self.run_forever(), name="knowledge-sync")
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


# -- previews ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the bot does with one question: answer / suggest / escalate …, and its best item."""

    decision: str
    item_id: str
    title: str

    @classmethod
    def of(cls, result: MatchResult) -> Outcome:
        best = result.best
        return cls(
            decision=result.decision,
            item_id=best.item.id if best else "",
            title=best.item.title if best else "",
        )


@dataclass(frozen=True, slots=True)
class AnswerPreview:
    """One question, how the bot answers it now and how it would after the change."""

    question: str
    source: str  # "item" (the item's own phrasing) or "resident" (a recent resident's question)
    before: Outcome
    after: Outcome

    @property
    def changed(self) -> bool:
        return self.before != self.after


# -- the desk ------------------------------------------------------------------------------------


class KnowledgeEditor:
    """Proposals, reviews, versions and freshness of the live knowledge base's items."""

    def __init__(
        self,
        store: KnowledgeStore,
        sessions: async_sessionmaker[AsyncSession],
        sync: KnowledgeSync | None = None,
        *,
        review_days: int = 365,
        git_commits: bool = True,
    ) -> None:
        self.store = store
        self.sessions = sessions
        self.sync = sync
        self.review_days = review_days
        self.git_commits = git_commits
        # This host's folder: brought up to date before a change, and the change stored for the
        # other hosts (bot/answering/replication.py).
        self.replica = (
            sync.replica if sync is not None else KnowledgeReplica(store.directory, sessions)
        )
        self._lock = asyncio.Lock()
        self.publishers: dict[str, Publisher] = {}

    @property
    def directory(self) -> Path:
        return self.store.directory

    def path_of(self, kind: str, item_id: str) -> Path:
        return self.directory / FOLDER_OF_KIND[kind] / f"{item_id}.toml"

    def read_file(self, kind: str, item_id: str) -> str | None:
        path = self.path_of(kind, item_id)
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def current_content(self, item_id: str) -> tuple[str, dict[str, Any]] | None:
        """Return an item's kind and its fields as its file holds them now."""
        item = self.store.kb.items.get(item_id)
        if item is None:
            return None
        text = self.read_file(item.kind, item_id)
        return (item.kind, content_of_item_file(text)) if text is not None else None

    # -- proposing -------------------------------------------------------------------------------

    async def propose(
        self,
        editor: Editor,
        *,
        action: str,
        item_id: str,
        kind: str,
        content: dict[str, Any] | None,
        note: str = "",
        ip: str = "",
    ) -> int:
        """Store a proposed change and return its id; raise EditError when it cannot be."""
        if action not in ACTIONS or kind not in KINDS:
            raise EditError("invalid", "unknown action or kind")
        kb = self.store.kb
        existing = kb.items.get(item_id)
        old_text = self.read_file(kind, item_id)
        if action == "create":
            if existing is not None or old_text is not None:
                raise EditError("invalid", f"the id '{item_id}' is taken")
        elif action in ("edit", "retire") and (existing is None or existing.kind != kind):
            raise EditError("not_found")
        if existing is not None and not editor.may_edit(existing.department):
            raise EditError("forbidden")
        department = existing.department if existing is not None else ""
        if content is not None:
            if str(content.get("id")) != item_id or str(content.get("kind")) != kind:
                raise EditError("invalid", "the id and kind cannot change")
            department = str(content.get("department", ""))
            if not editor.may_edit(department):
                raise EditError("forbidden")
            checked = check_draft(content, kb, existing_id=item_id if existing else None)
            if not checked.ok:
                raise EditError("invalid", "; ".join(str(p) for p in checked.problems))
        elif action != "retire" and not (action == "restore" and existing is not None):
            raise EditError("invalid", "nothing to publish")
        if action == "restore" and content is None and existing is None:
            raise EditError("invalid", "the item is already retired")
        if not department:
            department = await self._last_department(item_id)
            if not editor.may_edit(department):
                raise EditError("forbidden")
        async with write_gate(self.sessions), self.sessions() as session:
            change = KnowledgeChange(
                item_id=item_id,
                kind=kind,
                department_id=department,
                action=action,
                content=content,
                base_hash=file_hash(old_text),
                note=note[:MAX_NOTE_CHARS],
                status="proposed",
                author_id=editor.user_id,
                author_name=editor.name,
            )
            session.add(change)
            await session.flush()
            await record_audit(
                session,
                user_id=editor.user_id,
                action="knowledge.propose",
                target_type="knowledge",
                target_id=item_id,
                detail={"change": change.id, "action": action},
                ip=ip,
            )
            await session.commit()
            return change.id

    async def _last_department(self, item_id: str) -> str:
        async with self.sessions() as session:
            found = await session.scalar(
                select(KnowledgeVersion.content)
                .where(KnowledgeVersion.item_id == item_id, KnowledgeVersion.content.is_not(None))
                .order_by(KnowledgeVersion.number.desc())
                .limit(1)
            )
        return str((found or {}).get("department", ""))

    async def restore(
        self, editor: Editor, item_id: str, number: int, *, note: str = "", ip: str = ""
    ) -> int:
        """Propose an earlier version of an item as its next one; return the change's id."""
        version = await self.version(item_id, number)
        if version is None:
            raise EditError("not_found")
        existing = self.store.kb.items.get(item_id)
        if version.content is None:
            if existing is None:
                raise EditError("invalid", "the item is already retired")
            return await self.propose(
                editor,
                action="retire",
                item_id=item_id,
                kind=version.kind,
                content=None,
                note=note,
                ip=ip,
            )
        return await self.propose(
            editor,
            action="restore" if existing is not None else "create",
            item_id=item_id,
            kind=version.kind,
            content=dict(version.content),
            note=note or f"restore version {number}",
            ip=ip,
        )

    # -- deciding --------------------------------------------------------------------------------

    async def decide(
        self,
        editor: Editor,
        change_id: int,
        *,
        approve: bool,
        comment: str = "",
        ip: str = "",
    ) -> KnowledgeChange:
        """Approve (publish) or send back a proposed change."""
        if not editor.may_review:
            raise EditError("forbidden")
        async with self._lock, self.sessions() as session:
            change = await session.get(KnowledgeChange, change_id)
            if change is None:
                raise EditError("not_found")
            if change.status != "proposed":
                raise EditError("not_pending")
            if not approve:
                if not comment.strip():
                    raise EditError("comment_needed")
                await self._close(session, change, editor, "sent_back", comment, ip)
                async with write_gate(self.sessions):
                    await session.commit()
                return change
            await self._publish(session, change, editor, comment, ip)
            return change

    async def _close(
        self,
        session: AsyncSession,
        change: KnowledgeChange,
        editor: Editor,
        status: str,
        comment: str,
        ip: str,
    ) -> None:
        change.status = status
        change.reviewer_id = editor.user_id
        change.reviewer_name = editor.name
        change.review_comment = comment[:MAX_NOTE_CHARS]
        change.reviewed_at = utcnow()
        await record_audit(
            session,
            user_id=editor.user_id,
            action="knowledge.approve" if status == "approved" else "knowledge.send_back",
            target_type="knowledge",
            target_id=change.item_id,
            detail={"change": change.id, "action": change.action, "version": change.version},
            ip=ip,
        )

    async def _publish(
        self,
        session: AsyncSession,
        change: KnowledgeChange,
        editor: Editor,
        comment: str,
        ip: str,
    ) -> None:
        publisher = self.publishers.get(change.kind)
        if publisher is not None:
            await publisher(session, change, editor, comment, ip)
            return
        path = self.path_of(change.kind, change.item_id)
        async with self.replica.exclusive():
            # What other hosts published first: the change must apply to the newest file.
            await self.replica.catch_up_held(also=[self.replica.relative(path)])
            original = self.read_file(change.kind, change.item_id)
            if file_hash(original) != change.base_hash:
                raise EditError("outdated")
            today = utcnow().date()
            if change.content is None:
                new_text: str | None = None
            else:
                try:
                    new_text = render_item_file(change.content, original, today)
                except ValueError as error:
                    raise EditError("invalid", str(error)) from error
            await asyncio.to_thread(self._write_and_check, path, original, new_text)
            try:
                async with write_gate(self.sessions):
                    number = await self._next_number(session, change.item_id)
                    if number == 1 and original is not None:
                        session.add(
                            KnowledgeVersion(
                                item_id=change.item_id,
                                number=1,
                                kind=change.kind,
                                action="baseline",
                                content=content_of_item_file(original),
                                toml=original,
                                author_name="",
                            )
                        )
                        number = 2
                    session.add(
                        KnowledgeVersion(
                            item_id=change.item_id,
                            number=number,
                            kind=change.kind,
                            action=change.action,
                            content=change.content,
                            toml=new_text or "",
                            change_id=change.id,
                            author_name=change.author_name,
                            reviewer_name=editor.name,
                        )
                    )
                    change.version = number
                    await self._close(session, change, editor, "approved", comment, ip)
                    if change.content is not None:
                        await self._reviewed(session, change.item_id, editor, change.department_id)
                    version = await raise_published_version(session)
                    await self.replica.record(
                        session, version, [self.replica.change(path, original, new_text)]
                    )
                    await session.commit()
            except PublishConflict as error:
                await asyncio.to_thread(_put_back, path, original)
                raise EditError("outdated", str(error)) from error
            except BaseException:
                await asyncio.to_thread(_put_back, path, original)
                raise
            if self.git_commits:
                await self._git_commit(path, change, editor)
            caught = await self._caught_up()
        await self._reload_after(version, caught)
        if change.content is not None:
            try:
                await self.tell_watchers(change.item_id)
            except Exception:
                log.exception("telling residents about item %s failed", change.item_id)

    async def _caught_up(self) -> CatchUp | None:
        """Held after a change is committed: take in what other hosts published meanwhile."""
        try:
            return await self.replica.catch_up_held()
        except Exception:
            # Published all the same; the next poll brings the folder up to date.
            log.exception("bringing the knowledge folder up to date after publishing failed")
            return None

    async def _reload_after(self, version: int, caught: CatchUp | None) -> None:
        """Reload this process's store after publishing `version` (outside the folder's lock:
        an index takes seconds to build, and the other processes of the host need not wait)."""
        await self.store.reload()
        if self.sync is not None and caught is not None:
            self.sync.seen = max(version, caught.version)

    def _write_and_check(self, path: Path, original: str | None, new_text: str | None) -> None:
        if new_text is None:
            path.unlink(missing_ok=True)
        else:
            _write_atomically(path, new_text)
        try:
            load_knowledge_base(self.directory)
        except KnowledgeBaseError as error:
            _put_back(path, original)
            raise EditError("invalid", str(error)) from error

    async def _next_number(self, session: AsyncSession, item_id: str) -> int:
        found = await session.scalar(
            select(func.max(KnowledgeVersion.number)).where(KnowledgeVersion.item_id == item_id)
        )
        return int(found or 0) + 1

    async def _git_commit(self, path: Path, change: KnowledgeChange, editor: Editor) -> None:
        """Commit the item's file when the knowledge base folder is a git repository of its own."""
        message = (
            f"{change.action} {change.item_id} (version {change.version})\n\n"
            f"Proposed by {change.author_name or '-'}, approved by {editor.name or '-'}."
        )
        if change.note:
            message += f"\n\n{change.note}"
        await self._git_commit_file(path, message)

    async def _git_commit_file(self, path: Path, message: str) -> None:
        """Commit one file when the knowledge base folder is a git repository of its own."""
        if not (self.directory / ".git").exists():
            return
        relative = path.relative_to(self.directory).as_posix()
        identity = ["-c", "user.name=knowledge console", "-c", "user.email=console@localhost"]
        for arguments in (
            ["add", "-A", "--", relative],
            [*identity, "commit", "-q", "-m", message, "--", relative],
        ):
            process = await asyncio.create_subprocess_exec(
                "git",
                "-C",
                str(self.directory),
                *arguments,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            _, error = await process.communicate()
            if process.returncode != 0:
                log.error("git %s failed: %s", arguments[-3:], error.decode(errors="replace"))
                return

    # -- synonym groups -------------------------------------------------------------------------

    SYNONYMS = "@synonyms"

    async def publish_synonyms(
        self, editor: Editor, groups: list[list[str]], *, ip: str = ""
    ) -> int:
        """Write the city's synonym groups (reviewers only: they serve every department), check
        the knowledge base, keep the version, commit, and tell every process; return the
        version number."""
        if not editor.may_review:
            raise EditError("forbidden")
        problems = check_synonym_groups(groups)
        if problems:
            raise EditError("invalid", "; ".join(str(p) for p in problems))
        path = self.directory / "synonyms.toml"
        async with self._lock, self.replica.exclusive():
            await self.replica.catch_up_held(also=[self.replica.relative(path)])
            try:
                original: str | None = path.read_text(encoding="utf-8")
            except FileNotFoundError:
                original = None
            try:
                text = render_synonyms_file(groups, original)
            except ValueError as error:
                raise EditError("invalid", str(error)) from error
            await asyncio.to_thread(self._write_and_check, path, original, text)
            try:
                async with write_gate(self.sessions), self.sessions() as session:
                    number = await self._next_number(session, self.SYNONYMS)
                    if number == 1 and original is not None:
                        session.add(
                            KnowledgeVersion(
                                item_id=self.SYNONYMS,
                                number=1,
                                kind="synonyms",
                                action="baseline",
                                content={"groups": tomllib.loads(original).get("groups", [])},
                                toml=original,
                            )
                        )
                        number = 2
                    session.add(
                        KnowledgeVersion(
                            item_id=self.SYNONYMS,
                            number=number,
                            kind="synonyms",
                            action="edit",
                            content={"groups": groups},
                            toml=text,
                            author_name=editor.name,
                            reviewer_name=editor.name,
                        )
                    )
                    await record_audit(
                        session,
                        user_id=editor.user_id,
                        action="knowledge.synonyms",
                        target_type="knowledge",
                        target_id="synonyms.toml",
                        detail={"version": number, "groups": len(groups)},
                        ip=ip,
                    )
                    version = await raise_published_version(session)
                    await self.replica.record(
                        session, version, [self.replica.change(path, original, text)]
                    )
                    await session.commit()
            except PublishConflict as error:
                await asyncio.to_thread(_put_back, path, original)
                raise EditError("outdated", str(error)) from error
            except BaseException:
                await asyncio.to_thread(_put_back, path, original)
                raise
            if self.git_commits:
                await self._git_commit_file(
                    path, f"edit synonyms.toml (version {number})\n\nBy {editor.name or '-'}."
                )
            caught = await self._caught_up()
        await self._reload_after(version, caught)
        return number

    @contextlib.asynccontextmanager
    async def publishing(self, *paths: Path) -> AsyncIterator[None]:
        """Hold this host's folder for a change made outside the review (a phrasing staff
        taught the bot) to the files `paths`, brought up to date and reloaded first; `announce`
        the change inside."""
        async with self.replica.exclusive():
            caught = await self.replica.catch_up_held(
                also=[self.replica.relative(p) for p in paths]
            )
            if caught.changed:
                await self.store.reload()
            yield

    async def announce(self, changes: Sequence[FileChange]) -> int:
        """Publish files changed outside the review (inside `publishing()`): store them with a
        new published version, so every other process and host takes them in; return the
        version. Raise PublishConflict when another host published one of them meanwhile."""
        async with write_gate(self.sessions), self.sessions() as session:
            version = await raise_published_version(session)
            await self.replica.record(session, version, changes)
            await session.commit()
        caught = await self._caught_up()
        # The caller reloaded before announcing: a version published meanwhile by another process
        # still needs the poll's reload, so `seen` moves only when there was none.
        if self.sync is not None and caught is not None and caught.version == version:
            self.sync.seen = version
        return version

    # -- residents waiting for an answer --------------------------------------------------------

    async def watch(self, question_id: int, resident_id: int) -> bool:
        """Note that a resident wants to hear when their question is answered (False: noted
        already, or not their question)."""
        async with write_gate(self.sessions), self.sessions() as session:
            question = await session.get(Question, question_id)
            if question is None or question.resident_id != resident_id:
                return False
            existing = await session.scalar(
                select(AnswerWatch.id).where(AnswerWatch.question_id == question_id)
            )
            if existing is not None:
                return False
            session.add(AnswerWatch(question_id=question_id, resident_id=resident_id))
            try:
                await session.commit()
            except IntegrityError:
                return False
            return True

    async def tell_watchers(self, item_id: str) -> int:
        """Queue a message to each waiting resident whose question the item now answers;
        return how many. Sent by the delivery worker, paced as every outbox message is."""
        loaded = self.store.current
        item = loaded.kb.items.get(item_id)
        if item is None:
            return 0
        since = utcnow() - dt.timedelta(days=WATCH_DAYS)
        async with self.sessions() as session:
            rows = (
                await session.execute(
                    select(
                        AnswerWatch.id, AnswerWatch.resident_id, Question.text, Question.language
                    )
                    .join(Question, Question.id == AnswerWatch.question_id)
                    .where(AnswerWatch.notified_at.is_(None), AnswerWatch.created_at >= since)
                    .order_by(AnswerWatch.id)
                    .limit(MAX_WATCHES_CHECKED)
                )
            ).all()

        def answered_now() -> list[tuple[int, int, str, str]]:
            found = []
            for watch_id, resident_id, text, language in rows:
                result = loaded.matcher.match(text)
                if result.decision == "answer" and result.best and result.best.item.id == item_id:
                    found.append((watch_id, resident_id, text, language))
            return found

        # Up to MAX_WATCHES_CHECKED questions: matched in a worker thread, off the event loop.
        answered = await asyncio.to_thread(answered_now)
        if not answered:
            return 0
        now = utcnow()
        async with write_gate(self.sessions), self.sessions() as session:
            for watch_id, resident_id, text, language in answered:
                card = render_html(build_card(item, loaded.kb, language))
                session.add(
                    published_answer_message(
                        watch_id=watch_id,
                        resident_id=resident_id,
                        language=language,
                        question=text,
                        item_id=item_id,
                        card_html=card,
                        now=now,
                    )
                )
                await session.execute(
                    update(AnswerWatch)
                    .where(AnswerWatch.id == watch_id)
                    .values(notified_at=now, item_id=item_id)
                )
            await session.commit()
        return len(answered)

    # -- freshness -------------------------------------------------------------------------------

    async def _reviewed(
        self, session: AsyncSession, item_id: str, editor: Editor, department_id: str
    ) -> None:
        review = await session.get(KnowledgeReview, item_id)
        if review is None:
            review = KnowledgeReview(item_id=item_id)
            session.add(review)
        review.reviewed_at = utcnow()
        review.reviewer_id = editor.user_id
        review.reviewer_name = editor.name
        # What the department was called and could be reached at: a later change of either
        # makes the item due for review again.
        department = self.store.kb.departments.get(department_id)
        review.department_name = department.name if department else None
        review.department_phone = department.phone if department else None

    async def confirm_current(self, editor: Editor, item_id: str, *, ip: str = "") -> None:
        """Record that an item was read and is still correct."""
        item = self.store.kb.items.get(item_id)
        if item is None:
            raise EditError("not_found")
        if not editor.may_edit(item.department):
            raise EditError("forbidden")
        async with write_gate(self.sessions), self.sessions() as session:
            await self._reviewed(session, item_id, editor, item.department)
            await record_audit(
                session,
                user_id=editor.user_id,
                action="knowledge.confirm",
                target_type="knowledge",
                target_id=item_id,
                ip=ip,
            )
            await session.commit()

    async def freshness(self, now: dt.datetime | None = None) -> list[Freshness]:
        """Return every item's last review and why it needs review (bot/answering/freshness.py)."""
        async with self.sessions() as session:
            reviews = await load_reviews(session)
            history = await load_department_history(session)
        today = (now or utcnow()).date()
        return item_freshness(self.store.kb, reviews, today, self.review_days, history)

    # -- reads -----------------------------------------------------------------------------------

    async def changes(
        self, *, status: str | None = None, item_id: str | None = None, limit: int = 200
    ) -> list[KnowledgeChange]:
        query = select(KnowledgeChange).order_by(KnowledgeChange.id.desc()).limit(limit)
        if status:
            query = query.where(KnowledgeChange.status == status)
        if item_id:
            query = query.where(KnowledgeChange.item_id == item_id)
        async with self.sessions() as session:
            return list((await session.scalars(query)).all())

    async def change(self, change_id: int) -> KnowledgeChange | None:
        async with self.sessions() as session:
            return await session.get(KnowledgeChange, change_id)

    async def versions(self, item_id: str) -> list[KnowledgeVersion]:
        async with self.sessions() as session:
            rows = await session.scalars(
                select(KnowledgeVersion)
                .where(KnowledgeVersion.item_id == item_id)
                .order_by(KnowledgeVersion.number.desc())
            )
            return list(rows.all())

    async def version(self, item_id: str, number: int) -> KnowledgeVersion | None:
        async with self.sessions() as session:
            return await session.scalar(
                select(KnowledgeVersion).where(
                    KnowledgeVersion.item_id == item_id, KnowledgeVersion.number == number
                )
            )

    async def retired_items(self) -> list[KnowledgeVersion]:
        """Return the last version of items retired in the console (to restore them)."""
        async with self.sessions() as session:
            latest = (
                select(KnowledgeVersion.item_id, func.max(KnowledgeVersion.number).label("n"))
                .group_by(KnowledgeVersion.item_id)
                .subquery()
            )
            rows = await session.scalars(
                select(KnowledgeVersion)
                .join(
                    latest,
                    (latest.c.item_id == KnowledgeVersion.item_id)
                    & (latest.c.n == KnowledgeVersion.number),
                )
                .where(KnowledgeVersion.action == "retire")
            )
        return [
            v
            for v in rows.all()
            if v.item_id not in self.store.kb.items and not v.item_id.startswith("@")
        ]

    # -- what the bot would answer ---------------------------------------------------------------

    async def residents_questions(self, item_id: str) -> list[str]:
        """Recent residents' questions that came close to an item, newest first."""
        async with self.sessions() as session:
            rows = await session.execute(
                select(Question.text, Question.item_id, Question.chosen_item_id)
                .where(
                    (Question.item_id == item_id)
                    | (Question.chosen_item_id == item_id)
                    | knowledge_gap()
                )
                .order_by(Question.id.desc())
                .limit(RECENT_QUESTIONS_SCANNED)
            )
        found: list[str] = []
        nearby: list[str] = []
        for text, answered, chosen in rows.all():
            if item_id in (answered, chosen):
                found.append(text)
            else:
                # Unanswered questions: the preview keeps those the item now or then wins.
                nearby.append(text)
        return first_lines([*found, *nearby], RECENT_QUESTIONS_SCANNED)

    async def preview(
        self,
        item: Item | None,
        *,
        item_id: str,
        own_questions: Sequence[str],
    ) -> list[AnswerPreview]:
        """How the bot answers the item's own questions and residents' nearby ones, before and
        after the change (`item` None: the item retired)."""
        residents = await self.residents_questions(item_id)
        loaded = self.store.current
        return await asyncio.to_thread(
            self._preview, loaded.kb, loaded.matcher, item, item_id, own_questions, residents
        )

    def _preview(
        self,
        kb: KnowledgeBase,
        matcher: Any,
        item: Item | None,
        item_id: str,
        own_questions: Sequence[str],
        residents: Sequence[str],
    ) -> list[AnswerPreview]:
        after_kb = with_item(kb, item, remove=item_id if item is None else None)
        after_matcher = build_matcher(after_kb, self.store.thresholds, self.store.signals)
        rows: list[AnswerPreview] = []
        for question in first_lines(list(own_questions), PREVIEW_OWN_QUESTIONS):
            rows.append(
                AnswerPreview(
                    question,
                    "item",
                    Outcome.of(matcher.match(question)),
                    Outcome.of(after_matcher.match(question)),
                )
            )
        close: list[AnswerPreview] = []
        for question in residents:
            if question in own_questions:
                continue
            before = Outcome.of(matcher.match(question))
            after = Outcome.of(after_matcher.match(question))
            if item_id in (before.item_id, after.item_id):
                close.append(AnswerPreview(question, "resident", before, after))
            if len(close) >= PREVIEW_RESIDENT_QUESTIONS:
                break
        return rows + close
