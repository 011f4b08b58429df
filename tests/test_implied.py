"""The words a question implies (bot/answering/implied.py): where a place is, what an age makes
someone; and that the matcher reads them after the question."""

from __future__ import annotations

import pytest

from bot.answering.implied import (
    ABROAD,
    HONG_KONG_MACAO,
    OLDEST,
    TAIWAN,
    ImpliedWords,
    chinese_number,
)
from bot.answering.matching import home_names
from bot.core.text import normalize

SHILI = ImpliedWords(home_names("示例市", "Shili City"))
TAIPEI = ImpliedWords(home_names("臺北市", "Taipei City"))


def implied(question: str, city: ImpliedWords = SHILI) -> tuple[str, ...]:
    return city.words(normalize(question))


@pytest.mark.parametrize(
    ("question", "words"),
    [
        ("暑假想带爸妈去日月潭和阿里山看看", (TAIWAN,)),
        ("明年第一次出国，打算去泰国玩", (ABROAD,)),
        ("孩子要去英国读书", (ABROAD,)),
        ("下个月去東京出差，护照过期了", (ABROAD,)),
        ("周末去铜锣湾买东西要办什么", (HONG_KONG_MACAO,)),
        ("我奶奶今年八十一了，政府是不是有啥钱可以领", (OLDEST,)),
        ("我妈刚满八十，听说过了八十每个月政府会发点钱", (OLDEST,)),
        ("老人92岁了", (OLDEST,)),
        ("我爷爷八十多岁了", (OLDEST,)),
        ("一百零二岁的老寿星", (OLDEST,)),
        # Said already: nothing to add.
        ("去台湾日月潭要办什么证", ()),
        ("国外回来的驾照怎么换", ()),
        # Not a place: 法国 inside 违法国家, 日本 inside 今日本市, 朝鲜族 a people of China.
        ("违法国家规定的怎么投诉", ()),
        ("今日本市停水吗", ()),
        ("朝鲜族的节日放假吗", ()),
        # Not an age of eighty or more: a sum, a number of days, a younger person.
        ("满八十天可以续签吗", ()),
        ("已经八十多天了还没办好", ()),
        ("超过100块要交税吗", ()),
        ("我爸今年65了，想坐公交便宜点", ()),
        ("孩子今年六岁了", ()),
    ],
)
def test_a_question_implies_where_a_place_is_and_what_an_age_makes_someone(
    question: str, words: tuple[str, ...]
) -> None:
    assert implied(question) == words


def test_a_city_in_taiwan_is_at_home_there() -> None:
    assert implied("暑假想去日月潭看看", TAIPEI) == ()
    assert implied("在台中的户口怎么迁", TAIPEI) == ()
    # Abroad, Hong Kong and age are the same for every city.
    assert implied("去泰国玩要什么证", TAIPEI) == (ABROAD,)
    assert implied("去香港要什么证", TAIPEI) == (HONG_KONG_MACAO,)
    assert implied("阿嬤九十歲了", TAIPEI) == (OLDEST,)


def test_a_place_and_an_age_are_both_read() -> None:
    assert implied("我爸八十五了，想去日本看看") == (ABROAD, OLDEST)


@pytest.mark.parametrize(
    ("written", "value"),
    [("65", 65), ("八十", 80), ("八十一", 81), ("十八", 18), ("一百", 100), ("一百零二", 102),
     ("一百一十", 110), ("九十九", 99), ("岁", None)],
)  # fmt: skip
def test_chinese_numbers_are_read_as_residents_write_them(written: str, value: int | None) -> None:
    assert chinese_number(written) == value


@pytest.mark.parametrize(
    ("text", "regions"),
    [
        # Questions: said, implied by a place, or in English.
        ("明年第一次出国，打算去泰国玩", {ABROAD}),
        ("外国人在这边工作要办什么", {ABROAD}),
        ("周末去铜锣湾买东西要办什么", {HONG_KONG_MACAO}),
        ("暑假想带爸妈去日月潭看看", {TAIWAN}),
        ("先去香港再去台湾", {HONG_KONG_MACAO, TAIWAN}),
        ("Going to Japan next month, what documents do I need?", {ABROAD}),
        ("my daughter will study overseas", {ABROAD}),
        ("travel permit for hong kong", {HONG_KONG_MACAO}),
        # Items' titles: a permit for one region, a residence permit for three, a passport none.
        ("往来台湾通行证及签注办理", {TAIWAN}),
        ("往来港澳通行证及签注办理", {HONG_KONG_MACAO}),
        ("港澳台居民居住证申领", {HONG_KONG_MACAO, TAIWAN}),
        ("普通护照申领（首次申领、换发）", set()),
        # Not a region: a foreign-language school, 日本 inside 今日本市, a question of home.
        ("外国语学校怎么报名", set()),
        ("今日本市停水吗", set()),
        ("身份证丢了怎么补办", set()),
    ],
)
def test_the_region_a_question_or_a_title_is_tied_to(text: str, regions: set[str]) -> None:
    assert SHILI.regions(normalize(text)) == regions


def test_a_city_in_taiwan_has_no_region_of_taiwan() -> None:
    assert TAIPEI.regions(normalize("台湾的户口怎么迁")) == frozenset()
    assert TAIPEI.regions(normalize("去高雄玩")) == frozenset()
    assert TAIPEI.regions(normalize("去香港和泰国玩")) == {HONG_KONG_MACAO, ABROAD}
