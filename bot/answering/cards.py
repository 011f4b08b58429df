"""The answer card: everything a resident needs to act on one item, in their language.

The card is built once as sections and rendered as plain text (the command line) or as Telegram
HTML with every piece of knowledge-base text escaped.

An English card is English throughout. Its texts are the knowledge base's `*_en` fields; where a
field has no English twin, its full-width punctuation becomes ASCII (`（` → ` (`, `：` → `: `)
and Chinese fragments around phone numbers are replaced by their English twin (the department
whose number it is, per knowledge/departments.toml) or a connective of `PHONE_WORDS`, or
dropped. Only proper names the knowledge base gives in Chinese alone — the titles of laws in
`legal_basis` — stay Chinese.
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass

from bot.answering.knowledge_base import Item, KnowledgeBase

_LABELS = {
    "zh": {
        "answer": "答复",
        "materials": "需要带的材料",
        "steps": "办理流程",
        "time_limit": "办理时限",
        "fee": "收费",
        "location": "办理地点",
        "hours": "办公时间",
        "phone": "咨询电话",
        "department": "负责部门",
        "legal_basis": "办理依据",
        "url": "网址",
        "updated": "更新日期",
        "disclosure": "公开方式",
        "period": "公开时限",
        "published_in": "公开渠道",
        "exempt_reason": "不予公开的理由",
        "alternative": "您可以这样做",
        "proactive": "主动公开",
        "on_request": "依申请公开",
        "exempt": "不予公开",
        "address": "地址",
    },
    "en": {
        "answer": "Answer",
        "materials": "What to bring",
        "steps": "Steps",
        "time_limit": "Time limit",
        "fee": "Fee",
        "location": "Where",
        "hours": "Hours",
        "phone": "Phone",
        "department": "Department",
        "legal_basis": "Legal basis",
        "url": "Web",
        "updated": "Updated",
        "disclosure": "Disclosure",
        "period": "Published",
        "published_in": "Where published",
        "exempt_reason": "Why it is not disclosed",
        "alternative": "What you can do instead",
        "proactive": "published proactively",
        "on_request": "on request",
        "exempt": "not disclosed",
        "address": "Address",
    },
}


# Full-width punctuation and what an English text writes instead (spaces tidied afterwards).
ASCII_PUNCTUATION = {
    "，": ", ",
    "、": ", ",
    "；": "; ",
    "：": ": ",
    "。": ". ",
    "！": "! ",
    "？": "? ",
    "（": " (",
    "）": ") ",
    "【": " [",
    "】": "] ",
    "〔": " [",
    "〕": "] ",
    "［": " [",
    "］": "] ",
    "《": "",
    "》": "",
    "〈": "",
    "〉": "",
    "「": '"',
    "」": '"',
    "『": '"',
    "』": '"',
    "～": "~",
    "－": "-",
    "／": "/",
    "＋": "+",
    "％": "%",
    "＃": "#",
    "＆": "&",
    "＝": "=",
    "＜": "<",
    "＞": ">",
    "｜": "|",
    "＠": "@",
    "＊": "*",
    "＿": "_",
    "\u3000": " ",
    "·": " ",
    "…": "...",
    "——": " - ",
}
# Full-width punctuation: CJK symbols and punctuation, and the full-width forms of ASCII.
FULL_WIDTH = re.compile(r"[\u3000-\u303f\uff01-\uff60\ufe30-\ufe4f]")
CJK = re.compile(r"[\u2e80-\u2fff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_CJK_RUN = re.compile(r"[\u2e80-\u2fff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_PHONE_NUMBER = re.compile(r"\+?\d[\d\-]*\d")
# Chinese words around phone numbers that have a plain English twin.
PHONE_WORDS = {"或拨打": "or call", "或致电": "or call", "拨打": "call", "或": "or"}
# Fields whose Chinese is a proper name (the titles of laws): kept when there is no English.
PROPER_NAME_FIELDS = ("legal_basis",)


def ascii_punctuation(text: str) -> str:
    """Return a text with its full-width punctuation written as ASCII, spaces tidied."""
    for full, ascii_text in ASCII_PUNCTUATION.items():
        text = text.replace(full, ascii_text)
    # Whatever full-width form is left (full-width letters and digits too) has an ASCII twin.
    text = FULL_WIDTH.sub(lambda m: unicodedata.normalize("NFKC", m.group()).strip(), text)
    text = re.sub(r"[ \t]{2,}", " ", text)
    text = re.sub(r" +([,;:.!?)\]])", r"\1", text)
    text = re.sub(r"([(\[]) +", r"\1", text)
    return "\n".join(line.strip() for line in text.split("\n")).strip()


def english_phone(text: str, kb: KnowledgeBase) -> str:
    """Return a phone field written in Chinese as English: numbers kept, Chinese words replaced
    by the department the next number belongs to or by `PHONE_WORDS`, or dropped."""
    if not CJK.search(text):
        return ascii_punctuation(text)
    by_number = {d.phone.strip(): d.display_name("en") for d in kb.departments.values() if d.phone}
    pieces = _PHONE_NUMBER.split(text)
    numbers = _PHONE_NUMBER.findall(text)
    out: list[str] = []
    for index, piece in enumerate(pieces):
        following = numbers[index] if index < len(numbers) else ""

        def twin(found: re.Match[str], following: str = following) -> str:
            words = found.group()
            if words in PHONE_WORDS:
                return f" {PHONE_WORDS[words]} "
            department = by_number.get(following)
            return f" {department} " if department else " "

        out.append(_CJK_RUN.sub(twin, piece))
        if following:
            out.append(following)
    return ascii_punctuation("".join(out))


def english_text(text: str) -> str:
    """Return a text of an English card with ASCII punctuation."""
    return ascii_punctuation(text) if FULL_WIDTH.search(text) else text


@dataclass(frozen=True, slots=True)
class Section:
    """One labelled part of a card: a text or a list of lines."""

    label: str
    text: str = ""
    lines: tuple[str, ...] = ()
    numbered: bool = False


@dataclass(frozen=True, slots=True)
class Card:
    """An item's answer card in one language."""

    title: str
    answer: str
    sections: tuple[Section, ...]
    language: str = "zh"


def label_separator(language: str) -> str:
    """Return what follows a label before its text: a full-width colon in Chinese."""
    return ": " if language == "en" else "："


def label(name: str, language: str) -> str:
    """Return a card label in the resident's language."""
    return _LABELS["en" if language == "en" else "zh"][name]


def build_card(item: Item, kb: KnowledgeBase, language: str = "zh") -> Card:
    """Collect an item's fields into a card; empty fields are left out."""
    lang = "en" if language == "en" else "zh"
    sections: list[Section] = []
    for name in ("materials", "steps"):
        lines = item.get_list(name, lang)
        if lines:
            sections.append(Section(label(name, lang), lines=lines, numbered=name == "steps"))
    for name in ("time_limit", "fee", "location", "hours"):
        value = item.get_text(name, lang)
        if value:
            sections.append(Section(label(name, lang), text=value))
    if item.disclosure:
        sections.append(Section(label("disclosure", lang), text=label(item.disclosure, lang)))
    for name in ("period", "published_in", "exempt_reason", "alternative"):
        value = item.get_text(name, lang)
        if value:
            sections.append(Section(label(name, lang), text=value))
    department = kb.departments.get(item.department)
    if department is not None:
        sections.append(Section(label("department", lang), text=department.display_name(lang)))
    phone = item.get_text("phone", lang) or (department.phone if department else "")
    if phone and lang == "en" and not item.text.get("phone_en"):
        phone = english_phone(phone, kb)
    if phone:
        sections.append(Section(label("phone", lang), text=phone))
    legal = item.get_list("legal_basis", lang)
    if legal:
        sections.append(Section(label("legal_basis", lang), lines=legal))
    url = item.get_text("url", lang)
    if url:
        sections.append(Section(label("url", lang), text=url))
    if item.updated:
        sections.append(Section(label("updated", lang), text=item.updated))
    card = Card(
        title=item.get_text("title", lang),
        answer=item.get_text("answer", lang),
        sections=tuple(sections),
        language=lang,
    )
    return _in_english(card) if lang == "en" else card


def _in_english(card: Card) -> Card:
    """Return an English card with ASCII punctuation in every text."""
    return Card(
        title=english_text(card.title),
        answer=english_text(card.answer),
        sections=tuple(
            Section(
                label=section.label,
                text=english_text(section.text),
                lines=tuple(english_text(line) for line in section.lines),
                numbered=section.numbered,
            )
            for section in card.sections
        ),
        language=card.language,
    )


def render_plain(card: Card) -> str:
    """Render a card as plain text for a terminal."""
    title = f"[{card.title}]" if card.language == "en" else f"【{card.title}】"
    out = [title, card.answer]
    for section in card.sections:
        if section.lines:
            out.append(f"{section.label}:")
            for number, line in enumerate(section.lines, start=1):
                out.append(f"  {number}. {line}" if section.numbered else f"  - {line}")
        else:
            out.append(f"{section.label}: {section.text}")
    return "\n".join(out)


def render_html(card: Card) -> str:
    """Render a card as Telegram HTML; every piece of text is escaped."""
    esc = html.escape
    colon = label_separator(card.language)
    # (a card narrowed to a few sections has no answer text: no empty line for it)
    out = [f"<b>{esc(card.title)}</b>", *([esc(card.answer)] if card.answer else [])]
    for section in card.sections:
        if section.lines:
            out.append(f"\n<b>{esc(section.label)}</b>")
            for number, line in enumerate(section.lines, start=1):
                out.append(f"{number}. {esc(line)}" if section.numbered else f"• {esc(line)}")
        else:
            out.append(f"<b>{esc(section.label)}</b>{colon}{esc(section.text)}")
    return "\n".join(out)
