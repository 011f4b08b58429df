"""Text normalisation for matching: one canonical form for whatever a resident types.

Residents type full-width letters, traditional characters, zero-width joiners pasted from web pages,
emoji, and homophone typos from a pinyin input method. Everything here is pure and fast: it runs
for every question and for every text of every item when an index is built.
"""

from __future__ import annotations

import math
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache

import numpy as np
import numpy.typing as npt
import opencc

# Longer input is cut before matching: a question that needs more than this is a letter, and the
# first part of a letter says what it is about. This also bounds the time one question can take.
MAX_QUESTION_CHARS = 600

# Taiwan and Hong Kong wording to mainland simplified, phrases included (計程車 → 出租车).
_converter = opencc.OpenCC("tw2sp")
# Regional words that the converter keeps but a mainland knowledge base never uses.
_REGIONAL_WORDS = {
    "身分证": "身份证",
    "身分": "身份",
    "户口名簿": "户口簿",
    "健保卡": "医保卡",
    "健保": "医保",
    "国中": "初中",
    "国小": "小学",
    "驾驶执照": "驾驶证",
    "机车": "摩托车",
    "里长": "社区主任",
    "邮递区号": "邮政编码",
}
_REGIONAL = re.compile("|".join(sorted(_REGIONAL_WORDS, key=len, reverse=True)))
# What the converter must not touch is hidden from it behind private-use characters (which the
# filter has already removed from the input) and put back after, as the mainland word:
# - its tables chain in two places, 麼 → 么 → 幺 and 薴 → 苧 → 苎, so converting converted text
#   would change it again: a mainland 么 (什么, 好么) stays as it is, and 苧 is taken the second
#   step by hand;
# - its Taiwan phrase table gives some words their computing sense (資料 → 数据, 檔案 → 文件,
#   文件 → 文档, 物件 → 对象) where a resident means the documents to bring, the archives, a
#   house.
_KEPT_WORDS = {
    "么": "么",
    "資料": "资料",
    "资料": "资料",
    "檔案": "档案",
    "文件": "文件",
    "物件": "物件",
}
_KEPT = re.compile("|".join(_KEPT_WORDS))
_KEPT_MARKS = {word: chr(0xE000 + n) for n, word in enumerate(sorted(set(_KEPT_WORDS.values())))}
_AFTER_CONVERSION = str.maketrans(
    {mark: word for word, mark in _KEPT_MARKS.items()} | {"苧": "苎"}
)

_SPACE_RUN = re.compile(r"\s+")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_LATIN_WORD = re.compile(r"[a-z][a-z0-9']*|[0-9]+")


def _keep_char(char: str) -> str:
    """Map one character to what matching keeps of it: letters, digits, CJK; the rest is space."""
    category = unicodedata.category(char)
    if category[0] in "LN":
        return char
    if category == "Cf":
        # Zero-width and other format characters are invisible: they separate nothing.
        return ""
    return " "


class _KeepTable(dict[int, str]):
    """`_keep_char` as a translation table, filled as characters are first seen (C-speed)."""

    def __missing__(self, code: int) -> str:
        kept = _keep_char(chr(code))
        self[code] = kept
        return kept


_KEEP_TABLE = _KeepTable()


# Full-width punctuation and the ideographic space: NFKC maps them to ASCII punctuation and
# space, which the filter turns into spaces anyway. Replacing them first lets most Chinese text
# pass NFKC's quick check untouched, which makes normalising several times faster.
_FULLWIDTH_PUNCTUATION = re.compile(
    r"[\u3000\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65]"
)


@lru_cache(maxsize=1)
def _convertible() -> frozenset[str]:
    """Return the characters the converter changes (traditional characters and variants)."""
    ranges = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x2FA1F))
    chars = [chr(c) for start, end in ranges for c in range(start, end + 1) if chr(c) != "么"]
    converted = _converter.convert("\n".join(chars)).split("\n")
    # A set, not a regular expression: a character class this large makes `re` slow.
    return frozenset(c for c, after in zip(chars, converted, strict=True) if after != c)


def _folded(text: str) -> str:
    """NFKC and case folding, the first half of the filter."""
    text = _FULLWIDTH_PUNCTUATION.sub(" ", text)
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    # Case is folded before the filter: folding can leave combining marks (İ → i̇) to drop.
    return text.casefold()


def _filter(text: str, table: dict[int, str]) -> str:
    return _folded(text).translate(table)


def _convert(text: str) -> str:
    """Convert traditional text (and Taiwan wording) to mainland simplified Chinese.

    Only text with a traditional character is converted: the converter also rewrites some
    mainland words as if they were Taiwanese (程序 → 进程), which simplified text must not get.
    """
    hidden = _KEPT.sub(lambda m: _KEPT_MARKS[_KEPT_WORDS[m.group()]], text)
    converted: str = _converter.convert(hidden)
    return converted.translate(_AFTER_CONVERSION)


def _regional(text: str) -> str:
    return _REGIONAL.sub(lambda m: _REGIONAL_WORDS[m.group()], text)


def normalize(text: str) -> str:
    """Return the canonical form of text: NFKC, simplified Chinese, lower case, single spaces.

    Punctuation, symbols, emoji, control and zero-width characters become spaces, so that
    `身份证？？` and `身份证` are the same question and a pasted zero-width space splits nothing.
    """
    text = _filter(text[: MAX_QUESTION_CHARS * 2], _KEEP_TABLE)
    if not _convertible().isdisjoint(text):
        text = _convert(text)
    return _SPACE_RUN.sub(" ", _regional(text)).strip()[:MAX_QUESTION_CHARS].rstrip()


class _BatchKeepTable(_KeepTable):
    """`_KEEP_TABLE` that keeps the line break separating texts in `normalize_many`."""

    def __missing__(self, code: int) -> str:
        kept = "\n" if code == 10 else _KEEP_TABLE[code]
        self[code] = kept
        return kept


_BATCH_KEEP_TABLE = _BatchKeepTable()
# Characters the filter keeps as they are (space, line break, a-z, digits, common Chinese
# characters): in a batch only the runs of other characters go through the table.
_FILTERED_RUN = re.compile(r"[^ \na-z0-9\u4e00-\u9fa5]+")


def _filter_batch(text: str) -> str:
    return _FILTERED_RUN.sub(_translate_run, _folded(text))


def _translate_run(match: re.Match[str]) -> str:
    return match.group().translate(_BATCH_KEEP_TABLE)


@lru_cache(maxsize=1)
def _convertible_table() -> npt.NDArray[np.bool_]:
    """`_convertible()` as a table by code point, to test whole batches of text at once."""
    table = np.zeros(0x110000, dtype=bool)
    table[np.fromiter((ord(c) for c in _convertible()), dtype=np.int64)] = True
    return table


def normalize_many(texts: Sequence[str], limit: int = MAX_QUESTION_CHARS) -> list[str]:
    """Normalise many texts at once, exactly as `normalize` does each (indexing is faster so)."""
    if not texts:
        return []
    joined = "\n".join(texts)
    if joined.count("\n") != len(texts) - 1 or max(map(len, texts), default=0) > limit * 2:
        joined = "\n".join(t[: limit * 2].replace("\n", " ") for t in texts)
    filtered = _filter_batch(joined)
    parts = filtered.split("\n")
    codes = np.frombuffer(filtered.encode("utf-32-le"), dtype=np.uint32)
    hits = np.flatnonzero(_convertible_table()[codes])
    if hits.size:
        breaks = np.flatnonzero(codes == 10)
        traditional = np.unique(np.searchsorted(breaks, hits)).tolist()
        converted = _convert("\n".join(parts[i] for i in traditional)).split("\n")
        for i, part in zip(traditional, converted, strict=True):
            parts[i] = part
    parts = _regional("\n".join(parts)).split("\n")
    return [" ".join(part.split())[:limit].rstrip() for part in parts]


def has_cjk(text: str) -> bool:
    """Tell whether text holds at least one Chinese character."""
    return _CJK.search(text) is not None


def detect_language(text: str) -> str:
    """Guess the resident's language: `zh` when there is any Chinese character, else `en`."""
    if has_cjk(text):
        return "zh"
    if re.search(r"[A-Za-z]", text):
        return "en"
    return "zh"


def cjk_runs(text: str) -> list[str]:
    """Return the runs of Chinese characters in text, in order."""
    return _CJK_RUN.findall(text)


def latin_words(text: str) -> list[str]:
    """Return the Latin-script words and numbers of normalised text."""
    # Chinese characters are no part of the pattern, so they separate words as they are.
    return _LATIN_WORD.findall(text)


# Pinyin input methods let a resident pick the wrong character for the right sound; southern
# speakers also blur these initials and finals, so they are folded before comparing sounds.
_FUZZY_PINYIN = (("zh", "z"), ("ch", "c"), ("sh", "s"))
_FUZZY_FINALS = (("ang", "an"), ("eng", "en"), ("ing", "in"))


def _fold_syllable(syllable: str) -> str:
    for long, short in _FUZZY_PINYIN:
        if syllable.startswith(long):
            syllable = short + syllable[len(long) :]
            break
    for long, short in _FUZZY_FINALS:
        if syllable.endswith(long):
            syllable = syllable[: -len(long)] + short
            break
    return syllable


@lru_cache(maxsize=65536)
def char_pinyin(char: str) -> str:
    """Return the first pinyin reading of a Chinese character without its tone (松 → song), or
    "" for a character that has none."""
    # Imported on first use: loading its phrase dictionary is about 0.3 s of CPU, which commands
    # that never compare sounds (audit, db, report, user ...) need not spend.
    from pypinyin import Style, pinyin

    readings = pinyin(char, style=Style.NORMAL, heteronym=False, errors="ignore")
    if readings and readings[0] and readings[0][0].isalpha():
        return str(readings[0][0])
    return ""


@lru_cache(maxsize=65536)
def char_sound(char: str) -> str:
    """Return the first folded pinyin reading of a Chinese character, or the character itself."""
    reading = char_pinyin(char)
    return _fold_syllable(reading) if reading else char


@lru_cache(maxsize=1)
def _dictionary_counts() -> tuple[dict[str, int], dict[str, int], int]:
    """jieba's dictionary in simplified characters: its words of two to four characters seen
    at least three times, its single characters, each with its count, and the count of all."""
    import jieba  # imported here: only its dictionary file is used, and only when needed

    path = os.path.join(os.path.dirname(jieba.__file__), "dict.txt")
    words: list[str] = []
    counts: list[int] = []
    singles: list[str] = []
    single_counts: list[int] = []
    total = 0
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            parts = line.split(" ", 2)
            if len(parts) < 2:
                continue
            word, count = parts[0], int(parts[1])
            total += count
            if not _CJK.match(word):
                continue
            if 2 <= len(word) <= 4 and count >= 3:
                words.append(word)
                counts.append(count)
            elif len(word) == 1:
                singles.append(word)
                single_counts.append(count)
    # Converted in one call, a word a line (no phrase of the converter spans a line break): the
    # same words as one call per word, in a fraction of the time every start spends on them.
    # Two traditional spellings of one word add up.
    by_word: dict[str, int] = {}
    for word, count in zip(_converter.convert("\n".join(words)).split("\n"), counts, strict=True):
        by_word[word] = by_word.get(word, 0) + count
    by_char: dict[str, int] = {}
    for char, count in zip(
        _converter.convert("\n".join(singles)).split("\n"), single_counts, strict=True
    ):
        by_char[char] = by_char.get(char, 0) + count
    return by_word, by_char, total


def general_vocabulary() -> Mapping[str, int]:
    """Return common Chinese words (from jieba's dictionary), each with how often the
    dictionary saw it: known words are not typos.

    Loaded once per process. Words of two to four characters only: those are the ones a
    homophone correction could wrongly replace.
    """
    return _dictionary_counts()[0]


def reading_log_likelihood(words: Iterable[str], other_words: float = 100.0) -> float:
    """The log-probability of a reading (a run cut into `words`) as a unigram model of the
    general vocabulary's counts gives it; a word it lacks (a knowledge base's own term) counts
    `other_words` times, a single character it lacks half a time."""
    counts, chars, total = _dictionary_counts()
    score = 0.0
    for word in words:
        count = counts.get(word) if len(word) > 1 else chars.get(word)
        score += math.log((count or (other_words if len(word) > 1 else 0.5)) / total)
    return score


def likelier_apart(window: str, word: str) -> bool:
    """Whether the characters of `window`, read as words of their own, are at least as likely
    as `word` (a word of the general vocabulary) by jieba's counts: 我是 is two common words,
    not a typo of 我市; 申清 is no likelier than 申请."""
    if word not in _dictionary_counts()[0]:
        return False
    return reading_log_likelihood(window) >= reading_log_likelihood([word])


def unique(values: Iterable[str]) -> list[str]:
    """Return values without repeats, first occurrence kept, empty strings dropped."""
    seen: set[str] = set()
    out: list[str] = []
    for value in values:
        if value and value not in seen:
            seen.add(value)
            out.append(value)
    return out
