"""Whatever arrives in a chat, the matcher answers with one decision and a score in 0..1."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from hypothesis import example, given, settings
from hypothesis import strategies as st

from bot.answering.store import LoadedKnowledge
from bot.core.text import normalize, normalize_many

# Bounded so that the whole file runs in a few seconds; the examples below cover the extremes.
# A question of 100,000 characters takes tens of milliseconds (it is cut to MAX_QUESTION_CHARS),
# so there is no per-example deadline.
BOUNDED = settings(max_examples=150, deadline=None)
TestFunction = TypeVar("TestFunction", bound=Callable[..., Any])

# What residents (and whoever pastes into a chat) send: Chinese of both scripts, Latin, digits,
# punctuation of both widths, emoji, and the invisible characters pasted from web pages.
_PIECES = st.sampled_from(
    [
        "社保卡",
        "身份證",
        "公积金",
        "怎么办",
        "怎麼辦",
        "ID card",
        "renew",
        "北京市",
        "你好",
        "？",
        "！",
        "，",
        "😀",
        "👨\u200d👩\u200d👧",
        "\u200b",
        "\ufeff",
        "\x00",
        "\x1b[0m",
        "\r\n",
        "\u3000",
        "ｆｕｌｌ",
        "<script>alert(1)</script>",
        "'; DROP TABLE items;--",
        "Ⅻ",
        "İ",
        "麼",
        "ß",
        "مرحبا",
        "привет",
        "こんにちは",
        "안녕",
    ]
)
RESIDENT_TEXT = st.one_of(
    st.text(max_size=80),
    st.lists(_PIECES, max_size=12).map("".join),
    st.lists(st.one_of(_PIECES, st.text(max_size=4)), max_size=10).map("".join),
)

EXTREMES = [
    "",
    " ",
    "\t\n \u3000",
    "社" * 100_000,
    "身份证丢了怎么办？" * 12_000,
    "😀🎉🙏👍🏻🇨🇳",
    "\x00\x01\x02\x07\x1b\x7f",
    "\u200b\u200c\u200d\u2060\ufeff",
    "身份证 ID card 护照 passport مرحبا привет 123",
    "<script>alert('社保卡')</script>",
    "'; DROP TABLE items;--",
    "Robert'); DROP TABLE students;--",
    "%s%s%s%n {0} ${jndi:ldap://x}",
    "\ud800",
]


def with_extremes(test: TestFunction) -> TestFunction:
    """Add every extreme text as an explicit example."""
    for text in EXTREMES:
        test = example(text=text)(test)
    return test


@BOUNDED
@with_extremes
@given(text=RESIDENT_TEXT)
def test_match_never_fails_and_decides_once(bundled: LoadedKnowledge, text: str) -> None:
    result = bundled.matcher.match(text)

    assert result.decision in ("answer", "suggest", "escalate", "report", "decline")
    assert 0.0 <= result.score <= 1.0
    assert all(0.0 <= c.score <= 1.0 for c in result.candidates)
    assert result.question == text
    if result.decision in ("answer", "suggest"):
        assert result.candidates
    if result.intent == "small_talk":
        assert result.decision == "decline"


@BOUNDED
@with_extremes
@given(text=RESIDENT_TEXT)
def test_normalising_twice_changes_nothing(text: str) -> None:
    once = normalize(text)

    assert normalize(once) == once
    assert once == once.strip()
    assert "  " not in once


@BOUNDED
@given(texts=st.lists(st.one_of(RESIDENT_TEXT, st.sampled_from(EXTREMES[:12])), max_size=6))
def test_batch_normalising_equals_one_at_a_time(texts: list[str]) -> None:
    # The index normalises every text of a knowledge base in one batch, on a faster path.
    assert normalize_many(texts) == [normalize(t) for t in texts]
