"""Matching a resident's question to an item, through `Matcher(kb).match(question)` only.

A small hand-made knowledge base shows each behaviour plainly; the bundled one shows it holds on
real content.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bot.answering.evaluation import load_evaluation_set, new_city_base
from bot.answering.knowledge_base import load_knowledge_base
from bot.answering.matching import (
    _CJK_RUN,
    _HALF_SCALE,
    _SEMANTIC_POOL,
    _VAGUE_FLOOR,
    FEATURE_NAMES,
    Candidate,
    Matcher,
    MatchingThresholds,
    MatchResult,
    _half_scaled_down,
    _half_to_single,
    _is_cjk,
)
from bot.answering.store import LoadedKnowledge, build_matcher
from bot.core.text import normalize_many
from tests.fixtures_knowledge import EVALUATION_SETS, KnowledgeFolder, best_id

SMALL_KNOWLEDGE: dict[str, dict[str, Any]] = {
    "social-security-card-replacement": {
        "title": "社会保障卡挂失补办",
        "category": "社会保险",
        "department": "human-resources",
        "questions": ["社保卡丢了怎么补办", "社保卡坏了怎么换新卡"],
        "keywords": ["社保卡", "补卡", "挂失"],
        "answer": "社保卡丢失后先挂失，再到服务网点补办。",
    },
    "housing-fund-withdrawal": {
        "title": "住房公积金提取",
        "category": "住房公积金",
        "department": "housing-fund",
        "questions": ["公积金怎么提取", "租房可以取公积金吗"],
        "keywords": ["公积金", "提取"],
        "answer": "购房、租房、退休时可以提取住房公积金。",
    },
    "id-card-renewal": {
        "title": "居民身份证换领",
        "title_en": "Renewing a resident identity card",
        "questions": ["身份证快过期了怎么换", "身份证到期了去哪里换"],
        "questions_en": ["How do I renew my ID card?"],
        "keywords": ["身份证", "换证", "到期"],
    },
    "marriage-registration": {
        "title": "结婚登记",
        "category": "婚姻登记",
        "department": "civil-affairs",
        "questions": ["结婚登记需要带什么", "领结婚证去哪里办"],
        "keywords": ["结婚", "结婚证"],
        "answer": "双方带身份证和户口簿到婚姻登记处办理。",
    },
}


@pytest.fixture(scope="module")
def small_kb_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = KnowledgeFolder(tmp_path_factory.mktemp("small") / "knowledge")
    for item_id, fields in SMALL_KNOWLEDGE.items():
        folder.item(item_id, **fields)
    return folder.root


@pytest.fixture(scope="module")
def matcher(small_kb_folder: Path) -> Matcher:
    """The matcher over four items: social security card, housing fund, ID card, marriage."""
    return Matcher(load_knowledge_base(small_kb_folder), MatchingThresholds())


def assert_answered_with(result: MatchResult, item_id: str) -> None:
    assert (result.decision, best_id(result)) == ("answer", item_id), result


# -- questions that have an answer --------------------------------------------------------------


def test_question_written_in_the_item_is_answered(matcher: Matcher) -> None:
    result = matcher.match("社保卡丢了怎么补办")

    assert_answered_with(result, "social-security-card-replacement")
    assert result.reason == "confident"
    assert result.language == "zh"


def test_every_question_of_the_bundled_knowledge_base_is_answered_with_its_item(
    bundled: LoadedKnowledge,
) -> None:
    misses = []
    for item in bundled.kb.items.values():
        for question in item.questions:
            result = bundled.matcher.match(question)
            if (result.decision, best_id(result)) != ("answer", item.id):
                misses.append((item.id, question, result.decision, best_id(result), result.score))

    assert misses == []


@pytest.mark.parametrize(
    ("typed", "item_id"),
    [
        ("社宝卡丢了怎么补办", "social-security-card-replacement"),
        ("公基金怎么提取", "housing-fund-withdrawal"),
        ("身份正快过期了怎么换", "id-card-renewal"),
    ],
)
def test_homophone_typo_finds_the_item(matcher: Matcher, typed: str, item_id: str) -> None:
    assert_answered_with(matcher.match(typed), item_id)


def test_homophone_repair_never_cuts_a_real_word_or_the_citys_name(
    bundled: LoadedKnowledge,
) -> None:
    matcher = bundled.matcher
    # 开电 sounds like 开店 (a term of the base), but 电 begins 电子.
    assert matcher.match("新公司怎么开电子发票").normalized == "新公司怎么开电子发票"
    # 市能 sounds like 失能, but 市 ends the city's name.
    assert "示例市能办" in matcher.match("外地户口在示例市能办生育登记吗").normalized
    # A typo that cuts no word is still repaired, for the words and for the meaning.
    assert matcher.match("社宝卡丢了怎么补办").normalized.startswith("社保卡")
    assert matcher.analyzer.repaired("社宝卡丢了怎么补办").startswith("社保卡丢了")


def test_homophone_repair_reads_toward_the_words_of_the_phrasings_too(tmp_path: Path) -> None:
    # An item with no keywords (a new city's FAQ often has none): its title's and
    # phrasings' words are what a typo is repaired toward.
    folder = KnowledgeFolder(tmp_path / "knowledge")
    folder.item(
        "disclosure-request",
        title="政府信息公开申请",
        questions=["我市政府信息公开申请怎么提交", "申请公开政府信息要多久答复"],
        keywords=[],
    )
    matcher = Matcher(load_knowledge_base(folder.root), MatchingThresholds())

    assert matcher.analyzer.repaired("信息公开申清怎么写") == "信息公开申请怎么写"
    assert matcher.match("政府信息公开申清怎么写").normalized == "政府信息公开申请怎么写"
    # 我是 sounds like 我市, a word of the phrasings, but two common words read apart are
    # likelier than the one word: it is no typo.
    assert matcher.analyzer.repaired("我是退休职工想问问") == "我是退休职工想问问"


@pytest.mark.parametrize(
    ("run", "words"),
    [
        # Read from the start, 交房 (handing over a flat) swallows the 房 of 房产税.
        ("每年要交房产税", ["每年", "要", "交", "房产税"]),
        ("研究生命", ["研究", "生命"]),
        # As many words and single characters either way: the likelier reading by the general
        # vocabulary's counts (和 and 服务 are common, 和服 is not; 提取 is, 取来 is not).
        ("和服务", ["和", "服务"]),
        ("提取来付房租", ["提取", "来", "付房租"]),
        # Where the reading from the start leaves no single character, it stands.
        ("社保卡丢了怎么补办", ["社保卡", "丢了", "怎么", "补办"]),
        ("提取公积金", ["提取公积金"]),
    ],
)
def test_segmentation_keeps_the_reading_with_fewer_words(
    bundled: LoadedKnowledge, run: str, words: list[str]
) -> None:
    analyzer = bundled.matcher.analyzer
    assert analyzer.segment(run) == words
    # The index reads the knowledge base's text the same way.
    vocabulary: dict[str, int] = {}
    indexed = analyzer.index_many([run], vocabulary)
    by_id = {token_id: token for token, token_id in vocabulary.items()}
    read = [by_id[int(t)] for t in indexed.token_ids]
    assert read == list(analyzer.analyze(run, repair=False).strings())


def test_a_tax_the_base_does_not_have_is_not_answered_with_another_tax(
    bundled: LoadedKnowledge,
) -> None:
    # A new city's base has deed tax on a purchase (契税), nothing on the yearly property tax
    # (房产税): read as 交房/产/税, the question shared 交, 房 and 税 with the deed-tax item and
    # got its card.
    matcher = build_matcher(new_city_base(bundled.kb), bundled.matcher.thresholds)
    result = matcher.match("每年要交房产税吗")

    assert "w房产税" in matcher.analyzer.analyze(result.normalized).strings()
    assert result.decision != "answer"


@pytest.mark.parametrize(
    "question",
    [
        "我的老年证丢了，我今年七十三了",
        "我今年73了，老年证丢了",
        "八十岁老人有什么补贴",
        "两千块的发票丢了",
    ],
)
def test_a_number_no_item_has_is_not_a_word_the_base_lacks(
    bundled: LoadedKnowledge, question: str
) -> None:
    # An age or a sum (七十三, 八十岁, 两千块) is in no item: read as a word the base lacks, it
    # set the rarest-missing-word feature to its highest for every candidate alike, and the
    # feature no longer told the item that has 老年证 from those that do not.
    matcher = bundled.matcher
    query, _, rows = matcher.features(question)

    assert not query.unknown_word
    assert rows[:, FEATURE_NAMES.index("missing_word")].min() < 1.0
    # A word that names something no item has still counts.
    assert matcher.features("我家养的鹦鹉飞走了")[0].unknown_word


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("社宝卡丢了怎么补办", "社保卡丢了怎么补办"),
        ("公基金租房怎么提取", "公积金租房怎么提取"),
        ("身份正丢了怎么补办", "身份证丢了怎么补办"),
    ],
)
def test_homophone_typo_finds_what_the_right_spelling_finds_in_the_bundled_knowledge(
    bundled: LoadedKnowledge, typed: str, meant: str
) -> None:
    right = bundled.matcher.match(meant)
    assert right.decision in ("answer", "suggest")

    typo = bundled.matcher.match(typed)
    # The same decision for the same item, and as sure: the typo is repaired for the words
    # and for the meaning alike.
    assert (typo.decision, best_id(typo)) == (right.decision, best_id(right))
    assert typo.score == pytest.approx(right.score, abs=1e-6)


def test_traditional_chinese_question_is_answered(matcher: Matcher) -> None:
    result = matcher.match("身份證快過期了怎麼換")

    assert_answered_with(result, "id-card-renewal")
    assert result.normalized == "身份证快过期了怎么换"


@pytest.mark.parametrize(
    ("traditional", "simplified"),
    [
        ("健保卡遺失怎麼補辦", "医保卡丢了怎么补办"),
        ("護照遺失怎麼辦", "护照丢了怎么办"),
        ("請問公積金怎麼提取來付房租", "请问公积金怎么提取来付房租"),
    ],
)
def test_traditional_chinese_finds_what_simplified_finds_in_the_bundled_knowledge(
    bundled: LoadedKnowledge, traditional: str, simplified: str
) -> None:
    right = bundled.matcher.match(simplified)
    assert right.decision == "answer"

    assert_answered_with(bundled.matcher.match(traditional), str(best_id(right)))


def test_english_question_is_answered(matcher: Matcher) -> None:
    result = matcher.match("How do I renew my ID card?")

    assert_answered_with(result, "id-card-renewal")
    assert result.language == "en"


@pytest.mark.parametrize(
    ("question", "decisions", "item_id"),
    [
        ("My ID card expires next month, how do I renew it?", {"answer"}, "id-card-renewal"),
        ("I lost my social security card", {"answer"}, "social-security-card-loss-replacement"),
        # Three ways of taking money out of the housing fund lie close, and the best one's
        # confidence near the answer threshold: a card, or a choice led by the renting one.
        (
            "How can I withdraw my housing fund to pay rent?",
            {"answer", "suggest"},
            "housing-fund-withdrawal-renting",
        ),
    ],
)
def test_english_question_in_other_words_is_answered_from_the_bundled_knowledge(
    bundled: LoadedKnowledge, question: str, decisions: set[str], item_id: str
) -> None:
    result = bundled.matcher.match(question)

    assert result.decision in decisions
    assert best_id(result) == item_id
    assert result.language == "en"
    best = result.best
    assert best is not None
    assert best.item.title_en


def test_a_choice_knows_when_its_first_item_is_very_likely_the_one(
    bundled: LoadedKnowledge,
) -> None:
    items = bundled.kb.items
    first, second = items["pension-insurance-transfer"], items["basic-pension-claim"]

    def choice(scores: tuple[float, ...], reason: str = "unsure") -> MatchResult:
        return MatchResult(
            question="q",
            normalized="q",
            language="zh",
            decision="suggest",
            candidates=tuple(
                Candidate(item=item, score=score)
                for item, score in zip((first, second), scores, strict=False)
            ),
            reason=reason,
        )

    assert choice((0.85, 0.4)).first_is_likely()
    assert choice((0.85,)).first_is_likely()
    # Not sure enough, a second close behind, several items fitting a vague word.
    assert not choice((0.7, 0.2)).first_is_likely()
    assert not choice((0.85, 0.8)).first_is_likely()
    assert not choice((0.85, 0.4), reason="vague").first_is_likely()


# -- questions without one answer ---------------------------------------------------------------


@pytest.mark.parametrize(
    "question", ["你好", "谢谢！", "hello", "你是机器人吗", "好的👍", "在吗？"]
)
def test_small_talk_is_declined_without_candidates(matcher: Matcher, question: str) -> None:
    result = matcher.match(question)

    # A friendly word, never staff (docs/matching.md, "What the resident wants").
    assert result.decision == "decline"
    assert result.reason == "small_talk"
    assert result.intent == "small_talk"
    assert result.candidates == ()


@pytest.mark.parametrize(
    ("question", "place"),
    [
        ("北京市的公积金怎么提取", "北京"),
        ("上海的社保卡丢了怎么补办", "上海"),
        ("How do I withdraw my housing fund in Shanghai?", "shanghai"),
    ],
)
def test_another_citys_affair_escalates(
    bundled: LoadedKnowledge, question: str, place: str
) -> None:
    result = bundled.matcher.match(question)

    assert result.decision == "escalate"
    assert result.reason == f"other_place:{place}"
    # Staff still see which item it looked like.
    assert result.candidates


def test_another_city_as_a_destination_is_still_our_matter(matcher: Matcher) -> None:
    assert_answered_with(
        matcher.match("去北京出差，社保卡丢了怎么补办"), "social-security-card-replacement"
    )


@pytest.mark.parametrize(
    "question",
    ["今天天气怎么样", "附近哪家火锅好吃", "帮我写一首诗", "股票明天会涨吗", "我家猫生病了怎么办"],
)
def test_out_of_scope_question_is_declined(bundled: LoadedKnowledge, question: str) -> None:
    result = bundled.matcher.match(question)

    # Not a card, not a choice, not a hand-off staff must clear: a polite word and a button.
    assert result.decision == "decline"
    assert result.reason == "out_of_scope"
    assert result.intent == "out_of_scope"
    assert result.score < bundled.matcher.thresholds.answer


@pytest.mark.parametrize("question", ["", "   ", "？？？", "😀😀"])
def test_question_with_nothing_in_it_escalates(matcher: Matcher, question: str) -> None:
    result = matcher.match(question)

    assert result.decision == "escalate"
    assert result.reason == "empty"
    assert result.candidates == ()
    assert result.score == 0.0


def test_near_duplicate_items_make_the_resident_choose_between_both(
    knowledge_folder: KnowledgeFolder,
) -> None:
    # Two departments filed the same service under two titles: neither may be answered alone.
    for item_id, title in (
        ("senior-card", "老年人优待证申领"),
        ("senior-card-issuing", "老年人优待证办理"),
    ):
        knowledge_folder.item(
            item_id,
            title=title,
            category="养老服务",
            department="civil-affairs",
            questions=["老年人优待证怎么申请"],
            keywords=["优待证"],
            answer="年满60周岁可申领老年人优待证。",
        )
    for item_id, fields in SMALL_KNOWLEDGE.items():
        knowledge_folder.item(item_id, **fields)
    matcher = Matcher(load_knowledge_base(knowledge_folder.root), MatchingThresholds())

    result = matcher.match("老年人优待证怎么申请")

    assert result.decision == "suggest"
    assert {c.item.id for c in result.candidates[:2]} == {"senior-card", "senior-card-issuing"}


# -- the score and the decision -----------------------------------------------------------------


def evaluation_questions() -> list[str]:
    return [
        case.question
        for name in ("evaluation.toml", "evaluation-holdout.toml")
        for case in load_evaluation_set(EVALUATION_SETS / name)
    ]


def test_scores_are_probabilities_and_candidates_come_best_first(bundled: LoadedKnowledge) -> None:
    thresholds = bundled.matcher.thresholds
    for question in evaluation_questions():
        result = bundled.matcher.match(question)
        scores = [c.score for c in result.candidates]

        assert all(0.0 <= s <= 1.0 for s in scores), result
        assert scores == sorted(scores, reverse=True), result
        assert result.score == (scores[0] if scores else 0.0)
        assert len({c.item.id for c in result.candidates}) == len(scores)
        # The decision follows the thresholds of config.toml.
        if result.decision == "answer":
            assert result.score >= thresholds.answer
        elif result.decision == "suggest":
            # (a one-word question gets its choice from a lower floor: "医保" fits several)
            floor = (
                min(_VAGUE_FLOOR, thresholds.suggest)
                if result.reason == "vague"
                else thresholds.suggest
            )
            assert result.score >= floor
        elif result.reason == "no_match":
            assert result.score < thresholds.suggest


def test_thresholds_decide_between_answer_suggest_and_escalate(small_kb_folder: Path) -> None:
    kb = load_knowledge_base(small_kb_folder)
    # Not written as any phrasing of the item (one written so is answered whatever the score).
    question = "我的社保卡找不到了，要怎么补一张"
    score = Matcher(kb).match(question).score

    strict = Matcher(kb, MatchingThresholds(answer=1.0, suggest=score / 2)).match(question)
    stricter = Matcher(kb, MatchingThresholds(answer=1.0, suggest=1.0)).match(question)

    assert strict.decision == "suggest"
    assert stricter.decision == "escalate"
    assert best_id(stricter) == "social-security-card-replacement"


def test_index_is_built_once_per_load_and_not_per_question(
    small_kb_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builds: list[object] = []
    build = Matcher._build

    def counting_build(self: Matcher, *args: Any, **kwargs: Any) -> None:
        builds.append(self)
        build(self, *args, **kwargs)

    monkeypatch.setattr(Matcher, "_build", counting_build)
    matcher = Matcher(load_knowledge_base(small_kb_folder), MatchingThresholds())
    assert builds == [matcher]

    for question in ("社保卡丢了怎么补办", "公基金怎么提取", "How do I renew my ID card?", "你好"):
        matcher.match(question)

    assert builds == [matcher]


def test_a_question_asked_again_word_for_word_gets_the_same_result_without_matching_again(
    small_kb_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    matcher = Matcher(load_knowledge_base(small_kb_folder), MatchingThresholds())
    first = matcher.match("社保卡丢了怎么补办")

    def no_matching(question: str) -> MatchResult:
        raise AssertionError(f"matched again: {question}")

    monkeypatch.setattr(matcher, "_match", no_matching)
    assert matcher.match("社保卡丢了怎么补办") is first
    with pytest.raises(AssertionError, match="matched again"):
        matcher.match("社保卡丢了怎么办")


def test_remembered_results_are_bounded_and_can_be_switched_off(small_kb_folder: Path) -> None:
    kb = load_knowledge_base(small_kb_folder)
    remembering = Matcher(kb, MatchingThresholds(recent_results=2))
    results = [remembering.match(q) for q in ("公积金怎么提取", "结婚登记", "身份证到期")]
    assert remembering.match("身份证到期") is results[2]
    # The oldest was forgotten: it is matched again, to an equal but new result.
    again = remembering.match("公积金怎么提取")
    assert again is not results[0]
    assert again == results[0]

    forgetting = Matcher(kb, MatchingThresholds(recent_results=0))
    assert forgetting.match("结婚登记") is not forgetting.match("结婚登记")


def test_a_long_question_is_never_remembered(small_kb_folder: Path) -> None:
    matcher = Matcher(load_knowledge_base(small_kb_folder), MatchingThresholds())
    story = "我家老人腿脚不方便，" * 20 + "社保卡丢了怎么补办"
    assert matcher.match(story) is not matcher.match(story)


def test_the_index_analyses_text_as_a_question_is_analysed(bundled: LoadedKnowledge) -> None:
    # The index takes a faster path through the same analysis; both must give the same words,
    # or a question would miss the item it copies.
    analyzer = bundled.matcher.analyzer
    texts = [
        question
        for item in bundled.kb.items.values()
        for question in (item.title, *item.questions, *item.keywords, *item.questions_en)
    ]
    texts += [
        case.question
        for name in ("evaluation.toml", "evaluation-holdout.toml")
        for case in load_evaluation_set(EVALUATION_SETS / name)
    ]
    normalized = normalize_many(texts)
    vocabulary: dict[str, int] = {}
    indexed = analyzer.index_many(normalized, vocabulary)
    names = {token_id: token for token, token_id in vocabulary.items()}
    by_text: list[list[str]] = [[] for _ in texts]
    for token_id, owner in zip(indexed.token_ids.tolist(), indexed.owner.tolist(), strict=True):
        by_text[owner].append(names[token_id])
    for number, text in enumerate(normalized):
        expected = analyzer.analyze(text, repair=False)
        assert indexed.canonicals[number] == expected.canonical, text
        assert sorted(by_text[number]) == sorted(expected.strings()), text


def test_half_precision_vectors_are_widened_exactly() -> None:
    # The candidates' text vectors are kept as float16 and widened for their cosines by bit
    # shifts: every finite half must come out as numpy's own conversion gives it.
    halves = np.arange(2**16, dtype=np.uint32).astype(np.uint16).view(np.float16)
    finite = halves[np.isfinite(halves)].reshape(-1, 2)
    widened = _half_to_single(finite)
    assert widened.dtype == np.float32
    assert widened.shape == finite.shape
    assert np.array_equal(widened.view(np.uint32), finite.astype(np.float32).view(np.uint32))


def test_cosines_of_half_precision_vectors_scaled_down_are_those_of_the_widened_ones() -> None:
    # The candidates' cosines skip the widening's last pass: the vectors stay scaled down by
    # 2**-112 and the question's vector is scaled up by as much. Every product must come out
    # as with the widened vectors, subnormal halves included.
    rng = np.random.default_rng(7)
    question = rng.normal(size=512).astype(np.float32)
    question /= np.linalg.norm(question)
    texts = rng.normal(size=(300, 512)).astype(np.float32)
    texts /= np.linalg.norm(texts, axis=1, keepdims=True)
    halves = texts.astype(np.float16)
    halves[:, :40] = rng.integers(-1023, 1024, size=(300, 40)).astype(np.int16).view(np.float16)
    assert (np.abs(halves[:, :40].astype(np.float32)) < 2.0**-14).any()  # subnormal halves
    expected = _half_to_single(halves) @ question
    scaled = _half_scaled_down(halves) @ (question * _HALF_SCALE)
    assert np.array_equal(scaled.view(np.uint32), expected.view(np.uint32))


def _under_shipped_metric(matcher: Matcher, vector: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """The question's vector read under weights.json's metric, worked out here from the
    model's numbers: diagonal ∘ q + Upᵀ(Down q), the low-rank part making a difference."""
    metric = matcher.model.metric
    diagonal = np.asarray(metric.diagonal, dtype=np.float64)
    down = np.asarray(metric.down, dtype=np.float64)
    up = np.asarray(metric.up, dtype=np.float64)
    assert diagonal.shape == (512,)
    assert not np.allclose(diagonal, 1.0)
    assert down.shape == up.shape == (16, 512)
    mixed = up.T @ (down @ vector)
    assert np.abs(mixed).max() > 0.01 * np.abs(diagonal * vector).max()
    return (diagonal * vector + mixed).astype(np.float32)


def test_the_likeness_to_an_items_closest_text_is_read_under_the_learnt_metric(
    bundled: LoadedKnowledge,
) -> None:
    # `semantic` is the best likeness between the question and any of a candidate's texts,
    # each dimension weighted as residents' questions taught (the weights.json metric), as
    # the likeness to the candidate's mean is: not the plain cosine.
    matcher = bundled.matcher
    read = matcher.read("我的老年证丢了，能不能补办")
    vector = matcher.question_vector(read)
    assert vector is not None
    weighted = _under_shipped_metric(matcher, vector)
    _, positions, rows = matcher.features("我的老年证丢了，能不能补办", read, vector)

    column = FEATURE_NAMES.index("semantic")
    plain_differs = False
    for position, row in zip(positions, rows, strict=True):
        first, end = matcher._sem_first[position], matcher._sem_first[position + 1]
        texts = _half_to_single(matcher._sem_vectors[first:end])
        assert row[column] == pytest.approx(float((texts @ weighted).max()), abs=1e-5)
        plain_differs |= abs(row[column] - float((texts @ vector).max())) > 1e-3
    assert plain_differs


@pytest.mark.parametrize("question", ["楼下路灯坏了", "How do I get a licence for my dog?"])
def test_the_items_nearest_in_meaning_are_picked_under_the_learnt_metric(
    bundled: LoadedKnowledge, question: str
) -> None:
    # The items that join the candidates for their meaning are the nearest under the metric
    # (for these questions, not all of them the nearest by the plain cosine).
    matcher = bundled.matcher
    vector = matcher.question_vector(matcher.read(question))
    assert vector is not None
    _, positions, _ = matcher.features(question)

    weighted = _under_shipped_metric(matcher, vector)
    under_metric = set(matcher._nearest_items(weighted, _SEMANTIC_POOL).tolist())
    by_cosine = set(matcher._nearest_items(vector, _SEMANTIC_POOL).tolist())
    assert under_metric <= set(positions)
    assert not by_cosine <= set(positions)


def _full_scan(matcher: Matcher, vector: np.ndarray[Any, Any], count: int) -> np.ndarray[Any, Any]:
    """The nearest items as the scan of every rough score finds them (the code before the
    sampled threshold)."""
    assert matcher._sem_reduced is not None
    mean, basis, reduced = matcher._sem_reduced
    rough = reduced @ ((vector - mean) @ basis)
    shortlist = np.argpartition(-rough, 6 * count - 1)[: 6 * count]
    exact = matcher._sem_centroids[shortlist] @ vector
    return shortlist[np.argsort(-exact, kind="stable")[:count]]


def test_the_nearest_items_of_a_large_base_are_those_of_the_scan_of_every_item() -> None:
    # Above 2,000 items the nearest items are shortlisted by their rough (PCA) scores among
    # those above a threshold from a sample. The result must be the scan's, ties included:
    # twin items (the same centroid) make the sampled path give way to the full scan.
    rng = np.random.default_rng(11)
    centroids = rng.normal(size=(5000, 512)).astype(np.float32)
    centroids[1::2] += 3 * centroids[::2]  # items near each other, as related services are
    centroids[4000:4010] = centroids[10]  # twins
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    mean = centroids.mean(axis=0)
    _, _, components = np.linalg.svd(centroids[::5] - mean, full_matrices=False)
    basis = np.ascontiguousarray(components[:64].T)
    matcher = Matcher.__new__(Matcher)
    matcher.items = [None] * len(centroids)  # type: ignore[list-item]
    matcher._sem_centroids = centroids
    matcher._sem_reduced = (mean, basis, ((centroids - mean) @ basis).astype(np.float32))
    sampled = 0
    for number in range(300):
        if number % 3 == 0:  # a question right beside an item (or beside the twins)
            vector = centroids[10 if number % 2 else number] + 0.01 * rng.normal(size=512)
        else:
            vector = rng.normal(size=512)
        vector = (vector / np.linalg.norm(vector)).astype(np.float32)
        expected = _full_scan(matcher, vector, 8)
        assert matcher._nearest_items(vector, 8).tolist() == expected.tolist()
        mean_, basis_, reduced = matcher._sem_reduced
        rough = reduced @ ((vector - mean_) @ basis_)
        sampled += matcher._nearest_of_few(vector, rough, 48, 8) is not None
    assert 150 <= sampled < 300  # most take the sampled path; the twins' questions do not


def test_the_character_table_knows_the_chinese_characters_the_text_patterns_know() -> None:
    codes = np.arange(0x110000, dtype=np.int32)
    chinese = [code for code in range(0x110000) if _CJK_RUN.fullmatch(chr(code))]
    assert np.flatnonzero(_is_cjk(codes)).tolist() == chinese


@pytest.mark.parametrize("question", ["二手车过户要什么手续", "个人征信报告在哪打印"])
def test_a_service_no_item_mentions_gets_a_choice_not_a_card(
    bundled: LoadedKnowledge, question: str
) -> None:
    # A new city's base has 二手房过户 and 社保缴费证明, nothing about used cars or credit
    # reports: the near item's card would answer another question. (At an answer threshold of
    # 0.8 the near item's confidence would make both a card.)
    thresholds = replace(bundled.matcher.thresholds, answer=0.8)
    matcher = build_matcher(new_city_base(bundled.kb), thresholds)
    result = matcher.match(question)

    assert result.decision == "suggest"
    assert result.reason == "unknown_term"
    assert result.candidates


@pytest.mark.parametrize(
    ("question", "item_id"),
    [
        # 民政局 and 退役军人事务局 are the base's own offices, in no item's text.
        ("去民政局领结婚证需要带什么", "marriage-registration"),
        ("退伍回来要去退役军人事务局报到吗", "veteran-resettlement-registration"),
    ],
)
def test_an_office_of_the_base_is_no_service_the_base_lacks(
    bundled: LoadedKnowledge, question: str, item_id: str
) -> None:
    matcher = build_matcher(new_city_base(bundled.kb), bundled.matcher.thresholds)
    result = matcher.match(question)

    assert (result.decision, result.reason, best_id(result)) == ("answer", "confident", item_id)


def test_a_word_apart_from_the_cards_title_does_not_hold_the_card_back(tmp_path: Path) -> None:
    """ "找哪个部门" is the lexicon's 负责部门, which none of a new city's few items may mention:
    it asks who handles the service, not for another service."""
    folder = KnowledgeFolder(tmp_path / "knowledge")
    folder.item(
        "elevator-retrofit",
        title="既有住宅加装电梯",
        category="住房保障",
        department="housing-fund",
        questions=["既有住宅加装电梯如何申请", "老旧小区加装电梯需要哪些审批手续"],
        keywords=[],
        answer="本单元业主协商一致后向所在街道提出申请，经规划公示后办理规划和施工许可。",
    )
    for item_id, fields in SMALL_KNOWLEDGE.items():
        folder.item(item_id, **fields)
    kb = load_knowledge_base(folder.root)
    matcher = build_matcher(kb, MatchingThresholds())
    question = "楼里想装个电梯找哪个部门"

    result = matcher.match(question)

    assert "负责部门" in matcher._analyze(question).unknown_terms
    assert (result.decision, best_id(result)) == ("answer", "elevator-retrofit"), result
    # A word beside the title's own (二手车 beside 二手房) still makes it a choice.
    assert matcher._names_a_sibling(("二手车",), kb.items["elevator-retrofit"]) is False
    assert matcher._names_a_sibling(("电梯维保",), kb.items["elevator-retrofit"]) is True


def test_a_service_the_base_names_is_still_answered(bundled: LoadedKnowledge) -> None:
    matcher = build_matcher(new_city_base(bundled.kb), bundled.matcher.thresholds)
    result = matcher.match("二手房过户要什么手续")

    assert (result.decision, best_id(result)) == (
        "answer",
        "second-hand-housing-transfer-registration",
    )
