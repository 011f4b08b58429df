"""The parts of the conversation that need no Telegram: strings, long messages, flood limit,
office hours, and teaching the knowledge base a phrasing."""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path

import pytest

from bot.answering.cards import Card, Section, build_card
from bot.answering.knowledge_base import load_knowledge_base
from bot.answering.learning import PhrasingTeacher, clean_phrasing
from bot.answering.staff_hours import OfficeHours
from bot.answering.store import KnowledgeStore, thresholds_from
from bot.core.i18n import CatalogError, Html, add_strings, t
from bot.telegram.flood import FloodGate
from bot.telegram.message_split import TELEGRAM_LIMIT, card_messages, utf16_length
from handlers.browse import card_parts
from handlers.start import back_to_menu
from tests.fixtures_conversation import conversation_settings
from tests.fixtures_knowledge import BUNDLED_KNOWLEDGE


def test_parameters_are_escaped_but_the_catalogs_markup_is_kept() -> None:
    text = t("staff_answer_to_resident", "en", question="<b>x</b>", answer="a & b")
    assert text.startswith("👩‍💼 <b>Answer from a member of staff</b>")
    assert "&lt;b&gt;x&lt;/b&gt;" in text
    assert "a &amp; b" in text


def test_html_built_by_the_catalog_goes_into_another_string_unescaped() -> None:
    inner = t("staff_no_candidates", "zh", reason="no_match")
    outer = t("staff_repost_prefix", "zh", minutes=5, count=1) + inner
    assert isinstance(inner, Html)
    assert "<b>5 分钟仍未答复</b>" in outer


def test_an_unknown_language_falls_back_to_chinese() -> None:
    assert t("menu_back", "fr") == t("menu_back", "zh") == "🏠 主菜单"


def test_an_area_cannot_add_a_string_without_english_or_with_other_parameters() -> None:
    with pytest.raises(CatalogError, match="languages"):
        add_strings("test", {"x_only_zh": {"zh": "好"}})
    with pytest.raises(CatalogError, match="parameters"):
        add_strings("test", {"x_params": {"zh": "{a}", "en": "{b}"}})
    with pytest.raises(CatalogError, match="already defined"):
        add_strings("test", {"menu_back": {"zh": "回", "en": "Back"}})


def test_a_long_card_is_cut_into_messages_under_telegrams_limit_without_breaking_html() -> None:
    steps = tuple(f"第{n}步：请携带 <身份证> & 户口簿到窗口办理。" * 8 for n in range(60))
    card = Card(
        title="很长的事项",
        answer="答" * 5000,
        sections=(Section("办理流程", lines=steps, numbered=True), Section("收费", text="免费")),
    )
    messages = card_messages(card)
    assert len(messages) > 3
    assert all(utf16_length(m) <= TELEGRAM_LIMIT for m in messages)
    joined = "\n".join(messages)
    assert joined.count("<b>") == joined.count("</b>") == 3
    assert "&lt;身份证&gt; &amp; 户口簿" in joined
    assert "<身份证>" not in joined
    assert "60. " in joined
    assert joined.count("答") == 5000


def test_a_flooding_resident_is_told_once_and_let_through_again_later() -> None:
    gate = FloodGate(limit=3, window=10)
    verdicts = [gate.check(1, now) for now in (0, 1, 2, 3, 4)]
    assert [v.allowed for v in verdicts] == [True, True, True, False, False]
    assert [v.notify for v in verdicts] == [False, False, False, True, False]
    assert verdicts[3].retry_after == 7
    assert gate.check(2, 4).allowed  # someone else is not held back
    assert gate.check(1, 10.5).allowed


def test_residents_hear_when_staff_are_at_work_with_holidays_counted() -> None:
    hours = OfficeHours.parse("09:00-17:30", "Asia/Shanghai")
    thursday_morning = dt.datetime(2026, 11, 26, 2, 0, tzinfo=dt.UTC)  # 10:00 in Shanghai
    assert hours.is_open(thursday_morning)
    friday_evening = dt.datetime(2026, 11, 27, 11, 0, tzinfo=dt.UTC)  # 19:00
    assert hours.next_opening(friday_evening).isoformat() == "2026-11-30T09:00:00+08:00"
    national_day = dt.datetime(2026, 10, 1, 2, 0, tzinfo=dt.UTC)
    assert not hours.is_open(national_day)
    assert hours.next_opening(national_day).date() == dt.date(2026, 10, 8)


def test_a_phrasing_is_cleaned_to_one_bounded_line() -> None:
    assert clean_phrasing("  身份证\n丢了\t怎么办\x00 ") == "身份证 丢了 怎么办"
    assert len(clean_phrasing("长" * 1000)) == 200


def temporary_files(folder: Path) -> list[Path]:
    return list(folder.glob("guides/.*.tmp"))


@pytest.fixture
def teacher_store(knowledge_copy: Path) -> KnowledgeStore:
    settings = conversation_settings("sqlite+aiosqlite://")
    return KnowledgeStore(knowledge_copy, thresholds_from(settings))


async def test_teaching_a_phrasing_appends_it_to_the_item_file_and_reloads(
    teacher_store: KnowledgeStore, knowledge_copy: Path
) -> None:
    teacher = PhrasingTeacher(teacher_store)
    path = knowledge_copy / "guides" / "id-card-replacement.toml"
    before = path.read_text(encoding="utf-8")
    phrasing = '身份证被狗叼走了 "咋整"'
    result = await teacher.add_phrasing("id-card-replacement", phrasing)
    assert result.status == "learned"
    after = path.read_text(encoding="utf-8")
    data = tomllib.loads(after)
    assert data["questions"][-1] == phrasing
    assert dict(tomllib.loads(before), questions=data["questions"]) == data
    assert phrasing in teacher_store.kb.items["id-card-replacement"].questions
    again = await teacher.add_phrasing("id-card-replacement", phrasing)
    assert again.status == "duplicate"
    assert (await teacher.add_phrasing("no-such-item", "问题")).status == "unknown_item"


async def test_a_broken_knowledge_base_keeps_serving_and_the_item_file_is_restored(
    teacher_store: KnowledgeStore, knowledge_copy: Path
) -> None:
    teacher = PhrasingTeacher(teacher_store)
    (knowledge_copy / "guides" / "broken.toml").write_text("id = [", encoding="utf-8")
    path = knowledge_copy / "guides" / "id-card-replacement.toml"
    before = path.read_text(encoding="utf-8")
    result = await teacher.add_phrasing("id-card-replacement", "身份证找不到了")
    assert result.status == "invalid"
    assert path.read_text(encoding="utf-8") == before
    assert "身份证找不到了" not in teacher_store.kb.items["id-card-replacement"].questions
    assert not temporary_files(knowledge_copy)


def test_a_card_is_built_once_per_knowledge_base_load_and_language() -> None:
    first_load = load_knowledge_base(BUNDLED_KNOWLEDGE)
    item = first_load.items["id-card-replacement"]
    pieces, rows = card_parts(first_load, item, "zh")
    assert card_parts(first_load, item, "zh") is card_parts(first_load, item, "zh")
    assert pieces == tuple(card_messages(build_card(item, first_load, "zh")))
    assert rows[-1][0].callback_data == back_to_menu("zh").callback_data
    english, _ = card_parts(first_load, item, "en")
    assert english != pieces
    # A reload (a new knowledge base) builds its cards afresh.
    second_load = load_knowledge_base(BUNDLED_KNOWLEDGE)
    assert card_parts(second_load, second_load.items[item.id], "zh") is not card_parts(
        first_load, item, "zh"
    )
