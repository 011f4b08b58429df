"""Which department handles a ticket: from its category and its text.

Each department in knowledge/departments.toml lists the complaint categories it handles and the
keywords residents use for its matters. The category the resident picked is the strongest signal;
keywords in the text confirm it, or point elsewhere. A ticket whose best department is not clearly
ahead goes to the staff triage queue instead of to a guess: a ticket sent to the wrong office
loses days, a ticket in triage loses minutes.

The same keywords let a resident's own words about a problem ("我家楼下的路灯坏了") start the
complaint form with a category already chosen (`guess_category`); the resident can change it.
A department's keywords of one category (`complaint_category_keywords`: "道路交通秩序: 红绿灯")
say which of its categories: "建议在小区门口加个红绿灯" starts on 道路交通秩序, not on the first
listed, 交通与驾驶证.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from bot.answering.knowledge_base import Department, KnowledgeBase
from bot.core.text import normalize

# Weights of the two signals; the resident's category alone is enough to route.
CATEGORY_WEIGHT = 0.6
KEYWORD_WEIGHT = 0.25
MAX_KEYWORD_HITS = 2
# How much a rival department's score takes off the confidence in the best one.
RIVAL_PENALTY = 0.3


@dataclass(frozen=True, slots=True)
class RoutingDecision:
    """The department a ticket goes to (None: staff triage), with the confidence and why."""

    department_id: str | None
    confidence: float
    reason: str
    scores: dict[str, float] = field(default_factory=dict)
    keywords: tuple[str, ...] = ()


def complaint_categories(kb: KnowledgeBase) -> list[str]:
    """Return the categories residents can file under, in the departments' order."""
    seen: dict[str, None] = {}
    for department in kb.departments.values():
        for category in department.complaint_categories:
            seen.setdefault(category, None)
    return list(seen)


def complaint_category_name(kb: KnowledgeBase, category: str, language: str) -> str:
    """Return a complaint category's name in a language (complaint_categories_en for English)."""
    if language == "en":
        for department in kb.departments.values():
            if category in department.complaint_categories and department.complaint_categories_en:
                index = department.complaint_categories.index(category)
                return department.complaint_categories_en[index]
        return kb.category_name(category, language)
    return category


def departments_for_category(kb: KnowledgeBase, category: str) -> list[Department]:
    """Return the departments that list a category."""
    return [d for d in kb.departments.values() if category in d.complaint_categories]


@lru_cache(maxsize=8192)
def _folded(keyword: str) -> str:
    return normalize(keyword)


# A keyword followed by one of these names where the problem is, outside it, not what it is:
# "小区门口加个红绿灯" is the traffic police's, not the housing bureau's; "医院旁边乱停车" too.
# Inside (小区里的垃圾) the place's own office may well be the one, so 里 and 内 are not here.
_OUTSIDE_OF = ("门口", "大门口", "旁边", "附近", "对面", "外面", "边上", "周边", "前面", "后面")


def _names_the_matter(text: str, keyword: str) -> bool:
    """Whether the keyword occurs in the text other than as the place beside the problem."""
    start = text.find(keyword)
    while start >= 0:
        if not text.startswith(_OUTSIDE_OF, start + len(keyword)):
            return True
        start = text.find(keyword, start + 1)
    return False


def _hits(keywords: tuple[str, ...], text: str) -> list[str]:
    found: list[str] = []
    for keyword in keywords:
        folded = _folded(keyword)
        if folded and keyword not in found and _names_the_matter(text, folded):
            found.append(keyword)
    return found


def _keyword_hits(department: Department, text: str) -> list[str]:
    """The department's keywords (its own and its categories') that the text names."""
    return _hits(department.routing_keywords, text)


def route_ticket(
    kb: KnowledgeBase,
    category: str,
    text: str,
    *,
    min_confidence: float = 0.5,
    generic_categories: tuple[str, ...] = ("其他",),
) -> RoutingDecision:
    """Pick the department for a ticket, or none (staff triage) when not confident enough."""
    normalized = normalize(text)
    category_departments = (
        set()
        if category in generic_categories
        else {d.id for d in departments_for_category(kb, category)}
    )
    scores: dict[str, float] = {}
    hits: dict[str, list[str]] = {}
    for department in kb.departments.values():
        found = _keyword_hits(department, normalized)
        score = KEYWORD_WEIGHT * min(len(found), MAX_KEYWORD_HITS)
        if department.id in category_departments:
            score += CATEGORY_WEIGHT
        if score > 0:
            scores[department.id] = round(min(score, 1.0), 4)
            hits[department.id] = found
    if not scores:
        return RoutingDecision(None, 0.0, "no_signal")
    ranked = sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))
    best_id, best = ranked[0]
    second = ranked[1][1] if len(ranked) > 1 else 0.0
    confidence = round(max(0.0, best - RIVAL_PENALTY * second), 4)
    if len(ranked) > 1 and ranked[1][1] == best:
        return RoutingDecision(None, confidence, "tie", scores)
    if confidence < min_confidence:
        return RoutingDecision(None, confidence, "low_confidence", scores, tuple(hits[best_id]))
    reason = (
        "category_and_keywords"
        if best_id in category_departments and hits[best_id]
        else ("category" if best_id in category_departments else "keywords")
    )
    return RoutingDecision(best_id, confidence, reason, scores, tuple(hits[best_id]))


def guess_category(
    kb: KnowledgeBase, text: str, *, generic_categories: tuple[str, ...] = ("其他",)
) -> str | None:
    """Return the complaint category a resident's words point to, or None when they do not.

    The department whose complaint keywords the text hits most (distinct keywords, its
    categories' included) wins; no hit, or two departments with as many hits, is no guess. A
    keyword that only names the place beside the problem (小区门口, `_OUTSIDE_OF`) is no hit. Of
    the winner's categories, the one whose own keywords (`complaint_category_keywords`) the text
    hits most is taken, then the one whose name shares most characters with the text, the first
    listed when none stands out (any of them sends the ticket to that department, see
    `route_ticket`); a generic category ("其他") is never a guess.
    """
    normalized = normalize(text)
    hits: dict[str, int] = {}
    for department in kb.departments.values():
        if any(c not in generic_categories for c in department.complaint_categories):
            found = len(_keyword_hits(department, normalized))
            if found:
                hits[department.id] = found
    if not hits:
        return None
    ranked = sorted(hits.values(), reverse=True)
    if len(ranked) > 1 and ranked[0] == ranked[1]:
        return None
    best = max(hits, key=hits.__getitem__)
    categories = [
        c for c in kb.departments[best].complaint_categories if c not in generic_categories
    ]
    characters = set(normalized)
    own = dict(kb.departments[best].category_keywords)

    def fit(category: str) -> tuple[int, int]:
        named = len(_hits(own[category], normalized)) if category in own else 0
        return named, len(set(category) & characters)

    # max() keeps the first of equals: the department's own order breaks ties.
    return max(categories, key=fit)
