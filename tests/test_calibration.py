"""The score models' calibration: which bases it fits on, and that what it fits ranks."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bot.answering import calibration
from bot.answering.calibration import (
    PRACTICE_BASES,
    PRACTICE_WEIGHTS,
    HeldOutAnswer,
    HeldOutScores,
    PracticeBase,
    calibration_questions,
    choose_practice_weight,
    fit_logistic,
    fit_score_model,
    practice_questions,
)
from bot.answering.evaluation import load_evaluation_set
from bot.answering.knowledge_base import KnowledgeBase, load_knowledge_base
from bot.answering.matching import (
    NO_METRIC,
    Matcher,
    MatchingThresholds,
    SemanticMetric,
    rank_candidates,
)
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


# -- practice bases ------------------------------------------------------------------------------


@pytest.mark.parametrize("base", PRACTICE_BASES, ids=lambda b: b.knowledge.name)
def test_each_practice_base_loads_and_its_questions_name_its_items(base: PracticeBase) -> None:
    kb = load_knowledge_base(base.knowledge)
    cases = load_evaluation_set(base.questions)

    expected = {case.expected for case in cases if case.expected is not None}
    assert len(kb.items) >= 25
    assert expected == set(kb.items)
    assert sum(case.expected is None for case in cases) >= 20
    # Residents' own words: no question is one of its item's phrasings.
    for case in cases:
        if case.expected is not None:
            item = kb.items[case.expected]
            assert case.question not in (item.title, *item.questions)
    # A thin base as a new city writes it: nothing in English.
    assert not any(item.title_en or item.questions_en for item in kb.items.values())
    assert "english" in {case.type for case in cases}


def test_practice_questions_ask_each_base_whole_then_without_a_sixth_of_its_items(
    tmp_path: Path,
) -> None:
    folder = KnowledgeFolder(tmp_path / "knowledge")
    for item_id, fields in SMALL_KNOWLEDGE.items():
        folder.item(item_id, **fields)
    kb = load_knowledge_base(folder.root)
    questions = tmp_path / "questions.toml"
    questions.write_text(
        "".join(
            f'[[cases]]\nquestion = "{kb.items[i].questions[0]}"\ntype = "colloquial"\n'
            f'expected = "{i}"\n\n'
            for i in sorted(kb.items)
        ),
        encoding="utf-8",
    )

    asked = practice_questions([PracticeBase(folder.root, questions)])

    assert all(question.practice for question in asked)
    whole, without = asked[: len(kb.items)], asked[len(kb.items) :]
    assert all(question.answerable for question in whole)
    # The second time only the left-out items' questions are asked, and nothing answers them.
    assert len(without) == len([i for n, i in enumerate(sorted(kb.items)) if n % 6 == 0])
    assert all(not q.answerable and not q.truth.any() for q in without)


def test_a_sample_weight_counts_a_row_that_many_times() -> None:
    generator = np.random.default_rng(3)
    x = np.column_stack([np.ones(40), generator.normal(size=(40, 2))])
    y = (x[:, 1] + generator.normal(size=40) > 0).astype(np.float64)
    counts = np.where(np.arange(40) < 10, 3.0, 1.0)

    weighted = fit_logistic(x, y, sample_weight=counts)
    repeated = fit_logistic(
        np.repeat(x, counts.astype(int), axis=0), np.repeat(y, counts.astype(int))
    )

    assert np.allclose(weighted, repeated, atol=1e-6)
    assert not np.allclose(weighted, fit_logistic(x, y), atol=1e-3)


def test_the_practice_weight_is_chosen_by_leaving_one_practice_base_out(
    small_kb: KnowledgeBase, monkeypatch: pytest.MonkeyPatch
) -> None:
    own = calibration_questions(small_kb, ["今天天气怎么样"])
    per_base = [own[:5], own[5:10]]
    tried: list[float] = []

    def answers(own: Any, per_base: Any, weight: float) -> list[Any]:
        tried.append(weight)
        return [weight]  # stands for the weight's held-out answers

    def scores(answered: list[Any]) -> HeldOutScores:
        (weight,) = answered
        # Fewest wrong cards at 4 and 8; of those, 8 helps more. The log loss, lowest at 16,
        # does not decide.
        wrong = 0.01 if weight in (4.0, 8.0) else 0.02
        helped = 0.9 if weight == 8.0 else 0.8
        return HeldOutScores(0.8, 0.5, helped, wrong, abs(weight - 16.0))

    monkeypatch.setattr(calibration, "_held_out_answers", answers)
    monkeypatch.setattr(calibration, "held_out_scores", scores)

    assert choose_practice_weight(own, per_base) == 8.0
    assert tried == list(PRACTICE_WEIGHTS)
    # The threshold report reads the chosen weight's answers: not fitted a seventh time.
    tried.clear()
    assert calibration._chosen_practice_weight(own, per_base) == (8.0, [8.0])
    assert tried == list(PRACTICE_WEIGHTS)
    # One practice base leaves nothing to hold out.
    assert choose_practice_weight(own, per_base[:1]) == 1.0
    assert calibration._chosen_practice_weight(own, per_base[:1]) == (1.0, [])


def test_the_held_out_scores_are_shares_and_a_loss(small_kb: KnowledgeBase) -> None:
    own = calibration_questions(small_kb, ["今天天气怎么样", "附近哪家火锅好吃"])
    per_base = [own[::3], own[1::3]]

    held = calibration._held_out_scores(own[2::3], per_base, 2.0)

    assert 0.5 < held.ranked_right <= 1.0
    # A right card is a right first item, and helps; a choice may help too.
    assert 0.0 < held.answered_right <= held.ranked_right
    assert held.answered_right <= held.helped <= 1.0
    assert 0.0 <= held.confidently_wrong < 0.2
    assert 0.0 < held.log_loss < 1.0


def test_a_higher_answer_threshold_turns_unsure_cards_into_choices() -> None:
    answers = [
        # Right and sure: a card at either threshold.
        HeldOutAnswer(True, True, 0.95, 0.9, True),
        # Right but less sure: a card at 0.8, the first of a choice at 0.9.
        HeldOutAnswer(True, True, 0.85, 0.9, True),
        # Wrong and fairly sure: a wrong card at 0.8 only; the choice still holds the right one.
        HeldOutAnswer(True, False, 0.85, 0.9, True),
        # Nothing answers it: a card at 0.8 is wrong.
        HeldOutAnswer(False, False, 0.82, 0.9, False),
    ]
    default = MatchingThresholds()

    low = calibration.held_out_scores(answers, replace(default, answer=0.8))
    high = calibration.held_out_scores(answers, replace(default, answer=0.9))

    assert low.answered_right == pytest.approx(2 / 3)
    assert high.answered_right == pytest.approx(1 / 3)
    assert low.confidently_wrong == pytest.approx(2 / 4)
    assert high.confidently_wrong == 0.0
    assert low.helped == pytest.approx(2 / 3)
    assert high.helped == 1.0
    # Without thresholds, the matcher's defaults decide.
    assert calibration.held_out_scores(answers) == calibration.held_out_scores(answers, default)


def test_the_lowest_safe_answer_threshold_keeps_wrong_cards_within_the_share() -> None:
    def scores(wrong: float) -> HeldOutScores:
        return HeldOutScores(0.8, 0.4, 0.9, wrong, 0.4)

    curve = [
        (0.8, scores(0.02)),
        (0.85, scores(0.012)),
        (0.88, scores(0.009)),
        (0.9, scores(0.008)),
    ]
    assert calibration.lowest_safe_answer_threshold(curve) == 0.88
    # A threshold within the share below one outside it is not safe: more cards come with it.
    bumpy = [(0.8, scores(0.005)), (0.85, scores(0.02)), (0.9, scores(0.004))]
    assert calibration.lowest_safe_answer_threshold(bumpy) == 0.9
    assert calibration.lowest_safe_answer_threshold([(0.9, scores(0.03))]) is None


def test_the_suggest_threshold_is_the_lowest_band_whose_choices_hold_the_right_item() -> None:
    def band(low: float, right: int, wrong: int, unanswerable: int) -> list[HeldOutAnswer]:
        confidence = low + 0.02  # inside [low, low + SUGGEST_BAND)
        return (
            [HeldOutAnswer(True, False, confidence, 0.5, True)] * right
            + [HeldOutAnswer(True, False, confidence, 0.5, False)] * wrong
            + [HeldOutAnswer(False, False, confidence, 0.5, False)] * unanswerable
        )

    answers = (
        band(0.05, 1, 2, 7)  # 1 in 10: not worth a choice
        + band(0.10, 3, 1, 6)  # 3 in 10
        + band(0.15, 1, 0, 4)  # 1 in 5: below a quarter
        + band(0.20, 2, 1, 3)  # 2 in 6
        + band(0.25, 3, 0, 1)
        # A sure card is no choice: it does not count in its band.
        + [HeldOutAnswer(True, True, 0.97, 0.9, True)]
    )
    bands = {b.threshold: b for b in calibration.suggest_threshold_bands(answers)}

    assert set(bands) == set(calibration.SUGGEST_THRESHOLDS)
    assert (bands[0.10].questions, bands[0.10].choice_right) == (10, 3)
    assert bands[0.15].share == pytest.approx(0.2)
    assert bands[0.5].questions == 0
    assert bands[0.5].share == 0.0
    # Helped: a right card, or a choice holding the right item, of the answerable questions.
    assert bands[0.05].helped > bands[0.10].helped > bands[0.25].helped
    answerable = sum(1 for a in answers if a.answerable)
    assert bands[0.25].helped == pytest.approx(4 / answerable)
    # Walking down from the highest band: 0.15 holds too few, so 0.20 is the lowest, although
    # 0.10 below it holds enough again.
    assert calibration.lowest_worthwhile_suggest_threshold(list(bands.values())) == 0.2
    assert calibration.lowest_worthwhile_suggest_threshold(list(bands.values()), 0.1) == 0.05
    assert calibration.lowest_worthwhile_suggest_threshold(list(bands.values()), 0.8) == 0.3


def test_the_ranking_is_fitted_over_each_questions_candidates_together() -> None:
    """Two questions whose right candidate has more of feature 1 than its rival, at very
    different levels (0.9 against 0.8, 0.2 against 0.1): a softmax over each question's
    candidates sees only those differences, and puts both right candidates first."""
    rows_a = np.array([[1.0, 0.9, 0.0], [1.0, 0.8, 1.0]])
    rows_b = np.array([[1.0, 0.2, 0.0], [1.0, 0.1, 0.0]])
    asked = [
        calibration.AskedQuestion(rows_a, np.array([1.0, 0.0]), True),
        calibration.AskedQuestion(rows_b, np.array([1.0, 0.0]), True),
        # Nothing right: no lesson for the order.
        calibration.AskedQuestion(rows_b, np.array([0.0, 0.0]), False),
    ]

    weights = calibration.fit_conditional_logit(asked, np.ones(3), l2=0.01)

    assert weights[0] == 0.0
    assert weights[1] > 0.0
    assert weights[2] < 0.0
    for question in asked[:2]:
        assert int(np.argmax(question.rows @ weights)) == 0
    # Counted twice, a question weighs as two copies of it.
    twice = calibration.fit_conditional_logit(asked, np.array([2.0, 1.0, 1.0]), l2=0.01)
    copies = calibration.fit_conditional_logit([asked[0], *asked], np.ones(4), l2=0.01)
    assert np.allclose(twice, copies, atol=1e-5)


# The whole calibration runs here, about 70 s on one core of this machine: beside the other
# worker's tests it came near the suite's 120 s limit.
def test_stored_weights_read_back_as_they_were_fitted(tmp_path: Path) -> None:
    """`calibrate --write` stores the models, the metric's diagonal and low-rank rows each a
    list on one line, and the matcher reads back the same numbers."""
    from bot.answering.matching import DEFAULT_MODELS, ScoreModels, load_score_models

    metric = SemanticMetric(
        diagonal=(1.5, 0.5, -0.25),
        down=((0.1, 0.0, -0.2), (0.3, 1e-05, 0.4)),
        up=((-0.5, 0.6, 0.7), (0.8, -0.9, 1.0)),
    )
    models = ScoreModels(
        semantic=replace(DEFAULT_MODELS.semantic, metric=metric), lexical=DEFAULT_MODELS.lexical
    )
    path = tmp_path / "weights.json"
    calibration.write_weights(models, path)

    text = path.read_text(encoding="utf-8")
    assert '"semantic_metric": [1.5, 0.5, -0.25]' in text
    assert "[0.3, 0.0, 0.4]" in text  # (rounded to four places, as the shipped file is)
    read = load_score_models(path)
    assert read.semantic.metric == replace(metric, down=((0.1, 0.0, -0.2), (0.3, 0.0, 0.4)))
    assert read.semantic.rank == pytest.approx(models.semantic.rank, abs=1e-4)
    assert read.lexical.metric == NO_METRIC
    assert json.loads(text) == calibration.model_as_dict(read)


@pytest.mark.timeout(360)
def test_the_shipped_weights_are_what_calibration_fits(caplog: pytest.LogCaptureFixture) -> None:
    """weights.json is `python -m bot calibrate --write`'s output on the bundled base and the
    practice bases, not a hand-edited file (rounding aside); and with them the default answer
    threshold keeps the practice bases' wrong cards, held out, within one in a hundred."""
    from bot.answering.calibration import calibrate, model_as_dict
    from bot.answering.matching import WEIGHTS_FILE
    from bot.answering.semantic import cache_for, load_embedder
    from tests.fixtures_knowledge import BUNDLED_KNOWLEDGE

    status = load_embedder()
    assert status.embedder is not None, status.reason
    with caplog.at_level(logging.INFO, logger="bot.answering.calibration"):
        fitted = model_as_dict(
            calibrate(load_knowledge_base(BUNDLED_KNOWLEDGE), cache_for(None, status.embedder))
        )
    verdicts = [r for r in caplog.records if r.getMessage().startswith("answer threshold: ")]
    assert len(verdicts) == 1
    assert verdicts[0].levelno == logging.INFO, verdicts[0].getMessage()
    assert "the default 0.90 gives" in verdicts[0].getMessage()
    shipped = json.loads(WEIGHTS_FILE.read_text(encoding="utf-8"))

    assert fitted["scale"] == pytest.approx(shipped["scale"], abs=2e-3)
    assert fitted["lexical"]["scale"] == pytest.approx(shipped["lexical"]["scale"], abs=2e-3)
    for model in ("rank", "confidence"):
        for name, weight in shipped[model].items():
            assert fitted[model][name] == pytest.approx(weight, abs=2e-3), (model, name)
        for name, weight in shipped["lexical"][model].items():
            assert fitted["lexical"][model][name] == pytest.approx(weight, abs=2e-3), name
    assert len(shipped["semantic_metric"]) == 512
    assert fitted["semantic_metric"] == pytest.approx(shipped["semantic_metric"], abs=2e-3)
    # (the low-rank part by the product of its two matrices, which is what reads a question)
    mixed = {
        name: np.asarray(weights["semantic_metric_low_rank"]["up"]).T
        @ np.asarray(weights["semantic_metric_low_rank"]["down"])
        for name, weights in (("fitted", fitted), ("shipped", shipped))
    }
    assert mixed["shipped"].shape == (512, 512)
    assert np.abs(mixed["fitted"] - mixed["shipped"]).max() < 2e-3


def test_the_metric_learnt_from_residents_questions_ranks_them_better_than_the_cosine() -> None:
    """`fit_semantic_metric` weighs the embedding's dimensions so that the practice questions'
    right items lie nearer than under the plain cosine; with every weight 1 it is the cosine."""
    from bot.answering.lexicon import general_lexicon
    from bot.answering.semantic import cache_for, load_embedder

    status = load_embedder()
    assert status.embedder is not None, status.reason
    semantic = cache_for(None, status.embedder)
    bases = PRACTICE_BASES[:3]
    chinese = general_lexicon(english=False)
    metric = calibration.fit_semantic_metric(
        bases, semantic=semantic, lexicon=chinese, english_gloss=general_lexicon()
    )

    weights = np.array(metric.diagonal)
    assert weights.shape == (512,)
    assert weights.mean() == pytest.approx(1.0, abs=1e-3)
    assert weights.std() > 0.05  # not the cosine again
    down = np.array(metric.down, dtype=np.float32)
    up = np.array(metric.up, dtype=np.float32)
    assert down.shape == up.shape == (calibration.METRIC_RANK, 512)

    def matcher_with(kb: KnowledgeBase, metric: SemanticMetric) -> Matcher:
        model = replace(calibration.DEFAULT_MODELS.semantic, metric=metric)
        return Matcher(kb, model=model, semantic=semantic, lexicon=chinese)

    def right_first(metric: SemanticMetric) -> int:
        right = 0
        for base in bases:
            matcher = matcher_with(load_knowledge_base(base.knowledge), metric)
            for case in load_evaluation_set(base.questions):
                _, positions, rows = matcher.features(case.question)
                if case.expected is not None and positions:
                    best = positions[int(np.argmax(rows[:, 15]))]
                    right += matcher.items[best].id in case.accepted
        return right

    plain = right_first(NO_METRIC)
    diagonal_only = right_first(replace(metric, down=(), up=()))
    # (fitted on these very questions: it must do better on them, by a fair margin, and the
    # low-rank part better than the diagonal alone)
    assert diagonal_only > plain + 10
    assert right_first(metric) > diagonal_only + 5

    kb = load_knowledge_base(bases[0].knowledge)
    question = "狗走丢了怎么办"
    # Without weights, or with weights for another model's dimensions, the feature is the
    # cosine with the item's mean vector.
    for unweighted in (NO_METRIC, SemanticMetric(diagonal=(2.0, 0.5, 1.0))):
        _, positions, rows = matcher_with(kb, unweighted).features(question)
        assert positions
        assert np.array_equal(rows[:, 15], rows[:, 13])
    weighted = matcher_with(kb, metric)
    _, positions, rows = weighted.features(question)
    vector = weighted.question_vector(weighted.read(question))
    assert vector is not None
    under = vector * weights.astype(np.float32) + up.T @ (down @ vector)
    expected = weighted.centroids(positions) @ under
    assert np.allclose(rows[:, 15], expected, atol=1e-5)
    # A low-rank part whose matrices disagree with the embedding is left out, as a diagonal
    # for another model's dimensions is.
    askew = replace(metric, down=tuple(row[:100] for row in metric.down))
    _, positions, rows = matcher_with(kb, askew).features(question)
    expected = weighted.centroids(positions) @ (vector * weights.astype(np.float32))
    assert np.allclose(rows[:, 15], expected, atol=1e-5)


def test_the_low_rank_part_of_the_metric_learns_what_no_weight_per_dimension_can() -> None:
    """Questions whose right candidates are their own vectors with two pairs of dimensions
    swapped: no weight per dimension ranks those first, the low-rank part learns the swap, and
    ranks new questions of the same kind right."""
    generator = np.random.default_rng(3)
    dimensions = 8
    swap = np.arange(dimensions)
    swap[[0, 1, 2, 3]] = [1, 0, 3, 2]

    def questions(count: int) -> tuple[list[Any], list[Any], list[Any]]:
        vectors, candidates, truths = [], [], []
        for _ in range(count):
            q = np.zeros(dimensions)
            q[:4] = generator.normal(size=4)
            q += 0.1 * generator.normal(size=dimensions)
            others = generator.normal(size=(5, dimensions))
            right = q[swap] + 0.1 * generator.normal(size=dimensions)
            # (unit vectors, as the embedding's are)
            each = np.vstack([others, right])
            vectors.append(q / np.linalg.norm(q))
            candidates.append(each / np.linalg.norm(each, axis=1, keepdims=True))
            truths.append(np.array([0.0] * 5 + [1.0]))
        return vectors, candidates, truths

    def right_first(q: Any, c: Any, t: Any, diagonal: Any, down: Any, up: Any) -> int:
        return sum(
            int(truth[np.argmax(cs @ (diagonal * v + up.T @ (down @ v)))] > 0)
            for v, cs, truth in zip(q, c, t, strict=True)
        )

    train = questions(300)
    ones = np.ones(dimensions)
    down, up = calibration.fit_low_rank_metric(*train, ones, rank=4, steps=300)
    assert down.shape == up.shape == (4, dimensions)
    test = questions(100)
    nothing = np.zeros((4, dimensions))
    assert right_first(*test, ones, nothing, nothing) < 60
    assert right_first(*test, ones, down, up) > 90


def test_the_metric_held_out_is_fitted_without_the_base_it_answers(
    small_kb: KnowledgeBase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`calibrate --held-out` asks each practice base of a metric and models fitted on the
    others only."""
    from bot.answering.lexicon import general_lexicon
    from bot.answering.semantic import cache_for, load_embedder

    status = load_embedder()
    assert status.embedder is not None, status.reason
    semantic = cache_for(None, status.embedder)
    bases = PRACTICE_BASES[:2]
    fitted_on: list[list[PracticeBase]] = []
    fit = calibration.fit_semantic_metric

    def recorded(practice: Any, **kwargs: Any) -> SemanticMetric:
        fitted_on.append(list(practice))
        return fit(practice, **kwargs)

    monkeypatch.setattr(calibration, "fit_semantic_metric", recorded)

    answers = calibration.metric_held_out_answers(small_kb, semantic, bases)

    assert fitted_on == [[bases[1]], [bases[0]]]
    asked = practice_questions(
        bases,
        semantic=semantic,
        lexicon=general_lexicon(english=False),
        english_gloss=general_lexicon(),
    )
    assert len(answers) == len(asked)
    held = calibration.held_out_scores(answers)
    assert 0.5 < held.ranked_right <= 1.0
    assert held.answered_right <= held.helped
    plain = calibration.metric_held_out_answers(small_kb, semantic, bases, with_metric=False)
    assert len(fitted_on) == 2  # no metric fitted for the plain measurement
    assert len(plain) == len(answers)


def test_the_confidence_features_of_many_questions_are_each_ones_own() -> None:
    """Calibration reads every question's best candidate and confidence features at once; they
    are what the matcher reads one question at a time, ties and lone candidates included."""
    from bot.answering.matching import (
        FEATURE_NAMES,
        ScoreModel,
        confidence_features,
        many_confidence_features,
        rank_candidates,
    )

    generator = np.random.default_rng(3)
    sizes = np.array([1, 3, 5, 2, 4, 1, 6], dtype=np.intp)
    rows = generator.random((int(sizes.sum()), len(FEATURE_NAMES)))
    rows[:, 0] = 1.0
    model = ScoreModel(rank=tuple(generator.normal(size=len(FEATURE_NAMES))), confidence=())
    # The second question's best candidate three times over: the first of them is its best.
    _, probabilities = rank_candidates(rows, model)
    rows[1:4] = rows[1 + int(np.argmax(probabilities[1:4]))]
    _, probabilities = rank_candidates(rows, model)

    together, best = many_confidence_features(rows, sizes, probabilities)

    start = 0
    for k, size in enumerate(sizes):
        own = rows[start : start + size]
        order, own_probabilities = rank_candidates(own, model)
        assert best[k] == start + order[0]
        if k == 1:
            assert best[k] == 1
        assert np.allclose(together[k], confidence_features(own, order, own_probabilities))
        start += size
