"""The questions the bot could not answer, grouped by similarity, so the knowledge base grows
where residents need it.

"Could not answer": the matcher gave up on a question (escalate, except greetings and empty
messages), the resident found none of the items offered as a choice and asked for a person
("none of these"), or picked none of a choice whose best item was less than one in four likely,
or the resident said the answer did not help. What the matcher declined (small talk,
matters outside public services) and problems offered as tickets (report) are not gaps in the
knowledge base, whether or not the resident then asked for a person. Questions are grouped greedily: each question joins the
first group whose leading question is similar enough (rapidfuzz on character pairs, so that
Chinese, written without spaces, compares by its words' pieces), else it starts a group.

Each group also shows its trend (`trends`): how often it was asked in each of the last four weeks,
and in the period shown against the period before it, so a question residents ask more and more
stands out from one that faded. The questions of both periods are grouped together, so a group
is the same group in both.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from rapidfuzz import fuzz, process
from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.models import Question

# The decision of a question the knowledge base could not answer; and, among those, reasons that
# are not a gap in it (rows from before the matcher declined small talk itself, and messages
# with nothing to read). "decline" and "report" are never gaps.
GAP_DECISION = "escalate"
NOT_GAPS = ("small_talk", "venting", "empty", "out_of_scope", "problem_words")
# A choice whose best item was less likely than this, with nothing picked, is a gap too.
UNLIKELY_CHOICE = 0.25
SIMILARITY = 62.0
MAX_QUESTIONS = 5000
EXAMPLES = 5
# The trend shows this many weeks, the newest last.
TREND_WEEKS = 4


def knowledge_gap() -> ColumnElement[bool]:
    """The questions the knowledge base did not answer (a condition on `Question`)."""
    return or_(
        (Question.decision == GAP_DECISION) & Question.reason.not_in(NOT_GAPS),
        # A choice with nothing picked that went to a person: none of the items was it.
        (Question.decision == "suggest")
        & Question.escalated.is_(True)
        & Question.chosen_item_id.is_(None),
        # A choice with nothing picked whose best item was less than one in four likely: until
        # 2026-12-06 such questions went to staff and counted here; a choice now offers items
        # down to 0.15, and a resident who leaves it has not been answered.
        (Question.decision == "suggest")
        & Question.chosen_item_id.is_(None)
        & (Question.score < UNLIKELY_CHOICE),
        Question.feedback == "not_helpful",
    )


@dataclass(frozen=True, slots=True)
class AskedQuestion:
    """One unanswered question as the grouping needs it."""

    text: str
    normalized: str
    language: str
    asked_at: dt.datetime
    # The item the matcher thought closest, if any (a hint where the phrasing may belong).
    closest_item: str | None
    not_helpful: bool


@dataclass(slots=True)
class QuestionGroup:
    """Questions that ask the same thing in different words."""

    leader: str
    count: int = 0
    phrasings: Counter[str] = field(default_factory=Counter)
    languages: Counter[str] = field(default_factory=Counter)
    closest_items: Counter[str] = field(default_factory=Counter)
    not_helpful: int = 0
    last_asked: dt.datetime | None = None
    asked_at: list[dt.datetime] = field(default_factory=list)

    @property
    def examples(self) -> list[tuple[str, int]]:
        return self.phrasings.most_common(EXAMPLES)

    @property
    def closest_item(self) -> str | None:
        common = self.closest_items.most_common(1)
        return common[0][0] if common else None


def comparable(text: str) -> str:
    """Return a question as space-separated character pairs (words for the scorer)."""
    folded = "".join(text.lower().split())
    if len(folded) < 3:
        return folded
    return " ".join(folded[i : i + 2] for i in range(len(folded) - 1))


def group_questions(
    questions: Sequence[AskedQuestion], *, similarity: float = SIMILARITY
) -> list[QuestionGroup]:
    """Group questions by similarity; the biggest groups first."""
    by_text: dict[str, list[AskedQuestion]] = {}
    for question in questions:
        key = " ".join((question.normalized or question.text).split()) or question.text
        by_text.setdefault(key, []).append(question)
    groups: list[QuestionGroup] = []
    leaders: list[str] = []
    # The most asked wordings lead, so a group is named by what residents say most.
    for key, asked in sorted(by_text.items(), key=lambda pair: (-len(pair[1]), pair[0])):
        probe = comparable(key)
        found = process.extractOne(
            probe, leaders, scorer=fuzz.token_set_ratio, score_cutoff=similarity
        )
        if found is None:
            group = QuestionGroup(leader=asked[0].text)
            groups.append(group)
            leaders.append(probe)
        else:
            group = groups[found[2]]
        for question in asked:
            group.count += 1
            group.phrasings[question.text] += 1
            group.languages[question.language] += 1
            if question.closest_item:
                group.closest_items[question.closest_item] += 1
            group.not_helpful += question.not_helpful
            group.asked_at.append(question.asked_at)
            if group.last_asked is None or question.asked_at > group.last_asked:
                group.last_asked = question.asked_at
    groups.sort(key=lambda g: (-g.count, g.leader))
    return groups


@dataclass(frozen=True, slots=True)
class GroupTrend:
    """A group in the period shown: how often it was asked then, in the period before, and in
    each of the last TREND_WEEKS weeks (oldest first)."""

    group: QuestionGroup
    count: int
    previous: int
    weeks: tuple[int, ...]

    @property
    def direction(self) -> str:
        """ "up", "down" or "same", against the period before."""
        if self.count > self.previous:
            return "up"
        if self.count < self.previous:
            return "down"
        return "same"


def history_since(now: dt.datetime, days: int) -> dt.datetime:
    """Return from when questions are needed: the period before the one shown, and the weeks."""
    return now - dt.timedelta(days=max(2 * days, 7 * TREND_WEEKS))


def trends(
    questions: Sequence[AskedQuestion],
    now: dt.datetime,
    days: int,
    *,
    similarity: float = SIMILARITY,
) -> list[GroupTrend]:
    """Group questions asked since `history_since(now, days)`; return the groups asked in the
    last `days`, most asked in them first, with their counts before and week by week."""
    start = now - dt.timedelta(days=days)
    before = start - dt.timedelta(days=days)
    result = []
    for group in group_questions(questions, similarity=similarity):
        count = sum(1 for at in group.asked_at if start <= at <= now)
        if not count:
            continue
        previous = sum(1 for at in group.asked_at if before <= at < start)
        weeks = [0] * TREND_WEEKS
        for at in group.asked_at:
            ago = (now - at) // dt.timedelta(weeks=1)
            if 0 <= ago < TREND_WEEKS:
                weeks[TREND_WEEKS - 1 - ago] += 1
        result.append(GroupTrend(group=group, count=count, previous=previous, weeks=tuple(weeks)))
    result.sort(key=lambda t: (-t.count, t.group.leader))
    return result


async def unanswered_questions(
    session: AsyncSession, since: dt.datetime, *, limit: int = MAX_QUESTIONS
) -> list[AskedQuestion]:
    """Return the newest questions since a moment that the bot could not answer."""
    rows = await session.execute(
        select(
            Question.text,
            Question.normalized,
            Question.language,
            Question.created_at,
            Question.candidates,
            Question.feedback,
        )
        .where(
            Question.created_at >= since,
            knowledge_gap(),
        )
        .order_by(Question.created_at.desc())
        .limit(limit)
    )
    result = []
    for text, normalized, language, created_at, candidates, feedback in rows.all():
        closest = None
        if candidates and isinstance(candidates, list) and isinstance(candidates[0], dict):
            closest = str(candidates[0].get("id") or "") or None
        result.append(
            AskedQuestion(
                text=text,
                normalized=normalized or "",
                language=language,
                asked_at=created_at,
                closest_item=closest,
                not_helpful=feedback == "not_helpful",
            )
        )
    return result
