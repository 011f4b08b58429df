"""The matcher keeps the project's floor on every evaluation set, on the full knowledge base and
on the "new city" base (three Chinese questions an item, nothing in English, no synonyms).

The sets were written apart from the knowledge base's own phrasings (tests/data/*.toml) and
nothing is fitted on them. These are floors against silent regressions, below the levels the
project aims at (docs/matching.md gives both); when one falls short, the matcher (or the
knowledge base) is what must change, not the bar.
"""

from __future__ import annotations

import pytest

from bot.answering.evaluation import Report, evaluate, load_evaluation_set, new_city_base
from bot.answering.matching import MatchingThresholds
from bot.answering.store import LoadedKnowledge, build_knowledge, build_matcher, thresholds_from
from bot.core.config import load_settings
from tests.fixtures_knowledge import EVALUATION_SETS, REPO_ROOT

TOP1_ON_ANSWERABLE = 0.93
USEFUL_ON_ANSWERABLE = 0.93
NOT_ANSWERED_WHEN_UNANSWERABLE = 0.92
CONFIDENTLY_WRONG = 0.015
# The earlier sets' question types on the full base; the residents' set on either base, and
# every set on the thin new-city base, have harder types (indirect requests, stories told
# around a need) held to a lower floor.
EVERY_QUESTION_TYPE = 0.85
EVERY_QUESTION_TYPE_HARD = 0.70

SETS = ["evaluation.toml", "evaluation-holdout.toml", "evaluation-residents.toml"]
# The Taipei City FAQ as a city's only knowledge base (1,877 real entries, one phrasing each, no
# English) and the questions written for it.
TAIPEI_TOP1 = 0.70
TAIPEI_USEFUL = 0.80
TAIPEI_ENGLISH = 0.60


@pytest.fixture(scope="module")
def new_city(bundled: LoadedKnowledge, thresholds: MatchingThresholds) -> LoadedKnowledge:
    kb = new_city_base(bundled.kb)
    return LoadedKnowledge(kb=kb, matcher=build_matcher(kb, thresholds))


@pytest.fixture(
    scope="module",
    params=[(name, base) for name in SETS for base in ("full", "new-city")],
    ids=lambda p: f"{p[0]}-{p[1]}",
)
def report(
    request: pytest.FixtureRequest, bundled: LoadedKnowledge, new_city: LoadedKnowledge
) -> tuple[str, str, Report]:
    name, base = request.param
    loaded = bundled if base == "full" else new_city
    return name, base, evaluate(loaded.matcher, load_evaluation_set(EVALUATION_SETS / name))


def test_the_right_item_comes_first_for_answerable_questions(
    report: tuple[str, str, Report],
) -> None:
    _, _, result = report
    assert result.answerable
    assert result.top1_accuracy >= TOP1_ON_ANSWERABLE, result.as_dict()
    assert result.useful_rate >= USEFUL_ON_ANSWERABLE, result.as_dict()


def test_questions_without_an_answer_get_no_card(report: tuple[str, str, Report]) -> None:
    _, _, result = report
    assert result.unanswerable
    assert result.not_answered_rate >= NOT_ANSWERED_WHEN_UNANSWERABLE, result.as_dict()
    assert result.confidently_wrong_rate <= CONFIDENTLY_WRONG, result.as_dict()


def test_every_question_type_reaches_the_level(report: tuple[str, str, Report]) -> None:
    name, base, result = report
    by_type = result.by_type()
    assert "out_of_scope" in by_type
    assert {"traditional", "english"} <= set(by_type)
    floor = (
        EVERY_QUESTION_TYPE
        if base == "full" and name != "evaluation-residents.toml"
        else EVERY_QUESTION_TYPE_HARD
    )

    below = {kind: share for kind, share in by_type.items() if share < floor}
    assert below == {}, result.as_dict()


def test_the_taipei_faq_as_the_only_base_keeps_its_floor() -> None:
    settings = load_settings(REPO_ROOT / "benchmarks" / "data" / "taipei-config.toml")
    # (the default signals: the model, the lexicon, no embeddings kept on disk)
    loaded = build_knowledge(settings.knowledge_dir, thresholds_from(settings))
    result = evaluate(
        loaded.matcher, load_evaluation_set(EVALUATION_SETS / "taipei-questions.toml")
    )

    assert result.top1_accuracy >= TAIPEI_TOP1, result.as_dict()
    assert result.useful_rate >= TAIPEI_USEFUL, result.as_dict()
    assert result.by_type()["english"] >= TAIPEI_ENGLISH, result.as_dict()
    assert result.not_answered_rate >= NOT_ANSWERED_WHEN_UNANSWERABLE, result.as_dict()
    assert result.confidently_wrong_rate <= CONFIDENTLY_WRONG, result.as_dict()
