"""A follow-up about the card just shown ("多少钱", "要带什么材料"): which part it asks for, and the
part of a real card that answers it (bot/answering/followups.py). The chat's side, with the real
bot, is in tests/test_resident_intents.py."""

from __future__ import annotations

import pytest

from bot.answering.cards import build_card
from bot.answering.followups import chosen_number, focused_card, followup_aspect
from bot.answering.knowledge_base import load_knowledge_base
from bot.core.text import normalize
from tests.fixtures_knowledge import BUNDLED_KNOWLEDGE


@pytest.mark.parametrize(
    ("message", "aspect"),
    [
        ("多少钱", "fee"),
        ("那要多少钱呢？", "fee"),
        ("收费吗", "fee"),
        ("Is it free?", "fee"),
        ("要带什么材料", "materials"),
        ("需要什么材料", "materials"),
        ("What documents do I need?", "materials"),
        ("在哪里办", "place"),
        ("where do I go", "place"),
        ("多久能拿到", "time"),
        ("How long does it take?", "time"),
        ("几点下班", "hours"),
        ("电话多少", "phone"),
        ("具体怎么办理", "steps"),
    ],
)
def test_a_follow_up_names_the_part_of_the_card_it_asks_for(message: str, aspect: str) -> None:
    assert followup_aspect(normalize(message)) == aspect


@pytest.mark.parametrize(
    "message",
    [
        "身份证补办多少钱",
        "社保卡在哪里办",
        "多少钱一平米",
        "要本人去吗",
        "我想问一下",
        "How much is a passport?",
    ],
)
def test_a_question_that_names_its_service_is_not_a_follow_up(message: str) -> None:
    assert followup_aspect(normalize(message)) is None


def test_the_focused_card_keeps_only_the_parts_that_answer() -> None:
    kb = load_knowledge_base(BUNDLED_KNOWLEDGE)
    card = build_card(kb.items["id-card-replacement"], kb, "zh")

    place = focused_card(card, "place")
    assert place is not None
    assert place.title == card.title
    assert place.answer == ""
    assert [s.label for s in place.sections] == ["办理地点", "办公时间"]

    english = focused_card(build_card(kb.items["id-card-replacement"], kb, "en"), "fee")
    assert english is not None
    assert [s.label for s in english.sections] == ["Fee"]


def test_an_item_without_the_part_asked_for_has_no_focused_card() -> None:
    kb = load_knowledge_base(BUNDLED_KNOWLEDGE)
    lacking = [
        item
        for item in kb.items.values()
        if focused_card(build_card(item, kb, "zh"), "materials") is None
    ]
    # Disclosure items list no materials; the chat shows their whole card instead.
    assert lacking
    assert all(not item.get_list("materials", "zh") for item in lacking)


@pytest.mark.parametrize(
    ("message", "number"),
    [
        ("2", 2),
        ("第二个", 2),
        ("我选第一项", 1),
        ("选3", 3),
        ("The first one", 1),
        ("option two", 2),
    ],
)
def test_a_choice_typed_names_its_place(message: str, number: int) -> None:
    assert chosen_number(normalize(message)) == number


@pytest.mark.parametrize("message", ["12", "第十个", "123456", "二手房", "first aid"])
def test_other_numbers_and_words_are_no_choice(message: str) -> None:
    assert chosen_number(normalize(message)) is None
