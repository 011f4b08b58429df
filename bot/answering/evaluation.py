"""Measure the matcher on an evaluation set: accuracy, MRR@3, per question type, and decisions.

The evaluation set is a TOML file of `[[cases]]`, each with `question`, `type` and `expected` (an
item id, or "" for a question the bot must not answer). Its questions are written apart from the
knowledge base's own `questions`, so the figures say how the matcher does on words it has never
seen.
"""

from __future__ import annotations

import tomllib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from bot.answering.matching import Matcher, MatchResult

OUT_OF_SCOPE = "out_of_scope"


@dataclass(frozen=True, slots=True)
class Case:
    """One evaluation question and what the bot should do with it."""

    question: str
    type: str
    expected: str | None

    @property
    def answerable(self) -> bool:
        return self.expected is not None


@dataclass(frozen=True, slots=True)
class Outcome:
    case: Case
    result: MatchResult

    @property
    def ranked_ids(self) -> list[str]:
        return [c.item.id for c in self.result.candidates]

    @property
    def top1(self) -> bool:
        return self.case.answerable and self.ranked_ids[:1] == [self.case.expected]

    @property
    def reciprocal_rank(self) -> float:
        ids = self.ranked_ids[:3]
        if self.case.expected in ids:
            return 1.0 / (ids.index(self.case.expected) + 1)
        return 0.0

    @property
    def right(self) -> bool:
        """Per type: the right item first for answerable questions, escalation otherwise."""
        if self.case.answerable:
            return self.top1
        return self.result.decision == "escalate"

    @property
    def decision_right(self) -> bool:
        """Answer when the best candidate is right, escalate when nothing fits."""
        if self.case.answerable:
            return self.result.decision == "answer" and self.top1
        return self.result.decision == "escalate"

    @property
    def verdict(self) -> str:
        decision = self.result.decision
        if not self.case.answerable:
            return "escalated" if decision == "escalate" else f"wrongly {decision}ed"
        if decision == "answer":
            return "answered right" if self.top1 else "answered WRONG"
        if decision == "suggest":
            if self.case.expected in self.ranked_ids[:3]:
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
            "unanswerable_escalated": round(self.escalation_rate, 4),
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
        if (
            not isinstance(question, str)
            or not isinstance(kind, str)
            or not isinstance(expected, str)
        ):
            raise EvaluationSetError(f"{path}: case #{number} needs question, type and expected")
        cases.append(Case(question=question, type=kind, expected=expected or None))
    return cases


def evaluate(matcher: Matcher, cases: list[Case]) -> Report:
    """Ask every case and collect the outcomes."""
    unknown = sorted(
        {c.expected for c in cases if c.expected and c.expected not in matcher.kb.items}
    )
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
        f"escalated (must not answer):       {report.escalation_rate:.1%}",
        f"decision right:                    {report.decision_accuracy:.1%}",
        "",
        "per question type (right item first; escalated for out_of_scope):",
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
