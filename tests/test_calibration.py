"""The score models' calibration: which bases it fits on, and that what it fits ranks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bot.answering.calibration import calibration_questions, fit_score_model
from bot.answering.knowledge_base import KnowledgeBase, load_knowledge_base
from bot.answering.matching import Matcher, rank_candidates
from tests.fixtures_knowledge import KnowledgeFolder
from tests.test_matching import SMALL_KNOWLEDGE


@pytest.fixture(scope="module")
def small_kb(tmp_path_factory: pytest.TempPathFactory) -> KnowledgeBase:
    folder = KnowledgeFolder(tmp_path_factory.mktemp("calibration") / "knowledge")
    for item_id, fields in SMALL_KNOWLEDGE.items():
        folder.item(item_id, **fields)
    return load_knowledge_base(Path(folder.root))


def test_calibration_also_asks_against_a_base_of_one_phrasing_an_item(
    small_kb: KnowledgeBase, monkeypatch: pytest.MonkeyPatch
) -> None:
    phrasings: list[int] = []
    build = Matcher.__init__

    def counting(self: Matcher, kb: KnowledgeBase, *args: Any, **kwargs: Any) -> None:
        phrasings.append(max(len(item.questions) for item in kb.items.values()))
        build(self, kb, *args, **kwargs)

    monkeypatch.setattr(Matcher, "__init__", counting)
    asked = calibration_questions(small_kb, ["今天天气怎么样"])

    # Two folds hold phrasings out of the whole base, one strips it to three Chinese phrasings
    # an item (these items have two), the last to one, as a FAQ with one title an entry.
    assert phrasings == [2, 2, 2, 1]
    assert any(question.answerable for question in asked)
    assert any(not question.answerable for question in asked)


def test_the_fitted_ranking_puts_the_right_item_first_for_most_calibration_questions(
    small_kb: KnowledgeBase,
) -> None:
    asked = calibration_questions(small_kb, ["今天天气怎么样", "附近哪家火锅好吃"])
    model = fit_score_model(asked)

    answerable = [question for question in asked if question.truth.any()]
    first = [
        bool(question.truth[rank_candidates(question.rows, model)[0][0]])
        for question in answerable
    ]
    assert answerable
    assert np.mean(first) > 0.8
