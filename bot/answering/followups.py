"""A follow-up about the item just shown: "多少钱", "要带什么材料", "在哪里办" on their own; and
"第二个" or "2" after a choice of items.

Residents read a card and then ask about one part of it in a few words, naming no service. Read
alone, such a message matches every item about as well (a choice of allowances and budgets for
"多少钱"); read after a card, it means that card's item. `followup_aspect` tells whether a
message is nothing but such a question and which part it asks for; `focused_card` keeps the
parts of a card that answer it. The chat (handlers/questions.py) answers with the item shown
last, when it was shown recently, and otherwise asks which service is meant. `chosen_number`
reads a choice made in words ("第二个", "2", "the first one") as the press of that item's button.
"""

from __future__ import annotations

import re
from dataclasses import replace

from bot.answering.cards import Card, label

# What a follow-up asks for, and the card's sections (by their field) that answer it.
ASPECT_FIELDS: dict[str, tuple[str, ...]] = {
    "fee": ("fee",),
    "materials": ("materials",),
    "place": ("location", "hours"),
    "time": ("time_limit",),
    "hours": ("hours", "location"),
    "phone": ("phone", "department"),
    "steps": ("steps",),
}

_ZH: dict[str, str] = {
    "fee": (
        r"(?:要|需要|得)?(?:多少钱|几块钱|多少费用|收费吗|收不收费|收钱吗|要钱吗|花多少钱|"
        r"交多少钱|免费|是免费|收费|收不收钱|要钱|要不要钱|费用(?:多少|是多少)?|工本费(?:多少)?|怎么收费|收多少)"
    ),
    "materials": (
        r"(?:要|需要|得)?(?:带|准备|提供|交)(?:些|点)?(?:什么|啥|哪些)(?:材料|资料|东西|证件)?"
        r"|(?:要|需要|得)(?:什么|啥|哪些)(?:材料|资料|证件)|(?:材料|资料)(?:有哪些|是什么|要哪些)?"
    ),
    "place": (
        r"(?:在|去|到)(?:哪|哪里|哪儿|什么地方|哪个地方)(?:办|办理|申请|弄|交)?"
        r"|(?:哪里|哪儿)(?:办|办理|可以办|能办)|地址(?:在哪|是哪|是什么)?|办理地点"
    ),
    "time": (
        r"(?:要|需要)?(?:多久|多长时间|几天|多少天|几个工作日)(?:能|可以|才能)?(?:拿到|办好|下来|办完|出来)?"
        r"|什么时候(?:能|可以)?(?:拿到|办好|下来|出来)|时限(?:多久)?"
    ),
    "hours": r"(?:几点|什么时候)(?:上班|下班|开门|关门)|(?:办公|上班|工作)时间(?:是)?",
    "phone": r"(?:咨询)?(?:电话|联系电话|联系方式)(?:多少|是多少|号码)?|怎么联系",
    "steps": r"(?:具体)?(?:怎么办|怎么办理|流程|步骤|办理流程)(?:是什么|是怎样的|有哪些)?",
}
_EN: dict[str, str] = {
    "fee": r"how much(?: is it| does it cost)?|is it free|what(?:'s| is) the fee|any fee|cost",
    "materials": r"what (?:do i need to |should i )?bring|what documents(?: do i need)?",
    "place": r"where(?: do i go| is it| can i do (?:it|this)| to go)?|what(?:'s| is) the address",
    "time": r"how long(?: does it take| will it take)?",
    "hours": r"(?:what are the )?(?:opening|office) hours|when (?:is it|are they) open",
    "phone": r"(?:what(?:'s| is) the )?phone(?: number)?|how (?:do i|can i) contact them",
    "steps": r"what are the steps|how do i do (?:it|this)",
}
# Words that may come before a follow-up ("那", "请问", "还有") and particles after it.
_LEAD_ZH = r"(?:那|那么|那请问|请问|还有|另外|再问一下|问一下|那个)?"
_LEAD_EN = r"(?:and |so |also |then |ok |okay )?"
_PATTERNS = {
    aspect: re.compile(
        rf"{_LEAD_ZH}(?:{zh}){_LEAD_ZH}|{_LEAD_EN}(?:{_EN[aspect]})(?: then| please)?"
    )
    for aspect, zh in _ZH.items()
}
# Particles and punctuation at the end ("那要多少钱呢？"), punctuation and spaces anywhere.
_END = re.compile(r"(?:[吗呢啊吧呀了的嘛哦]|[\s,.!?，。！？、~])+$")
_PUNCTUATION = re.compile(r"[\s,.!?，。！？、~]+")


def followup_aspect(normalized: str) -> str | None:
    """The part of a card a (normalised) message asks for, when that is all it says."""
    text = _PUNCTUATION.sub(" ", _END.sub("", normalized)).strip()
    if not text or len(text) > 30:
        return None
    compact = text.replace(" ", "")
    for aspect, pattern in _PATTERNS.items():
        if pattern.fullmatch(compact) or pattern.fullmatch(text):
            return aspect
    return None


def focused_card(card: Card, aspect: str) -> Card | None:
    """The card with only the sections that answer `aspect`; None when the item has none."""
    wanted = {label(field, card.language) for field in ASPECT_FIELDS[aspect]}
    sections = tuple(s for s in card.sections if s.label in wanted)
    if not sections:
        return None
    return replace(card, answer="", sections=sections)


_NUMBERS = {"1": 1, "2": 2, "3": 3, "4": 4, "5": 5, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4}
_NUMBERS |= {"五": 5, "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5}
_NUMBERS |= {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5}
_CHOICE_ZH = re.compile(r"(?:我要|我选|选|要|是)?第?(?P<n>[1-5一二两三四五])(?:个|项|条|号)?")
_CHOICE_EN = re.compile(
    r"(?:the |i want the |i'll take the )?(?P<n>first|second|third|fourth|fifth)(?: one| item)?"
    r"|(?:number |option |no\. ?|#)(?P<m>[1-5]|one|two|three|four|five)"
)


def chosen_number(normalized: str) -> int | None:
    """The place (from 1) of the item a (normalised) message picks from a choice ("第二个")."""
    text = _PUNCTUATION.sub(" ", _END.sub("", normalized)).strip()
    if not text or len(text) > 20:
        return None
    found = _CHOICE_ZH.fullmatch(text.replace(" ", "")) or _CHOICE_EN.fullmatch(text)
    if found is None:
        return None
    return _NUMBERS[found.group("n") or found.group("m")]
