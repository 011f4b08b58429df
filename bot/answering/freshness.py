"""Which items of the knowledge base need review, why, and the reminders departments get.

An item needs review when it was not confirmed current within [knowledge] review_days
("overdue"), or when its department changed its name ("department_renamed") or phone
("department_phone_changed") in departments.toml since the item was last reviewed: every review
records the department's name and phone of that moment (`KnowledgeReview`). An item with no such
record (never reviewed in the console) is compared through the department's versions instead:
a change of the name or phone published in the console (bot/answering/department_desk.py) after
the item's `updated` date makes it due too.

`ReviewReminders` reminds each department of its items that need review, through the
department's own pushing channels ([departments.<id>] channels: telegram, webhook) as rows of
the outbox, at most once per [knowledge] reminder_days. A department with only the web console
gets no row: the console's freshness page lists the same items. Each row's idempotency key
names the department, the channel and the interval, so several processes sweeping at once add
it exactly once (the outbox's unique key refuses the second).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.answering.department_editing import KEY_PREFIX, department_of_key
from bot.answering.knowledge_base import Department, KnowledgeBase
from bot.core.config import Settings
from bot.core.db import write_gate
from bot.core.i18n import Html, add_strings, t
from bot.core.models import KnowledgeReview, KnowledgeVersion, OutboxMessage, utcnow

log = logging.getLogger(__name__)

OVERDUE = "overdue"
DEPARTMENT_RENAMED = "department_renamed"
DEPARTMENT_PHONE_CHANGED = "department_phone_changed"
REASONS = (OVERDUE, DEPARTMENT_RENAMED, DEPARTMENT_PHONE_CHANGED)

KNOWLEDGE_REVIEW = "knowledge_review"
REMINDER_KEY_PREFIX = "knowledge-review"
# A reminder names at most this many items, then says how many more there are.
MAX_ITEMS_LISTED = 30
PAYLOAD_VERSION = 1

add_strings(
    "knowledge_freshness",
    {
        "kbf_reminder_head": {
            "zh": "📋 <b>知识库内容待审核</b>：{department}有 {count} 个条目需要核对（审核周期 {days} 天）。",
            "en": "📋 <b>Knowledge base items to review</b>: {department} has {count} item(s) "
            "to check (review every {days} days).",
        },
        "kbf_reminder_line": {
            "zh": "• {title}（{item_id}）：{reasons}",
            "en": "• {title} ({item_id}): {reasons}",
        },
        "kbf_reminder_more": {
            "zh": "……另有 {count} 个条目，请在管理后台“内容时效”页查看。",
            "en": "… and {count} more; see the Freshness page of the console.",
        },
        "kbf_reminder_foot": {
            "zh": "请在管理后台修改条目，或确认内容仍然准确。",
            "en": "Please edit each item in the console, or confirm it is still correct.",
        },
        "kbf_reason_overdue": {
            "zh": "上次审核：{date}",
            "en": "last reviewed {date}",
        },
        "kbf_reason_never": {
            "zh": "从未审核",
            "en": "never reviewed",
        },
        "kbf_reason_department_renamed": {
            "zh": "部门名称已变更",
            "en": "the department's name changed",
        },
        "kbf_reason_department_phone_changed": {
            "zh": "部门电话已变更",
            "en": "the department's phone changed",
        },
    },
)


@dataclass(frozen=True, slots=True)
class Freshness:
    """When an item was last confirmed current, by whom, and why it needs review (if it does)."""

    item_id: str
    department_id: str
    reviewed_at: dt.date | None
    reviewer: str
    reasons: tuple[str, ...] = ()

    @property
    def stale(self) -> bool:
        return bool(self.reasons)


@dataclass(frozen=True, slots=True)
class DepartmentState:
    """A department as one of its versions published in the console left it."""

    at: dt.datetime
    name: str | None
    phone: str | None

    @classmethod
    def of(cls, at: dt.datetime, content: Mapping[str, Any] | None) -> DepartmentState:
        if content is None:
            return cls(at, None, None)
        return cls(at, str(content.get("name", "")), str(content.get("phone", "")))


# Each department's versions, oldest first (only departments edited in the console have any).
DepartmentHistory = Mapping[str, Sequence[DepartmentState]]


async def load_department_history(session: AsyncSession) -> dict[str, list[DepartmentState]]:
    """Return the versions of every department edited in the console, oldest first."""
    rows = await session.execute(
        select(KnowledgeVersion.item_id, KnowledgeVersion.created_at, KnowledgeVersion.content)
        .where(KnowledgeVersion.item_id.startswith(KEY_PREFIX, autoescape=True))
        .order_by(KnowledgeVersion.item_id, KnowledgeVersion.number)
    )
    history: dict[str, list[DepartmentState]] = {}
    for key, at, content in rows.all():
        department_id = department_of_key(key)
        if department_id:
            history.setdefault(department_id, []).append(DepartmentState.of(at, content))
    return history


def history_reasons(states: Sequence[DepartmentState], since: dt.datetime | None) -> list[str]:
    """Return how the department's name and phone changed in the console after `since` (the
    item's last review; None: before any version): the department as it stood then against its
    latest version."""
    if not states:
        return []
    then = states[0]
    if since is not None:
        for state in states:
            if state.at <= since:
                then = state
    latest = states[-1]
    if then.name is None or latest.name is None:
        return []
    reasons = []
    if then.name != latest.name:
        reasons.append(DEPARTMENT_RENAMED)
    if then.phone != latest.phone:
        reasons.append(DEPARTMENT_PHONE_CHANGED)
    return reasons


def department_reasons(review: KnowledgeReview | None, department: Department | None) -> list[str]:
    """Return how the department changed since the review recorded it (nothing when unknown)."""
    if review is None or department is None:
        return []
    reasons = []
    if review.department_name is not None and review.department_name != department.name:
        reasons.append(DEPARTMENT_RENAMED)
    if review.department_phone is not None and review.department_phone != department.phone:
        reasons.append(DEPARTMENT_PHONE_CHANGED)
    return reasons


def item_freshness(
    kb: KnowledgeBase,
    reviews: Mapping[str, KnowledgeReview],
    today: dt.date,
    review_days: int,
    history: DepartmentHistory | None = None,
) -> list[Freshness]:
    """Return every item's last review (the console's, else the file's `updated` date) and
    the reasons it needs review (`history`: the departments' versions, for items whose review
    recorded no department name and phone)."""
    limit = today - dt.timedelta(days=review_days)
    result = []
    for item in kb.items.values():
        review = reviews.get(item.id)
        when: dt.date | None = None
        who = ""
        if review is not None:
            when, who = review.reviewed_at.date(), review.reviewer_name
        elif item.updated:
            with contextlib.suppress(ValueError):
                when = dt.date.fromisoformat(item.updated[:10])
        reasons = [OVERDUE] if when is None or when < limit else []
        changed = set(department_reasons(review, kb.departments.get(item.department)))
        if history and (review is None or review.department_name is None):
            since = (
                review.reviewed_at
                if review is not None
                else dt.datetime.combine(when, dt.time.min, tzinfo=dt.UTC)
                if when is not None
                else None
            )
            changed.update(history_reasons(history.get(item.department, ()), since))
        reasons += [r for r in (DEPARTMENT_RENAMED, DEPARTMENT_PHONE_CHANGED) if r in changed]
        result.append(
            Freshness(
                item_id=item.id,
                department_id=item.department,
                reviewed_at=when,
                reviewer=who,
                reasons=tuple(reasons),
            )
        )
    return result


async def load_reviews(session: AsyncSession) -> dict[str, KnowledgeReview]:
    return {r.item_id: r for r in (await session.scalars(select(KnowledgeReview))).all()}


def reminder_key(department_id: str, channel: str, period: int) -> str:
    """Return the idempotency key of a department's reminder in one interval."""
    return f"{REMINDER_KEY_PREFIX}:{department_id}:{channel}:{period}"


def reminder_payload(
    kb: KnowledgeBase,
    department_id: str,
    due: Sequence[Freshness],
    *,
    key: str,
    review_days: int,
    now: dt.datetime,
) -> dict[str, Any]:
    """Return what a department receives: its items that need review, and why."""
    department = kb.departments.get(department_id)
    items = []
    for fresh in due[:MAX_ITEMS_LISTED]:
        item = kb.items.get(fresh.item_id)
        items.append(
            {
                "id": fresh.item_id,
                "title": item.title if item else fresh.item_id,
                "title_en": (item.get_text("title", "en") if item else "") or "",
                "reviewed_at": fresh.reviewed_at.isoformat() if fresh.reviewed_at else None,
                "reasons": list(fresh.reasons),
            }
        )
    return {
        "version": PAYLOAD_VERSION,
        "kind": KNOWLEDGE_REVIEW,
        "idempotency_key": key,
        "event": {"kind": KNOWLEDGE_REVIEW, "at": now.isoformat()},
        "department_id": department_id,
        "department_name": department.name if department else department_id,
        "department_name_en": (department.name_en if department else "") or "",
        "review_days": review_days,
        "count": len(due),
        "items": items,
        "more": max(0, len(due) - MAX_ITEMS_LISTED),
    }


def is_review_reminder(payload: Mapping[str, Any]) -> bool:
    """Tell whether a department's row is a knowledge review reminder, not a ticket event."""
    return payload.get("kind") == KNOWLEDGE_REVIEW


def _reason_text(reason: str, reviewed_at: object, language: str) -> Html:
    if reason == OVERDUE:
        if isinstance(reviewed_at, str) and reviewed_at:
            return t("kbf_reason_overdue", language, date=reviewed_at)
        return t("kbf_reason_never", language)
    if reason in (DEPARTMENT_RENAMED, DEPARTMENT_PHONE_CHANGED):
        return t(f"kbf_reason_{reason}", language)
    return Html("")


def reminder_text(payload: Mapping[str, Any], language: str) -> Html:
    """Return the reminder as Telegram HTML in `language` (every value from the payload escaped)."""
    name = str(payload.get("department_name") or "")
    if language == "en" and payload.get("department_name_en"):
        name = str(payload["department_name_en"])
    name = name.replace("\x00", "")
    lines = [
        t(
            "kbf_reminder_head",
            language,
            department=name,
            count=int(payload.get("count") or 0),
            days=int(payload.get("review_days") or 0),
        )
    ]
    for entry in payload.get("items") or []:
        if not isinstance(entry, dict):
            continue
        title = str(entry.get("title") or "")
        if language == "en" and entry.get("title_en"):
            title = str(entry["title_en"])
        title = title.replace("\x00", "")
        reasons = [
            _reason_text(str(r), entry.get("reviewed_at"), language)
            for r in entry.get("reasons") or []
        ]
        separator = "；" if language == "zh" else "; "
        lines.append(
            t(
                "kbf_reminder_line",
                language,
                title=title,
                item_id=str(entry.get("id") or ""),
                reasons=Html(separator.join(r for r in reasons if r)),
            )
        )
    more = int(payload.get("more") or 0)
    if more:
        lines.append(t("kbf_reminder_more", language, count=more))
    lines.append(t("kbf_reminder_foot", language))
    return Html("\n".join(lines))


class ReviewReminders:
    """Adds each department's review reminder to the outbox, once per interval."""

    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        knowledge: Callable[[], KnowledgeBase],
        *,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.knowledge = knowledge
        self.clock = clock

    @property
    def interval(self) -> dt.timedelta:
        return dt.timedelta(days=self.settings.knowledge.reminder_days)

    def channels(self, department_id: str) -> tuple[str, ...]:
        config = self.settings.departments.get(department_id)
        if config is None:
            return ()
        return tuple(c for c in config.channels if c != "console")

    def period(self, now: dt.datetime) -> int:
        epoch = dt.datetime(1970, 1, 1, tzinfo=now.tzinfo)
        return int((now - epoch) / self.interval)

    async def sweep(self) -> list[str]:
        """Add the reminders due now; return their idempotency keys (none when all were sent)."""
        if self.settings.knowledge.reminder_days <= 0:
            return []
        now = self.clock()
        kb = self.knowledge()
        async with self.sessions() as session:
            reviews = await load_reviews(session)
            history = await load_department_history(session)
        due: dict[str, list[Freshness]] = {}
        review_days = self.settings.knowledge.review_days
        for fresh in item_freshness(kb, reviews, now.date(), review_days, history):
            if fresh.stale:
                due.setdefault(fresh.department_id, []).append(fresh)
        added: list[str] = []
        for department_id, items in sorted(due.items()):
            items.sort(key=lambda f: (f.reviewed_at is not None, f.reviewed_at or 0, f.item_id))
            for channel in self.channels(department_id):
                key = await self._remind(kb, department_id, channel, items, now)
                if key is not None:
                    added.append(key)
        return added

    async def _remind(
        self,
        kb: KnowledgeBase,
        department_id: str,
        channel: str,
        items: Sequence[Freshness],
        now: dt.datetime,
    ) -> str | None:
        key = reminder_key(department_id, channel, self.period(now))
        async with write_gate(self.sessions), self.sessions() as session:
            # At most once per interval: not within an interval of the last one, whichever
            # interval that fell in; the key settles a race between processes.
            last = await session.scalar(
                select(OutboxMessage.created_at)
                .where(
                    OutboxMessage.idempotency_key.like(
                        f"{REMINDER_KEY_PREFIX}:{department_id}:{channel}:%"
                    )
                )
                .order_by(OutboxMessage.created_at.desc())
                .limit(1)
            )
            if last is not None and now - last < self.interval:
                return None
            payload = reminder_payload(
                kb,
                department_id,
                items,
                key=key,
                review_days=self.settings.knowledge.review_days,
                now=now,
            )
            session.add(
                OutboxMessage(
                    ticket_id=None,
                    event_id=None,
                    department_id=department_id,
                    channel=channel,
                    idempotency_key=key,
                    payload=payload,
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                )
            )
            try:
                await session.commit()
            except IntegrityError:
                # Another process added this interval's reminder first.
                await session.rollback()
                return None
        log.info("reminded %s (%s) of %d items to review", department_id, channel, len(items))
        return key
