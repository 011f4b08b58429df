"""Find the knowledge-base item a resident's question is about, or know that none fits.

The pipeline (README "How matching works"; docs/matching.md for the semantic signal, the lexicon and
what the resident wants):

1. `normalize` (NFKC, half-width, simplified Chinese, lower case, punctuation out).
2. Synonyms: every word of a synonym group is rewritten to the group's first word, so 户籍 and
   户口 are one word from here on.
3. Homophone repair: a run of characters that is no known word but sounds like a term of the
   knowledge base (身份正 → 身份证, 公基金 → 公积金) is replaced by that term, as a pinyin input
   method's wrong pick is undone.
4. Segmentation by maximum matching in both directions over the knowledge base's own terms and
   a general vocabulary, plus character bigrams (robust to wrong segmentation), pinyin-syllable
   bigrams (robust to homophone typos the repair missed) and stemmed English words.
5. BM25 over two fields per item (title/questions/keywords, and answer) picks candidates.
6. Each candidate is re-scored by a logistic model over coverage, fuzzy (rapidfuzz) and pinyin
   features, giving a calibrated probability in 0..1 that it is what the resident means.
7. Thresholds from config.toml turn the best probability into one decision.

The index is built once per knowledge-base load; a question touches only arrays and dicts.
"""

from __future__ import annotations

import gc
import json
import math
import re
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from functools import lru_cache
from itertools import chain, pairwise
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
import numpy.typing as npt
from rapidfuzz import fuzz, process

from bot.answering.implied import ImpliedWords
from bot.answering.index_snapshot import read_snapshot, snapshot_key, snapshot_path, write_snapshot
from bot.answering.intents import (
    OFF_TOPIC_EXAMPLES,
    OFF_TOPIC_MARGIN,
    Intent,
    asks_what_is_needed,
    report_cues,
    ticket_type_for,
    wants_to_file,
)
from bot.answering.knowledge_base import Item, KnowledgeBase
from bot.answering.places import ENGLISH_PLACE_NAMES, PlaceDetector
from bot.answering.semantic import EmbeddingCache
from bot.answering.small_talk import asks_for_person, is_small_talk, is_venting
from bot.answering.yielding import answering, checkpoint
from bot.core.text import (
    char_pinyin,
    char_sound,
    detect_language,
    general_vocabulary,
    has_cjk,
    latin_words,
    likelier_apart,
    normalize,
    normalize_many,
    reading_log_likelihood,
    unique,
)

# answer: the card; suggest: a choice; escalate: a person answers; report: offer to file the
# message as a ticket; decline: small talk or out of scope, a polite word (and a button to
# reach a person) instead of a hand-off.
Decision = Literal["answer", "suggest", "escalate", "report", "decline"]

# Words that say nothing about which service is meant. They still count for fuzzy similarity.
_CHINESE_FILLERS = frozenset(
    (
        "请问 你好 您好 我想 想问 问一下 一下 怎么 怎么样 怎样 如何 什么 哪里 哪儿 "
        "哪个 哪些 需要 要求 可以 可不可以 能不能 是不是 有没有 是否 为什么 吗 呢 啊 "
        "吧 呀 了 的 得 地 我 我们 你们 他们 我的 自己 这个 那个 这样 还有 还是 "
        "或者 就是 但是 因为 所以 如果 现在 已经 应该 一个 请 帮 帮忙 谢谢 麻烦 "
        "知道 告诉 办 办理 去 到 在 给 让 把 被 和 跟 及 与 都 也 就 还 又 再 "
        "才 要 想 能 会 有 没有 是 不 没 多少 多久 几天 几个 时候 怎么办 咋办 咋 "
        "啥"
    ).split()
)
_ENGLISH_STOPWORDS = frozenset(
    (
        "a an the i me my we our you your he she it "
        "its they them their to of in on at for from "
        "by with about as into is are was were be "
        "been being am do does did doing have has had "
        "having can could should would will shall may "
        "might must how what when where which who "
        "whom why this that these those there here "
        "and or but if then so than too very just not "
        "no yes please hi hello thanks thank want "
        "need get got go going like any some all "
        "there's i'm i've don't doesn't dont cant "
        "can't much many long"
    ).split()
)

_ENGLISH_SUFFIXES = (
    "ations",
    "ation",
    "ments",
    "ment",
    "ings",
    "ing",
    "ies",
    "ied",
    "ed",
    "es",
    "s",
    "al",
)


@lru_cache(maxsize=65536)
def stem_english(word: str) -> str:
    """Strip common English endings so renew, renewal and renewing are one token."""
    for suffix in _ENGLISH_SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            stem = word[: -len(suffix)]
            if suffix in ("ies", "ied"):
                stem += "y"
            return stem
    return word


@dataclass(frozen=True, slots=True)
class Candidate:
    """An item that may answer the question, with the probability that it does."""

    item: Item
    score: float


@dataclass(frozen=True, slots=True)
class MatchResult:
    """What the matcher made of one question."""

    question: str
    normalized: str
    language: str
    decision: Decision
    candidates: tuple[Candidate, ...]
    reason: str
    intent: Intent = "question"

    @property
    def best(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None

    @property
    def score(self) -> float:
        return self.candidates[0].score if self.candidates else 0.0

    def suggestions(self, limit: int) -> tuple[Candidate, ...]:
        """Return the candidates worth offering as a choice: the best, and those close to it.

        A candidate with a fifth of the best one's score is noise, not a choice; for a vague
        word ("房子") every candidate up to `limit` is, as the word fits each of them.
        """
        if not self.candidates:
            return ()
        floor = 0.0 if self.reason == "vague" else self.candidates[0].score * _SUGGESTION_SHARE
        return tuple(
            c for n, c in enumerate(self.candidates[:limit]) if n == 0 or c.score >= floor
        )

    def in_difficulty(self) -> bool:
        """Whether the message tells of someone in difficulty (a help request, 求助): the chat
        says whom to call before anything else."""
        return self.intent == "report" and ticket_type_for(normalize(self.question)) == "help"

    def first_is_likely(self) -> bool:
        """Whether a choice's first item is very likely the one meant: not sure enough for a
        card, but at least `_LIKELY_FIRST` and well ahead of the second. Held out on the
        practice bases, a first item that sure was the right one about nine times in ten."""
        if self.decision != "suggest" or self.reason != "unsure" or not self.candidates:
            return False
        first = self.candidates[0].score
        second = self.candidates[1].score if len(self.candidates) > 1 else 0.0
        return first >= _LIKELY_FIRST and second <= _LIKELY_SECOND_SHARE * first


@dataclass(frozen=True, slots=True)
class MatchingThresholds:
    """Where the calibrated probability turns into a decision (config.toml [matching])."""

    answer: float = 0.9
    suggest: float = 0.15
    # The best must beat the second by this much to be answered outright; otherwise the
    # resident chooses between them.
    margin: float = 0.25
    max_candidates: int = 3
    # How many recent questions' results are kept for questions asked again word for word
    # (0: none).
    recent_results: int = 4096
    # Names of this city: a question naming another city is about that city's affairs.
    home_names: tuple[str, ...] = ("示例", "本市", "我市", "shili")


def home_names(city: str, city_en: str) -> tuple[str, ...]:
    """The names a resident calls this city by: its Chinese name without 市 (示例 for 示例市),
    the first word of its English name, and 本市 / 我市 ("this city")."""
    english = city_en.split()
    return ("本市", "我市", city.removesuffix("市"), english[0].lower() if english else "")


# Logistic model over the re-ranking features, fitted by `python -m bot calibrate` on the
# knowledge base's own questions (held out from the index) and a set of out-of-scope questions.
# Order: bias, query coverage, pinyin coverage, question coverage, fuzzy ratio, partial ratio,
# keyword hit, relative BM25, rank-1 flag.
FEATURE_NAMES = (
    "bias",
    "query_coverage",
    "pinyin_coverage",
    "question_coverage",
    "fuzzy_ratio",
    "partial_ratio",
    "keyword_hit",
    "relative_bm25",
    "first",
    "evidence",
    "missing_word",
    "semantic",
    "semantic_gap",
    "semantic_centroid",
    "length",
    "semantic_metric",
)
# The confidence model sees the best candidate's absolute features (nothing relative to the
# other candidates, which would make any best look good) and how far it leads the second.
CONFIDENCE_NAMES = (
    "bias",
    "query_coverage",
    "pinyin_coverage",
    "question_coverage",
    "fuzzy_ratio",
    "partial_ratio",
    "keyword_hit",
    "evidence",
    "missing_word",
    "semantic",
    "semantic_centroid",
    "length",
    "semantic_metric",
    "semantic_lead",
    "centroid_lead",
    "metric_lead",
    "rank_probability",
    "lead",
)
_CONFIDENCE_COLUMNS = [FEATURE_NAMES.index(n) for n in CONFIDENCE_NAMES[:-5]]
_SEMANTIC_COLUMN = FEATURE_NAMES.index("semantic")
_CENTROID_COLUMN = FEATURE_NAMES.index("semantic_centroid")
_METRIC_COLUMN = FEATURE_NAMES.index("semantic_metric")
_LEAD_COLUMNS = [_SEMANTIC_COLUMN, _CENTROID_COLUMN, _METRIC_COLUMN]
_FUZZY_COLUMN = FEATURE_NAMES.index("fuzzy_ratio")
_COVERAGE_COLUMN = FEATURE_NAMES.index("query_coverage")
# A fuzzy ratio this close to 1 is the question written exactly as one of the item's phrasings.
_EXACT = 0.999
WEIGHTS_FILE = Path(__file__).resolve().parent / "calibration" / "weights.json"


@dataclass(frozen=True, slots=True)
class SemanticMetric:
    """How `semantic_metric` and every likeness of the embedding read the question's vector q:
    as diagonal ∘ q + upᵀ(down · q), a weight for each dimension and a low-rank part that mixes
    them, as residents' questions taught (docs/matching.md, "A metric learnt from residents'
    questions"); with no diagonal, the plain cosine."""

    diagonal: tuple[float, ...] = ()
    # The low-rank part: `rank` rows of the embedding's dimensions each; none, the diagonal alone.
    down: tuple[tuple[float, ...], ...] = ()
    up: tuple[tuple[float, ...], ...] = ()


# The plain cosine.
NO_METRIC = SemanticMetric()


@dataclass(frozen=True, slots=True)
class ScoreModel:
    """Two logistic models: one ranks the candidates, one says how sure the best one is."""

    rank: tuple[float, ...]
    confidence: tuple[float, ...]
    # How many units of the ranking's own score (a softmax over the candidates) one unit of
    # `rank`'s logit is: the lead between two candidates is read in the ranking's units.
    scale: float = 1.0
    # How the embedding's likenesses are read (`semantic_metric` is the question's likeness to
    # an item's mean vector under it); empty: the plain cosine.
    metric: SemanticMetric = NO_METRIC


_GUESS = ScoreModel(
    rank=(-9.0, 5.0, 1.5, 4.0, 2.0, 1.5, 1.0, 1.5, 0.5, 2.0, -2.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    confidence=(
        -8.0,
        5.0,
        0.0,
        3.0,
        0.0,
        0.0,
        2.0,
        5.0,
        -1.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        1.0,
        2.0,
    ),
)


@dataclass(frozen=True, slots=True)
class ScoreModels:
    """The fitted models with the semantic signal, and without it (the model did not load)."""

    semantic: ScoreModel
    lexical: ScoreModel

    def for_signal(self, semantic: bool) -> ScoreModel:
        return self.semantic if semantic else self.lexical


def _model_from(fitted: dict[str, Any]) -> ScoreModel:
    rank = dict(zip(FEATURE_NAMES, _GUESS.rank, strict=True)) | fitted.get("rank", {})
    confidence = dict(zip(CONFIDENCE_NAMES, _GUESS.confidence, strict=True)) | fitted.get(
        "confidence", {}
    )
    low_rank = fitted.get("semantic_metric_low_rank", {})
    return ScoreModel(
        rank=tuple(float(rank[n]) for n in FEATURE_NAMES),
        confidence=tuple(float(confidence[n]) for n in CONFIDENCE_NAMES),
        scale=float(fitted.get("scale", 1.0)),
        metric=SemanticMetric(
            diagonal=tuple(float(w) for w in fitted.get("semantic_metric", ())),
            down=_rows(low_rank.get("down", ())),
            up=_rows(low_rank.get("up", ())),
        ),
    )


def _rows(rows: Any) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(float(w) for w in row) for row in rows)


def load_score_models(path: Path = WEIGHTS_FILE) -> ScoreModels:
    """Return the fitted score models (`python -m bot calibrate`), or a neutral guess."""
    if not path.is_file():
        return ScoreModels(_GUESS, _GUESS)
    fitted = json.loads(path.read_text(encoding="utf-8"))
    semantic = _model_from(fitted)
    lexical = _model_from(fitted.get("lexical", fitted))
    return ScoreModels(semantic=semantic, lexical=lexical)


def load_score_model(path: Path = WEIGHTS_FILE) -> ScoreModel:
    """Return the fitted score model that uses the semantic signal."""
    return load_score_models(path).semantic


def _metric_arrays(
    metric: SemanticMetric,
) -> tuple[
    npt.NDArray[np.float32] | None, npt.NDArray[np.float32] | None, npt.NDArray[np.float32] | None
]:
    """The metric's diagonal, and its low-rank part's two matrices when both are there and
    agree with the diagonal's dimensions (a metric for another model's embedding weighs
    nothing: `_weighted` checks the diagonal's size against the question's vector)."""
    if not metric.diagonal:
        return None, None, None
    diagonal = np.asarray(metric.diagonal, dtype=np.float32)
    if not metric.down or len(metric.down) != len(metric.up):
        return diagonal, None, None
    down = np.asarray(metric.down, dtype=np.float32)
    up = np.asarray(metric.up, dtype=np.float32)
    if down.ndim != 2 or down.shape != up.shape or down.shape[1] != diagonal.size:
        return diagonal, None, None
    return diagonal, down, up


def _sigmoid(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return 1.0 / (1.0 + np.exp(-np.clip(values, -50, 50)))


def rank_candidates(
    rows: npt.NDArray[np.float64], model: ScoreModel
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]:
    """Return the candidates' order (best first) and their ranking probabilities."""
    probabilities = _sigmoid(rows @ np.asarray(model.rank))
    return np.argsort(-probabilities, kind="stable"), probabilities


def confidence_features(
    rows: npt.NDArray[np.float64],
    order: npt.NDArray[np.intp],
    probabilities: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """Return the confidence model's input for the best candidate."""
    best = int(order[0])
    second = float(probabilities[order[1]]) if order.size > 1 else 0.0
    first = float(probabilities[best])
    # How far the best candidate's cosines lead the others' best (or 0 when it is alone).
    cosines = rows[:, _LEAD_COLUMNS]
    if len(rows) > 1:
        others = cosines.copy()
        others[best] = -np.inf
        leads = cosines[best] - others.max(axis=0)
    else:
        leads = cosines[best]
    return np.concatenate((rows[best, _CONFIDENCE_COLUMNS], leads, (first, first - second)))


def many_confidence_features(
    rows: npt.NDArray[np.float64],
    sizes: npt.NDArray[np.intp],
    probabilities: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.intp]]:
    """`confidence_features` of many questions at once, their candidates' rows stacked
    (`sizes[k]` rows for the k-th, none empty), and the row of each one's best candidate:
    the same values, ties broken the same way (the first of equal probabilities)."""
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.intp)
    group = np.repeat(np.arange(len(sizes)), sizes)
    order = np.lexsort((np.arange(len(rows)), -probabilities, group))
    best = order[starts]
    single = sizes == 1
    second_row = order[np.where(single, starts, starts + 1)]
    first = probabilities[best]
    second = np.where(single, 0.0, probabilities[second_row])
    cosines = rows[:, _LEAD_COLUMNS]
    others = cosines.copy()
    others[best] = -np.inf
    others_best = np.maximum.reduceat(others, starts, axis=0)
    leads = cosines[best] - np.where(single[:, None], 0.0, others_best)
    features = np.column_stack((rows[best][:, _CONFIDENCE_COLUMNS], leads, first, first - second))
    return features, best


def best_confidence(
    rows: npt.NDArray[np.float64],
    order: npt.NDArray[np.intp],
    probabilities: npt.NDArray[np.float64],
    model: ScoreModel,
) -> float:
    """The confidence model's probability that the best candidate is right."""
    features = confidence_features(rows, order, probabilities)
    return float(_sigmoid(np.asarray(features @ np.asarray(model.confidence))))


def ranking_lead(
    rows: npt.NDArray[np.float64], order: npt.NDArray[np.intp], model: ScoreModel
) -> float:
    """How far the best candidate leads the second: the share of the best one's weight in the
    ranking's softmax over the candidates that the second lacks (1 − e^(s₂ − s₁), in the
    ranking's own units; 1 when there is no second)."""
    if order.size < 2:
        return 1.0
    logits = rows[order[:2]] @ np.asarray(model.rank)
    return 1.0 - math.exp(float(logits[1] - logits[0]) / max(model.scale, 1e-9))


def decide(confidence: float, lead: float, thresholds: MatchingThresholds) -> tuple[Decision, str]:
    """The decision the confidence and the lead call for, before the rules about the question
    itself (exact phrasings, vague words, unknown services, reports, other topics)."""
    if confidence >= thresholds.answer and lead >= thresholds.margin:
        return "answer", "confident"
    if confidence >= thresholds.suggest:
        return "suggest", "close_candidates" if confidence >= thresholds.answer else "unsure"
    return "escalate", "no_match"


DEFAULT_MODELS = load_score_models()

# How many candidates BM25 hands to the re-ranking; beyond the first dozen the right item is
# practically never found, and the fuzzy scores cost time per candidate.
_CANDIDATE_POOL = 16
# How many items nearest in meaning join them.
_SEMANTIC_POOL = 8
# Above this many items the nearest ones are first found in _SEMANTIC_PCA_DIMENSIONS dimensions
# (a tenth of the work at 10,000 items), widened _SEMANTIC_PCA_WIDEN times, then compared in full.
_SEMANTIC_SCAN_ITEMS = 2000
_SEMANTIC_PCA_DIMENSIONS = 64
_SEMANTIC_PCA_SAMPLE = 1024
_SEMANTIC_PCA_WIDEN = 6
# The rough scores of every this many items give the threshold of `_nearest_of_few`.
_SEMANTIC_SAMPLE_STEP = 16
# A question of at most this many characters of content (an English word counts two) is vague
# when a second item has at least _VAGUE_SECOND of the best one's weight in the ranking's softmax.
_VAGUE_CHARS = 4
_VAGUE_SECOND = 0.3
# ... and it gets a choice from this confidence up, where a city has set its suggest threshold
# higher (at the default, 0.15, every question this sure gets a choice anyway).
_VAGUE_FLOOR = 0.2
# A message with problem words whose best card is less sure than this also offers a ticket (as
# does one that says the resident wants to complain or report, however sure the card).
_REPORT_OVER_ANSWER = 0.9
# A complaint about conduct or a suggestion keeps a choice beside the offer only when its best
# item is at least as likely right as wrong: "办个证跑了五趟还没办好" is not helped by a choice of
# ID-card items, and the offer thanks a suggestion. A problem that may have an answer
# ("旧沙发怎么扔") keeps any choice it would get.
_REPORT_CHOICE_FLOOR = 0.5
# An English question asked of a base with English phrasings for fewer than this share of its
# items is embedded with the lexicon's English terms read as their Chinese words.
_GLOSS_ENGLISH_SHARE = 0.5
# The beginning of an item's answer is embedded too: it says what the item is about when its
# phrasings are few (a new city's base, a real FAQ with one title per entry).
_SEMANTIC_ANSWER_CHARS = 120
_BM25_K1 = 1.2
_BM25_B = 0.75
_ANSWER_FIELD_WEIGHT = 0.3


@dataclass(slots=True)
class _Tokens:
    """The string tokens of one text: words and single characters (Chinese), English stems.

    Character bigrams and pinyin-syllable bigrams are computed as integer keys over whole
    arrays of code points (`_bigram_keys`, `_sound_keys`), which keeps indexing fast.
    """

    canonical: str
    words: list[str] = field(default_factory=list)
    english: list[str] = field(default_factory=list)

    def strings(self) -> list[str]:
        return self.words + self.english


@dataclass(frozen=True, slots=True)
class _IndexedTexts:
    """Many texts analysed for the index: canonical texts and their tokens, flat."""

    canonicals: list[str]
    # Token ids in the index's vocabulary, and the text each one is of.
    token_ids: npt.NDArray[np.int64]
    owner: npt.NDArray[np.int64]
    # The ids that are words of two characters or more (not single characters, not English).
    word_ids: set[int]


# Flag in `index_many`'s memo values: the piece is rewritten by a synonym.
_REWRITTEN = 1 << 32


_CODE_LIMIT = 0x110000
_NO_SOUND = -1
_SOUND_UNSEEN = -2
# Folded pinyin syllable of each code point of the Basic Multilingual Plane, filled lazily.
_sound_table = np.full(0x10000, _SOUND_UNSEEN, dtype=np.int32)
_syllable_ids: dict[str, int] = {}


def _code_points(text: str) -> npt.NDArray[np.int32]:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.int32)


# Whether each code point of the Basic Multilingual Plane is a CJK ideograph (the ranges of
# `_CJK_RUN`); anything above it is not, and reads the last entry, a noncharacter.
_CJK_TABLE = np.zeros(0x10000, dtype=bool)
_CJK_TABLE[0x3400:0x4DC0] = True
_CJK_TABLE[0x4E00:0xA000] = True
_CJK_TABLE[0xF900:0xFB00] = True


def _is_cjk(codes: npt.NDArray[np.int32]) -> npt.NDArray[np.bool_]:
    # One lookup instead of six comparisons: a question's analysis makes many small calls.
    result: npt.NDArray[np.bool_] = _CJK_TABLE[np.minimum(codes, 0xFFFF)]
    return result


def _sounds_of_codes(codes: npt.NDArray[np.int32]) -> npt.NDArray[np.int32]:
    """Return each code point's syllable id, or -1 for anything without a Chinese reading."""
    cjk = _is_cjk(codes)
    lookup = np.where(cjk, codes, 0)
    sounds = np.where(cjk, _sound_table[lookup], _NO_SOUND).astype(np.int32)
    if (sounds == _SOUND_UNSEEN).any():
        _fill_sound_table()
        sounds = np.where(cjk, _sound_table[lookup], _NO_SOUND).astype(np.int32)
    return sounds


def _sorted_unique(values: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Return the sorted distinct values (sorting beats numpy's hash-based unique here)."""
    ordered = np.sort(values)
    if ordered.size == 0:
        return ordered
    keep = np.empty(ordered.size, dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def _half_to_single(half: npt.NDArray[np.float16]) -> npt.NDArray[np.float32]:
    """`half.astype(np.float32)`, bit for bit, in three integer passes.

    numpy converts float16 one value at a time on this hardware (about 2 ns each, a third of a
    millisecond for the candidates' texts at 10,000 items). Read as int16 and widened with its
    sign, a half shifted 13 bits up has its exponent and mantissa where float32 keeps them and
    its sign in the top four bits; with bits 28-30 cleared, read as float32 it is the value
    times 2**-112 (subnormal halves included), and one exact multiplication by 2**112 restores
    it. Exact for every finite half (tests/test_matching.py checks all of them); the vectors
    are unit-length embeddings, so infinities and NaN, which this would not keep, never occur.
    """
    single = _half_scaled_down(half)
    single *= _HALF_SCALE
    return single


def _half_scaled_down(half: npt.NDArray[np.float16]) -> npt.NDArray[np.float32]:
    """The values of `half` times 2**-112, as float32, exactly: `_half_to_single` without its
    last pass. A product with a vector scaled up by `_HALF_SCALE` is then the very product
    `_half_to_single` would give: each term is the same real number (scaling by a power of
    two is exact, and every value stays within float32's range), so it rounds the same."""
    bits = np.left_shift(half.view(np.int16), 13, dtype=np.int32)
    bits &= _SIGN_AND_LOW_BITS
    single: npt.NDArray[np.float32] = bits.view(np.float32)
    return single


# Bit 31 and bits 0-27 of a 32-bit word (0x8FFFFFFF).
_SIGN_AND_LOW_BITS = np.int32(-0x70000001)
_HALF_SCALE = np.float32(2.0**112)


def _joined_codes(texts: Sequence[str]) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32]]:
    """Return the code points of texts joined by line breaks, and each code point's text."""
    if not texts:
        return np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int32)
    codes = _code_points("\n".join(texts) + "\n")
    breaks = np.flatnonzero(codes == 10)
    if breaks.size == len(texts):
        lengths = np.diff(breaks, prepend=-1)
    else:  # a text with a line break of its own (normalised texts have none)
        lengths = np.fromiter((len(t) + 1 for t in texts), dtype=np.int64, count=len(texts))
    return codes, np.repeat(np.arange(len(texts), dtype=np.int32), lengths)


def _bigram_keys(
    codes: npt.NDArray[np.int32],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.intp]]:
    """Return the keys of adjacent Chinese character pairs and where each pair starts."""
    if codes.size < 2:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.intp)
    cjk = _is_cjk(codes)
    starts = np.flatnonzero(cjk[:-1] & cjk[1:])
    return codes[starts].astype(np.int64) * _CODE_LIMIT + codes[starts + 1], starts


def _sound_keys(
    codes: npt.NDArray[np.int32],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.intp]]:
    """Return the keys of adjacent syllable pairs (homophones share them) and their starts."""
    if codes.size < 2:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.intp)
    sounds = _sounds_of_codes(codes)
    starts = np.flatnonzero((sounds[:-1] >= 0) & (sounds[1:] >= 0))
    return sounds[starts].astype(np.int64) * 65536 + sounds[starts + 1], starts


# How residents open a question before they ask it: greetings, and a form of address followed by
# a greeting or a pause ("同志你好", "小伙子 …"). Said to the bot, they say nothing about what is
# asked; in a long question they draw its meaning away from every item.
_OPENERS = re.compile(
    r"^(?:(?:(?:同志|领导|小伙子|小姑娘|姑娘|师傅|大姐|大哥|大妹子|老师|工作人员|客服)"
    r"(?:你好|您好|好)?(?= )|你好|您好|你们好|大家好|领导好|同志好|老师好|"
    r"(?:我想|想)?(?:请问一下|请问下|请问|问一下|问下|问问)|打扰一下|打扰了|打扰|麻烦|劳驾|"
    r"我跟你讲哦|我跟你讲|我跟你说|喂|哎|唉|嗯)[ ]*)+"
)


class _TextAnalyzer:
    """Turns text into canonical text and tokens, with the knowledge base's vocabulary."""

    def __init__(
        self,
        synonyms: Sequence[Sequence[str]],
        terms: Iterable[str],
        lexicon: Sequence[Sequence[str]] = (),
    ) -> None:
        self.canonical: dict[str, str] = {}
        self._add_groups(_normalized_groups(synonyms))
        # Homophone repair aims at the knowledge base's own words only: the general lexicon's
        # thousands of words would turn ordinary text into them (的时 → 的士 → 出租车).
        repair_terms = set(_normalize_in_steps(list(terms))) | set(self.canonical)
        repair_terms |= set(self.canonical.values())
        # After the city's groups: a word in both keeps the city's. (The lexicon is the same
        # for every index of the process: it is normalised once.)
        self._add_groups(_normalized_groups(lexicon))
        # Latin-script synonyms ("id card") are rewritten in place, as whole words; Chinese
        # ones word by word after segmentation, so 执照 is not rewritten inside 驾驶执照.
        self.latin_canonical = {
            w: h for w, h in _stepped(self.canonical.items()) if not has_cjk(w)
        }
        self.latin_pattern = (
            _latin_pattern(frozenset(self.latin_canonical)) if self.latin_canonical else None
        )
        self.general = general_vocabulary()
        kb_terms = repair_terms | set(self.canonical) | set(self.canonical.values())
        # Terms of two Chinese characters or more.
        self.kb_terms = {t for t in _stepped(kb_terms) if len(t) >= 2 and _CJK_RUN.fullmatch(t)}
        # The words segmentation knows: the general vocabulary (shared by every index of the
        # process) and the knowledge base's terms of up to eight characters that it lacks. Two
        # sets, not their union: copying the 290,000 general words took 15-20 ms in one call
        # (and freeing the copy as long), holding the interpreter lock against answering.
        segmentable = {t for t in _stepped(self.kb_terms) if len(t) <= 8}
        self.kb_words = frozenset(t for t in _stepped(segmentable) if t not in self.general)
        # For each first character, the lengths of the words that start with it, longest first:
        # segmentation then tries only lengths that can match; the same by last character, for
        # segmentation read from the end. Only the knowledge base's terms change the general
        # tables.
        self.lengths_by_first = _lengths_with(_general_lengths_by(0), segmentable, 0)
        self.lengths_by_last = _lengths_with(_general_lengths_by(-1), segmentable, -1)

        # Sound index of the knowledge base's own terms, for homophone repair.
        self.terms_by_sound: dict[tuple[str, ...], list[str]] = {}
        for term in _stepped(sorted(t for t in self.kb_terms if t in repair_terms)):
            if 2 <= len(term) <= 6:
                key = tuple(char_sound(c) for c in term)
                self.terms_by_sound.setdefault(key, []).append(term)
        self._index_sounds()

    def _index_sounds(self) -> None:
        self.sound_lengths = sorted({len(k) for k in self.terms_by_sound}, reverse=True)
        # The first two syllables of every such term: most runs have none of these pairs, and
        # nothing to repair.
        self.sound_starts = {key[:2] for key in self.terms_by_sound}

    def add_repair_words(self, texts: Iterable[str]) -> None:
        """Repair toward the words of these (normalised) texts too: the real words of two to
        six characters their runs segment into."""
        known = {w for ws in self.terms_by_sound.values() for w in ws}
        added = set()
        for n, text in enumerate(unique(texts)):
            if n % 500 == 0:
                checkpoint()
            for run in _CJK_RUN.findall(text):
                for word in self.segment(run):
                    if (
                        2 <= len(word) <= 6
                        and word not in known
                        and (word in self.general or word in self.kb_words)
                    ):
                        added.add(word)
        for word in sorted(added):
            key = tuple(char_sound(c) for c in word)
            self.terms_by_sound.setdefault(key, []).append(word)
        self._index_sounds()

    def __getstate__(self) -> dict[str, Any]:
        # Kept in an index snapshot without the general vocabulary (the process's one copy)
        # and the Latin pattern (compiled once per process for the same synonyms).
        state = dict(self.__dict__)
        del state["general"]
        state["latin_pattern"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.general = general_vocabulary()
        if self.latin_canonical:
            self.latin_pattern = _latin_pattern(frozenset(self.latin_canonical))

    def _add_groups(self, groups: Sequence[Sequence[str]]) -> None:
        """Read each (normalised) group's words as its first word; a word already read keeps
        its group."""
        canonical = self.canonical
        for words in groups:
            checkpoint()
            for word in words:
                canonical.setdefault(word, words[0])

    def _rewrite_latin(self, text: str) -> str:
        """Rewrite Latin-script synonyms to their group's first word, as whole words."""
        if self.latin_pattern is None or not _HAS_LATIN.search(text):
            return text
        return self.latin_pattern.sub(lambda m: f" {self.latin_canonical[m.group()]} ", text)

    def _repair_run(self, run: str) -> str:
        """Replace windows that are no word but sound like a knowledge-base term with the term."""
        if not self.terms_by_sound:
            return run
        sounds = [_SOUNDS[c] for c in run]
        starts = self.sound_starts
        # Where a term's sound can begin: its first two syllables are those of some term.
        can_begin = [pair in starts for pair in pairwise(sounds)]
        if not any(can_begin):
            # No window sounds like a term: whatever the words, the run comes back as it is.
            return run
        # Past the last such place nothing is replaced: the rest of the run comes back as it is.
        last = len(can_begin) - 1 - can_begin[::-1].index(True)
        out: list[str] = []
        i = 0
        n = len(run)
        general = self.general
        kb_words = self.kb_words
        while i < n:
            if i > last:
                out.append(run[i:])
                break
            for length in self.sound_lengths:
                if i + length > n:
                    continue
                window = run[i : i + length]
                if window in general or window in kb_words:
                    # A real word is kept: 事业 is not a typo of 失业.
                    out.append(window)
                    i += length
                    break
                if not can_begin[i]:
                    continue
                terms = self.terms_by_sound.get(tuple(sounds[i : i + length]))
                if not terms:
                    continue
                term = terms[0]
                shared = sum(1 for a, b in zip(window, term, strict=True) if a == b)
                if (
                    shared >= (1 if length <= 3 else 2)
                    and not self._splits_a_word(run, i, length)
                    and not likelier_apart(window, term)
                ):
                    out.append(term)
                    i += length
                    break
            else:
                out.append(run[i])
                i += 1
        return "".join(out)

    def repaired(self, normalized: str, runs: dict[str, str] | None = None) -> str:
        """Normalised text with its homophone typos repaired (社宝卡 → 社保卡), its words
        otherwise as written: no synonym is rewritten.

        `runs` keeps the runs repaired for one question (run → repaired run), so that its
        embedding and its word analysis, which read the same runs, repair each once."""
        if not self.terms_by_sound:
            return normalized
        return _CJK_RUN.sub(lambda m: self._repair_once(m.group(), runs), normalized)

    def _repair_once(self, run: str, runs: dict[str, str] | None) -> str:
        if runs is None:
            return self._repair_run(run)
        repaired = runs.get(run)
        if repaired is None:
            repaired = runs[run] = self._repair_run(run)
        return repaired

    def _splits_a_word(self, run: str, start: int, length: int) -> bool:
        """Whether a real word begins inside the window and runs past its end: 开电 sounds like
        开店, but its 电 begins 电子 (开电子发票), so the window is no typo."""
        end = start + length
        general = self.general
        kb_words = self.kb_words
        for j in range(start + 1, end):
            for size in self.lengths_by_first.get(run[j], ()):
                if end < j + size <= len(run):
                    piece = run[j : j + size]
                    if piece in general or piece in kb_words:
                        return True
        return False

    def segment(self, run: str) -> list[str]:
        """Split a run of Chinese characters into words by maximum matching in both directions.

        Forward matching alone reads 要交房产税 as 要/交房/产/税; read from the end it is
        要/交/房产税. Where the forward reading leaves a single character, the backward one is
        taken when it has fewer words, or as many and fewer single characters (the usual rule
        of bidirectional maximum matching); on a tie, when it is at least as likely by the
        general vocabulary's counts (和服务 is 和/服务, not 和服/务; 提取来 is 提取/来, not
        提/取来). A forward reading of whole words stands."""
        words = self._forward(run)
        if len(words) > 1 and any(len(word) == 1 for word in words):
            backward = self._backward(run)
            if backward != words and _better_segmentation(backward, words):
                return backward
        return words

    def _forward(self, run: str) -> list[str]:
        words: list[str] = []
        i = 0
        n = len(run)
        general = self.general
        kb_words = self.kb_words
        lengths_by_first = self.lengths_by_first
        while i < n:
            for length in lengths_by_first.get(run[i], ()):
                piece = run[i : i + length]
                if i + length <= n and (piece in general or piece in kb_words):
                    words.append(piece)
                    i += length
                    break
            else:
                words.append(run[i])
                i += 1
        return words

    def _backward(self, run: str) -> list[str]:
        words: list[str] = []
        end = len(run)
        general = self.general
        kb_words = self.kb_words
        lengths_by_last = self.lengths_by_last
        while end > 0:
            for length in lengths_by_last.get(run[end - 1], ()):
                if length <= end:
                    piece = run[end - length : end]
                    if piece in general or piece in kb_words:
                        words.append(piece)
                        end -= length
                        break
            else:
                words.append(run[end - 1])
                end -= 1
        words.reverse()
        return words

    def analyze(
        self, normalized: str, *, repair: bool = True, runs: dict[str, str] | None = None
    ) -> _Tokens:
        """Return the canonical text of normalised text and its string tokens.

        Canonical text has synonyms unified and, when `repair` is set, homophone typos
        repaired. Repair is for what residents type; the knowledge base's own text is taken as
        written, which also keeps indexing fast. `runs`: as for `repaired`.
        """
        normalized = self._rewrite_latin(normalized)
        if not _CJK_RUN.search(normalized):
            canonical = " ".join(normalized.split())
            return _Tokens(canonical, english=english_tokens(canonical))
        pieces: list[str] = []
        words: list[str] = []
        last = 0
        canonical_of = self.canonical
        for match in _CJK_RUN.finditer(normalized):
            pieces.append(normalized[last : match.start()])
            run = self._repair_once(match.group(), runs) if repair else match.group()
            run_words = [canonical_of.get(w, w) for w in self.segment(run)]
            words.extend(run_words)
            pieces.append("".join(run_words))
            last = match.end()
        pieces.append(normalized[last:])
        canonical = " ".join("".join(pieces).split())
        result = _Tokens(canonical)
        for word in words:
            if word not in _CHINESE_FILLERS:
                result.words.append(("w" if len(word) >= 2 else "c") + word)
        if _HAS_LATIN.search(canonical):
            result.english = english_tokens(canonical)
        return result

    def index_many(self, texts: Sequence[str], vocabulary: dict[str, int]) -> _IndexedTexts:
        """Analyse many normalised texts for the index, as `analyze(text, repair=False)` does.

        Tokens get their ids in `vocabulary` (new ones are added). Each distinct piece of text
        is looked up once, and the segmentation of `segment` is written out here: at 100,000
        phrasings the per-word work is most of an index build.
        """
        if not texts:
            empty = np.zeros(0, dtype=np.int64)
            return _IndexedTexts(canonicals=[], token_ids=empty, owner=empty, word_ids=set())
        joined = self._rewrite_latin("\n".join(texts))
        # Piece of text -> its token id + 1 (0 for a filler), plus _REWRITTEN when a synonym
        # rewrites it (to `rewritten[piece]`).
        memo: dict[str, int] = {}
        rewritten: dict[str, str] = {}
        word_ids: set[int] = set()
        flat: list[int] = []
        run_owner: list[int] = []
        run_count: list[int] = []
        pieces: list[str] = []
        changes: list[tuple[int, int, str]] = []
        text_index = 0
        last = 0
        for match in _CJK_RUN.finditer(joined):
            checkpoint()
            start, last_end = match.span()
            pieces.append(joined[last:start])
            text_index += joined.count("\n", last, start)
            run = match.group()
            before = len(flat)
            i = 0
            for piece in self.segment(run):
                i += len(piece)
                value = memo.get(piece)
                if value is None:
                    value = memo[piece] = self._index_word(piece, vocabulary, rewritten, word_ids)
                if value >= _REWRITTEN:
                    changes.append((i - len(piece), i, piece))
                flat.append(value)
            run_owner.append(text_index)
            run_count.append(len(flat) - before)
            if changes:
                out: list[str] = []
                at = 0
                for begin, stop, piece in changes:
                    out.append(run[at:begin])
                    out.append(rewritten[piece])
                    at = stop
                out.append(run[at:])
                pieces.append("".join(out))
                changes.clear()
            else:
                pieces.append(run)
            last = last_end
        pieces.append(joined[last:])
        canonicals = [" ".join(part.split()) for part in "".join(pieces).split("\n")]
        values = np.asarray(flat, dtype=np.int64) % _REWRITTEN - 1
        owner = np.repeat(np.asarray(run_owner, dtype=np.int64), run_count)
        kept = values >= 0
        english_ids, english_owner = english_token_ids(canonicals, vocabulary)
        return _IndexedTexts(
            canonicals=canonicals,
            token_ids=np.concatenate((values[kept], english_ids)),
            owner=np.concatenate((owner[kept], english_owner)),
            word_ids=word_ids,
        )

    def _index_word(
        self, piece: str, vocabulary: dict[str, int], rewritten: dict[str, str], word_ids: set[int]
    ) -> int:
        """Return the memo value of a segmented piece for `index_many` (see there)."""
        word = self.canonical.get(piece, piece)
        value = 0
        if word not in _CHINESE_FILLERS:
            token_id = vocabulary.setdefault(
                ("w" if len(word) >= 2 else "c") + word, len(vocabulary)
            )
            if len(word) >= 2:
                word_ids.add(token_id)
            value = token_id + 1
        if word != piece:
            rewritten[piece] = word
            value += _REWRITTEN
        return value


def _english_token(word: str) -> str | None:
    """Return the token of one English word, or None for a stop word or a single letter."""
    if word in _ENGLISH_STOPWORDS or len(word) <= 1:
        return None
    return "e" + stem_english(word)


def english_tokens(normalized: str) -> list[str]:
    """Return the stemmed English words of normalised text, stop words left out."""
    return [token for word in latin_words(normalized) if (token := _english_token(word))]


def english_token_ids(
    texts: Sequence[str], vocabulary: dict[str, int]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Return the ids in `vocabulary` of the English tokens of many normalised texts (new ones
    are added), and each token's text: `english_tokens` of each, for the index."""
    memo: dict[str, int] = {}
    ids: list[int] = []
    owner: list[int] = []
    for index, text in enumerate(texts):
        if not _HAS_LATIN.search(text):
            continue
        checkpoint()
        for word in latin_words(text):
            token_id = memo.get(word)
            if token_id is None:
                token = _english_token(word)
                token_id = -1 if token is None else vocabulary.setdefault(token, len(vocabulary))
                memo[word] = token_id
            if token_id >= 0:
                ids.append(token_id)
                owner.append(index)
    return np.asarray(ids, dtype=np.int64), np.asarray(owner, dtype=np.int64)


def _trie_pattern(words: Iterable[str]) -> str:
    """Return a regular expression matching any of words, as a prefix tree.

    An alternation of hundreds of words makes `re` try each one at every position; nested by
    common prefixes, a position that starts no word fails at its first character.
    """
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}
    return "(?:" + _render_trie(trie) + ")"


@lru_cache(maxsize=4)
def _latin_pattern(words: frozenset[str]) -> re.Pattern[str]:
    """The whole-word pattern of Latin-script synonyms: the same for every index of a process
    but for the knowledge base's own synonyms, and long to build (the lexicon's thousands)."""
    return re.compile(r"(?<![0-9a-z])" + _trie_pattern(words) + r"(?![0-9a-z])")


@lru_cache(maxsize=4)
def _english_gloss(
    groups: tuple[tuple[str, ...], ...],
) -> tuple[re.Pattern[str], dict[str, str]] | None:
    """Each English word or phrase of the synonym groups and the Chinese word it stands for
    (the group's first Chinese word), with their whole-word pattern; None when there are none."""
    chinese: dict[str, str] = {}
    for words in _normalized_groups(groups):
        official = next((w for w in words if has_cjk(w)), None)
        if official is None:
            continue
        for word in words:
            if not has_cjk(word):
                chinese.setdefault(word, official)
    if not chinese:
        return None
    return _latin_pattern(frozenset(chinese)), chinese


def _normalized_groups(groups: Sequence[Sequence[str]]) -> Sequence[tuple[str, ...]]:
    """Synonym groups normalised, empty words and groups of one word left out (once per
    process for the general lexicon, a tuple of tuples)."""
    if isinstance(groups, tuple) and all(isinstance(group, tuple) for group in groups):
        return _normalized_groups_once(groups)
    return _normalize_groups(groups)


@lru_cache(maxsize=4)
def _normalized_groups_once(groups: tuple[tuple[str, ...], ...]) -> tuple[tuple[str, ...], ...]:
    return tuple(_normalize_groups(groups))


def _normalize_groups(groups: Sequence[Sequence[str]]) -> list[tuple[str, ...]]:
    normalized = []
    for group in groups:
        checkpoint()
        words = tuple(w for w in normalize_many(group) if w)
        if len(words) >= 2:
            normalized.append(words)
    return normalized


def _render_trie(node: dict[str, Any]) -> str:
    # A module function, not a closure calling itself: that closure is a reference cycle,
    # garbage only the cyclic collector frees, and a reload's build must leave none
    # (KnowledgeStore.reload moves what a build made out of the collector's reach).
    ends = "" in node
    branches = [
        re.escape(char) + _render_trie(child) for char, child in sorted(node.items()) if char
    ]
    if not branches:
        return ""
    # Longest first: a branch is tried before the word may end here.
    body = branches[0] if len(branches) == 1 and not ends else "(?:" + "|".join(branches) + ")"
    return body + "?" if ends else body


@lru_cache(maxsize=2)
def _general_lengths_by(end: int) -> dict[str, tuple[int, ...]]:
    """Return, per first (`end` 0) or last (-1) character, the lengths of the general
    vocabulary's words (once)."""
    lengths: dict[str, set[int]] = {}
    for word in general_vocabulary():
        lengths.setdefault(word[end], set()).add(len(word))
    return {c: tuple(sorted(v, reverse=True)) for c, v in lengths.items()}


def _lengths_with(
    general: Mapping[str, Sequence[int]], terms: Iterable[str], end: int
) -> dict[str, Sequence[int]]:
    """The general table of `_general_lengths_by(end)` with `terms`' lengths added."""
    extra: dict[str, set[int]] = {}
    for term in _stepped(terms):
        extra.setdefault(term[end], set()).add(len(term))
    table: dict[str, Sequence[int]] = dict(general)
    for char, more in extra.items():
        table[char] = sorted(more.union(table.get(char, ())), reverse=True)
    return table


def _better_segmentation(one: Sequence[str], other: Sequence[str]) -> bool:
    """Whether segmentation `one` (read from the end) is to be taken over `other` (read from
    the start): fewer words, or as many and fewer single characters, or as many of each and
    at least as likely by the general vocabulary's counts."""
    if len(one) != len(other):
        return len(one) < len(other)
    singles = sum(len(w) == 1 for w in one) - sum(len(w) == 1 for w in other)
    if singles:
        return singles < 0
    return reading_log_likelihood(one) >= reading_log_likelihood(other)


def prepare_process() -> None:
    """Read the tables every index of this process shares, so that no load pays for them.

    They depend on no knowledge base: the general vocabulary, its words' lengths by first and
    by last character, the folded pinyin of every Chinese character of the Basic Multilingual
    Plane, and the table of traditional characters. Each is read once per process; without this call the
    first index build reads them.
    """
    general_vocabulary()
    _general_lengths_by(0)
    _general_lengths_by(-1)
    _fill_sound_table()
    normalize_many(["繁體"])


@lru_cache(maxsize=1)
def _fill_sound_table() -> None:
    """Give every Chinese character of the Basic Multilingual Plane its syllable id, in code
    point order and all at once: the ids are then the same in every process, whatever it met
    first, and an index kept on disk (bot/answering/index_snapshot.py) holds them."""
    codes = np.flatnonzero(_CJK_TABLE).tolist()
    for code in codes:
        syllable = char_sound(chr(code))
        if syllable == chr(code):
            _sound_table[code] = _NO_SOUND
        else:
            _sound_table[code] = _syllable_ids.setdefault(syllable, len(_syllable_ids))


@contextmanager
def collection_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: an index build makes millions of objects that live
    on, and each collection on the way would walk them all again."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _SoundCache(dict[str, str]):
    """Folded pinyin of each character seen so far (a dict lookup on the hot path)."""

    def __missing__(self, char: str) -> str:
        sound = char_sound(char)
        self[char] = sound
        return sound


_SOUNDS = _SoundCache()
_HAS_LATIN = re.compile(r"[0-9a-z]")
_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_ANSWER_CHARS = 100
_SUGGESTION_SHARE = 0.2
# A name written in pinyin with a capital (Songshan, Da'an), and what is not a letter in it.
_CAPITALISED = re.compile(r"\b[A-Z][a-z]+(?:['’-][a-z]+)*\b")
_NOT_LETTER = re.compile(r"[^a-z]")
# A choice whose first item is at least this sure, and the second at most this share of it, says
# so (the answer threshold of 2026-12-05 and below; the share as the margin's).
_LIKELY_FIRST = 0.8
_LIKELY_SECOND_SHARE = 0.75
# Only short questions repeat word for word; long ones are not kept.
_RECENT_LENGTH = 120
_FUZZY_QUERY_CHARS = 80


_T = TypeVar("_T")


def _stepped(values: Iterable[_T]) -> Iterator[_T]:
    """`values`, with a `checkpoint()` every few hundred: for the build's long loops."""
    for count, value in enumerate(values):
        if not count & 255:
            checkpoint()
        yield value


# Texts normalised in one call while an index is built: a few milliseconds' worth at most.
_NORMALIZE_STEP = 2048


# Items whose text vectors are summed in one call while an index is built.
_SEMANTIC_SUM_STEP = 256


def _normalize_in_steps(texts: Sequence[str]) -> list[str]:
    """`normalize_many(texts)`, a step at a time, with a `checkpoint()` between steps."""
    normalized: list[str] = []
    for start in range(0, len(texts), _NORMALIZE_STEP):
        checkpoint()
        normalized.extend(normalize_many(texts[start : start + _NORMALIZE_STEP]))
    return normalized


def _item_terms(kb: KnowledgeBase) -> list[str]:
    terms: list[str] = []
    for item in kb.items.values():
        terms.extend(item.keywords)
    for department in kb.departments.values():
        terms.append(department.name)
    return terms


@dataclass(frozen=True, slots=True)
class _Postings:
    """One field's BM25 postings by token: token t's entries are indptr[t]:indptr[t + 1]."""

    keys: npt.NDArray[np.int64]
    token: npt.NDArray[np.int64]
    doc: npt.NDArray[np.int64]
    weight: npt.NDArray[np.float32]
    indptr: npt.NDArray[np.int64]


# A number, in digits or in Chinese numerals (两, and 几 of 十几, as residents write them), with
# at most one measure word after it: 七十三, 八十岁, 两千块, 2000.
_NUMBER = re.compile(
    r"[0-9.零〇一二三四五六七八九十百千万亿两几]+[岁块元年月日天号个次周斤套间辆张份倍层]?"
)


def _is_number(token: str) -> bool:
    """Whether a word token (`w七十三`, `w八十岁`, `e2000`) is a number and nothing else."""
    return token[0] in "we" and _NUMBER.fullmatch(token[1:]) is not None


# Between the question as read and the words it implies (`Matcher.read`): two spaces, which
# normalised text never has.
_IMPLIED_AFTER = "  "


@dataclass(frozen=True, slots=True)
class _Query:
    canonical: str
    language: str
    # Known tokens by id with their weight; words (two characters or more) among them.
    lexical: dict[int, float]
    words: frozenset[int]
    # Weight of the tokens no item has, whether a whole word is among them, and the words among
    # them that name a service (`Matcher._names_a_service`).
    unknown_weight: float
    unknown_word: bool
    unknown_terms: tuple[str, ...]
    sounds: dict[int, float]
    sound_unknown_weight: float
    all_ids: npt.NDArray[np.int32]


class Matcher:
    """The index over one knowledge base; answers `match(question)`."""

    def __init__(
        self,
        kb: KnowledgeBase,
        thresholds: MatchingThresholds | None = None,
        model: ScoreModel | ScoreModels = DEFAULT_MODELS,
        held_out: frozenset[tuple[str, str]] = frozenset(),
        *,
        semantic: EmbeddingCache | None = None,
        lexicon: Sequence[Sequence[str]] = (),
        english_gloss: tuple[tuple[str, ...], ...] = (),
        snapshot: Path | None = None,
    ) -> None:
        """Index `kb`. `semantic` adds the embedding signal; `lexicon` adds synonym groups
        after the knowledge base's own (a word in both keeps the knowledge base's group).
        `english_gloss` (synonym groups with English words) lets an English question meet a
        base written only in Chinese in Chinese words (`_glossed`).
        With `snapshot` (a folder), an index built before from the very same inputs is read
        back from it instead of being built, and a built one is kept there
        (bot/answering/index_snapshot.py)."""
        self.kb = kb
        self.thresholds = thresholds or MatchingThresholds()
        self.semantic = semantic
        self._off_topic_vectors: npt.NDArray[np.float32] | None = None
        if isinstance(model, ScoreModels):
            model = model.for_signal(semantic is not None)
        self.model = model
        self._metric, self._metric_down, self._metric_up = _metric_arrays(model.metric)
        self._recent: OrderedDict[str, MatchResult] = OrderedDict()
        # Whether the index was read back from a snapshot rather than built.
        self.from_snapshot = False
        self.items: list[Item] = list(kb.items.values())
        self.places = PlaceDetector(self.thresholds.home_names)
        self.implied = ImpliedWords(self.thresholds.home_names)
        # The regions each item's title ties it to, read when the item is first a candidate
        # for a question that names a region (`_in_region`).
        self._item_regions: dict[int, frozenset[str]] = {}
        # The base's own offices, which a question may name without naming a service.
        self._department_names = tuple(
            normalize(d.name) for d in kb.departments.values() if d.name
        )
        self._department_words: frozenset[str] | None = None
        english_items = sum(1 for item in self.items if item.title_en or item.questions_en)
        self._gloss = (
            _english_gloss(english_gloss)
            if semantic is not None
            and english_gloss
            and english_items < _GLOSS_ENGLISH_SHARE * len(self.items)
            else None
        )
        home = [normalize(name) for name in self.thresholds.home_names if name]
        # The name with 市 after it (示例市), not the 市 of 市场 (示例市场监管 keeps 市场, 自我市场
        # keeps all), and an English one as a word, with "'s" and "city".
        cjk = sorted({re.escape(n) for n in home if has_cjk(n)}, key=len, reverse=True)
        latin = sorted({re.escape(n) for n in home if not has_cjk(n)}, key=len, reverse=True)
        names = [f"(?:{'|'.join(cjk)})市?(?!场)"] if cjk else []
        if latin:
            names.append(rf"\b(?:{'|'.join(latin)})(?:'s)?(?: city)?\b")
        self._home_pattern = re.compile("|".join(names)) if names else None
        self._home_tokens = frozenset(
            [f"w{name}" for name in home if has_cjk(name)]
            + [t for name in home if not has_cjk(name) for t in english_tokens(name)]
        )
        with collection_paused():
            # Syllable ids in one order in every process: a kept index holds them.
            _fill_sound_table()
            path = key = None
            if snapshot is not None:
                embedder = semantic.embedder if semantic is not None else None
                signal = f"{embedder.name}-{embedder.version}" if embedder else "words"
                path = snapshot_path(snapshot, signal)
                key = self._snapshot_key(held_out, lexicon)
                kept = read_snapshot(path, key)
                if kept is not None:
                    self.__dict__.update(kept)
                    self.from_snapshot = True
                    return
            before = set(self.__dict__)
            self._vocabulary: dict[str, int] = {}
            # The city's names are words of its own: homophone repair must not split 示例市
            # and read its 市能 as 失能 ("外地户口在示例市能办生育登记吗").
            home_words = [
                f"{name}{suffix}"
                for name in home
                if has_cjk(name)
                for suffix in ("", "市")
                if not (suffix and name.endswith(("市", "县", "区", "省")))
            ]
            self.analyzer = _TextAnalyzer(kb.synonyms, [*_item_terms(kb), *home_words], lexicon)
            self._build(held_out)
            self._build_semantic(held_out)
            self._pinyin_names = self._names_by_pinyin() if self._gloss is not None else {}
            if path is not None and key is not None:
                built = {k: v for k, v in self.__dict__.items() if k not in before}
                write_snapshot(path, key, built)

    def _snapshot_key(
        self, held_out: frozenset[tuple[str, str]], lexicon: Sequence[Sequence[str]]
    ) -> str:
        """The key of everything this index is built from (bot/answering/index_snapshot.py)."""
        embedder = self.semantic.embedder if self.semantic is not None else None
        kb = self.kb
        item_fields = [f.name for f in fields(Item)]

        def plain(value: Any) -> Any:
            return dict(value) if isinstance(value, Mapping) else value

        # Items a hundred at a time, each its part of the key (a checkpoint between parts).
        items = (
            [
                [plain(getattr(item, name)) for name in item_fields]
                for item in self.items[at : at + 100]
            ]
            for at in range(0, len(self.items), 100)
        )
        settings: list[Any] = [
            [embedder.name, embedder.version, embedder.dim] if embedder else None,
            repr(self.thresholds),
            repr(self.model),
            sorted(held_out),
            kb.synonyms,
            [[plain(getattr(d, f.name)) for f in fields(d)] for d in kb.departments.values()],
            lexicon,
        ]
        return snapshot_key(chain(settings, items))

    # -- index ----------------------------------------------------------------------------------

    def _build_semantic(self, held_out: frozenset[tuple[str, str]]) -> None:
        """Embed every item's phrasings and keywords (from the disk cache where it has them).

        Each item keeps its texts' vectors (float16, for the exact similarity of candidates)
        and their normalised mean, which picks candidates with one product per item.
        """
        self._sem_vectors = np.zeros((0, 0), dtype=np.float16)
        self._sem_first = np.zeros(len(self.items) + 1, dtype=np.int64)
        self._sem_centroids = np.zeros((0, 0), dtype=np.float32)
        self._sem_reduced: tuple[npt.NDArray[np.float32], ...] | None = None
        if self.semantic is None or not self.items:
            return
        # Every item's texts, normalised in one batch: its phrasings, then its keywords joined
        # and the beginning of its answer.
        raw: list[str] = []
        bounds: list[tuple[int, int, int]] = []
        for item in self.items:
            start = len(raw)
            phrasings = (item.title, *item.questions, item.title_en, *item.questions_en)
            raw.extend(p for p in phrasings if p and (item.id, p) not in held_out)
            middle = len(raw)
            if item.keywords:
                raw.append(" ".join(item.keywords))
            if _SEMANTIC_ANSWER_CHARS and item.answer:
                raw.append(item.answer[:_SEMANTIC_ANSWER_CHARS])
            bounds.append((start, middle, len(raw)))
        normalized = _normalize_in_steps(raw)
        texts: list[str] = []
        counts: list[int] = []
        for item, (start, middle, end) in zip(self.items, bounds, strict=True):
            kept = unique(normalized[start:middle]) + normalized[middle:end]
            kept = [self._without_home(k) or k for k in kept]
            kept = [k for k in kept if k] or [item.id.replace("-", " ")]
            texts.extend(kept)
            counts.append(len(kept))
        vectors = self.semantic.embed(texts)
        checkpoint()
        self._sem_first = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
        self._sem_vectors = vectors.astype(np.float16)
        # Each item's sum, a step of items at a time (one call over every text holds the
        # interpreter lock for many milliseconds).
        first = self._sem_first
        sums = np.empty((len(self.items), vectors.shape[1]), dtype=vectors.dtype)
        for start in range(0, len(self.items), _SEMANTIC_SUM_STEP):
            checkpoint()
            stop = min(start + _SEMANTIC_SUM_STEP, len(self.items))
            sums[start:stop] = np.add.reduceat(
                vectors[first[start] : first[stop]], first[start:stop] - first[start], axis=0
            )
        checkpoint()
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        self._sem_centroids = np.divide(
            sums, norms, out=np.zeros_like(sums), where=norms > 0
        ).astype(np.float32)
        if len(self.items) > _SEMANTIC_SCAN_ITEMS:
            # A large base is first scanned in fewer dimensions (the centroids' principal
            # components, from a sample), then the best few are compared in full.
            sample = self._sem_centroids[:: max(1, len(self.items) // _SEMANTIC_PCA_SAMPLE)]
            mean = sample.mean(axis=0)
            _, _, components = np.linalg.svd(sample - mean, full_matrices=False)
            basis = np.ascontiguousarray(components[:_SEMANTIC_PCA_DIMENSIONS].T)
            reduced = np.ascontiguousarray((self._sem_centroids - mean) @ basis)
            self._sem_reduced = (mean.astype(np.float32), basis, reduced.astype(np.float32))

    def question_vector(
        self, text: str, runs: dict[str, str] | None = None
    ) -> npt.NDArray[np.float32] | None:
        """The embedding of a question as read (`Matcher.read`: normalised, names written in
        pinyin in Chinese), or None without the semantic signal. `runs`: the question's runs
        repaired so far (`_TextAnalyzer.repaired`)."""
        if self.semantic is None or not text or self._sem_centroids.size == 0:
            return None
        # The city's own name says nothing about which of its services is meant, in meaning as
        # in words: "in Taipei" would draw the question to the items that have the name in
        # their titles ("HELLO TAIPEI"); "示例市" to the ones that say 示例市.
        text = self._without_home(text) or text
        text = _OPENERS.sub("", text) or text
        # Embedded as repaired: the model reads 社宝卡 as something else than 社保卡.
        text = self.analyzer.repaired(text, runs)
        glossed = self._glossed(text)
        vector: npt.NDArray[np.float32] = self.semantic.embedder.encode([glossed or text])[0]
        if glossed:
            # Both readings, glossed and as written: the gloss brings the base's own words,
            # the English what the gloss left untranslated or translated too narrowly.
            both = vector + self.semantic.embedder.encode([text])[0]
            vector = (both / np.linalg.norm(both)).astype(np.float32)
        return vector

    def centroids(self, positions: Sequence[int]) -> npt.NDArray[np.float32]:
        """The mean vectors of the items at `positions` (empty without the semantic signal)."""
        if self._sem_centroids.size == 0:
            return np.zeros((0, 0), dtype=np.float32)
        return self._sem_centroids[np.asarray(positions, dtype=np.intp)]

    def _names_by_pinyin(self) -> dict[str, str]:
        """The knowledge base's words of two to four Chinese characters by their pinyin without
        tones (songshan → 松山); of two that sound alike, the one more items have. Other cities'
        names (Shanghai, not 伤害) are left out: the question is about that city; and so is this
        city's own (Shili, not 市里): it says nothing about which service is meant."""
        own = {
            _NOT_LETTER.sub("", normalize(name))
            for name in self.thresholds.home_names
            if name and not has_cjk(name)
        }
        best: dict[str, tuple[float, str]] = {}
        for token, index in self._vocabulary.items():
            word = token[1:]
            if token[0] != "w" or not 2 <= len(word) <= 4 or not _CJK_RUN.fullmatch(word):
                continue
            syllables = [char_pinyin(c) for c in word]
            key = "".join(syllables)
            if not all(syllables) or key in ENGLISH_PLACE_NAMES or key in own:
                continue
            idf = float(self._idf[index])
            if key not in best or idf < best[key][0]:
                best[key] = (idf, word)
        return {key: word for key, (_, word) in best.items()}

    def _with_names_in_chinese(self, text: str, typed: str) -> str:
        """The (normalised) question with the names written in pinyin as the knowledge base
        writes them: "the Da'an parent-child center" → "the 大安 parent child center". Only a
        capitalised word that does not begin a sentence is taken for a name ("Name change" is
        not 那么 change)."""
        if not self._pinyin_names or not _HAS_LATIN.search(text):
            return text
        for match in _CAPITALISED.finditer(typed):
            before = typed[: match.start()].rstrip()
            if not before or before[-1] in ".?!。？！":
                continue
            word = self._pinyin_names.get(_NOT_LETTER.sub("", match.group().lower()))
            if word is not None:
                written = re.escape(normalize(match.group()))
                text = re.sub(rf"\b{written}\b", f" {word} ", text)
        return " ".join(text.split())

    def _without_home(self, text: str) -> str:
        """The (normalised) question without this city's names."""
        if self._home_pattern is None:
            return text
        dropped = self._home_pattern.sub(lambda m: "" if has_cjk(m.group()) else " ", text)
        return " ".join(dropped.split())

    def _glossed(self, text: str) -> str | None:
        """An English question with the lexicon's English terms replaced by their Chinese words,
        when the base has (almost) no English phrasings; None when that changes nothing.

        The multilingual model places "police criminal record certificate" less near
        无犯罪记录证明 than the Chinese word itself: across languages its neighbours are looser
        than within one. The question is embedded both as glossed (its untranslated words stay,
        in English) and as written, and the two vectors are averaged (docs/matching.md).
        The lexicon's English words stay out of the word features (`general_lexicon`):
        rewritten into the question's words they misled them.
        """
        if self._gloss is None or detect_language(text) != "en":
            return None
        pattern, chinese = self._gloss
        glossed = pattern.sub(lambda m: f" {chinese[m.group()]} ", text)
        if glossed == text:
            return None
        return " ".join(glossed.split())

    def _nearest_items(self, vector: npt.NDArray[np.float32], count: int) -> npt.NDArray[np.intp]:
        """The `count` items whose centroids are nearest to the question, nearest first."""
        count = min(count, len(self.items))
        if self._sem_reduced is None:
            near = self._sem_centroids @ vector
        else:
            mean, basis, reduced = self._sem_reduced
            rough = reduced @ ((vector - mean) @ basis)
            wide = min(count * _SEMANTIC_PCA_WIDEN, len(self.items))
            nearest = self._nearest_of_few(vector, rough, wide, count)
            if nearest is not None:
                return nearest
            shortlist = np.argpartition(-rough, wide - 1)[:wide]
            exact = self._sem_centroids[shortlist] @ vector
            best = np.argsort(-exact, kind="stable")[:count]
            return shortlist[best]
        picked = np.argpartition(-near, count - 1)[:count]
        return picked[np.argsort(-near[picked], kind="stable")]

    def _nearest_of_few(
        self,
        vector: npt.NDArray[np.float32],
        rough: npt.NDArray[np.floating[Any]],
        wide: int,
        count: int,
    ) -> npt.NDArray[np.intp] | None:
        """`_nearest_items` over the few items whose rough scores reach a threshold taken from
        a sample, or None when that could differ from the scan of every item.

        Selecting the `wide` best of 10,000 rough scores took 85 µs; of the hundred-odd at or
        above the sample's threshold, a few. Every item at or above the threshold is kept, so
        when at least `wide` are, the `wide` best are among them. The result is the full scan's
        unless two rough scores tie at the edge of the shortlist (which of them it keeps) or two
        exact cosines tie (their order follows the shortlist's): then None, and the full scan
        decides, as it always did.
        """
        sample = rough[::_SEMANTIC_SAMPLE_STEP]
        rank = min(sample.size, 2 * wide // _SEMANTIC_SAMPLE_STEP + 2)
        threshold = np.partition(sample, sample.size - rank)[sample.size - rank]
        kept = np.flatnonzero(rough >= threshold)
        if kept.size < wide:
            return None
        scores = rough[kept]
        inner = np.argpartition(-scores, wide - 1)[:wide]
        if np.count_nonzero(scores == scores[inner].min()) > 1:
            return None
        shortlist = kept[inner]
        exact = self._sem_centroids[shortlist] @ vector
        ordered = np.sort(exact)
        if (ordered[1:] == ordered[:-1]).any():
            return None
        best = np.argsort(-exact, kind="stable")[:count]
        result: npt.NDArray[np.intp] = shortlist[best]
        return result

    def _semantic_scores(
        self, vector: npt.NDArray[np.float32], positions: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.float64]:
        """The best likeness between `vector` and each candidate's texts: the question's
        vector under the metric (`_weighted`) reads each dimension as residents' questions
        taught; without a metric it is the cosine."""
        first = self._sem_first[positions]
        counts = self._sem_first[positions + 1] - first
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        rows = np.repeat(first - starts, counts) + np.arange(int(counts.sum()))
        # (the texts' float16 vectors widened, times 2**-112, against the question's times
        # 2**112: the cosines of `_half_to_single(...) @ vector`, bit for bit, one pass less)
        cosines = _half_scaled_down(self._sem_vectors[rows]) @ (vector * _HALF_SCALE)
        return np.maximum.reduceat(cosines, starts).astype(np.float64)

    def _weighted(self, vector: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """The question's vector with the metric's weights, for likenesses read under it."""
        metric = self._metric
        if metric is None or metric.size != vector.size:
            return vector
        weighted = vector * metric
        if self._metric_down is not None and self._metric_up is not None:
            weighted += (self._metric_down @ vector) @ self._metric_up
        return weighted

    def _build(self, held_out: frozenset[tuple[str, str]]) -> None:
        """Index every item; `held_out` (item id, phrasing) pairs are left out, for calibration."""
        analyzer = self.analyzer
        vocabulary = self._vocabulary
        # Phrasings (title, questions, English ones) become "questions" of the index: each has
        # canonical text for fuzzy scores and tokens for coverage. Keywords and answers only
        # feed their item's fields.
        phrasing_texts: list[str] = []
        phrasing_item: list[int] = []
        phrasing_is_title: list[bool] = []
        keyword_texts: list[str] = []
        keyword_item: list[int] = []
        answer_texts: list[str] = []
        for position, item in enumerate(self.items):
            checkpoint()
            phrasings = [item.title, *item.questions, item.title_en, *item.questions_en]
            kept = unique(p for p in phrasings if p and (item.id, p) not in held_out)
            # Every item needs one phrasing; its id serves when none is left.
            for phrasing in kept or [item.id.replace("-", " ")]:
                phrasing_texts.append(phrasing)
                phrasing_item.append(position)
                phrasing_is_title.append(phrasing == item.title)
            keyword_texts.extend(item.keywords)
            keyword_item.extend([position] * len(item.keywords))
            answer_texts.append(item.answer[:_ANSWER_CHARS])
            answer_texts.append(item.text.get("answer_en", "")[:_ANSWER_CHARS])

        raw = _normalize_in_steps(phrasing_texts)
        # Homophone repair aims at the phrasings' words too (their Chinese ones: the English
        # phrasings have none), as they are written.
        analyzer.add_repair_words(raw)
        indexed = analyzer.index_many(raw, vocabulary)
        checkpoint()
        canonicals = indexed.canonicals
        phrasing_item_array = np.asarray(phrasing_item, dtype=np.int64)
        title_array = np.asarray(phrasing_is_title, dtype=bool)
        # Keywords repeat across items (身份证, 社保): each distinct one is analysed once.
        checkpoint()
        keyword_normalized = _normalize_in_steps(keyword_texts)
        distinct_keywords = sorted(set(keyword_normalized))
        keywords = analyzer.index_many(distinct_keywords, vocabulary)
        checkpoint()
        distinct_index = {text: index for index, text in enumerate(distinct_keywords)}
        keyword_distinct = np.fromiter(
            (distinct_index[t] for t in keyword_normalized),
            dtype=np.int64,
            count=len(keyword_item),
        )
        checkpoint()
        keyword_canonicals = [keywords.canonicals[i] for i in keyword_distinct.tolist()]
        keyword_item_array = np.asarray(keyword_item, dtype=np.int64)
        # Each keyword's tokens, once per item that has the keyword.
        checkpoint()
        order = np.argsort(keywords.owner, kind="stable")
        distinct_tokens = keywords.token_ids[order]
        counts = np.bincount(keywords.owner, minlength=len(distinct_keywords))
        firsts = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
        per_keyword = counts[keyword_distinct]
        keyword_token_item = np.repeat(keyword_item_array, per_keyword)
        within = np.arange(int(per_keyword.sum()), dtype=np.int64) - np.repeat(
            np.cumsum(per_keyword) - per_keyword, per_keyword
        )
        keyword_tokens = distinct_tokens[np.repeat(firsts[keyword_distinct], per_keyword) + within]
        checkpoint()
        answers = _normalize_in_steps(answer_texts)

        # String tokens (words, English) have ids now; bigram and sound keys after, above them.
        checkpoint()
        phrasing_token_item = phrasing_item_array[indexed.owner]
        phrasing_title_token = title_array[indexed.owner]
        q_string_tokens = np.concatenate(
            (indexed.token_ids, indexed.token_ids[phrasing_title_token], keyword_tokens)
        )
        q_string_items = np.concatenate(
            (phrasing_token_item, phrasing_token_item[phrasing_title_token], keyword_token_item)
        )
        # The words among each item's keywords (a question naming one is a strong signal).
        checkpoint()
        is_word = np.isin(keyword_tokens, np.fromiter(keywords.word_ids, dtype=np.int64))
        span = len(vocabulary) + 1  # above every token id so far
        word_pairs = _sorted_unique(keyword_token_item[is_word] * span + keyword_tokens[is_word])
        pair_item = word_pairs // span
        pair_token = (word_pairs % span).tolist()
        bounds = np.searchsorted(pair_item, np.arange(len(self.items) + 1)).tolist()
        checkpoint()
        keyword_ids = [
            frozenset(pair_token[bounds[p] : bounds[p + 1]]) for p in range(len(self.items))
        ]
        checkpoint()
        a_tokens, a_owner_text = english_token_ids(answers, vocabulary)
        a_items = a_owner_text // 2
        strings = len(vocabulary)

        # Bigrams and sounds over all texts at once; "\n" separates texts and breaks runs.
        checkpoint()
        p_codes, p_owner = _joined_codes(canonicals)
        p_bigrams, p_bigram_at = _bigram_keys(p_codes)
        p_bigram_phrasing = p_owner[p_bigram_at]
        checkpoint()
        raw_codes, raw_owner = _joined_codes(raw)
        sound_keys_parts = []
        sound_owner_parts = []
        for codes, owner in ((p_codes, p_owner), (raw_codes, raw_owner)):
            keys, at = _sound_keys(codes)
            sound_keys_parts.append(keys)
            sound_owner_parts.append(
                phrasing_item_array[owner[at]] if keys.size else np.zeros(0, dtype=np.int64)
            )
        # The code points of 100,000 phrasings are large: they go as soon as they are used.
        del p_codes, p_owner, raw_codes, raw_owner, codes, owner, keys, at, p_bigram_at
        checkpoint()
        k_codes, k_owner = _joined_codes(keyword_canonicals)
        k_bigrams, k_at = _bigram_keys(k_codes)
        k_sounds, k_sound_at = _sound_keys(k_codes)
        del k_codes
        checkpoint()
        a_codes, a_owner = _joined_codes(answers)
        a_bigrams, a_at = _bigram_keys(a_codes)
        del a_codes

        checkpoint()
        self._bigram_vocabulary = _sorted_unique(np.concatenate((p_bigrams, k_bigrams, a_bigrams)))
        checkpoint()
        sound_all = np.concatenate((*sound_keys_parts, k_sounds))
        self._sound_vocabulary = _sorted_unique(sound_all)
        del sound_all
        bigram_base = strings
        sound_base = strings + self._bigram_vocabulary.size
        vocabulary_size = sound_base + self._sound_vocabulary.size
        self._vocabulary_size = vocabulary_size
        self._string_count = strings

        def bigram_ids(keys: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
            return bigram_base + np.searchsorted(self._bigram_vocabulary, keys)

        def sound_ids(keys: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
            return sound_base + np.searchsorted(self._sound_vocabulary, keys)

        checkpoint()
        p_bigram_ids = bigram_ids(p_bigrams)
        p_bigram_items = (
            phrasing_item_array[p_bigram_phrasing]
            if p_bigrams.size
            else np.zeros(0, dtype=np.int64)
        )
        title_bigrams = (
            title_array[p_bigram_phrasing] if p_bigrams.size else np.zeros(0, dtype=bool)
        )
        checkpoint()
        q_token_array = np.concatenate(
            (
                q_string_tokens,
                p_bigram_ids,
                p_bigram_ids[title_bigrams],
                sound_ids(np.concatenate(sound_keys_parts)),
                bigram_ids(k_bigrams),
                sound_ids(k_sounds),
            )
        )
        checkpoint()
        q_item_array = np.concatenate(
            (
                q_string_items,
                p_bigram_items,
                p_bigram_items[title_bigrams],
                np.concatenate(sound_owner_parts),
                keyword_item_array[k_owner[k_at]] if k_bigrams.size else np.zeros(0, np.int64),
                keyword_item_array[k_owner[k_sound_at]]
                if k_sounds.size
                else np.zeros(0, np.int64),
            )
        )
        checkpoint()
        a_token_array = np.concatenate((a_tokens, bigram_ids(a_bigrams)))
        a_item_array = np.concatenate(
            (
                a_items,
                a_owner[a_at].astype(np.int64) // 2 if a_bigrams.size else np.zeros(0, np.int64),
            )
        )

        checkpoint()
        n_items = max(len(self.items), 1)
        q_field = self._field(q_token_array, q_item_array, 1.0)
        checkpoint()
        a_field = self._field(a_token_array, a_item_array, _ANSWER_FIELD_WEIGHT)
        del q_token_array, q_item_array, a_token_array, a_item_array
        # Membership of (item, token) pairs as sorted int64 keys item * V + token, one array per
        # field: a question's coverage of its candidates is then one binary search.
        checkpoint()
        self._q_keys = np.sort(q_field.doc * vocabulary_size + q_field.token)
        checkpoint()
        self._a_keys = np.sort(a_field.doc * vocabulary_size + a_field.token)
        # IDF over the item as a whole (either field), so that a word common in answers but not
        # in questions is still known to be common.
        checkpoint()
        either = _sorted_unique(np.concatenate((q_field.keys, a_field.keys))) // n_items
        either_df = np.bincount(either, minlength=vocabulary_size).astype(np.float64)
        self._idf = np.log(1.0 + (n_items - either_df + 0.5) / (either_df + 0.5))
        self._unknown_idf = float(math.log(1.0 + (n_items + 0.5) / 0.5))
        # Tokens in more than this share of items pick no candidates (they still count in the
        # features): it keeps a question's cost flat as the knowledge base grows.
        checkpoint()
        self._selective = either_df <= max(0.25 * n_items, 50)
        self._postings = (q_field, a_field)

        # The lexical tokens of every phrasing (for how much of it a question covers), flat and
        # sorted by phrasing, which is sorted by item.
        checkpoint()
        n_phrasings = len(phrasing_texts)
        string_pairs = indexed.owner * vocabulary_size + indexed.token_ids
        checkpoint()
        pairs = _sorted_unique(
            np.concatenate(
                (string_pairs, p_bigram_phrasing.astype(np.int64) * vocabulary_size + p_bigram_ids)
            )
        )
        checkpoint()
        self._flat_tokens = (pairs % vocabulary_size).astype(np.int32)
        self._flat_question = (pairs // vocabulary_size).astype(np.int32)
        self._question_texts = canonicals
        self._question_item = phrasing_item_array.astype(np.int32)
        checkpoint()
        q_starts = np.searchsorted(self._question_item, np.arange(len(self.items) + 1))
        t_starts = np.searchsorted(self._flat_question, q_starts)
        # Item p's phrasings are [first_question[p], first_question[p + 1]), its phrasings'
        # tokens [first_token[p], first_token[p + 1]) of the flat arrays.
        self._item_first_question = q_starts.astype(np.int64)
        self._item_first_token = t_starts.astype(np.int64)
        checkpoint()
        self._question_idf_total = np.bincount(
            self._flat_question, weights=self._idf[self._flat_tokens], minlength=n_phrasings
        ).astype(np.float64)
        checkpoint()
        self._question_long_enough = np.array([len(t) >= 4 for t in canonicals], dtype=bool)
        self._question_length = np.array([len(t) for t in canonicals], dtype=np.float64)
        self._keyword_ids = keyword_ids

    def _field(
        self, tokens: npt.NDArray[np.int64], items: npt.NDArray[np.int64], field_weight: float
    ) -> _Postings:
        """Return one field's BM25 postings, sorted by token (one sort, no argsort)."""
        n_items = max(len(self.items), 1)
        occurrences = tokens * n_items + items
        checkpoint()
        occurrences.sort()
        checkpoint()
        if occurrences.size == 0:
            empty = np.zeros(0, dtype=np.int64)
            return _Postings(
                keys=empty,
                token=empty,
                doc=empty,
                weight=np.zeros(0, dtype=np.float32),
                indptr=np.zeros(self._vocabulary_size + 1, dtype=np.int64),
            )
        starts = np.empty(occurrences.size, dtype=bool)
        starts[0] = True
        np.not_equal(occurrences[1:], occurrences[:-1], out=starts[1:])
        first = np.flatnonzero(starts)
        checkpoint()
        keys = occurrences[first]
        tf = np.diff(np.append(first, occurrences.size)).astype(np.float64)
        checkpoint()
        token = keys // n_items
        doc = keys % n_items
        checkpoint()
        length = np.bincount(items, minlength=n_items).astype(np.float64)
        average = float(length.mean()) if length.mean() > 0 else 1.0
        df = np.bincount(token, minlength=self._vocabulary_size).astype(np.float64)
        idf = np.log(1.0 + (n_items - df + 0.5) / (df + 0.5))
        checkpoint()
        norm = _BM25_K1 * (1 - _BM25_B + _BM25_B * length[doc] / average)
        checkpoint()
        weight = (field_weight * idf[token] * tf * (_BM25_K1 + 1) / (tf + norm)).astype(np.float32)
        checkpoint()
        indptr = np.searchsorted(token, np.arange(self._vocabulary_size + 1))
        return _Postings(keys=keys, token=token, doc=doc, weight=weight, indptr=indptr)

    @staticmethod
    def _contains(
        keys: npt.NDArray[np.int64], wanted: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.bool_]:
        if keys.size == 0:
            return np.zeros(wanted.shape, dtype=bool)
        found = np.searchsorted(keys, wanted)
        found[found >= keys.size] = keys.size - 1
        result: npt.NDArray[np.bool_] = keys[found] == wanted
        return result

    # -- questions ------------------------------------------------------------------------------

    def _names_a_service(self, token: str) -> bool:
        """Whether a token is a word that names a service or a thing residents ask about: a
        term of the knowledge base (its keywords, departments, synonyms) or of the general
        lexicon. When no item has such a word (二手车 in a base with only 二手房), no item is
        what the question means; the everyday words of a story (上个月, 鹦鹉) say less."""
        # (`kb_terms` holds them all, synonym and lexicon words and their heads included; a
        # Chinese word token is one of two characters or more, as those terms are.)
        return token[0] == "w" and token[1:] in self.analyzer.kb_terms

    def _names_a_sibling(self, terms: Sequence[str], best: Item) -> bool:
        """Whether a word of the question that no item has names a service beside the best
        card's own: it shares two characters with the card's title (二手车 beside 二手房过户,
        房产税 beside 住房契税, 个人信用报告 beside 个人权益记录) and is not one of the base's
        offices (民政局 beside 结婚登记). A word apart from the title (an office, a person, a
        detail: 哪个部门, 儿童, 办理时限) is part of the question the card answers; on the
        practice bases such words held back 251 right cards for six wrong ones
        (docs/matching.md)."""
        title = normalize(best.title)
        offices = self._offices()
        return any(
            len({c for c in term if c in title}) >= 2
            and term not in offices
            and not any(term in name for name in self._department_names)
            for term in terms
        )

    def _offices(self) -> frozenset[str]:
        """The words of the base's department names, as a question's words are read (公积金中心
        for 住房公积金管理中心), read once."""
        if self._department_words is None:
            self._department_words = frozenset(
                token[1:]
                for name in self._department_names
                for token in self.analyzer.analyze(name).strings()
                if token[0] == "w"
            )
        return self._department_words

    def _analyze(
        self, question: str, raw: str | None = None, runs: dict[str, str] | None = None
    ) -> _Query:
        raw = normalize(question) if raw is None else raw
        tokens = self.analyzer.analyze(raw, runs=runs)
        # The words the question implies (`read`) count as its words, not as what the resident
        # wrote: the text compared with the phrasings, and its length, are without them.
        _, after, implied = raw.partition(_IMPLIED_AFTER)
        canonical = (
            tokens.canonical.rsplit(" ", len(implied.split()))[0] if after else tokens.canonical
        )
        # An implied word the base does not have says nothing against any item: it is not the
        # resident's, so it is no unknown word (missing_word) and names no service it lacks.
        implied_tokens = (
            frozenset(self.analyzer.analyze(implied, repair=False).strings())
            if after
            else frozenset()
        )
        lexical: dict[int, float] = {}
        words: set[int] = set()
        unknown_weight = 0.0
        unknown_word = False
        unknown_terms: list[str] = []
        for token in dict.fromkeys(tokens.strings()):
            if token in self._home_tokens:
                # The city's own name says nothing about which of its services is meant
                # ("how do I ... in Taipei" must not pick the one item named after the city).
                continue
            index = self._vocabulary.get(token)
            if index is None and token in implied_tokens:
                continue
            if index is None:
                # Unknown to the knowledge base: a word that no item knows (养狗) weighs like the
                # rarest word; single characters weigh less.
                unknown_weight += self._unknown_idf * (0.5 if token[0] == "c" else 1.0)
                # A number no item has (an age, a year, a sum: 七十三, 八十岁, 2000) names
                # nothing the base lacks.
                if not _is_number(token):
                    unknown_word = unknown_word or token[0] in "we"
                    if self._names_a_service(token):
                        unknown_terms.append(token[1:])
            else:
                lexical[index] = float(self._idf[index]) * (0.5 if token[0] == "c" else 1.0)
                if token[0] in "we":
                    words.add(index)
        codes = _code_points(tokens.canonical)
        keys = _sorted_unique(_bigram_keys(codes)[0])
        known, ids = self._lookup(self._bigram_vocabulary, keys, self._string_count)
        for index in ids.tolist():
            lexical[index] = float(self._idf[index])
        # Bigrams that cross words are common; one no item has weighs half the rarest word.
        unknown_weight += 0.5 * self._unknown_idf * int((~known).sum())
        # The syllable pairs of the canonical text and of the text as typed, in one pass: a line
        # break between them has no sound, so no pair spans the two.
        sound_keys = _sorted_unique(_sound_keys(_code_points(f"{tokens.canonical}\n{raw}"))[0])
        sound_base = self._string_count + self._bigram_vocabulary.size
        known, ids = self._lookup(self._sound_vocabulary, sound_keys, sound_base)
        sounds = {index: float(self._idf[index]) for index in ids.tolist()}
        return _Query(
            canonical=canonical,
            language=detect_language(question),
            lexical=lexical,
            words=frozenset(words),
            unknown_weight=unknown_weight,
            unknown_word=unknown_word,
            unknown_terms=tuple(unknown_terms),
            sounds=sounds,
            sound_unknown_weight=self._unknown_idf * int((~known).sum()),
            all_ids=np.asarray([*lexical, *sounds], dtype=np.int32),
        )

    @staticmethod
    def _lookup(
        vocabulary: npt.NDArray[np.int64], keys: npt.NDArray[np.int64], base: int
    ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.int64]]:
        """Return which keys the vocabulary has, and the token ids of those it has."""
        if vocabulary.size == 0 or keys.size == 0:
            return np.zeros(keys.shape, dtype=bool), np.zeros(0, dtype=np.int64)
        found = np.searchsorted(vocabulary, keys)
        found[found >= vocabulary.size] = vocabulary.size - 1
        known: npt.NDArray[np.bool_] = vocabulary[found] == keys
        return known, base + found[known]

    def _bm25(self, query: _Query) -> npt.NDArray[np.float64]:
        ids = query.all_ids[self._selective[query.all_ids]]
        if ids.size == 0:
            return np.zeros(len(self.items), dtype=np.float64)
        # Each selective token's postings in each field, in the question's order: the bounds
        # are read in one call per field (a story has a hundred tokens, and reading them one by
        # one cost more than the slices).
        doc_slices = []
        weight_slices = []
        fields = [
            (p.doc, p.weight, p.indptr[ids].tolist(), p.indptr[ids + 1].tolist())
            for p in self._postings
        ]
        for position in range(ids.size):
            for doc, weight, starts, ends in fields:
                start, end = starts[position], ends[position]
                if end > start:
                    doc_slices.append(doc[start:end])
                    weight_slices.append(weight[start:end])
        if not doc_slices:
            return np.zeros(len(self.items), dtype=np.float64)
        # One bincount over every posting of the question beats a scatter-add per token.
        return np.bincount(
            np.concatenate(doc_slices),
            weights=np.concatenate(weight_slices),
            minlength=len(self.items),
        ).astype(np.float64, copy=False)  # (float64 already: no copy)

    def read(self, question: str, normalized: str | None = None) -> str:
        """The question as the matcher reads it: normalised, with the names written in pinyin
        as the knowledge base writes them (Songshan → 松山), and followed by the words it
        implies (泰国 → 国外, 八十一了 → 高龄老人; bot/answering/implied.py), for its words and
        its meaning."""
        text = self._with_names_in_chinese(
            normalize(question) if normalized is None else normalized, question
        )
        implied = self.implied.words(text)
        return f"{text}{_IMPLIED_AFTER}{' '.join(implied)}" if implied else text

    def features(
        self,
        question: str,
        read: str | None = None,
        vector: npt.NDArray[np.float32] | None = None,
        runs: dict[str, str] | None = None,
    ) -> tuple[_Query, list[int], npt.NDArray[np.float64]]:
        """Return the analysed question, the candidate item positions and their feature rows.

        `read` (`Matcher.read`) and `vector` (its embedding) when the caller has them already;
        `runs`, the question's runs repaired for that embedding (`_TextAnalyzer.repaired`)."""
        read = self.read(question) if read is None else read
        runs = {} if runs is None else runs
        query = self._analyze(question, read, runs)
        empty = np.zeros((0, len(FEATURE_NAMES)))
        if not query.canonical or not self.items:
            return query, [], empty
        if vector is None:
            vector = self.question_vector(read, runs)
        if query.all_ids.size == 0 and vector is None:
            return query, [], empty
        scores = self._bm25(query) if query.all_ids.size else np.zeros(len(self.items), np.float64)
        pool = min(_CANDIDATE_POOL, len(self.items))
        if pool < len(self.items):
            top = np.argpartition(-scores, pool - 1)[:pool]
        else:
            top = np.arange(len(self.items))
        top = top[np.argsort(-scores[top], kind="stable")]
        top = top[scores[top] > 0]
        # Every likeness of the embedding is read under the metric learnt from residents'
        # questions (`ScoreModel.metric`).
        weighted = None if vector is None else self._weighted(vector)
        if weighted is not None:
            # Items near in meaning join the candidates, whatever words they share.
            picked = self._nearest_items(weighted, _SEMANTIC_POOL)
            # (a comparison of every pair: both are a few dozen at most, and np.isin's set-up
            # costs more than that)
            top = np.concatenate((top, picked[~(picked[:, None] == top[None, :]).any(axis=1)]))
        if top.size == 0:
            return query, [], empty
        positions = top.tolist()
        best_bm25 = max(float(scores[top[0]]), 1e-9)

        # Query coverage: the IDF-weighted share of the question's words that the item has
        # (in its title, questions or keywords; half as much when only its answer has them).
        known = list(query.lexical.items())
        lexical_total = sum(query.lexical.values()) + query.unknown_weight or 1.0
        covered = np.zeros(top.size, dtype=np.float64)
        # The rarest word of the question that the item lacks: 公租房 in a question about
        # public rental housing says the housing-fund item is not it, however much else fits.
        missing_word = np.full(top.size, 1.0 if query.unknown_word else 0.0)
        # Which candidates have each of the question's tokens (words, bigrams, then syllable
        # pairs, as in `all_ids`) in their first field: one search for all of them.
        in_q_all = self._contains(
            self._q_keys, top.astype(np.int64)[:, None] * self._vocabulary_size + query.all_ids
        )
        if known:
            ids = np.array([t for t, _ in known], dtype=np.int64)
            weights = np.array([w for _, w in known], dtype=np.float64)
            keys = top.astype(np.int64)[:, None] * self._vocabulary_size + ids[None, :]
            in_q = in_q_all[:, : len(known)]
            in_a = self._contains(self._a_keys, keys)
            covered = (in_q + 0.5 * (in_a & ~in_q)) @ weights
            is_word = np.array([t in query.words for t, _ in known], dtype=bool)
            if is_word.any():
                lacking = ~(in_q | in_a) & is_word[None, :]
                rarity = weights / self._unknown_idf
                missing_word = np.maximum(missing_word, (lacking * rarity[None, :]).max(axis=1))
        sound_known = list(query.sounds.items())
        sound_total = sum(query.sounds.values()) + query.sound_unknown_weight or 1.0
        sound_covered = np.zeros(top.size, dtype=np.float64)
        if sound_known:
            weights = np.array([w for _, w in sound_known], dtype=np.float64)
            sound_covered = in_q_all[:, len(known) :] @ weights

        # Phrasing coverage: the share of the closest phrasing's words that the question has.
        query_ids = np.array(sorted(query.lexical), dtype=np.int32)
        # The candidates' phrasings and their tokens, gathered with index arithmetic: each
        # item's phrasings (and their tokens) are contiguous in the flat arrays.
        top64 = top.astype(np.int64)
        first_q = self._item_first_question[top64]
        counts = self._item_first_question[top64 + 1] - first_q
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        n_local = int(counts.sum())
        question_indexes = np.repeat(first_q - starts, counts) + np.arange(n_local)
        first_t = self._item_first_token[top64]
        token_counts = self._item_first_token[top64 + 1] - first_t
        token_starts = np.concatenate(([0], np.cumsum(token_counts)[:-1]))
        token_index = np.repeat(first_t - token_starts, token_counts) + np.arange(
            int(token_counts.sum())
        )
        tokens = self._flat_tokens[token_index]
        # Each token's phrasing, numbered among the candidates' phrasings.
        owners = self._flat_question[token_index] - np.repeat(first_q - starts, token_counts)
        covered_by_question: npt.NDArray[np.float64] = np.zeros(n_local)
        if query_ids.size and tokens.size:
            found = np.searchsorted(query_ids, tokens)
            found[found >= query_ids.size] = query_ids.size - 1
            hit = query_ids[found] == tokens
            covered_by_question = np.bincount(
                owners[hit], weights=self._idf[tokens[hit]], minlength=n_local
            ).astype(np.float64)
        totals = self._question_idf_total[question_indexes]
        coverage = np.divide(covered_by_question, totals, out=np.zeros(n_local), where=totals > 0)

        texts = [self._question_texts[q] for q in question_indexes.tolist()]
        # A long story is compared by its beginning and its end, where residents put the
        # question; it also bounds the cost of the comparisons.
        fuzzy_query = query.canonical
        if len(fuzzy_query) > _FUZZY_QUERY_CHARS:
            half = _FUZZY_QUERY_CHARS // 2
            fuzzy_query = fuzzy_query[:half] + fuzzy_query[-half:]
        ratios = process.cdist([fuzzy_query], texts, scorer=fuzz.ratio, dtype=np.float32)[
            0
        ].astype(np.float64)
        # partial_ratio rewards a short phrasing found inside a long story; it means something
        # only when the phrasing has some length of its own.
        # Containment: the longest common subsequence over the shorter text's length (from
        # the Indel ratio, so no second comparison is needed). It rewards a phrasing found in
        # a story, and a bare keyword found in a phrasing.
        lengths = self._question_length[question_indexes]
        query_length = float(len(fuzzy_query))
        common = ratios * (lengths + query_length) / 200.0
        partials = 100.0 * common / np.maximum(np.minimum(lengths, query_length), 1.0)
        partials[~self._question_long_enough[question_indexes]] = 0.0

        rows = np.zeros((top.size, len(FEATURE_NAMES)), dtype=np.float64)
        rows[:, 0] = 1.0
        rows[:, 1] = covered / lexical_total
        rows[:, 2] = sound_covered / sound_total
        rows[:, 3] = np.maximum.reduceat(coverage, starts)
        rows[:, 4] = np.maximum.reduceat(ratios, starts) / 100.0
        rows[:, 5] = np.maximum.reduceat(partials, starts) / 100.0
        query_keys = query.lexical.keys()
        rows[:, 6] = [1.0 if self._keyword_ids[p] & query_keys else 0.0 for p in positions]
        rows[:, 7] = scores[top] / best_bm25
        rows[0, 8] = 1.0
        rows[:, 9] = covered / (covered + 8.0)
        rows[:, 10] = missing_word
        if vector is not None and weighted is not None:
            # The likeness to each candidate's closest text, and to its mean below.
            semantic = self._semantic_scores(weighted, top.astype(np.int64))
            rows[:, 11] = semantic
            rows[:, 12] = semantic.max() - semantic
            # The item's mean direction (phrasings, keywords and the beginning of its answer
            # together): on a base with one title an item, the answer says what a bare
            # title does not.
            centroids = self._sem_centroids[top]
            rows[:, 13] = centroids @ vector
            # The same likeness with each dimension weighted as residents' questions taught;
            # the plain cosine without such weights.
            rows[:, 15] = centroids @ weighted
        # A long story lies further from every short phrasing than a short question does.
        rows[:, 14] = min(len(query.canonical), 100) / 100.0
        return query, positions, rows

    def match(self, question: str) -> MatchResult:
        """Rank the items for one question and decide: answer, suggest or escalate.

        Residents ask the same things in the same words all day ("社保卡怎么补办"), so recent
        results are kept (they are immutable, and this index never changes: a reloaded
        knowledge base gets a new matcher and an empty cache).
        """
        if len(question) > _RECENT_LENGTH or self.thresholds.recent_results <= 0:
            with answering():
                return self._match(question)
        cached = self._recent.get(question)
        if cached is not None:
            self._recent.move_to_end(question)
            return cached
        with answering():
            result = self._match(question)
        self._recent[question] = result
        if len(self._recent) > self.thresholds.recent_results:
            self._recent.popitem(last=False)
        return result

    def _match(self, question: str) -> MatchResult:
        normalized = normalize(question)
        # Not a question for the knowledge base: "转人工" (answered as the menu's button is: a
        # person answers the next message), venting, greetings and openers.
        conversational = (
            "asks_person"
            if asks_for_person(normalized)
            else ("venting" if is_venting(normalized) else "small_talk")
            if is_small_talk(normalized)
            else None
        )
        if conversational is not None:
            return MatchResult(
                question=question,
                normalized=normalized,
                language=detect_language(question),
                decision="decline",
                candidates=(),
                reason=conversational,
                intent="small_talk",
            )
        read = self.read(question, normalized)
        # The embedding and the word analysis read the same runs: each is repaired once.
        runs: dict[str, str] = {}
        vector = self.question_vector(read, runs)
        query, positions, rows = self.features(question, read, vector, runs)
        positions, rows = self._in_region(read, positions, rows)
        cues = report_cues(normalized)
        if not positions:
            reason = "empty" if not query.canonical else "no_match"
            decision: Decision = "escalate"
            intent: Intent = "question"
            if cues:
                decision, reason, intent = "report", "problem_words", "report"
            elif query.canonical and self._off_topic(normalized, vector, rows):
                decision, reason, intent = "decline", "out_of_scope", "out_of_scope"
            return MatchResult(
                question=question,
                normalized=query.canonical,
                language=query.language,
                decision=decision,
                candidates=(),
                reason=reason,
                intent=intent,
            )
        order, probabilities = rank_candidates(rows, self.model)
        confidence = best_confidence(rows, order, probabilities, self.model)
        # The best candidate's score is the confidence; the others get it scaled by how their
        # ranking probability compares with the best one's, so the order stays the order and
        # a close second shows as close.
        best_probability = max(float(probabilities[order[0]]), 1e-9)
        scores = [confidence] + [
            confidence * float(probabilities[i]) / best_probability for i in order[1:]
        ]
        candidates = tuple(
            Candidate(item=self.items[positions[i]], score=round(score, 4))
            for i, score in zip(
                order[: max(self.thresholds.max_candidates, 5)], scores, strict=False
            )
        )
        lead = ranking_lead(rows, order, self.model)
        decision, reason = decide(confidence, lead, self.thresholds)
        # A resident who typed one of the item's own phrasings (as normalised) means that item;
        # the score model never saw such questions (calibration holds phrasings out).
        best_row = int(order[0])
        if (
            decision != "answer"
            and rows[best_row, _FUZZY_COLUMN] >= _EXACT
            and (order.size == 1 or rows[int(order[1]), _FUZZY_COLUMN] < _EXACT)
        ):
            decision, reason = "answer", "exact"
            confidence = max(confidence, self.thresholds.answer)
        # The question names a service that nothing in the knowledge base mentions (公租房 when
        # the base has only 租房提取公积金, 二手车 beside 二手房): the best card is about something
        # else, however close its other words. A choice, with "none of these", not a card.
        if (
            decision == "answer"
            and reason != "exact"
            and self._names_a_sibling(query.unknown_terms, candidates[0].item)
        ):
            decision, reason = "suggest", "unknown_term"
        intent = "question"
        # Neither a choice nor a hand-off for a question nearer to everyday topics than to the
        # knowledge base (the weather is not a choice between ID cards).
        off_topic = (
            decision in ("escalate", "suggest")
            and not cues
            and self._off_topic(normalized, vector, rows)
        )
        # "医保", "房子": one word fits several items; the resident picks rather than getting
        # a confident card, or a person, for what a choice answers.
        # A choice it would be offered anyway is a choice between equals, not one whose first
        # item is "very likely" the one meant (`MatchResult.first_is_likely`).
        if (
            reason in ("confident", "unsure", "no_match")
            and not off_topic
            and order.size > 1
            and rows[best_row, _FUZZY_COLUMN] < _EXACT
        ):
            # (close in the ranking, or holding every word of the question as the best does:
            # then the words cannot tell the two apart, however the ranking leans)
            coverage = rows[order[:2], _COVERAGE_COLUMN]
            second_close = 1.0 - lead >= _VAGUE_SECOND or 0.0 < coverage[0] <= coverage[1]
            if (
                (decision in ("answer", "suggest") and second_close)
                or (decision == "escalate" and confidence >= _VAGUE_FLOOR)
            ) and self._vague(query.canonical):
                decision, reason = "suggest", "vague"
        if cues and (
            decision != "answer" or confidence < _REPORT_OVER_ANSWER or wants_to_file(normalized)
        ):
            intent = "report"
            # The card or the choice it would get stays beside the offer; with neither, the
            # offer alone (docs/matching.md, "What the resident wants").
            if decision == "escalate" or (
                decision == "suggest"
                and confidence < _REPORT_CHOICE_FLOOR
                and ticket_type_for(normalized) in ("complaint", "suggestion")
            ):
                decision, reason = "report", "problem_words"
        elif off_topic:
            decision, reason, intent = "decline", "out_of_scope", "out_of_scope"
        place = self.places.other_place(normalized)
        if place:
            decision, reason = "escalate", f"other_place:{place}"
        return MatchResult(
            question=question,
            normalized=query.canonical,
            language=query.language,
            decision=decision,
            candidates=candidates,
            reason=reason,
            intent=intent,
        )

    def _in_region(
        self, read: str, positions: list[int], rows: npt.NDArray[np.float64]
    ) -> tuple[list[int], npt.NDArray[np.float64]]:
        """The candidates without those tied to a region other than the one the question is
        about: a trip to Thailand (国外) needs a passport, not the Taiwan travel permit whose
        phrasings share its 旅游 and 证件. An item tied to no region (a passport, a birth
        certificate) stays, and so does any item when the question names no region."""
        regions = self.implied.regions(read)
        if not regions or not positions:
            return positions, rows
        keep = []
        for index, position in enumerate(positions):
            tied = self._item_regions.get(position)
            if tied is None:
                tied = self.implied.regions(normalize(self.items[position].title))
                self._item_regions[position] = tied
            if not tied or tied & regions:
                keep.append(index)
        if len(keep) == len(positions):
            return positions, rows
        return [positions[i] for i in keep], rows[keep]

    @staticmethod
    def _vague(canonical: str) -> bool:
        """One or two words with nothing else: too little to pick one item."""
        latin = [w for w in latin_words(canonical) if w not in _ENGLISH_STOPWORDS]
        cjk = "".join(c for c in canonical if has_cjk(c))
        for filler in sorted(_CHINESE_FILLERS, key=len, reverse=True):
            cjk = cjk.replace(filler, "")
        return len(cjk) + 2 * len(latin) <= _VAGUE_CHARS and bool(cjk or latin)

    def _off_topic(
        self,
        normalized: str,
        vector: npt.NDArray[np.float32] | None,
        rows: npt.NDArray[np.float64],
    ) -> bool:
        """Nearer in meaning to everyday topics than to anything in the knowledge base. Never a
        question asking what document or procedure something takes: that is the base's
        business whatever its setting ("去日本玩需要什么证件"), a choice or a person, not a no."""
        if vector is None or self.semantic is None or asks_what_is_needed(normalized):
            return False
        if self._off_topic_vectors is None:
            self._off_topic_vectors = self.semantic.embed(
                [normalize(t) for t in OFF_TOPIC_EXAMPLES]
            )
        # Both likenesses under the metric, as the candidates' `semantic` is read.
        weighted = self._weighted(vector)
        off = float((self._off_topic_vectors @ weighted).max())
        near = float(rows[:, _SEMANTIC_COLUMN].max()) if rows.size else 0.0
        if not rows.size:
            near = float((self._sem_centroids @ weighted).max())
        return off >= near + OFF_TOPIC_MARGIN
