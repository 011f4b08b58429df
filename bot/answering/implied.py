"""What a resident's question implies without saying it: where a place is, what an age makes someone.

A knowledge base files its services under the words of the rules, not the resident's story:
travel to Thailand is 国外 (a passport), a trip to 日月潭 is 台湾 (the Taiwan travel permit), a
grandmother of eighty-one is 高龄 (the longevity allowance, from eighty in most places).
"暑假想带爸妈去日月潭和阿里山看看" shares no word with 往来台湾通行证, and the multilingual model
does not know where 日月潭 is either. The matcher reads the words found here after the question
(`Matcher.read`), for its words and its meaning alike.

Places: those outside the mainland whose names are unambiguous in a question (countries, the
larger foreign cities and resorts, Hong Kong's and Macao's districts, Taiwan's cities and
sights). A city in Taiwan, Hong Kong or Macao running the bot is at home there: its own region's
places imply nothing (`home_names`). Places elsewhere on the mainland are not here: "到海南住几个月"
says 异地 only with what follows, and `places.PlaceDetector` reads them.

Ages: a number of years said of a person (八十一了, 满八十, 90岁, 八十多岁) from eighty (高龄老人,
the age of the longevity allowance). Sixty (老年人) was tried and left out: on the practice
bases a resident's age in a story about wages or a bus card drew the answer to elderly
services. Children's ages are left alone: what a six-year-old needs depends on the month and
the school, which the words of a base say better than an age band.

Regions: the same places, with the words that say a region outright (出国, 外国, 香港, 赴台, and a
few English names), tell which of 国外, 港澳 and 台湾 a question is about and which one an
item's title ties it to (`ImpliedWords.regions`); the matcher drops the candidates tied only to
other regions (`Matcher._in_region`).

Written by hand from general knowledge for this project; docs/matching.md ("What a question
implies") says why and what it moved.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from bot.answering.places import names_pattern
from bot.core.text import normalize

ABROAD = "国外"
TAIWAN = "台湾"
HONG_KONG_MACAO = "港澳"
OLDEST = "高龄老人"
# From this age a question about a person speaks of the oldest (高龄), whom most cities pay a
# longevity allowance.
OLDEST_FROM = 80

# Names that stand for a place outside the mainland wherever they occur in a question. Names
# that are also parts of common words carry a lookbehind: 违法国, 道德国, 精英国, 完美国, 今日本.
_FOREIGN = (
    "俄罗斯 俄国 加拿大 墨西哥 巴西 阿根廷 智利 秘鲁 意大利 西班牙 葡萄牙 荷兰 比利时 瑞士 瑞典 "
    "挪威 丹麦 芬兰 冰岛 爱尔兰 奥地利 波兰 捷克 匈牙利 希腊 土耳其 乌克兰 埃及 南非 肯尼亚 "
    "尼日利亚 摩洛哥 以色列 伊朗 伊拉克 沙特 阿联酋 卡塔尔 印度 巴基斯坦 孟加拉 尼泊尔 斯里兰卡 "
    "马尔代夫 泰国 越南 老挝 柬埔寨 缅甸 马来西亚 新加坡 印尼 印度尼西亚 菲律宾 文莱 韩国 "
    "蒙古国 澳大利亚 澳洲 新西兰 欧洲 美洲 非洲 东南亚 东京 大阪 北海道 冲绳 首尔 济州岛 釜山 "
    "曼谷 普吉岛 清迈 芭提雅 巴厘岛 吉隆坡 河内 胡志明市 岘港 纽约 洛杉矶 旧金山 芝加哥 华盛顿 "
    "西雅图 波士顿 温哥华 多伦多 伦敦 巴黎 柏林 罗马 米兰 马德里 莫斯科 悉尼 墨尔本 迪拜"
).split()
_FOREIGN_GUARDED = (
    ("日本", r"(?<![今昨明每当次节假平])日本"),
    ("美国", r"(?<![完精甜])美国"),
    ("英国", r"(?<![精])英国"),
    ("法国", r"(?<![违合依执守非立宪司])法国"),
    ("德国", r"(?<![道品美公])德国"),
    ("朝鲜", r"朝鲜(?!族)"),
)
_HONG_KONG_MACAO = (
    "香港 澳门 尖沙咀 旺角 铜锣湾 维多利亚港 兰桂坊 九龙 新界 大屿山 大三巴 氹仔 路环"
).split()
_TAIWAN = (
    "台北 新北 台中 台南 高雄 基隆 新竹 嘉义 花莲 台东 宜兰 屏东 垦丁 南投 彰化 苗栗 澎湖 "
    "金门 马祖 日月潭 阿里山 太鲁阁 西门町 士林夜市"
).split()

# The words that tie a matter to a region outside the mainland, in a question or in an item's
# title: 往来台湾通行证 is for Taiwan, 港澳台居民居住证 for all three, a passport for none.
_REGION_WORDS = (
    (ABROAD, r"国外|外国(?!语)|出国|海外|华侨|侨胞|\babroad\b|\boverseas\b|\bforeign\b"),
    (HONG_KONG_MACAO, r"港澳|香港|澳门|\bhong ?kong\b|\bmaca[ou]\b"),
    (TAIWAN, r"台湾|港澳台|赴台|台胞|\btaiwan\b"),
)
# English names of the places residents travel to most, for the regions of an English question.
_ENGLISH_PLACES = (
    (
        ABROAD,
        "japan tokyo osaka korea seoul thailand bangkok phuket singapore malaysia vietnam "
        "indonesia bali philippines india america usa canada mexico brazil britain england uk "
        "london france paris germany italy spain europe russia australia sydney dubai",
    ),
    (HONG_KONG_MACAO, "kowloon"),
    (TAIWAN, "taipei kaohsiung"),
)

_DIGITS = "零一二三四五六七八九"
# An age as residents write it: 65, 八十, 八十一, 七十三, 一百, 一百零二.
_AGE = r"(?P<age>1[0-2][0-9]|[1-9][0-9]|一百(?:零?[一二三四五六七八九]|一十[一二三四五六七八九]?)?|[二三四五六七八九]?十[一二三四五六七八九]?)"
# What may follow an age in a question about a person, and what may not (a unit: 八十块, 满八十天).
_AFTER_AGE = r"(?:多|来)?(?:周岁|岁|了|啦|出头)?"
_NOT_A_UNIT = (
    r"(?![0-9零一二三四五六七八九十百千万多来天分块元角米个年月日号次斤里度份张套件平户人项条门])"
)
_AGE_PATTERNS = (
    re.compile(rf"{_AGE}(?:多|来)?(?:周岁|岁)"),
    re.compile(
        rf"(?:今年|已经|都|年满|满|过了|超过|快|到了|活到|年过|年近|已满)\s*{_AGE}{_AFTER_AGE}{_NOT_A_UNIT}"
    ),
    # Said of someone: 我爸八十五了, 老伴九十啦.
    re.compile(rf"[我他她爸妈爹娘爷奶姥婆公伴辈亲嬷]{_AGE}(?:多|来)?(?:了|啦){_NOT_A_UNIT}"),
)


def chinese_number(text: str) -> int | None:
    """The value of a whole number below a thousand as written in digits or Chinese numerals."""
    if text.isdigit():
        return int(text)
    value = 0
    current = 0
    for char in text:
        if char in _DIGITS:
            current = _DIGITS.index(char)
        elif char == "十":
            value += (current or 1) * 10
            current = 0
        elif char == "百":
            value += (current or 1) * 100
            current = 0
        else:
            return None
    return value + current


class ImpliedWords:
    """The words a question implies, for one city (`home_names` as in `MatchingThresholds`)."""

    def __init__(self, home_names: Iterable[str]) -> None:
        home = [normalize(name) for name in home_names if name]
        regions = [(ABROAD, names_pattern(_FOREIGN, _FOREIGN_GUARDED))]
        # A city of Taiwan, Hong Kong or Macao is at home in its region.
        away = {ABROAD}
        for word, names in ((HONG_KONG_MACAO, _HONG_KONG_MACAO), (TAIWAN, _TAIWAN)):
            if not any(place in name or name in place for place in names for name in home):
                regions.append((word, names_pattern(names)))
                away.add(word)
        self._regions = tuple(regions)
        english = dict(_ENGLISH_PLACES)
        self._region_words = tuple(
            (
                word,
                re.compile(
                    words + "".join(rf"|\b{re.escape(name)}\b" for name in english[word].split())
                ),
            )
            for word, words in _REGION_WORDS
            if word in away
        )

    def words(self, normalized: str) -> tuple[str, ...]:
        """The words the (normalised) question implies and does not already say."""
        found: list[str] = []
        for word, pattern in self._regions:
            if word not in normalized and pattern.search(normalized):
                found.append(word)
        if OLDEST not in normalized and any(age >= OLDEST_FROM for age in _ages(normalized)):
            found.append(OLDEST)
        return tuple(found)

    def regions(self, normalized: str) -> frozenset[str]:
        """The regions outside the mainland (and outside this city's own) that a question or an
        item's title names or implies: 国外, 港澳, 台湾. An item tied to one region is no answer
        to a question about another (`Matcher._in_region`)."""
        found = {word for word, pattern in self._region_words if pattern.search(normalized)}
        found.update(word for word, pattern in self._regions if pattern.search(normalized))
        return frozenset(found)


def _ages(normalized: str) -> Iterable[int]:
    for pattern in _AGE_PATTERNS:
        for match in pattern.finditer(normalized):
            age = chinese_number(match.group("age"))
            if age is not None and age <= 120:
                yield age
