"""Normalisation: whatever a resident types, the matcher sees one canonical form."""

from __future__ import annotations

import pytest

from bot.core.text import MAX_QUESTION_CHARS, char_sound, detect_language, normalize


@pytest.mark.parametrize(
    ("typed", "seen"),
    [
        ("ＩＤ　ｃａｒｄ　１２３", "id card 123"),
        ("身份证？？！", "身份证"),
        ("【身份证】怎么换。", "身份证 怎么换"),
        ("１２３４５热线", "12345热线"),
        ("㍿", "株式会社"),
    ],
)
def test_full_width_and_compatibility_forms_become_plain(typed: str, seen: str) -> None:
    assert normalize(typed) == seen


@pytest.mark.parametrize(
    ("traditional", "simplified"),
    [
        ("身份證到期了怎麼換", "身份证到期了怎么换"),
        ("戶口名簿遺失", "户口簿遗失"),
        ("請問國民年金怎麼繳費", "请问国民年金怎么缴费"),
    ],
)
def test_traditional_chinese_becomes_simplified(traditional: str, simplified: str) -> None:
    assert normalize(traditional) == simplified


@pytest.mark.parametrize(
    ("taiwan", "mainland"),
    [
        ("計程車", "出租车"),
        ("身分證補發", "身份证补发"),
        ("健保卡遺失", "医保卡遗失"),
        ("駕駛執照換發", "驾驶证换发"),
        ("國小入學", "小学入学"),
        ("機車牌照", "摩托车牌照"),
    ],
)
def test_taiwan_wording_becomes_mainland_wording(taiwan: str, mainland: str) -> None:
    assert normalize(taiwan) == mainland


@pytest.mark.parametrize(
    ("taiwan", "mainland"),
    [
        # The documents to bring, not data; archives, not files; an official document, not a
        # computer's; a house on offer, not an object.
        ("需要檢附什麼資料", "需要检附什么资料"),
        ("個人資料保護", "个人资料保护"),
        ("檔案管理局", "档案管理局"),
        ("政府機關的文件", "政府机关的文件"),
        ("租屋物件", "租屋物件"),
        # Only these words: the rest of the phrase table still applies around them.
        ("上網填資料叫計程車", "上网填资料叫出租车"),
    ],
)
def test_service_words_keep_their_sense_through_the_phrase_tables(
    taiwan: str, mainland: str
) -> None:
    assert normalize(taiwan) == mainland


def test_simplified_text_stays_as_it_is() -> None:
    for text in ("社保卡丢了怎么补办", "怎么办", "好么", "要么今天要么明天", "公积金提取"):
        assert normalize(text) == text


def test_case_is_folded() -> None:
    assert normalize("How do I renew my ID Card") == "how do i renew my id card"
    assert normalize("STRASSE Straße") == "strasse strasse"


def test_zero_width_characters_split_nothing() -> None:
    assert normalize("身\u200b份\u200c证\u200d丢了\ufeff") == "身份证丢了"
    assert normalize("社保\u2060卡") == "社保卡"


def test_control_characters_and_line_breaks_are_spaces() -> None:
    assert normalize("身份证\x00丢了\x07") == "身份证 丢了"
    assert normalize("第一行\r\n第二行\t第三行") == "第一行 第二行 第三行"
    assert normalize("\x00\x1b[31m\x7f") == "31m"


def test_emoji_and_symbols_are_dropped() -> None:
    assert normalize("身份证丢了😭😭怎么办🙏") == "身份证丢了 怎么办"
    assert normalize("👨‍👩‍👧‍👦🇨🇳❤️") == ""
    assert normalize("★☆→←※") == ""


def test_empty_and_blank_text_is_empty() -> None:
    for text in ("", " ", "\u3000\u3000", "\n\t", "？！。，"):
        assert normalize(text) == ""


def test_very_long_text_is_cut() -> None:
    letter = "我想问一下关于社保卡的事情" * 10_000

    normalized = normalize(letter)

    assert len(normalized) == MAX_QUESTION_CHARS
    assert normalized.startswith("我想问一下关于社保卡的事情")


def test_cut_text_has_no_trailing_space() -> None:
    text = "a" * (MAX_QUESTION_CHARS - 1) + " b"

    assert normalize(text) == "a" * (MAX_QUESTION_CHARS - 1)


def test_language_is_chinese_when_there_is_any_chinese_character() -> None:
    assert detect_language("How do I renew my ID card?") == "en"
    assert detect_language("ID card 丢了") == "zh"
    assert detect_language("12345") == "zh"


def test_homophones_share_one_sound() -> None:
    # 社宝卡 for 社保卡, 身份正 for 身份证, 公基金 for 公积金: the typos a pinyin keyboard makes.
    assert char_sound("宝") == char_sound("保")
    assert char_sound("正") == char_sound("证")
    assert char_sound("基") == char_sound("积")
    # zh/z, sh/s, -ng/-n are folded, as southern speakers blur them.
    assert char_sound("证") == char_sound("怎")
    assert char_sound("社") == char_sound("色")
    assert char_sound("A") == "A"
