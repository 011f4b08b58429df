"""Every host's knowledge folder kept at the database's published content.

Each process answers from the TOML files of its own `knowledge/` folder, but a change published
on one host (an approved console edit or restore, the synonyms, a phrasing taught by staff,
`python -m bot kb publish`) must reach every host, not only the processes sharing that folder.
So the publisher stores the full text of every file it changed with the version it raised
(`knowledge_files`: one row per file and version, with the text's SHA-256), in the transaction
that raises it; and every process, at start and whenever the published version moves, first
brings its folder to the newest published text of each file (`KnowledgeReplica.catch_up`), then
reloads as before. The texts are stored verbatim, so comments and layout arrive as written.

A file changed by hand on one host: the database's published text wins. When a host's file
differs from the newest published text and is not one the database ever held for that path
(a published text, or the text a change was made against), it was changed by hand: it is
copied beside itself as FILE.local-YYYYMMDDTHHMMSSZ and a WARNING names both, then the published
text replaces it. A file the database never published is the host's own and is left alone:
`python -m bot kb publish` publishes a host's hand edits to every host (`publish_folder`).

Several processes of one host share its folder: one at a time writes it, holding an advisory
lock (flock) on the folder itself, so a publisher's write and its database row look atomic to
the other processes of its host.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import errno
import fcntl
import hashlib
import logging
import os
import shutil
import tempfile
import tomllib
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.answering.editing import file_hash
from bot.answering.knowledge_base import ITEM_FOLDERS
from bot.core.audit import record_audit
from bot.core.db import write_gate
from bot.core.models import KnowledgeFile, KnowledgeState, utcnow

log = logging.getLogger(__name__)

# The files of a knowledge folder that are published: what load_knowledge_base reads.
TOP_FILES = frozenset({"departments.toml", "synonyms.toml"})
# How often a process waiting for another process of its host to finish with the folder looks.
LOCK_POLL_SECONDS = 0.05
# Rows read per query when a folder is far behind (a new host: every published file).
CHUNK = 500


def is_knowledge_path(path: str) -> bool:
    """Tell whether a relative path names a file the knowledge base reads (and nothing else:
    no parent folders, no hidden files, nothing outside the folder)."""
    parts = PurePosixPath(path).parts
    if not parts or any(p in ("", ".", "..") or p.startswith(".") for p in parts):
        return False
    if "\\" in path or PurePosixPath(path).is_absolute():
        return False
    if len(parts) == 1:
        return parts[0] in TOP_FILES
    return len(parts) == 2 and parts[0] in ITEM_FOLDERS and parts[1].endswith(".toml")


def folder_files(directory: Path) -> list[str]:
    """Return the relative paths of the knowledge base's files in a folder, sorted."""
    found = [name for name in sorted(TOP_FILES) if (directory / name).is_file()]
    for folder in ITEM_FOLDERS:
        found.extend(
            f"{folder}/{path.name}"
            for path in sorted((directory / folder).glob("*.toml"))
            if path.is_file() and not path.name.startswith(".")
        )
    return found


# -- the published version -----------------------------------------------------------------------


async def published_version(session: AsyncSession) -> int:
    """Return the knowledge base's published version (0 before the first change)."""
    found = await session.scalar(select(KnowledgeState.version).where(KnowledgeState.id == 1))
    return int(found or 0)


async def raise_published_version(session: AsyncSession) -> int:
    """Raise the published version in the caller's transaction; return the new one.

    On PostgreSQL the update holds the row until the transaction ends, so publishers on
    different hosts take turns from here to their commit.
    """
    result = await session.execute(
        update(KnowledgeState)
        .where(KnowledgeState.id == 1)
        .values(version=KnowledgeState.version + 1, changed_at=utcnow())
        .returning(KnowledgeState.version)
    )
    found = result.scalar_one_or_none()
    if found is not None:
        return int(found)
    try:
        async with session.begin_nested():
            session.add(KnowledgeState(id=1, version=1, changed_at=utcnow()))
        return 1
    except IntegrityError:
        return await raise_published_version(session)


# -- what a change and a catch-up are ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FileChange:
    """One file a published change wrote: its new text (None: removed) and the hash of the text
    the change was made against ("" when there was no file)."""

    path: str
    text: str | None
    base_hash: str

    @property
    def sha256(self) -> str:
        return file_hash(self.text)


class PublishConflict(Exception):
    """Another host published the file since this host read it: the change is outdated."""

    def __init__(self, path: str) -> None:
        super().__init__(f"{path} was published meanwhile by another host")
        self.path = path


@dataclass(frozen=True, slots=True)
class CatchUp:
    """What bringing a folder to the published version did."""

    version: int
    written: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    # The copies kept of files changed by hand, beside them.
    set_aside: tuple[str, ...] = ()
    # Rows refused: a text whose hash is not the one stored, or a path outside the folder.
    refused: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.written or self.removed)


@dataclass(frozen=True, slots=True)
class _Published:
    """The newest row of one path: what the folder's file must hold."""

    row_id: int
    sha256: str


@dataclass(slots=True)
class _Target:
    path: str
    content: str | None
    sha256: str
    known: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class FolderPublished:
    """What `publish_folder` did: the version raised (None: nothing to publish), the files
    published, and the files left out because they are older than the published ones."""

    version: int | None
    published: tuple[str, ...]
    behind: tuple[str, ...]


# -- one host's folder ---------------------------------------------------------------------------


class KnowledgeReplica:
    """One knowledge folder kept at the database's published files.

    `catch_up` brings the folder up to date; a publisher holds `exclusive()` from reading the
    file it changes until its change is committed (`record`), so no other process of the host
    writes the folder meanwhile.
    """

    def __init__(self, directory: Path, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.directory = directory
        self.sessions = sessions
        self._lock = asyncio.Lock()
        self._held = False
        self._told_empty = False
        # The version up to which every published file was last compared with the folder.
        self._checked: int | None = None
        # Hashes of local files by (mtime, size, inode), so unchanged files are not read again.
        self._hashes: dict[str, tuple[int, int, int, str]] = {}

    def relative(self, path: Path) -> str:
        return path.relative_to(self.directory).as_posix()

    def change(self, path: Path, before: str | None, after: str | None) -> FileChange:
        """Describe writing `after` (None: removing) over `before` at `path` in the folder."""
        return FileChange(self.relative(path), after, file_hash(before))

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        """Hold the folder: no other process of this host writes it until the block ends."""
        async with self._lock:
            handle = os.open(self.directory, os.O_RDONLY)
            try:
                while True:
                    try:
                        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except OSError as error:
                        if error.errno not in (errno.EAGAIN, errno.EACCES):
                            raise
                    await asyncio.sleep(LOCK_POLL_SECONDS)
                self._held = True
                try:
                    yield
                finally:
                    self._held = False
                    fcntl.flock(handle, fcntl.LOCK_UN)
            finally:
                os.close(handle)

    # -- bringing the folder up to date ----------------------------------------------------------

    async def catch_up(self) -> CatchUp:
        """Bring the folder to the published version; return what changed."""
        async with self.exclusive():
            return await self.catch_up_held()

    async def catch_up_held(self, also: Sequence[str] = ()) -> CatchUp:
        """`catch_up` for a caller that holds `exclusive()` already; the files `also` names are
        checked whatever their version (a publisher's file, before it changes it).

        The first catch-up of a replica compares every published file with the folder; later
        ones only the files published since, so a poll costs what the change costs.
        """
        if not self._held:
            raise RuntimeError("catch_up_held needs exclusive() held")
        async with self.sessions() as session:
            version = await published_version(session)
            since = (
                self._checked if self._checked is not None and self._checked <= version else None
            )
            published = await self._newest(session, version, since, also)
            if since is None and not published and version > 0 and not self._told_empty:
                # Changes were published before the database kept files (an upgrade).
                self._told_empty = True
                log.warning(
                    "the database holds no knowledge files although version %d is published: "
                    "hosts may differ; run python -m bot kb publish on the host whose knowledge "
                    "folder is right (docs/deploy.md)",
                    version,
                )
            stale = await asyncio.to_thread(self._differing, published)
            if not stale:
                self._checked = version
                return CatchUp(version)
            targets = await self._targets(session, [published[path].row_id for path in stale])
        caught = await asyncio.to_thread(self._apply, version, targets)
        self._checked = version
        log.info(
            "knowledge folder %s brought to published version %d: %d files written, %d removed%s",
            self.directory,
            version,
            len(caught.written),
            len(caught.removed),
            f", {len(caught.set_aside)} changed by hand kept aside" if caught.set_aside else "",
        )
        return caught

    async def _newest(
        self,
        session: AsyncSession,
        version: int,
        since: int | None = None,
        also: Sequence[str] = (),
    ) -> dict[str, _Published]:
        """Return the newest row, up to `version`, of every published path (with `since`: of
        the paths published after it, and those `also` names)."""
        newest = select(
            KnowledgeFile.path, func.max(KnowledgeFile.version).label("version")
        ).where(KnowledgeFile.version <= version)
        if since is not None:
            later = func.max(KnowledgeFile.version) > since
            newest = newest.having(or_(later, KnowledgeFile.path.in_(also)) if also else later)
        latest = newest.group_by(KnowledgeFile.path).subquery()
        rows = await session.execute(
            select(KnowledgeFile.id, KnowledgeFile.path, KnowledgeFile.sha256).join(
                latest,
                (latest.c.path == KnowledgeFile.path)
                & (latest.c.version == KnowledgeFile.version),
            )
        )
        return {path: _Published(row_id, sha256) for row_id, path, sha256 in rows.all()}

    async def _targets(self, session: AsyncSession, row_ids: Sequence[int]) -> list[_Target]:
        """Return the texts of the rows, each with every hash the database holds for its path."""
        targets: dict[str, _Target] = {}
        for start in range(0, len(row_ids), CHUNK):
            texts = await session.execute(
                select(KnowledgeFile.path, KnowledgeFile.content, KnowledgeFile.sha256).where(
                    KnowledgeFile.id.in_(row_ids[start : start + CHUNK])
                )
            )
            for path, content, sha256 in texts.all():
                targets[path] = _Target(path, content, sha256)
        paths = list(targets)
        for start in range(0, len(paths), CHUNK):
            hashes = await session.execute(
                select(KnowledgeFile.path, KnowledgeFile.sha256, KnowledgeFile.base_sha256).where(
                    KnowledgeFile.path.in_(paths[start : start + CHUNK])
                )
            )
            for path, sha256, base in hashes.all():
                targets[path].known.update((sha256, base))
        return [targets[path] for path in sorted(targets)]

    def local_hash(self, path: str) -> str:
        """Return the hash of the folder's file ("" when there is none)."""
        full = self.directory / path
        try:
            stat = full.stat()
        except FileNotFoundError:
            self._hashes.pop(path, None)
            return ""
        cached = self._hashes.get(path)
        key = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        if cached is not None and cached[:3] == key:
            return cached[3]
        data = full.read_bytes()
        try:
            # As the editor reads files (universal newlines), so their hashes agree.
            digest = file_hash(data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n"))
        except UnicodeDecodeError:
            digest = "undecodable:" + hashlib.sha256(data).hexdigest()
        self._hashes[path] = (*key, digest)
        return digest

    def _differing(self, published: dict[str, _Published]) -> list[str]:
        return [path for path, row in published.items() if self.local_hash(path) != row.sha256]

    def _apply(self, version: int, targets: Iterable[_Target]) -> CatchUp:
        written: list[str] = []
        removed: list[str] = []
        set_aside: list[str] = []
        refused: list[str] = []
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        for target in targets:
            if not is_knowledge_path(target.path) or file_hash(target.content) != target.sha256:
                log.error(
                    "published knowledge file %r (version %d) refused: its path or its hash is "
                    "not right; the folder keeps its own file",
                    target.path,
                    version,
                )
                refused.append(target.path)
                continue
            path = self.directory / target.path
            local = self.local_hash(target.path)
            if local == target.sha256:
                continue
            if local and local not in target.known:
                aside = _free_name(path.with_name(f"{path.name}.local-{stamp}"))
                shutil.copy2(path, aside)
                set_aside.append(self.relative(aside))
                log.warning(
                    "knowledge file %s was changed on this host and never published: kept as "
                    "%s, replaced by the published version %d (to publish a hand edit to every "
                    "host: python -m bot kb publish)",
                    path,
                    aside.name,
                    version,
                )
            if target.content is None:
                path.unlink(missing_ok=True)
                removed.append(target.path)
            else:
                write_atomically(path, target.content)
                written.append(target.path)
            self._hashes.pop(target.path, None)
            log.debug("knowledge file %s brought to version %d", target.path, version)
        return CatchUp(version, tuple(written), tuple(removed), tuple(set_aside), tuple(refused))

    # -- publishing ------------------------------------------------------------------------------

    async def record(
        self, session: AsyncSession, version: int, changes: Sequence[FileChange]
    ) -> None:
        """Store the changed files with `version` (just raised, in the caller's transaction).

        Raise PublishConflict when another host published one of the files after the text the
        change was made against: the caller rolls back and puts its file back.
        """
        for change in changes:
            if not is_knowledge_path(change.path):
                raise ValueError(f"not a file of the knowledge base: {change.path!r}")
        paths = [change.path for change in changes]
        newest: dict[str, str] = {}
        for start in range(0, len(paths), CHUNK):
            chunk = paths[start : start + CHUNK]
            latest = (
                select(KnowledgeFile.path, func.max(KnowledgeFile.version).label("version"))
                .where(KnowledgeFile.path.in_(chunk), KnowledgeFile.version < version)
                .group_by(KnowledgeFile.path)
                .subquery()
            )
            rows = await session.execute(
                select(KnowledgeFile.path, KnowledgeFile.sha256).join(
                    latest,
                    (latest.c.path == KnowledgeFile.path)
                    & (latest.c.version == KnowledgeFile.version),
                )
            )
            newest.update((path, sha256) for path, sha256 in rows.all())
        for change in changes:
            found = newest.get(change.path)
            if found is not None and found != change.base_hash:
                raise PublishConflict(change.path)
        session.add_all(
            KnowledgeFile(
                version=version,
                path=change.path,
                content=change.text,
                sha256=change.sha256,
                base_sha256=change.base_hash,
            )
            for change in changes
        )
        await session.flush()

    async def publish_folder(self) -> FolderPublished:
        """Publish this folder's files the database has not seen (hand edits, files never
        published) as one new version, for every host; never removes a file.

        A file whose text the database held once but no longer publishes is behind, not
        changed: it is left out (the bot brings it up to date). The caller checks the
        knowledge base first.
        """
        async with self.exclusive():
            paths = await asyncio.to_thread(folder_files, self.directory)
            async with self.sessions() as session:
                version = await published_version(session)
                newest = await self._newest(session, version)
                known: dict[str, set[str]] = {}
                for start in range(0, len(paths), CHUNK):
                    rows = await session.execute(
                        select(
                            KnowledgeFile.path, KnowledgeFile.sha256, KnowledgeFile.base_sha256
                        ).where(KnowledgeFile.path.in_(paths[start : start + CHUNK]))
                    )
                    for path, sha256, base in rows.all():
                        known.setdefault(path, set()).update((sha256, base))
            texts = await asyncio.to_thread(self._read_texts, paths)
            changes: list[FileChange] = []
            behind: list[str] = []
            for path in paths:
                text = texts[path]
                digest = file_hash(text)
                published = newest.get(path)
                if published is not None and published.sha256 == digest:
                    continue
                if digest in known.get(path, set()):
                    behind.append(path)
                    continue
                base = published.sha256 if published is not None else ""
                changes.append(FileChange(path, text, base))
            if not changes:
                return FolderPublished(None, (), tuple(behind))
            async with write_gate(self.sessions), self.sessions() as session:
                raised = await raise_published_version(session)
                await self.record(session, raised, changes)
                await record_audit(
                    session,
                    user_id=None,
                    action="knowledge.publish_folder",
                    target_type="knowledge",
                    target_id=str(self.directory),
                    detail={"version": raised, "files": [c.path for c in changes][:200]},
                )
                await session.commit()
        return FolderPublished(raised, tuple(c.path for c in changes), tuple(behind))

    def _read_texts(self, paths: Sequence[str]) -> dict[str, str]:
        texts = {}
        for path in paths:
            text = (self.directory / path).read_text(encoding="utf-8")
            tomllib.loads(text)  # a file the knowledge base reads is TOML: no NUL, nothing odd
            texts[path] = text
        return texts


def _free_name(path: Path) -> Path:
    candidate, number = path, 1
    while candidate.exists():
        number += 1
        candidate = path.with_name(f"{path.name}-{number}")
    return candidate


def write_atomically(path: Path, content: str) -> None:
    """Write a file whole or not at all: a temporary file beside it, renamed over it."""
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
