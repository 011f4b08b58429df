"""Fit the matcher's score models: the order of the candidates, each one's probability of being
right, and the confidence that the best one is.

Training data comes from the knowledge base itself, never from the evaluation set: a third of each
item's phrasings is held out of the index and asked as questions, as written and as residents
mangle them (homophone typos, stories around the question, fillers dropped), and a list of
out-of-scope questions (`out_of_scope.txt`) teaches what nothing fits looks like. Practice bases of
fictional places (`practice-*/`, with residents' questions in `practice-*-questions.toml`) add
questions in residents' own words (docs/matching.md, "Practice bases"). Each candidate the matcher
considers becomes one row: its features, and whether it is the right item; the order is fitted
over each question's rows together (docs/matching.md, "The ranking").
"""

from __future__ import annotations

import json
import logging
import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bot.answering.evaluation import load_evaluation_set, new_city_base
from bot.answering.knowledge_base import KnowledgeBase, load_knowledge_base
from bot.answering.lexicon import general_lexicon
from bot.answering.matching import (
    CONFIDENCE_NAMES,
    DEFAULT_MODELS,
    FEATURE_NAMES,
    NO_METRIC,
    WEIGHTS_FILE,
    Matcher,
    MatchingThresholds,
    ScoreModel,
    ScoreModels,
    SemanticMetric,
    best_confidence,
    decide,
    home_names,
    many_confidence_features,
    rank_candidates,
    ranking_lead,
)
from bot.answering.semantic import EmbeddingCache
from bot.core.text import char_sound, cjk_runs, general_vocabulary

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
OUT_OF_SCOPE_FILE = HERE / "out_of_scope.txt"

# Everyday context residents wrap around their question; none of it names a service.
_CONTEXT = (
    "我今年五十多岁了",
    "上个月刚从外地回来",
    "家里老人身体不太好",
    "最近工作比较忙，只有周末有空",
    "孩子还在上学",
    "我对这些政策不太懂",
    "问了好几个人都说不清楚",
    "网上查了半天也没找到",
    "朋友说好像可以在网上办",
    "我不太会用手机",
    "昨天打电话没打通",
    "我在这边工作好几年了",
    "家里就我一个人能跑腿",
    "单位离得比较远",
    "之前办过一次但是忘了流程",
    "听邻居说政策有变化",
    "我腿脚不方便",
    "下周还要出差",
    "排了一上午队没办成",
    "我是第一次办这个",
)
_PREFIXES = (
    "",
    "你好，",
    "请问",
    "麻烦问一下，",
    "我想咨询一下，",
    "我家老人想知道",
    "急！",
    "您好，我是外来务工人员，",
    "上周我去办事没办成，",
    "朋友让我问问，",
)
_SUFFIXES = (
    "",
    "？",
    "，谢谢",
    "，急",
    "，在线等",
    "。需要带什么",
    "，多久能办好",
    "，麻烦告诉我",
)


def out_of_scope_questions(path: Path = OUT_OF_SCOPE_FILE) -> list[str]:
    """Return the calibration list of questions that nothing in a city's base should answer."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


class _Mangler:
    """Makes the mistakes residents make, reproducibly."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        by_sound: dict[str, set[str]] = {}
        for word in general_vocabulary():
            for char in word:
                by_sound.setdefault(char_sound(char), set()).add(char)
        self.by_sound = {k: sorted(v) for k, v in by_sound.items() if len(v) > 1}

    def homophone_typo(self, text: str) -> str:
        chars = list(text)
        positions = [i for i, c in enumerate(chars) if cjk_runs(c)]
        self.random.shuffle(positions)
        for position in positions[:6]:
            options = [
                c
                for c in self.by_sound.get(char_sound(chars[position]), [])
                if c != chars[position]
            ]
            if options:
                chars[position] = self.random.choice(options)
                return "".join(chars)
        return text

    def story(self, text: str) -> str:
        context = "，".join(self.random.sample(_CONTEXT, self.random.randint(1, 3)))
        if self.random.random() < 0.5:
            return (
                f"{self.random.choice(_PREFIXES)}{context}。{text}{self.random.choice(_SUFFIXES)}"
            )
        return f"{text}。{context}{self.random.choice(_SUFFIXES)}"

    def variants(self, text: str) -> list[str]:
        if not cjk_runs(text):
            return [text]
        return [text, self.homophone_typo(text), self.story(text)]


@dataclass(frozen=True, slots=True)
class Sample:
    """One question asked during calibration and the item it should find (None: nothing)."""

    question: str
    expected: str | None


def held_out_folds(kb: KnowledgeBase, folds: int = 3) -> Iterator[frozenset[tuple[str, str]]]:
    """Yield, per fold, the (item id, phrasing) pairs held out of the index."""
    for fold in range(1, folds):
        held: set[tuple[str, str]] = set()
        for item in kb.items.values():
            for phrasings in (item.questions, item.questions_en):
                for index, phrasing in enumerate(phrasings):
                    if index % folds == fold and len(phrasings) > 1:
                        held.add((item.id, phrasing))
        yield frozenset(held)


@dataclass(frozen=True, slots=True)
class AskedQuestion:
    """One calibration question: the features of its candidates and which one is right."""

    rows: npt.NDArray[np.float64]
    truth: npt.NDArray[np.float64]
    answerable: bool
    # Asked of a practice base (counted as `fit_score_model` is told), not of the city's own.
    practice: bool = False


def _new_city_held_out(kb: KnowledgeBase, questions: int) -> frozenset[tuple[str, str]]:
    """The phrasings a new city's base lacks, asked as questions against it."""
    held: set[tuple[str, str]] = set()
    for item in kb.items.values():
        held.update((item.id, q) for q in item.questions[questions:])
        held.update((item.id, q) for q in item.questions_en)
    return frozenset(held)


def calibration_questions(
    kb: KnowledgeBase,
    negatives: Sequence[str],
    *,
    seed: int = 7,
    semantic: EmbeddingCache | None = None,
    lexicon: Sequence[Sequence[str]] = (),
    metric: SemanticMetric = NO_METRIC,
) -> list[AskedQuestion]:
    """Ask every calibration question and keep its candidates' features (`semantic_metric`
    read with `metric`, `fit_semantic_metric`).

    Besides held-out phrasings, each fold leaves whole items out of the knowledge base: their
    questions sound like the city's business but nothing left answers them, the hardest kind of
    question to escalate. A last fold strips the base to what a new city writes first (three
    Chinese phrasings an item, no English, no synonyms) and asks the phrasings it lacks, English
    ones included: the matcher must work on bases as thin as that.
    """
    mangler = _Mangler(seed)
    asked: list[AskedQuestion] = []
    ids = sorted(kb.items)
    # (held-out phrasings, or the number of Chinese phrasings a stripped base keeps)
    folds: list[tuple[frozenset[tuple[str, str]], int]] = [
        (held, 0) for held in held_out_folds(kb)
    ]
    folds += [(frozenset(), 3), (frozenset(), 1)]
    for fold, (held, kept) in enumerate(folds):
        missing = {item_id for n, item_id in enumerate(ids) if n % 6 == fold}
        reduced = replace(kb, items={k: v for k, v in kb.items.items() if k not in missing})
        if kept:
            reduced = new_city_base(reduced, kept)
        matcher = Matcher(
            reduced,
            model=_reading_with(metric),
            held_out=held,
            semantic=semantic,
            lexicon=lexicon,
        )
        asked_held = held or _new_city_held_out(kb, kept)
        samples = [
            Sample(v, item_id)
            for item_id, phrasing in sorted(asked_held)
            if item_id not in missing
            for v in mangler.variants(phrasing)
        ]
        samples += [
            Sample(v, None)
            for item_id in sorted(missing)
            for phrasing in kb.items[item_id].questions[:3]
            for v in mangler.variants(phrasing)[:2]
        ]
        samples += [Sample(q, None) for q in negatives]
        for sample in samples:
            _, positions, features = matcher.features(sample.question)
            if not positions:
                continue
            truth = np.array(
                [matcher.items[p].id == sample.expected for p in positions], dtype=np.float64
            )
            asked.append(AskedQuestion(features, truth, sample.expected is not None))
    return asked


def fit_logistic(
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.float64],
    *,
    l2: float = 1.0,
    iterations: int = 50,
    sample_weight: npt.NDArray[np.float64] | None = None,
) -> npt.NDArray[np.float64]:
    """Fit logistic-regression weights by Newton's method with an L2 penalty (not on the bias);
    `sample_weight` counts each row that many times."""
    w = np.zeros(x.shape[1])
    counts = np.ones(x.shape[0]) if sample_weight is None else sample_weight
    penalty = np.full(x.shape[1], l2)
    penalty[0] = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(x @ w)))
        gradient = x.T @ (counts * (p - y)) + penalty * w
        hessian = (x * (counts * p * (1 - p))[:, None]).T @ x + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    return w


def _candidates_chances(
    scores: npt.NDArray[np.float64],
    truth: npt.NDArray[np.float64],
    starts: npt.NDArray[np.int64],
    group: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The conditional logit over each question's candidates (those of a question lie together,
    from `starts`; `group` is each candidate's question): each question's log loss, each
    candidate's chance of being the right one, and its share among the right ones."""
    # (log-sum-exp over all candidates and over the right ones, each from its own maximum,
    # so that a right candidate far below the best underflows nothing)
    top = np.maximum.reduceat(scores, starts)
    e = np.exp(scores - top[group])
    total = np.add.reduceat(e, starts)
    top_right = np.maximum.reduceat(np.where(truth > 0, scores, -np.inf), starts)
    e_right = np.where(truth > 0, np.exp(np.minimum(scores - top_right[group], 0.0)), 0.0)
    right = np.add.reduceat(e_right, starts)
    log_loss = top + np.log(total) - top_right - np.log(right)
    return log_loss, e / total[group], e_right / right[group]


def fit_conditional_logit(
    asked: Sequence[AskedQuestion],
    question_weight: npt.NDArray[np.float64],
    *,
    l2: float = 1.0,
    iterations: int = 60,
) -> npt.NDArray[np.float64]:
    """Fit ranking weights over each question's candidates together: the softmax of their scores
    is the chance that each is the right one, and the fit maximises that of the right ones (a
    conditional logit; questions with no right candidate teach the ranking nothing). Newton's
    method on the Fisher information, with a backtracking line search. No bias: a constant
    added to every candidate changes nothing; the returned bias is 0."""
    use = [n for n, a in enumerate(asked) if a.truth.any()]
    if not use:
        return np.zeros(asked[0].rows.shape[1] if asked else 1)
    x = np.vstack([asked[n].rows for n in use])[:, 1:]
    truth = np.concatenate([asked[n].truth for n in use])
    weight = question_weight[use]
    sizes = np.array([asked[n].truth.size for n in use])
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    group = np.repeat(np.arange(len(use)), sizes)
    dim = x.shape[1]

    def evaluate(
        w: npt.NDArray[np.float64],
    ) -> tuple[float, npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        log_loss, p, q = _candidates_chances(x @ w, truth, starts, group)
        loss = float(weight @ log_loss) + 0.5 * l2 * float(w @ w)
        gradient = x.T @ (weight[group] * (p - q)) + l2 * w
        return loss, gradient, p

    w = np.zeros(dim)
    for _ in range(iterations):
        loss, gradient, p = evaluate(w)
        # (each question's candidates lie together: one sum per group)
        mean = np.add.reduceat(p[:, None] * x, starts, axis=0)
        centred = x - mean[group]
        fisher = (centred * (weight[group] * p)[:, None]).T @ centred + l2 * np.eye(dim)
        step = np.linalg.solve(fisher, gradient)
        size = 1.0
        while size > 1e-4 and evaluate(w - size * step)[0] > loss - 1e-4 * size * float(
            gradient @ step
        ):
            size /= 2
        w = w - size * step
        if float(np.abs(size * step).max()) < 1e-7:
            break
    return np.concatenate(([0.0], w))


def fit_score_model(asked: Sequence[AskedQuestion], *, practice_weight: float = 1.0) -> ScoreModel:
    """Fit the ranking model over each question's candidates together, scale its score into a
    probability of being right, then fit the confidence model on each best candidate; a
    practice base's question counts `practice_weight` times in all three."""
    question_weight = np.array([practice_weight if a.practice else 1.0 for a in asked])
    direction = fit_conditional_logit(asked, question_weight)
    rows = np.vstack([a.rows for a in asked])
    scores = rows @ direction
    bias, scale = fit_logistic(
        np.column_stack((np.ones_like(scores), scores)),
        np.concatenate([a.truth for a in asked]),
        l2=0.0,
        sample_weight=np.repeat(question_weight, [a.truth.size for a in asked]),
    )
    rank = scale * direction
    rank[0] = bias
    ranking_only = ScoreModel(
        rank=tuple(rank), confidence=tuple([0.0] * len(CONFIDENCE_NAMES)), scale=float(scale)
    )
    # (every question's best candidate and its confidence features at once: the same as
    # `rank_candidates` and `confidence_features` one question at a time)
    sizes = np.array([a.truth.size for a in asked], dtype=np.intp)
    _, probabilities = rank_candidates(rows, ranking_only)
    x, best = many_confidence_features(rows, sizes, probabilities)
    y = np.concatenate([a.truth for a in asked])[best]
    confidence = fit_logistic(x, y, sample_weight=question_weight)
    return ScoreModel(
        rank=tuple(float(w) for w in rank),
        confidence=tuple(float(w) for w in confidence),
        scale=float(scale),
    )


@dataclass(frozen=True, slots=True)
class PracticeBase:
    """A small knowledge base of another (fictional) city and questions written for it the way
    residents talk, never looking at its phrasings: calibration data, not an evaluation set."""

    knowledge: Path
    questions: Path
    # The place's name, as a city's config.toml gives it (`city`, `city_en`): the matcher
    # reads it as home, as it reads a deployment's.
    city: str = ""
    city_en: str = ""


def _practice(letter: str, city: str, city_en: str) -> PracticeBase:
    return PracticeBase(
        HERE / f"practice-{letter}", HERE / f"practice-{letter}-questions.toml", city, city_en
    )


PRACTICE_BASES = (
    _practice("a", "东湖市", "Donghu City"),
    _practice("b", "西岭县", "Xiling County"),
    _practice("c", "北河区", "Beihe District"),
    _practice("d", "南岸市", "Nan'an City"),
    _practice("e", "临江市", "Linjiang City"),
    _practice("f", "石桥县", "Shiqiao County"),
    _practice("g", "云台市", "Yuntai City"),
    _practice("h", "柏川市", "Baichuan City"),
    _practice("i", "白沙市", "Baisha City"),
    _practice("j", "灣澳市", "Wan'ao City"),
    _practice("k", "江岭省", "Jiangling Province"),
    _practice("l", "金沙县", "Jinsha County"),
    _practice("m", "望海市", "Wanghai City"),
)


def _practice_thresholds(base: PracticeBase) -> MatchingThresholds:
    """The default thresholds, with the practice base's place as the city's name."""
    if not base.city:
        return MatchingThresholds()
    return replace(MatchingThresholds(), home_names=home_names(base.city, base.city_en))


def practice_questions(
    practice: Sequence[PracticeBase] = PRACTICE_BASES,
    *,
    semantic: EmbeddingCache | None = None,
    lexicon: Sequence[Sequence[str]] = (),
    english_gloss: tuple[tuple[str, ...], ...] = (),
    metric: SemanticMetric = NO_METRIC,
) -> list[AskedQuestion]:
    """Ask each practice base its residents' questions: once whole, once with a sixth of its
    items left out, whose questions then must find nothing (`semantic_metric` read with
    `metric`).

    The bundled base's own phrasings, held out, share their words with the phrasings left in:
    they were written by the same hand. Residents' words are further from any phrasing (a story,
    a situation instead of a service, English from a non-native speaker), and only questions
    written that way teach the model how far to trust the words against the meaning.
    """
    asked: list[AskedQuestion] = []
    for base in practice:
        kb = load_knowledge_base(base.knowledge)
        cases = load_evaluation_set(base.questions)
        thresholds = _practice_thresholds(base)
        ids = sorted(kb.items)
        for fold in range(2):
            missing = {item_id for n, item_id in enumerate(ids) if fold and n % 6 == 0}
            reduced = replace(kb, items={k: v for k, v in kb.items.items() if k not in missing})
            matcher = Matcher(
                reduced,
                thresholds,
                _reading_with(metric),
                semantic=semantic,
                lexicon=lexicon,
                english_gloss=english_gloss,
            )
            for case in cases:
                if fold and case.expected is not None and case.expected not in missing:
                    continue
                _, positions, features = matcher.features(case.question)
                if not positions:
                    continue
                truth = np.array(
                    [matcher.items[p].id in case.accepted for p in positions], dtype=np.float64
                )
                answerable = case.expected is not None and case.expected not in missing
                asked.append(AskedQuestion(features, truth, answerable, practice=True))
    return asked


def _reading_with(metric: SemanticMetric) -> ScoreModel:
    """A score model for asking calibration questions: only its metric shapes the features."""
    return replace(DEFAULT_MODELS.semantic, metric=metric)


# How the metric is fitted (docs/matching.md, "A metric learnt from residents' questions"):
# the cosine and the per-dimension products enter the fit times this, and its penalty.
METRIC_SCALE = 10.0
METRIC_L2 = 0.3
# Its low-rank part: the rank, the penalty on both matrices (per question), and the descent
# (Adam's steps and step size, from small random matrices drawn with a fixed seed).
METRIC_RANK = 16
METRIC_LOW_RANK_L2 = 3e-3
METRIC_STEPS = 400
METRIC_STEP_SIZE = 0.01
METRIC_START = 0.05


def fit_semantic_metric(
    practice: Sequence[PracticeBase] = PRACTICE_BASES,
    *,
    semantic: EmbeddingCache,
    lexicon: Sequence[Sequence[str]] = (),
    english_gloss: tuple[tuple[str, ...], ...] = (),
    low_rank: bool = True,
) -> SemanticMetric:
    """Learn how to read the embedding from the practice bases' residents' questions.

    For each answerable question, its candidates (as the matcher finds them, the whole base
    asked) are scored by Σ_k d_k q_k c_k, the question's vector q against each candidate's
    mean vector c with every dimension weighted; the weights d are those under which the
    right candidates score highest (a conditional logit over each question's candidates, on
    the cosine and the 512 products, with a penalty that keeps d near a multiple of the
    cosine's). Then, with d kept, a low-rank part (`low_rank`) that mixes the dimensions:
    scored by qᵀ(D + DownᵀUp)c, the same conditional logit fitted by gradient descent
    (`fit_low_rank_metric`). Returned scaled so that d's mean is 1: with every weight 1 and
    no low-rank part it is the cosine.
    """
    asked: list[AskedQuestion] = []
    # (each question's vector, and its candidates' mean vectors, for the low-rank part)
    vectors: list[npt.NDArray[np.float64]] = []
    centroids: list[npt.NDArray[np.float64]] = []
    for base in practice:
        kb = load_knowledge_base(base.knowledge)
        thresholds = _practice_thresholds(base)
        matcher = Matcher(
            kb,
            thresholds,
            _reading_with(NO_METRIC),
            semantic=semantic,
            lexicon=lexicon,
            english_gloss=english_gloss,
        )
        for case in load_evaluation_set(base.questions):
            if case.expected is None:
                continue
            read = matcher.read(case.question)
            vector = matcher.question_vector(read)
            if vector is None:
                continue
            _, positions, _ = matcher.features(case.question, read, vector)
            truth = np.array(
                [matcher.items[p].id in case.accepted for p in positions], dtype=np.float64
            )
            if not truth.any():
                continue
            candidates = matcher.centroids(positions)
            rows = METRIC_SCALE * np.column_stack(
                (np.zeros(len(positions)), candidates @ vector, candidates * vector)
            )
            asked.append(AskedQuestion(rows, truth, True, practice=True))
            vectors.append(np.asarray(vector, dtype=np.float64))
            centroids.append(np.asarray(candidates, dtype=np.float64))
    if not asked:
        return NO_METRIC
    weights = fit_conditional_logit(asked, np.ones(len(asked)), l2=METRIC_L2)
    diagonal = METRIC_SCALE * (weights[1] + weights[2:])
    mean = float(diagonal.mean())
    if not mean > 0:
        return NO_METRIC
    metric = SemanticMetric(diagonal=tuple(_rounded(float(w)) for w in diagonal / mean))
    if not low_rank:
        return metric
    down, up = fit_low_rank_metric(vectors, centroids, [a.truth for a in asked], diagonal)
    # (scaled as the diagonal is: the product of the two by its mean)
    root = mean**0.5
    return replace(
        metric,
        down=tuple(tuple(_rounded(float(w)) for w in row) for row in down / root),
        up=tuple(tuple(_rounded(float(w)) for w in row) for row in up / root),
    )


def fit_low_rank_metric(
    vectors: Sequence[npt.NDArray[np.float64]],
    candidates: Sequence[npt.NDArray[np.float64]],
    truths: Sequence[npt.NDArray[np.float64]],
    diagonal: npt.NDArray[np.float64],
    *,
    rank: int = METRIC_RANK,
    l2: float = METRIC_LOW_RANK_L2,
    steps: int = METRIC_STEPS,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The low-rank part of the metric, on top of a fitted `diagonal`: matrices Down and Up
    (rank × dimensions) under which each question's candidates, scored by
    qᵀ(diag(diagonal) + DownᵀUp)c, put the right ones first (the conditional logit of
    `fit_conditional_logit`, its mean over the questions, plus l2/2 times both matrices'
    squared sums; Adam from small random matrices, the seed fixed so that a fit is repeated
    exactly). The question's vector read under it is diagonal ∘ q + Upᵀ(Down q)."""
    dimensions = diagonal.size
    q = np.vstack(vectors)
    c = np.vstack(candidates)
    truth = np.concatenate(truths)
    sizes = np.array([t.size for t in truths])
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    group = np.repeat(np.arange(len(truths)), sizes)
    fixed = np.einsum("ij,ij->i", q[group] * diagonal, c)
    generator = np.random.default_rng(0)
    down = generator.normal(0.0, METRIC_START, (dimensions, rank))
    up = generator.normal(0.0, METRIC_START, (dimensions, rank))
    moments = [np.zeros_like(down), np.zeros_like(up)]
    squares = [np.zeros_like(down), np.zeros_like(up)]
    count = len(truths)
    for step in range(1, steps + 1):
        a = q @ down
        b = c @ up
        _, chance, share = _candidates_chances(
            fixed + np.einsum("ij,ij->i", a[group], b), truth, starts, group
        )
        slope = chance - share
        gradients = (
            q.T @ np.add.reduceat(slope[:, None] * b, starts) / count + l2 * down,
            c.T @ (slope[:, None] * a[group]) / count + l2 * up,
        )
        for n, (matrix, gradient) in enumerate(zip((down, up), gradients, strict=True)):
            moments[n] = 0.9 * moments[n] + 0.1 * gradient
            squares[n] = 0.999 * squares[n] + 0.001 * gradient * gradient
            matrix -= (
                METRIC_STEP_SIZE
                * (moments[n] / (1 - 0.9**step))
                / (np.sqrt(squares[n] / (1 - 0.999**step)) + 1e-8)
            )
    return down.T, up.T


# How many times a practice question may count against one of the city's own.
PRACTICE_WEIGHTS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)


@dataclass(frozen=True, slots=True)
class HeldOutScores:
    """What a practice base's questions got from a model fitted without that base, deciding as
    the matcher does with its default thresholds."""

    # Of the answerable questions: the right item first; a right card; a right card or a
    # choice that holds the right item.
    ranked_right: float
    answered_right: float
    helped: float
    # Of all questions: a card that is wrong, or a card for what nothing answers.
    confidently_wrong: float
    # Mean log loss of the confidence that the first candidate is right.
    log_loss: float


@dataclass(frozen=True, slots=True)
class HeldOutAnswer:
    """What a practice question got from a model fitted without its base: whether the first
    candidate is right, how sure the model is of it, how far it leads the second, and whether
    a choice of the first few would hold the right item."""

    answerable: bool
    first_right: bool
    confidence: float
    lead: float
    choice_right: bool


def _held_out_answers(
    own: Sequence[AskedQuestion],
    per_base: Sequence[Sequence[AskedQuestion]],
    practice_weight: float,
) -> list[HeldOutAnswer]:
    """Fit without each practice base in turn and ask it its questions."""
    answers: list[HeldOutAnswer] = []
    for held in range(len(per_base)):
        train = list(own) + [
            q for other, questions in enumerate(per_base) if other != held for q in questions
        ]
        model = fit_score_model(train, practice_weight=practice_weight)
        answers.extend(_held_out_answer(question, model) for question in per_base[held])
    return answers


# How many items a choice offers, by default: a held-out question is helped by a choice that
# holds the right one among them.
_CHOICES = MatchingThresholds().max_candidates


def _held_out_answer(question: AskedQuestion, model: ScoreModel) -> HeldOutAnswer:
    """What a question got from a model fitted without it."""
    order, probabilities = rank_candidates(question.rows, model)
    return HeldOutAnswer(
        answerable=question.answerable,
        first_right=bool(question.truth[order[0]]),
        confidence=best_confidence(question.rows, order, probabilities, model),
        lead=ranking_lead(question.rows, order, model),
        choice_right=bool(question.truth[order[:_CHOICES]].any()),
    )


def held_out_scores(
    answers: Sequence[HeldOutAnswer], thresholds: MatchingThresholds | None = None
) -> HeldOutScores:
    """Decide the held-out questions as the matcher does (its default thresholds unless
    others are given) and score the decisions."""
    thresholds = thresholds or MatchingThresholds()
    ranked: list[float] = []
    answered: list[float] = []
    helped: list[float] = []
    wrong: list[float] = []
    losses: list[float] = []
    for answer in answers:
        truth = float(answer.first_right)
        decision, _ = decide(answer.confidence, answer.lead, thresholds)
        card = decision == "answer"
        if answer.answerable:
            ranked.append(truth)
            answered.append(truth if card else 0.0)
            choice = float(answer.choice_right)
            helped.append(truth if card else choice if decision == "suggest" else 0.0)
        wrong.append(1.0 - truth if card and answer.answerable else float(card))
        sure = min(max(answer.confidence, 1e-6), 1.0 - 1e-6)
        losses.append(-(truth * np.log(sure) + (1.0 - truth) * np.log(1.0 - sure)))

    def mean(values: list[float]) -> float:
        return float(np.mean(values)) if values else 0.0

    return HeldOutScores(mean(ranked), mean(answered), mean(helped), mean(wrong), mean(losses))


def _held_out_scores(
    own: Sequence[AskedQuestion],
    per_base: Sequence[Sequence[AskedQuestion]],
    practice_weight: float,
) -> HeldOutScores:
    """Fit without each practice base in turn, ask it its questions and score the decisions."""
    return held_out_scores(_held_out_answers(own, per_base, practice_weight))


def metric_held_out_answers(
    kb: KnowledgeBase,
    semantic: EmbeddingCache,
    practice: Sequence[PracticeBase] = PRACTICE_BASES,
    *,
    with_metric: bool = True,
) -> list[HeldOutAnswer]:
    """The practice bases' questions, each base asked of models fitted without it — the
    metric too (`fit_semantic_metric` on the other bases), and every feature read with that
    metric — so that nothing a base's questions taught reaches their answers. Slow (a metric,
    the calibration questions and a fit per base): the measurement docs/matching.md gives for
    the metric, which `calibrate`'s own report, fitting the metric once on every base, reads a
    little higher. `with_metric=False` measures the same way without it."""
    negatives = out_of_scope_questions()
    chinese = general_lexicon(english=False)
    lexicon = general_lexicon()
    if not with_metric:
        # Nothing differs from one held-out base to the next but the fit: asked once.
        own = calibration_questions(kb, negatives, semantic=semantic, lexicon=chinese)
        per_base = [
            practice_questions([base], semantic=semantic, lexicon=chinese, english_gloss=lexicon)
            for base in practice
        ]
        return _held_out_answers(own, per_base, 1.0)
    answers: list[HeldOutAnswer] = []
    for held in practice:
        others = [base for base in practice if base is not held]
        metric = fit_semantic_metric(
            others, semantic=semantic, lexicon=chinese, english_gloss=lexicon
        )
        own = calibration_questions(
            kb, negatives, semantic=semantic, lexicon=chinese, metric=metric
        )
        train = practice_questions(
            others, semantic=semantic, lexicon=chinese, english_gloss=lexicon, metric=metric
        )
        asked = practice_questions(
            [held], semantic=semantic, lexicon=chinese, english_gloss=lexicon, metric=metric
        )
        model = fit_score_model(own + train)
        answers.extend(_held_out_answer(question, model) for question in asked)
    return answers


# The answer thresholds whose held-out wrong cards `calibrate` reports, and the share of wrong
# cards (of all questions) the default threshold is to keep within (docs/matching.md,
# "Thresholds").
ANSWER_THRESHOLDS = tuple(round(0.8 + 0.01 * step, 2) for step in range(16))
WRONG_CARDS_ALLOWED = 0.01


def answer_threshold_curve(
    answers: Sequence[HeldOutAnswer],
) -> list[tuple[float, HeldOutScores]]:
    """The held-out scores at each answer threshold of `ANSWER_THRESHOLDS` (the other
    thresholds at their defaults)."""
    return [
        (threshold, held_out_scores(answers, replace(MatchingThresholds(), answer=threshold)))
        for threshold in ANSWER_THRESHOLDS
    ]


def lowest_safe_answer_threshold(
    curve: Sequence[tuple[float, HeldOutScores]], allowed: float = WRONG_CARDS_ALLOWED
) -> float | None:
    """The lowest threshold of the curve whose held-out wrong cards stay within `allowed`, and
    so within it at every threshold above; None when none does."""
    safe = None
    for threshold, scores in sorted(curve, reverse=True):
        if scores.confidently_wrong > allowed:
            break
        safe = threshold
    return safe


def choose_practice_weight(
    own: Sequence[AskedQuestion], per_base: Sequence[Sequence[AskedQuestion]]
) -> float:
    """How many times a practice question counts against one of the city's own, chosen by
    leaving one practice base out at a time and deciding its questions as the matcher does:
    the weight with the fewest wrong cards, then the most residents helped (a right card or a
    choice holding the right item), then the smallest. A wrong card costs a resident most;
    the log loss, logged beside, is not comparable between weights once the ranking differs
    (a ranking that puts more hard questions right makes their confidence harder to tell)."""
    return _chosen_practice_weight(own, per_base)[0]


def _chosen_practice_weight(
    own: Sequence[AskedQuestion], per_base: Sequence[Sequence[AskedQuestion]]
) -> tuple[float, list[HeldOutAnswer]]:
    """`choose_practice_weight`, with the held-out answers of the weight chosen (none when
    there is nothing to hold out), which the threshold report reads: they are not fitted
    again."""
    if len(per_base) < 2:
        return 1.0, []
    answers: dict[float, list[HeldOutAnswer]] = {}
    scores = {}
    for weight in PRACTICE_WEIGHTS:
        answers[weight] = _held_out_answers(own, per_base, weight)
        scores[weight] = held = held_out_scores(answers[weight])
        log.info(
            "practice weight %g: held out, %.1f%% ranked right, %.1f%% answered right, "
            "%.1f%% helped, %.2f%% confidently wrong, log loss %.4f",
            weight,
            100 * held.ranked_right,
            100 * held.answered_right,
            100 * held.helped,
            100 * held.confidently_wrong,
            held.log_loss,
        )
    chosen = min(
        PRACTICE_WEIGHTS,
        key=lambda w: (round(scores[w].confidently_wrong, 6), -round(scores[w].helped, 6), w),
    )
    return chosen, answers[chosen]


def _report_answer_thresholds(answers: Sequence[HeldOutAnswer]) -> None:
    """Log how many wrong cards each answer threshold gives on the practice bases held out,
    and whether the default threshold keeps them within `WRONG_CARDS_ALLOWED`."""
    curve = answer_threshold_curve(answers)
    for threshold, held in curve:
        log.info(
            "answer threshold %.2f: held out, %.1f%% answered right, %.1f%% helped, "
            "%.2f%% confidently wrong",
            threshold,
            100 * held.answered_right,
            100 * held.helped,
            100 * held.confidently_wrong,
        )
    default = MatchingThresholds().answer
    at_default = held_out_scores(answers)
    safe = lowest_safe_answer_threshold(curve)
    report = log.info if at_default.confidently_wrong <= WRONG_CARDS_ALLOWED else log.warning
    report(
        "answer threshold: the default %.2f gives %.2f%% wrong cards held out (at most %.0f%% "
        "allowed); the lowest threshold within that is %s",
        default,
        100 * at_default.confidently_wrong,
        100 * WRONG_CARDS_ALLOWED,
        "none of those tried" if safe is None else f"{safe:.2f}",
    )


# The suggest thresholds whose bands `calibrate` reports: the questions whose confidence lies in
# [threshold, threshold + SUGGEST_BAND) and would get no card. A choice costs a resident one tap
# ("none of these" leads to a person) and saves a wait for staff when it holds what they ask: it
# is worth offering where it holds the right item for at least one question in four of a band
# (docs/matching.md, "Thresholds").
SUGGEST_BAND = 0.05
SUGGEST_THRESHOLDS = tuple(round(SUGGEST_BAND * step, 2) for step in range(1, 11))
CHOICE_RIGHT_WANTED = 0.25


@dataclass(frozen=True, slots=True)
class SuggestBand:
    """The held-out questions of one band of confidence below the answer threshold."""

    threshold: float
    # Questions in [threshold, threshold + SUGGEST_BAND) that get no card; of them, those
    # (answerable) whose choice holds the right item.
    questions: int
    choice_right: int
    # Of the answerable questions, helped with `threshold` as the suggest threshold.
    helped: float

    @property
    def share(self) -> float:
        return self.choice_right / self.questions if self.questions else 0.0


def suggest_threshold_bands(answers: Sequence[HeldOutAnswer]) -> list[SuggestBand]:
    """The bands of `SUGGEST_THRESHOLDS`, the other thresholds at their defaults."""
    default = MatchingThresholds()
    bands = []
    for threshold in SUGGEST_THRESHOLDS:
        inside = [
            a
            for a in answers
            if threshold <= a.confidence < threshold + SUGGEST_BAND
            and decide(a.confidence, a.lead, default)[0] != "answer"
        ]
        bands.append(
            SuggestBand(
                threshold,
                len(inside),
                sum(1 for a in inside if a.answerable and a.choice_right),
                held_out_scores(answers, replace(default, suggest=threshold)).helped,
            )
        )
    return bands


def lowest_worthwhile_suggest_threshold(
    bands: Sequence[SuggestBand], wanted: float = CHOICE_RIGHT_WANTED
) -> float | None:
    """The lowest threshold whose band, and every band above it, holds the right item in its
    choice for at least `wanted` of its questions; None when the highest band does not."""
    lowest = None
    for band in sorted(bands, key=lambda b: b.threshold, reverse=True):
        if band.questions and band.share < wanted:
            break
        lowest = band.threshold
    return lowest


def _report_suggest_thresholds(answers: Sequence[HeldOutAnswer]) -> None:
    """Log, band by band, how often a choice would hold what the practice bases' questions
    ask, and whether the default suggest threshold is the lowest worth a choice."""
    bands = suggest_threshold_bands(answers)
    for band in bands:
        log.info(
            "suggest threshold %.2f: held out, %.1f%% helped; of the %d questions up to %.2f, "
            "a choice holds the right item for %.1f%%",
            band.threshold,
            100 * band.helped,
            band.questions,
            band.threshold + SUGGEST_BAND,
            100 * band.share,
        )
    default = MatchingThresholds().suggest
    lowest = lowest_worthwhile_suggest_threshold(bands)
    report = log.info if lowest is not None and abs(lowest - default) < 1e-9 else log.warning
    report(
        "suggest threshold: the default is %.2f; the lowest whose choices hold the right item "
        "for at least %.0f%% of their questions held out is %s",
        default,
        100 * CHOICE_RIGHT_WANTED,
        "none of those tried" if lowest is None else f"{lowest:.2f}",
    )


def _fit_with_practice(
    own: list[AskedQuestion], per_base: list[list[AskedQuestion]], signal: str
) -> ScoreModel:
    weight, answers = _chosen_practice_weight(own, per_base)
    log.info("calibration (%s): a practice question counts %g times", signal, weight)
    if answers:
        _report_answer_thresholds(answers)
        _report_suggest_thresholds(answers)
    return fit_score_model(own + [q for base in per_base for q in base], practice_weight=weight)


def calibrate(
    kb: KnowledgeBase,
    semantic: EmbeddingCache | None = None,
    practice: Sequence[PracticeBase] = PRACTICE_BASES,
) -> ScoreModels:
    """Fit the matcher's score models: with the semantic signal (when `semantic` is given), on a
    knowledge base and the practice bases, and without it, on the knowledge base alone, for a
    process where the model cannot load."""
    negatives = out_of_scope_questions()
    lexicon = general_lexicon()
    # The practice bases teach the semantic model only: most of their questions share no word
    # with any phrasing, beyond what words alone can match, and the words-only model fitted on
    # them measured worse (docs/matching.md, "Practice bases").
    lexical = fit_score_model(calibration_questions(kb, negatives, lexicon=lexicon))
    if semantic is None:
        return ScoreModels(semantic=lexical, lexical=lexical)
    chinese = general_lexicon(english=False)
    metric = fit_semantic_metric(
        practice, semantic=semantic, lexicon=chinese, english_gloss=lexicon
    )
    with_semantic = _fit_with_practice(
        calibration_questions(kb, negatives, semantic=semantic, lexicon=chinese, metric=metric),
        [
            practice_questions(
                [base], semantic=semantic, lexicon=chinese, english_gloss=lexicon, metric=metric
            )
            for base in practice
        ],
        "semantic",
    )
    return ScoreModels(semantic=replace(with_semantic, metric=metric), lexical=lexical)


def _rounded(weight: float) -> float:
    # (+ 0.0: a weight the ranking leaves at nothing is written 0.0, not -0.0)
    return round(weight, 4) + 0.0


def _weights(model: ScoreModel) -> dict[str, Any]:
    return {
        "rank": {n: _rounded(w) for n, w in zip(FEATURE_NAMES, model.rank, strict=True)},
        "confidence": {
            n: _rounded(w) for n, w in zip(CONFIDENCE_NAMES, model.confidence, strict=True)
        },
        "scale": _rounded(model.scale),
    }


def model_as_dict(models: ScoreModels) -> dict[str, Any]:
    """Return the score models by feature name, as stored in weights.json."""
    fitted: dict[str, Any] = {**_weights(models.semantic), "lexical": _weights(models.lexical)}
    metric = models.semantic.metric
    if metric.diagonal:
        fitted["semantic_metric"] = [_rounded(w) for w in metric.diagonal]
    if metric.down:
        fitted["semantic_metric_low_rank"] = {
            "down": [[_rounded(w) for w in row] for row in metric.down],
            "up": [[_rounded(w) for w in row] for row in metric.up],
        }
    return fitted


def write_weights(model: ScoreModels, path: Path = WEIGHTS_FILE) -> None:
    """Store a fitted model where the matcher finds it (a list of numbers on one line: the
    metric's rows are thousands of them)."""
    text = json.dumps(model_as_dict(model), indent=2, ensure_ascii=False)
    text = _NUMBER_LIST.sub(lambda m: "[" + re.sub(r",\s*", ", ", m.group(1)) + "]", text)
    path.write_text(text + "\n", encoding="utf-8")


# A JSON list of numbers, as `json.dumps(..., indent=2)` writes it: one number a line.
_NUMBER_LIST = re.compile(r"\[\s*((?:-?[0-9.eE+-]+,\s*)*-?[0-9.eE+-]+)\s*\]")
