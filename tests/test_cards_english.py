"""English answer cards are English: over the whole bundled knowledge base, no English card —
as built, as the command line prints it, as Telegram HTML and as the bot's split messages —
holds full-width punctuation, and no Chinese but the proper names the knowledge base gives in
Chinese alone (the titles of laws); Chinese cards keep their Chinese punctuation. A resident
with an English Telegram gets such a card through the real bot.
"""

from __future__ import annotations

import re

import pytest

from bot.answering.cards import (
    CJK,
    FULL_WIDTH,
    Card,
    ascii_punctuation,
    build_card,
    english_phone,
    render_html,
    render_plain,
)
from bot.answering.knowledge_base import Item, KnowledgeBase, load_knowledge_base
from bot.telegram.message_split import card_messages
from tests.fixtures_conversation import BotHarness
from tests.fixtures_knowledge import BUNDLED_KNOWLEDGE

# Full-width punctuation, and the CJK bracket pairs an English text never uses.
FULL_WIDTH_OR_BRACKETS = re.compile(r"[\u3000-\u303f\uff01-\uff60\ufe30-\ufe4f]")


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    """The bundled knowledge base."""
    return load_knowledge_base(BUNDLED_KNOWLEDGE)


def proper_names(item: Item) -> set[str]:
    """Return the lines the knowledge base gives in Chinese alone that name something: the
    titles of laws of an item without an English legal basis."""
    if item.lists.get("legal_basis_en"):
        return set()
    return {ascii_punctuation(line) for line in item.lists.get("legal_basis", ())}


def renderings(card: Card) -> list[str]:
    return [render_plain(card), render_html(card), *card_messages(card)]


def without(text: str, names: set[str]) -> str:
    for name in sorted(names, key=len, reverse=True):
        text = text.replace(name, "")
    return text


def test_no_english_card_holds_full_width_punctuation_or_stray_chinese(
    kb: KnowledgeBase,
) -> None:
    problems: list[str] = []
    for item in kb.items.values():
        card = build_card(item, kb, "en")
        names = proper_names(item)
        for text in renderings(card):
            for found in FULL_WIDTH_OR_BRACKETS.findall(text):
                problems.append(f"{item.id}: full-width {found!r}")
            stray = CJK.findall(without(text, names))
            if stray:
                problems.append(f"{item.id}: Chinese {''.join(stray)[:20]!r}")
    assert problems == []


def test_the_bundled_knowledge_base_has_cards_that_needed_converting(kb: KnowledgeBase) -> None:
    # The check above must be able to fail: the Chinese sources hold exactly what it forbids.
    chinese = [render_html(build_card(item, kb, "zh")) for item in kb.items.values() if item.text]
    assert sum("：" in text for text in chinese) == len(chinese)
    assert any("（或拨打" in text for text in chinese)
    assert any("《" in text for text in chinese)


def test_a_phone_keeps_its_numbers_and_gets_english_words(kb: KnowledgeBase) -> None:
    assert english_phone("012-12333000（或拨打 12333）", kb) == "012-12333000 (or call 12333)"
    # The Disabled Persons' Federation is the department whose number it is.
    assert english_phone("012-81113100；残联咨询 012-81117000", kb) == (
        "012-81113100; Shili City Disabled Persons' Federation 012-81117000"
    )
    # Chinese with no twin is dropped; the numbers stay.
    assert english_phone("夜间值班 012-5550000", kb) == "012-5550000"
    assert english_phone("012-5550000", kb) == "012-5550000"


@pytest.mark.parametrize(
    ("chinese", "english"),
    [
        ("《残疾人残疾分类和分级》（GB/T 26341）", "残疾人残疾分类和分级 (GB/T 26341)"),
        ("9:00-12:00，13:30-17:30；全天", "9:00-12:00, 13:30-17:30; 全天"),
        ("Ａ１２：好！", "A12: 好!"),
        ("「引号」与【括号】", '"引号"与 [括号]'),
    ],
)
def test_full_width_punctuation_becomes_ascii(chinese: str, english: str) -> None:
    converted = ascii_punctuation(chinese)
    assert converted == english
    assert not FULL_WIDTH.search(converted)


def test_chinese_cards_keep_their_punctuation(kb: KnowledgeBase) -> None:
    item = kb.items["basic-pension-claim"]
    text = render_html(build_card(item, kb, "zh"))
    assert "<b>咨询电话</b>：012-12333000（或拨打 12333）" in text
    assert "• 《中华人民共和国社会保险法》" in text
    plain = render_plain(build_card(item, kb, "zh"))
    assert plain.startswith("【")


async def test_an_english_resident_gets_a_card_without_full_width_punctuation(
    bot: BotHarness,
) -> None:
    chat = bot.resident("Alice", language_code="en")
    replies = await chat.send("How do I claim my basic pension")
    card = replies.text
    assert "Phone" in card
    assert "012-12333000 (or call 12333)" in card
    assert not FULL_WIDTH.search(card)
    assert "Legal basis" in card
