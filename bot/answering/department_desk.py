"""Departments edited in the console, through the knowledge base's review.

An officer proposes changes to their own department (name, phone, address, hours, web address,
complaint categories and keywords); editors and managers propose for any department, create new
ones and retire those nothing depends on any more. A reviewer approves through
`KnowledgeEditor.decide` (bot/answering/publishing.py), which hands a department's change to
`DepartmentDesk.publish`: departments.toml is rewritten with tomlkit (bot/answering/
department_editing.py), the whole knowledge base is checked as `kb check` would (an invalid
result puts the old file back), the department's version is kept, the file committed when the
folder is a git repository, and the published version raised, so every process reloads.

A department's delivery channels ([departments.<id>] of config.toml) are deployment settings and
are not edited here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.answering.department_editing import (
    DEPARTMENT_KIND,
    DEPARTMENTS_FILE,
    KEY_PREFIX,
    check_department_draft,
    department_content,
    department_hash,
    department_key,
    department_of_key,
    department_table_text,
    items_of,
    ordered_department,
    render_departments_file,
)
from bot.answering.publishing import (
    MAX_NOTE_CHARS,
    EditError,
    Editor,
    KnowledgeEditor,
    _put_back,
)
from bot.answering.replication import PublishConflict, raise_published_version
from bot.core.audit import record_audit
from bot.core.db import write_gate
from bot.core.models import KnowledgeChange, KnowledgeVersion, Ticket, User
from bot.tickets.desk import HELD_STATUSES

ACTIONS = ("create", "edit", "retire", "restore")


@dataclass(frozen=True, slots=True)
class InUse:
    """What still depends on a department, so that it cannot be retired."""

    items: tuple[str, ...] = ()
    # config.toml has a [departments.<id>] section for it (the next start would refuse it).
    configured: bool = False
    open_tickets: int = 0
    officers: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.items or self.configured or self.open_tickets or self.officers)

    def __str__(self) -> str:
        reasons = []
        if self.items:
            reasons.append("its items: " + ", ".join(self.items))
        if self.configured:
            reasons.append("its [departments.<id>] section in config.toml")
        if self.open_tickets:
            reasons.append(f"{self.open_tickets} open ticket(s)")
        if self.officers:
            reasons.append("officer accounts: " + ", ".join(self.officers))
        return "still used by " + "; ".join(reasons)


class DepartmentDesk:
    """Proposals and versions of the departments, published through the knowledge editor."""

    def __init__(
        self,
        editor: KnowledgeEditor,
        *,
        configured: Callable[[], Iterable[str]] = tuple,
    ) -> None:
        self.editor = editor
        # The department ids config.toml has a [departments.<id>] section for.
        self.configured = configured
        editor.publishers[DEPARTMENT_KIND] = self.publish

    @property
    def path(self) -> Path:
        return self.editor.directory / DEPARTMENTS_FILE

    def read_file(self) -> str | None:
        try:
            return self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def current_content(self, department_id: str) -> dict[str, Any] | None:
        """Return a department's fields as departments.toml holds them now."""
        return department_content(self.read_file(), department_id)

    # -- what depends on a department -----------------------------------------------------------

    async def in_use(self, department_id: str) -> InUse:
        """Return what still depends on a department: items, config.toml's section for it,
        tickets it holds, officer accounts."""
        items = tuple(item.id for item in items_of(self.editor.store.kb, department_id))
        async with self.editor.sessions() as session:
            tickets = await session.scalar(
                select(func.count(Ticket.id)).where(
                    Ticket.department_id == department_id,
                    Ticket.status.in_([str(s) for s in HELD_STATUSES]),
                )
            )
            officers = (
                await session.scalars(
                    select(User.username)
                    .where(
                        User.department_id == department_id,
                        User.role == "officer",
                        User.disabled.is_(False),
                    )
                    .order_by(User.username)
                )
            ).all()
        return InUse(
            items=items,
            configured=department_id in set(self.configured()),
            open_tickets=int(tickets or 0),
            officers=tuple(officers),
        )

    # -- proposing -------------------------------------------------------------------------------

    async def propose(
        self,
        editor: Editor,
        *,
        action: str,
        department_id: str,
        content: dict[str, Any] | None,
        note: str = "",
        ip: str = "",
    ) -> int:
        """Store a proposed change of a department and return its id; raise EditError when it
        cannot be (forbidden, not_found, invalid, in_use)."""
        if action not in ACTIONS:
            raise EditError("invalid", "unknown action")
        current = self.current_content(department_id)
        if action in ("create", "retire") and not editor.may_review:
            # Only reviewers add or retire departments; an officer has no other to act for.
            raise EditError("forbidden")
        if not editor.may_edit(department_id):
            raise EditError("forbidden")
        if action == "create":
            if current is not None or department_id in self.editor.store.kb.departments:
                raise EditError("invalid", f"the id '{department_id}' is taken")
        elif current is None:
            raise EditError("not_found")
        if action == "retire":
            if content is not None:
                raise EditError("invalid", "a retirement has no content")
            blockers = await self.in_use(department_id)
            if blockers:
                raise EditError("in_use", str(blockers))
        else:
            if content is None or str(content.get("id")) != department_id:
                raise EditError("invalid", "the id cannot change")
            checked = check_department_draft(
                content,
                self.editor.store.kb,
                existing_id=None if action == "create" else department_id,
            )
            if not checked.ok:
                raise EditError("invalid", "; ".join(str(p) for p in checked.problems))
            content = ordered_department(content)
        async with write_gate(self.editor.sessions), self.editor.sessions() as session:
            change = KnowledgeChange(
                item_id=department_key(department_id),
                kind=DEPARTMENT_KIND,
                department_id=department_id,
                action=action,
                content=content,
                base_hash=department_hash(current),
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
                target_id=department_key(department_id),
                detail={"change": change.id, "action": action},
                ip=ip,
            )
            await session.commit()
            return change.id

    async def restore(
        self, editor: Editor, department_id: str, number: int, *, note: str = "", ip: str = ""
    ) -> int:
        """Propose an earlier version of a department as its next one; return the change's id."""
        version = await self.version(department_id, number)
        if version is None:
            raise EditError("not_found")
        present = self.current_content(department_id) is not None
        if version.content is None:
            if not present:
                raise EditError("invalid", "the department is already retired")
            return await self.propose(
                editor,
                action="retire",
                department_id=department_id,
                content=None,
                note=note,
                ip=ip,
            )
        return await self.propose(
            editor,
            action="restore" if present else "create",
            department_id=department_id,
            content=dict(version.content),
            note=note or f"restore version {number}",
            ip=ip,
        )

    # -- publishing ------------------------------------------------------------------------------

    async def publish(
        self,
        session: AsyncSession,
        change: KnowledgeChange,
        editor: Editor,
        comment: str,
        ip: str,
    ) -> None:
        """Write an approved change to departments.toml, keep its version and tell every
        process (called by `KnowledgeEditor.decide`, under its lock)."""
        desk = self.editor
        department_id = change.department_id
        path = self.path
        async with desk.replica.exclusive():
            # What other hosts published first: the change must apply to the newest file.
            await desk.replica.catch_up_held(also=[desk.replica.relative(path)])
            original = self.read_file()
            if original is None:
                raise EditError("invalid", f"{DEPARTMENTS_FILE} is missing")
            before = department_content(original, department_id)
            if department_hash(before) != change.base_hash:
                raise EditError("outdated")
            if change.content is None:
                blockers = await self.in_use(department_id)
                if blockers:
                    raise EditError("in_use", str(blockers))
            try:
                text = render_departments_file(original, department_id, change.content)
            except ValueError as error:
                raise EditError("invalid", str(error)) from error
            await asyncio.to_thread(desk._write_and_check, path, original, text)
            try:
                async with write_gate(desk.sessions):
                    key = department_key(department_id)
                    number = await desk._next_number(session, key)
                    if number == 1 and before is not None:
                        session.add(
                            KnowledgeVersion(
                                item_id=key,
                                number=1,
                                kind=DEPARTMENT_KIND,
                                action="baseline",
                                content=before,
                                toml=department_table_text(original, department_id),
                                author_name="",
                            )
                        )
                        number = 2
                    session.add(
                        KnowledgeVersion(
                            item_id=key,
                            number=number,
                            kind=DEPARTMENT_KIND,
                            action=change.action,
                            content=change.content,
                            toml=department_table_text(text, department_id),
                            change_id=change.id,
                            author_name=change.author_name,
                            reviewer_name=editor.name,
                        )
                    )
                    change.version = number
                    await desk._close(session, change, editor, "approved", comment, ip)
                    version = await raise_published_version(session)
                    # The file's text for the other hosts (bot/answering/replication.py).
                    await desk.replica.record(
                        session, version, [desk.replica.change(path, original, text)]
                    )
                    await session.commit()
            except PublishConflict as error:
                await asyncio.to_thread(_put_back, path, original)
                raise EditError("outdated", str(error)) from error
            except BaseException:
                await asyncio.to_thread(_put_back, path, original)
                raise
            if desk.git_commits:
                message = (
                    f"{change.action} department {department_id} (version {number})\n\n"
                    f"Proposed by {change.author_name or '-'}, approved by {editor.name or '-'}."
                )
                if change.note:
                    message += f"\n\n{change.note}"
                await desk._git_commit_file(path, message)
            caught = await desk._caught_up()
        await desk._reload_after(version, caught)

    # -- reads -----------------------------------------------------------------------------------

    async def versions(self, department_id: str) -> list[KnowledgeVersion]:
        return await self.editor.versions(department_key(department_id))

    async def version(self, department_id: str, number: int) -> KnowledgeVersion | None:
        return await self.editor.version(department_key(department_id), number)

    async def changes(self, department_id: str, *, limit: int = 50) -> list[KnowledgeChange]:
        return await self.editor.changes(item_id=department_key(department_id), limit=limit)

    async def retired(self) -> list[KnowledgeVersion]:
        """Return the last version of departments retired in the console (to restore them)."""
        async with self.editor.sessions() as session:
            latest = (
                select(KnowledgeVersion.item_id, func.max(KnowledgeVersion.number).label("n"))
                .where(KnowledgeVersion.item_id.startswith(KEY_PREFIX, autoescape=True))
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
                .order_by(KnowledgeVersion.item_id)
            )
        departments = self.editor.store.kb.departments
        return [v for v in rows.all() if department_of_key(v.item_id) not in departments]
