"""The matcher keeps the project's required levels on both evaluation sets.

The sets were written apart from the knowledge base's own phrasings (tests/data/*.toml); the
levels are the project's, not what the matcher happens to reach today. When one falls short,
the matcher (or the knowledge base) is what must change, not the bar.
"""

from __future__ import annotations

import pytest

from bot.answering.evaluation import Report, evaluate, load_evaluation_set
from bot.answering.store import LoadedKnowledge
from tests.fixtures_knowledge import EVALUATION_SETS

TOP1_ON_ANSWERABLE = 0.95
ESCALATED_WHEN_UNANSWERABLE = 0.90
EVERY_QUESTION_TYPE = 0.85


@pytest.fixture(scope="module", params=["evaluation.toml", "evaluation-holdout.toml"])
def report(request: pytest.FixtureRequest, bundled: LoadedKnowledge) -> Report:
    cases = load_evaluation_set(EVALUATION_SETS / request.param)
    return evaluate(bundled.matcher, cases)


def test_the_right_item_comes_first_for_answerable_questions(report: Report) -> None:
    assert report.answerable
    assert report.top1_accuracy >= TOP1_ON_ANSWERABLE, report.as_dict()


def test_questions_without_an_answer_go_to_a_person(report: Report) -> None:
    assert report.unanswerable
    assert report.escalation_rate >= ESCALATED_WHEN_UNANSWERABLE, report.as_dict()


def test_every_question_type_reaches_the_level(report: Report) -> None:
    by_type = report.by_type()
    assert {"homophone", "traditional", "english", "out_of_scope"} <= set(by_type)

    below = {name: share for name, share in by_type.items() if share < EVERY_QUESTION_TYPE}
    assert below == {}, report.as_dict()
