"""Find the knowledge-base item a resident's question is about, or know that none fits.

The pipeline (design.md §3):

1. `normalize` (NFKC, half-width, simplified Chinese, lower case, punctuation out).
2. Synonyms: every word of a synonym group is rewritten to the group's first word, so 户籍 and
   户口 are one word from here on.
3. Homophone repair: a run of characters that is no known word but sounds like a term of the
   knowledge base (身份正 → 身份证, 公基金 → 公积金) is replaced by that term, as a pinyin input
   method's wrong pick is undone.
4. Segmentation by forward maximum matching over the knowledge base's own terms and a general
   vocabulary, plus character bigrams (robust to wrong segmentation), pinyin-syllable bigrams
   (robust to homophone typos the repair missed) and stemmed English words.
5. BM25 over two fields per item (title/questions/keywords, and answer) picks candidates.
6. Each candidate is re-scored by a logistic model over coverage, fuzzy (rapidfuzz) and pinyin
   features, giving a calibrated probability in 0..1 that it is what the resident means.
7. Thresholds from config.toml turn the best probability into one decision.

The index is built once per knowledge-base load; a question touches only arrays and dicts.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
from rapidfuzz import fuzz, process

from bot.knowledge_base import Item, KnowledgeBase
from bot.places import PlaceDetector
from bot.small_talk import is_small_talk
from bot.text import (
    char_sound,
    cjk_runs,
    detect_language,
    general_vocabulary,
    has_cjk,
    latin_words,
    normalize,
    unique,
)

Decision = Literal["answer", "suggest", "escalate"]

# Words that say nothing about which service is meant. They still count for fuzzy similarity.
_CHINESE_FILLERS = frozenset(
    ["请问", "你好", "您好", "我想", "想问", "问一下", "一下", "怎么", "怎么样", "怎样", "如何", "什么", "哪里", "哪儿", "哪个", "哪些", "需要", "要求", "可以", "可不可以", "能不能", "是不是", "有没有", "是否", "为什么", "吗", "呢", "啊", "吧", "呀", "了", "的", "得", "地", "我", "我们", "你们", "他们", "我的", "自己", "这个", "那个", "这样", "还有", "还是", "或者", "就是", "但是", "因为", "所以", "如果", "现在", "已经", "应该", "一个", "请", "帮", "帮忙", "谢谢", "麻烦", "知道", "告诉", "办", "办理", "去", "到", "在", "给", "让", "把", "被", "和", "跟", "及", "与", "都", "也", "就", "还", "又", "再", "才", "要", "想", "能", "会", "有", "没有", "是", "不", "没", "多少", "多久", "几天", "几个", "时候", "怎么办", "咋办", "咋", "啥"]
)
_ENGLISH_STOPWORDS = frozenset(
    ["a", "an", "the", "i", "me", "my", "we", "our", "you", "your", "he", "she", "it", "its", "they", "them", "their", "to", "of", "in", "on", "at", "for", "from", "by", "with", "about", "as", "into", "is", "are", "was", "were", "be", "been", "being", "am", "do", "does", "did", "doing", "have", "has", "had", "having", "can", "could", "should", "would", "will", "shall", "may", "might", "must", "how", "what", "when", "where", "which", "who", "whom", "why", "this", "that", "these", "those", "there", "here", "and", "or", "but", "if", "then", "so", "than", "too", "very", "just", "not", "no", "yes", "please", "hi", "hello", "thanks", "thank", "want", "need", "get", "got", "go", "going", "like", "any", "some", "all", "there's", "i'm", "i've", "don't", "doesn't", "dont", "cant", "can't", "much", "many", "long"]
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

    @property
    def best(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None

    @property
    def score(self) -> float:
        return self.candidates[0].score if self.candidates else 0.0


@dataclass(frozen=True, slots=True)
class MatchingThresholds:
    """Where the calibrated probability turns into a decision (config.toml [matching])."""

    answer: float = 0.6
    suggest: float = 0.4
    # The best must beat the second by this much to be answered outright; otherwise the
    # resident chooses between them.
    margin: float = 0.1
    max_candidates: int = 3
    # Names of this city: a question naming another city is about that city's affairs.
    home_names: tuple[str, ...] = ("示例", "本市", "我市", "shili")


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
    "rank_probability",
    "lead",
)
_CONFIDENCE_COLUMNS = [FEATURE_NAMES.index(n) for n in CONFIDENCE_NAMES[:9]]
WEIGHTS_FILE = Path(__file__).resolve().parent / "calibration" / "weights.json"


@dataclass(frozen=True, slots=True)
class ScoreModel:
    """Two logistic models: one ranks the candidates, one says how sure the best one is."""

    rank: tuple[float, ...]
    confidence: tuple[float, ...]


_GUESS = ScoreModel(
    rank=(-9.0, 5.0, 1.5, 4.0, 2.0, 1.5, 1.0, 1.5, 0.5, 2.0, -2.0),
    confidence=(-8.0, 5.0, 0.0, 3.0, 0.0, 0.0, 2.0, 5.0, -1.0, 1.0, 2.0),
)


def load_score_model(path: Path = WEIGHTS_FILE) -> ScoreModel:
    """Return the fitted score model (`python -m bot calibrate`), or a neutral guess before any."""
    if not path.is_file():
        return _GUESS
    fitted = json.loads(path.read_text(encoding="utf-8"))
    rank = dict(zip(FEATURE_NAMES, _GUESS.rank, strict=True)) | fitted.get("rank", {})
    confidence = dict(zip(CONFIDENCE_NAMES, _GUESS.confidence, strict=True)) | fitted.get(
        "confidence", {}
    )
    return ScoreModel(
        rank=tuple(float(rank[n]) for n in FEATURE_NAMES),
        confidence=tuple(float(confidence[n]) for n in CONFIDENCE_NAMES),
    )


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
    return np.concatenate((rows[best, _CONFIDENCE_COLUMNS], [first, first - second]))


DEFAULT_MODEL = load_score_model()

_CANDIDATE_POOL = 24
_BM25_K1 = 1.2
_BM25_B = 0.75
_ANSWER_FIELD_WEIGHT = 0.3


@dataclass(slots=True)
class _Tokens:
    """The tokens of one text, by kind."""

    words: list[str] = field(default_factory=list)
    bigrams: list[str] = field(default_factory=list)
    sounds: list[str] = field(default_factory=list)
    english: list[str] = field(default_factory=list)

    def lexical(self) -> list[str]:
        return self.words + self.bigrams + self.english


class _TextAnalyzer:
    """Turns text into canonical text and tokens, with the knowledge base's vocabulary."""

    def __init__(self, synonyms: Sequence[Sequence[str]], terms: Iterable[str]) -> None:
        self.canonical: dict[str, str] = {}
        for group in synonyms:
            words = [w for w in (normalize(w) for w in group) if w]
            if len(words) < 2:
                continue
            for word in words:
                # A word in two groups keeps its first group: the knowledge base decides.
                self.canonical.setdefault(word, words[0])
        # Latin-script synonyms ("id card") are rewritten in place, as whole words; Chinese
        # ones word by word after segmentation, so 执照 is not rewritten inside 驾驶执照.
        self.latin_canonical = {w: h for w, h in self.canonical.items() if not has_cjk(w)}
        self.latin_lengths = sorted({len(w) for w in self.latin_canonical}, reverse=True)
        self.general = general_vocabulary()
        kb_terms = (
            {normalize(t) for t in terms} | set(self.canonical) | set(self.canonical.values())
        )
        self.kb_terms = {t for t in kb_terms if len(t) >= 2 and all(has_cjk(c) for c in t)}
        self.dictionary = self.general | self.kb_terms
        self.term_lengths = sorted({len(t) for t in self.dictionary if len(t) <= 8}, reverse=True)
        # Sound index of the knowledge base's own terms, for homophone repair.
        self.terms_by_sound: dict[tuple[str, ...], list[str]] = {}
        for term in sorted(self.kb_terms):
            if 2 <= len(term) <= 6:
                key = tuple(char_sound(c) for c in term)
                self.terms_by_sound.setdefault(key, []).append(term)
        self.sound_lengths = sorted({len(k) for k in self.terms_by_sound}, reverse=True)

    def _rewrite_latin(self, text: str) -> str:
        """Rewrite Latin-script synonyms to their group's first word, longest match first."""
        if not self.latin_canonical or not any("a" <= c <= "z" for c in text):
            return text
        out: list[str] = []
        i = 0
        n = len(text)
        while i < n:
            if text[i].isalnum() and (i == 0 or not text[i - 1].isalnum()):
                for length in self.latin_lengths:
                    end = i + length
                    if end > n or (end < n and text[end].isalnum()):
                        continue
                    head = self.latin_canonical.get(text[i:end])
                    if head is not None:
                        out.append(f" {head} ")
                        i = end
                        break
                else:
                    out.append(text[i])
                    i += 1
            else:
                out.append(text[i])
                i += 1
        return "".join(out)

    def _repair_run(self, run: str) -> str:
        """Replace windows that are no word but sound like a knowledge-base term with the term."""
        if not self.terms_by_sound:
            return run
        out: list[str] = []
        i = 0
        n = len(run)
        sounds = [char_sound(c) for c in run]
        while i < n:
            for length in self.sound_lengths:
                if i + length > n:
                    continue
                window = run[i : i + length]
                if window in self.dictionary:
                    # A real word is kept: 事业 is not a typo of 失业.
                    out.append(window)
                    i += length
                    break
                terms = self.terms_by_sound.get(tuple(sounds[i : i + length]))
                if not terms:
                    continue
                term = terms[0]
                shared = sum(1 for a, b in zip(window, term, strict=True) if a == b)
                if shared >= (1 if length <= 3 else 2):
                    out.append(term)
                    i += length
                    break
            else:
                out.append(run[i])
                i += 1
        return "".join(out)

    def segment(self, run: str) -> list[str]:
        """Split a run of Chinese characters into words by forward maximum matching."""
        words: list[str] = []
        i = 0
        n = len(run)
        dictionary = self.dictionary
        while i < n:
            for length in self.term_lengths:
                if length > 1 and i + length <= n and run[i : i + length] in dictionary:
                    words.append(run[i : i + length])
                    i += length
                    break
            else:
                words.append(run[i])
                i += 1
        return words

    def analyze(self, text: str) -> tuple[str, list[str]]:
        """Return canonical text (synonyms unified, typos repaired) and its Chinese words."""
        normalized = self._rewrite_latin(normalize(text))
        pieces: list[str] = []
        words: list[str] = []
        last = 0
        for match in re.finditer(r"[\u3400-\u9fff\uf900-\ufaff]+", normalized):
            pieces.append(normalized[last : match.start()])
            run_words = [
                self.canonical.get(w, w) for w in self.segment(self._repair_run(match.group()))
            ]
            words.extend(run_words)
            pieces.append("".join(run_words))
            last = match.end()
        pieces.append(normalized[last:])
        canonical = " ".join("".join(pieces).split())
        return canonical, words

    def canonical_text(self, text: str) -> str:
        """Return normalised text with synonyms unified and homophone typos repaired."""
        return self.analyze(text)[0]

    def tokens(self, text: str, *, raw_sounds_of: str | None = None) -> tuple[str, _Tokens]:
        """Return the canonical text of text and its tokens (see the module docstring)."""
        canonical, words = self.analyze(text)
        result = _Tokens()
        for word in words:
            if word in _CHINESE_FILLERS:
                continue
            result.words.append(("w" if len(word) >= 2 else "c") + word)
        for run in cjk_runs(canonical):
            result.bigrams.extend("b" + run[k : k + 2] for k in range(len(run) - 1))
        for source in (canonical, raw_sounds_of):
            if not source:
                continue
            for run in cjk_runs(source):
                sounds = [char_sound(c) for c in run]
                result.sounds.extend(
                    f"p{sounds[k]} {sounds[k + 1]}" for k in range(len(sounds) - 1)
                )
        for word in latin_words(canonical):
            if word not in _ENGLISH_STOPWORDS and len(word) > 1:
                result.english.append("e" + stem_english(word))
        return canonical, result


def _item_terms(kb: KnowledgeBase) -> list[str]:
    terms: list[str] = []
    for item in kb.items.values():
        terms.extend(item.keywords)
    for department in kb.departments.values():
        terms.append(department.name)
    return terms


@dataclass(frozen=True, slots=True)
class _Query:
    canonical: str
    language: str
    # Known tokens by id with their weight; words (two characters or more) among them.
    lexical: dict[int, float]
    words: frozenset[int]
    # Weight of the tokens no item has, and whether a whole word is among them.
    unknown_weight: float
    unknown_word: bool
    sounds: dict[int, float]
    sound_unknown_weight: float
    all_ids: npt.NDArray[np.int32]


class Matcher:
    """The index over one knowledge base; answers `match(question)`."""

    def __init__(
        self,
        kb: KnowledgeBase,
        thresholds: MatchingThresholds | None = None,
        model: ScoreModel = DEFAULT_MODEL,
        held_out: frozenset[tuple[str, str]] = frozenset(),
    ) -> None:
        self.kb = kb
        self.thresholds = thresholds or MatchingThresholds()
        self.model = model
        self.items: list[Item] = list(kb.items.values())
        self.analyzer = _TextAnalyzer(kb.synonyms, _item_terms(kb))
        self.places = PlaceDetector(self.thresholds.home_names)
        self._vocabulary: dict[str, int] = {}
        self._build(held_out)

    # -- index ----------------------------------------------------------------------------------

    def _token_id(self, token: str) -> int:
        index = self._vocabulary.get(token)
        if index is None:
            index = len(self._vocabulary)
            self._vocabulary[token] = index
        return index

    def _build(self, held_out: frozenset[tuple[str, str]]) -> None:
        """Index every item; `held_out` (item id, phrasing) pairs are left out, for calibration."""
        analyzer = self.analyzer
        question_texts: list[str] = []
        question_item: list[int] = []
        question_tokens: list[list[int]] = []
        q_bags: list[Counter[int]] = []
        a_bags: list[Counter[int]] = []
        keyword_ids: list[frozenset[int]] = []
        for position, item in enumerate(self.items):
            phrasings = [item.title, *item.questions, item.title_en, *item.questions_en]
            phrasings = [p for p in phrasings if (item.id, p) not in held_out]
            if not any(analyzer.canonical_text(p) for p in phrasings):
                # Every item needs one phrasing for the features; its id is better than none.
                phrasings.append(item.id.replace("-", " "))
            q_bag: Counter[int] = Counter()
            for phrasing in unique(phrasings):
                canonical, tokens = analyzer.tokens(phrasing, raw_sounds_of=normalize(phrasing))
                if not canonical:
                    continue
                ids = [self._token_id(t) for t in tokens.lexical()]
                q_bag.update(ids)
                q_bag.update(self._token_id(t) for t in tokens.sounds)
                question_texts.append(canonical)
                question_item.append(position)
                question_tokens.append(sorted(set(ids)))
            keywords: set[int] = set()
            for keyword in item.keywords:
                _, tokens = analyzer.tokens(keyword)
                ids = [self._token_id(t) for t in tokens.lexical()]
                q_bag.update(ids)
                q_bag.update(self._token_id(t) for t in tokens.sounds)
                keywords.update(self._token_id(t) for t in tokens.words if t.startswith("w"))
            keyword_ids.append(frozenset(keywords))
            # The title says most about an item: it counts twice.
            _, title_tokens = analyzer.tokens(item.title)
            q_bag.update(self._token_id(t) for t in title_tokens.lexical())
            answer_text = " ".join([item.answer, item.text.get("answer_en", "")])
            _, answer_tokens = analyzer.tokens(answer_text)
            a_bags.append(Counter(self._token_id(t) for t in answer_tokens.lexical()))
            q_bags.append(q_bag)

        vocabulary_size = len(self._vocabulary)
        self._vocabulary_size = vocabulary_size
        n_items = max(len(self.items), 1)
        q_df = np.zeros(vocabulary_size, dtype=np.float64)
        a_df = np.zeros(vocabulary_size, dtype=np.float64)
        either_df = np.zeros(vocabulary_size, dtype=np.float64)
        for q_bag, a_bag in zip(q_bags, a_bags, strict=True):
            q_df[list(q_bag)] += 1
            a_df[list(a_bag)] += 1
            either_df[list(q_bag.keys() | a_bag.keys())] += 1
        # IDF over the item as a whole (either field), so that a word common in answers but not
        # in questions is still known to be common.
        self._idf = np.log(1.0 + (n_items - either_df + 0.5) / (either_df + 0.5))
        self._unknown_idf = float(math.log(1.0 + (n_items + 0.5) / 0.5))
        # Tokens in more than this share of items pick no candidates (they still count in the
        # features): it keeps a question's cost flat as the knowledge base grows.
        self._selective = either_df <= max(0.25 * n_items, 50)

        merged: dict[int, dict[int, float]] = {}
        for bags, df, field_weight in ((q_bags, q_df, 1.0), (a_bags, a_df, _ANSWER_FIELD_WEIGHT)):
            idf = np.log(1.0 + (n_items - df + 0.5) / (df + 0.5))
            lengths = np.array([sum(b.values()) for b in bags], dtype=np.float64)
            average = float(lengths.mean()) if len(lengths) and lengths.mean() > 0 else 1.0
            for doc, bag in enumerate(bags):
                norm = _BM25_K1 * (1 - _BM25_B + _BM25_B * lengths[doc] / average)
                for token, tf in bag.items():
                    weight = field_weight * idf[token] * tf * (_BM25_K1 + 1) / (tf + norm)
                    entry = merged.setdefault(token, {})
                    entry[doc] = entry.get(doc, 0.0) + weight
        self._postings: dict[int, tuple[npt.NDArray[np.int32], npt.NDArray[np.float32]]] = {}
        for token, entry in merged.items():
            docs = np.fromiter(entry.keys(), dtype=np.int32, count=len(entry))
            weights = np.fromiter(entry.values(), dtype=np.float32, count=len(entry))
            self._postings[token] = (docs, weights)

        # Membership of (item, token) pairs as sorted int64 keys item * V + token, one array per
        # field: a question's coverage of its candidates is then one binary search.
        self._q_keys = self._pair_keys(q_bags)
        self._a_keys = self._pair_keys(a_bags)
        self._keyword_ids = keyword_ids
        self._question_texts = question_texts
        self._question_item = np.asarray(question_item, dtype=np.int32)
        # The tokens of every phrasing, flat, with the range of each item's phrasings.
        flat: list[int] = []
        flat_question: list[int] = []
        self._item_question_range: list[tuple[int, int]] = [(0, 0)] * len(self.items)
        self._item_token_range: list[tuple[int, int]] = [(0, 0)] * len(self.items)
        q_index = 0
        for position in range(len(self.items)):
            q_start, t_start = q_index, len(flat)
            while q_index < len(question_item) and question_item[q_index] == position:
                flat.extend(question_tokens[q_index])
                flat_question.extend([q_index] * len(question_tokens[q_index]))
                q_index += 1
            self._item_question_range[position] = (q_start, q_index)
            self._item_token_range[position] = (t_start, len(flat))
        self._flat_tokens = np.asarray(flat, dtype=np.int32)
        self._flat_question = np.asarray(flat_question, dtype=np.int32)
        totals = np.zeros(len(question_item), dtype=np.float64)
        if flat:
            np.add.at(totals, self._flat_question, self._idf[self._flat_tokens])
        self._question_idf_total = totals
        self._question_long_enough = np.array([len(t) >= 4 for t in question_texts], dtype=bool)

    def _pair_keys(self, bags: Sequence[Counter[int]]) -> npt.NDArray[np.int64]:
        size = self._vocabulary_size
        keys = np.fromiter(
            (doc * size + token for doc, bag in enumerate(bags) for token in bag), dtype=np.int64
        )
        keys.sort()
        return keys

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

    def _analyze(self, question: str) -> _Query:
        canonical, tokens = self.analyzer.tokens(question, raw_sounds_of=normalize(question))
        lexical: dict[int, float] = {}
        words: set[int] = set()
        unknown: dict[str, float] = {}
        for token in tokens.lexical():
            index = self._vocabulary.get(token)
            if index is None:
                # Unknown to the knowledge base: a word that no item knows (养狗) weighs like the
                # rarest word; single characters and bigrams that cross words weigh less.
                unknown[token] = self._unknown_idf * (0.5 if token[0] in "bc" else 1.0)
            else:
                lexical[index] = float(self._idf[index]) * (0.5 if token[0] == "c" else 1.0)
                if token[0] in "we":
                    words.add(index)
        sounds: dict[int, float] = {}
        sound_unknown: dict[str, float] = {}
        for token in tokens.sounds:
            index = self._vocabulary.get(token)
            if index is None:
                sound_unknown[token] = self._unknown_idf
            else:
                sounds[index] = float(self._idf[index])
        return _Query(
            canonical=canonical,
            language=detect_language(question),
            lexical=lexical,
            words=frozenset(words),
            unknown_weight=sum(unknown.values()),
            unknown_word=any(t[0] in "we" for t in unknown),
            sounds=sounds,
            sound_unknown_weight=sum(sound_unknown.values()),
            all_ids=np.asarray([*lexical, *sounds], dtype=np.int32),
        )

    def _bm25(self, query: _Query) -> npt.NDArray[np.float32]:
        scores = np.zeros(len(self.items), dtype=np.float32)
        for token in query.all_ids.tolist():
            if self._selective[token]:
                docs, weights = self._postings[token]
                scores[docs] += weights
        return scores

    def features(self, question: str) -> tuple[_Query, list[int], npt.NDArray[np.float64]]:
        """Return the analysed question, the candidate item positions and their feature rows."""
        query = self._analyze(question)
        empty = np.zeros((0, len(FEATURE_NAMES)))
        if not query.canonical or query.all_ids.size == 0 or not self.items:
            return query, [], empty
        scores = self._bm25(query)
        pool = min(_CANDIDATE_POOL, len(self.items))
        if pool < len(self.items):
            top = np.argpartition(-scores, pool - 1)[:pool]
        else:
            top = np.arange(len(self.items))
        top = top[np.argsort(-scores[top], kind="stable")]
        top = top[scores[top] > 0]
        if top.size == 0:
            return query, [], empty
        positions = top.tolist()
        best_bm25 = float(scores[top[0]])

        # Query coverage: the IDF-weighted share of the question's words that the item has
        # (in its title, questions or keywords; half as much when only its answer has them).
        known = list(query.lexical.items())
        lexical_total = sum(query.lexical.values()) + query.unknown_weight or 1.0
        covered = np.zeros(top.size, dtype=np.float64)
        # The rarest word of the question that the item lacks: 公租房 in a question about
        # public rental housing says the housing-fund item is not it, however much else fits.
        missing_word = np.full(top.size, 1.0 if query.unknown_word else 0.0)
        if known:
            ids = np.array([t for t, _ in known], dtype=np.int64)
            weights = np.array([w for _, w in known], dtype=np.float64)
            keys = top.astype(np.int64)[:, None] * self._vocabulary_size + ids[None, :]
            in_q = self._contains(self._q_keys, keys)
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
            ids = np.array([t for t, _ in sound_known], dtype=np.int64)
            weights = np.array([w for _, w in sound_known], dtype=np.float64)
            keys = top.astype(np.int64)[:, None] * self._vocabulary_size + ids[None, :]
            sound_covered = self._contains(self._q_keys, keys) @ weights

        # Phrasing coverage: the share of the closest phrasing's words that the question has.
        query_ids = np.array(sorted(query.lexical), dtype=np.int32)
        question_ranges = [self._item_question_range[p] for p in positions]
        counts = np.array([b - a for a, b in question_ranges], dtype=np.int64)
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        question_indexes = np.concatenate([np.arange(a, b) for a, b in question_ranges])
        pieces = []
        local_owner = []
        for (a, _), (t_a, t_b), local_start in zip(
            question_ranges,
            (self._item_token_range[p] for p in positions),
            starts.tolist(),
            strict=True,
        ):
            pieces.append(self._flat_tokens[t_a:t_b])
            local_owner.append(self._flat_question[t_a:t_b] - a + local_start)
        tokens = np.concatenate(pieces)
        owners = np.concatenate(local_owner)
        n_local = int(counts.sum())
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
        ratios = process.cdist([query.canonical], texts, scorer=fuzz.ratio, dtype=np.float32)[
            0
        ].astype(np.float64)
        # partial_ratio rewards a short phrasing found inside a long story; it means something
        # only when the phrasing has some length of its own.
        partials = process.cdist(
            [query.canonical], texts, scorer=fuzz.partial_ratio, dtype=np.float32
        )[0].astype(np.float64)
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
        return query, positions, rows

    def match(self, question: str) -> MatchResult:
        """Rank the items for one question and decide: answer, suggest or escalate."""
        query, positions, rows = self.features(question)
        if is_small_talk(normalize(question)):
            return MatchResult(
                question=question,
                normalized=query.canonical,
                language=query.language,
                decision="escalate",
                candidates=(),
                reason="small_talk",
            )
        if not positions:
            reason = "empty" if not query.canonical else "no_match"
            return MatchResult(
                question=question,
                normalized=query.canonical,
                language=query.language,
                decision="escalate",
                candidates=(),
                reason=reason,
            )
        order, probabilities = rank_candidates(rows, self.model)
        confidence = float(
            _sigmoid(
                np.asarray(
                    confidence_features(rows, order, probabilities)
                    @ np.asarray(self.model.confidence)
                )
            )
        )
        # The best candidate's score is the confidence; the others keep their ranking
        # probability, capped so that the order stays the order.
        scores = [confidence] + [min(float(probabilities[i]), confidence) for i in order[1:]]
        candidates = tuple(
            Candidate(item=self.items[positions[i]], score=round(score, 4))
            for i, score in zip(
                order[: max(self.thresholds.max_candidates, 5)], scores, strict=False
            )
        )
        second = float(probabilities[order[1]]) if order.size > 1 else 0.0
        decision, reason = self._decide(confidence, float(probabilities[order[0]]) - second)
        place = self.places.other_place(normalize(question))
        if place:
            decision, reason = "escalate", f"other_place:{place}"
        return MatchResult(
            question=question,
            normalized=query.canonical,
            language=query.language,
            decision=decision,
            candidates=candidates,
            reason=reason,
        )

    def _decide(self, confidence: float, lead: float) -> tuple[Decision, str]:
        thresholds = self.thresholds
        if confidence >= thresholds.answer and lead >= thresholds.margin:
            return "answer", "confident"
        if confidence >= thresholds.suggest:
            return "suggest", "close_candidates" if confidence >= thresholds.answer else "unsure"
        return "escalate", "no_match"
