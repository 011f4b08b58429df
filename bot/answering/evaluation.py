"""Measure the matcher on an evaluation set: accuracy, MRR@3, per question type, and decisions.

The evaluation set is a TOML file of `[[cases]]`, each with `question`, `type` and `expected` (an
item id, or "" for a question the bot must not answer), and optionally `also`: other items that
answer it just as well (real knowledge bases have near-duplicates). Its questions are written
apart from the knowledge base's own `questions`, so the figures say how the matcher does on words
it has never seen. docs/matching.md describes the sets and the figures.

"New city" mode (`new_city_base`) strips the knowledge base to what a city writes first: three
Chinese phrasings an item, nothing in English, no synonyms file.
"""

from __future__ import annotations

import tomllib
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

from bot.answering.knowledge_base import KnowledgeBase
from bot.answering.matching import Matcher, MatchResult

OUT_OF_SCOPE = "out_of_scope"


@dataclass(frozen=True, slots=True)
class Case:
    """One evaluation question and what the bot should do with it."""

    question: str
    type: str
    expected: str | None
    also: tuple[str, ...] = ()

    @property
    def answerable(self) -> bool:
        return self.expected is not None

    @property
    def accepted(self) -> frozenset[str]:
        """The items that answer the question."""
        return frozenset((self.expected, *self.also)) if self.expected else frozenset()


def new_city_base(kb: KnowledgeBase, questions: int = 3) -> KnowledgeBase:
    """The knowledge base as a new city writes its first one: each item's first `questions`
    Chinese phrasings, nothing in English, no synonyms file."""
    items = {
        item_id: replace(
            item,
            questions=item.questions[:questions],
            text={k: v for k, v in item.text.items() if not k.endswith("_en")},
            lists={k: v for k, v in item.lists.items() if not k.endswith("_en")},
        )
        for item_id, item in kb.items.items()
    }
    return replace(kb, items=items, synonyms=())


@dataclass(frozen=True, slots=True)
class Outcome:
    case: Case
    result: MatchResult

    @property
    def ranked_ids(self) -> list[str]:
        return [c.item.id for c in self.result.candidates]

    @property
    def top1(self) -> bool:
        return (
            self.case.answerable
            and self.ranked_ids[:1] != []
            and (self.ranked_ids[0] in self.case.accepted)
        )

    @property
    def reciprocal_rank(self) -> float:
        for rank, item_id in enumerate(self.ranked_ids[:3], start=1):
            if item_id in self.case.accepted:
                return 1.0 / rank
        return 0.0

    @property
    def answered(self) -> bool:
        return self.result.decision == "answer"

    @property
    def useful(self) -> bool:
        """The resident got the right card, or the right item among the choices offered."""
        if not self.case.answerable:
            return False
        if self.answered:
            return self.top1
        if self.result.decision == "suggest":
            offered = {c.item.id for c in self.result.suggestions(3)}
            return bool(offered & self.case.accepted)
        return False

    @property
    def confidently_wrong(self) -> bool:
        """An answer card about the wrong thing (or about anything, when nothing fits)."""
        return self.answered and not self.top1

    @property
    def right(self) -> bool:
        """Per type: the right item first for answerable questions; not answered otherwise."""
        if self.case.answerable:
            return self.top1
        return not self.answered

    @property
    def decision_right(self) -> bool:
        """Answer when the best candidate is right, escalate when nothing fits."""
        if self.case.answerable:
            return self.answered and self.top1
        return not self.answered

    @property
    def verdict(self) -> str:
        decision = self.result.decision
        if not self.case.answerable:
            return "answered WRONG" if decision == "answer" else f"not answered ({decision})"
        if decision == "answer":
            return "answered right" if self.top1 else "answered WRONG"
        if decision == "suggest":
            if self.useful:
                return "suggested with the right one"
            return "suggested without the right one"
        return "escalated needlessly"


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)

    def _share(self, values: list[bool]) -> float:
        return sum(values) / len(values) if values else 0.0

    @property
    def answerable(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.case.answerable]

    @property
    def unanswerable(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.case.answerable]

    @property
    def top1_accuracy(self) -> float:
        return self._share([o.top1 for o in self.answerable])

    @property
    def mrr_at_3(self) -> float:
        answerable = self.answerable
        return sum(o.reciprocal_rank for o in answerable) / len(answerable) if answerable else 0.0

    @property
    def escalation_rate(self) -> float:
        return self._share([o.result.decision == "escalate" for o in self.unanswerable])

    @property
    def choice_rate(self) -> float:
        """Share of the questions nothing fits that got a choice of items (not answered, but
        neither declined nor handed to a person straight away)."""
        return self._share([o.result.decision == "suggest" for o in self.unanswerable])

    @property
    def not_answered_rate(self) -> float:
        """Share of the questions nothing fits that got no answer card."""
        return self._share([not o.answered for o in self.unanswerable])

    @property
    def useful_rate(self) -> float:
        return self._share([o.useful for o in self.answerable])

    @property
    def confidently_wrong_rate(self) -> float:
        """Share of all questions answered with a wrong card."""
        return self._share([o.confidently_wrong for o in self.outcomes])

    @property
    def decision_accuracy(self) -> float:
        return self._share([o.decision_right for o in self.outcomes])

    def by_type(self) -> dict[str, float]:
        groups: dict[str, list[bool]] = defaultdict(list)
        for outcome in self.outcomes:
            groups[outcome.case.type].append(outcome.right)
        return {name: self._share(values) for name, values in sorted(groups.items())}

    def type_counts(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for outcome in self.outcomes:
            counts[outcome.case.type] += 1
        return dict(sorted(counts.items()))

    def verdicts(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for outcome in self.outcomes:
            counts[outcome.verdict] += 1
        return dict(sorted(counts.items()))

    def as_dict(self) -> dict[str, object]:
        return {
            "questions": len(self.outcomes),
            "answerable": len(self.answerable),
            "unanswerable": len(self.unanswerable),
            "top1_accuracy": round(self.top1_accuracy, 4),
            "mrr_at_3": round(self.mrr_at_3, 4),
            "useful": round(self.useful_rate, 4),
            "unanswerable_not_answered": round(self.not_answered_rate, 4),
            "unanswerable_escalated": round(self.escalation_rate, 4),
            "unanswerable_given_a_choice": round(self.choice_rate, 4),
            "confidently_wrong": round(self.confidently_wrong_rate, 4),
            "decision_accuracy": round(self.decision_accuracy, 4),
            "by_type": {k: round(v, 4) for k, v in self.by_type().items()},
            "type_counts": self.type_counts(),
            "verdicts": self.verdicts(),
        }


class EvaluationSetError(ValueError):
    """The evaluation set is malformed; the message names the case."""


def load_evaluation_set(path: Path) -> list[Case]:
    """Read an evaluation set (TOML, `[[cases]]` with question, type, expected)."""
    with path.open("rb") as handle:
        data = tomllib.load(handle)
    cases = []
    for number, entry in enumerate(data.get("cases", []), start=1):
        question = entry.get("question")
        kind = entry.get("type")
        expected = entry.get("expected")
        also = entry.get("also", [])
        if (
            not isinstance(question, str)
            or not isinstance(kind, str)
            or not isinstance(expected, str)
        ):
            raise EvaluationSetError(f"{path}: case #{number} needs question, type and expected")
        if not isinstance(also, list) or not all(isinstance(a, str) and a for a in also):
            raise EvaluationSetError(f"{path}: case #{number}: also must be a list of item ids")
        cases.append(
            Case(question=question, type=kind, expected=expected or None, also=tuple(also))
        )
    return cases


def evaluate(matcher: Matcher, cases: list[Case]) -> Report:
    """Ask every case and collect the outcomes."""
    unknown = sorted({i for c in cases for i in c.accepted if i not in matcher.kb.items})
    if unknown:
        raise EvaluationSetError(f"expected items not in the knowledge base: {unknown}")
    return Report([Outcome(case, matcher.match(case.question)) for case in cases])


def format_report(report: Report, *, show_failures: bool = False) -> str:
    """Render the figures for a terminal."""
    lines = [
        f"questions: {len(report.outcomes)} ({len(report.answerable)} answerable, "
        f"{len(report.unanswerable)} not)",
        f"top-1 accuracy (answerable):       {report.top1_accuracy:.1%}",
        f"MRR@3 (answerable):                {report.mrr_at_3:.3f}",
        f"useful (right card, or in choice): {report.useful_rate:.1%}",
        f"not answered (must not answer):    {report.not_answered_rate:.1%}",
        f"escalated (must not answer):       {report.escalation_rate:.1%}",
        f"given a choice (must not answer):  {report.choice_rate:.1%}",
        f"confidently wrong (all questions): {report.confidently_wrong_rate:.1%}",
        f"decision right:                    {report.decision_accuracy:.1%}",
        "",
        "per question type (right item first; not answered for out_of_scope):",
    ]
    counts = report.type_counts()
    for name, share in report.by_type().items():
        lines.append(f"  {name:<16} {share:6.1%}  of {counts[name]}")
    lines.append("")
    lines.append("decisions:")
    for verdict, count in report.verdicts().items():
        lines.append(f"  {verdict:<34} {count}")
    if show_failures:
        lines.append("")
        lines.append("misses:")
        for outcome in report.outcomes:
            if outcome.decision_right:
                continue
            got = ", ".join(f"{c.item.id}:{c.score:.2f}" for c in outcome.result.candidates[:3])
            lines.append(
                f"  [{outcome.case.type}] {outcome.case.question!r} expected "
                f"{outcome.case.expected} -> {outcome.result.decision} "
                f"({outcome.result.reason}) {got}"
            )
    return "\n".join(lines)
