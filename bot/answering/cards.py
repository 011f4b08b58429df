"""The answer card: everything a resident needs to act on one item, in their language.

The card is built once as sections and rendered as plain text (the command line) or as Telegram
HTML with every piece of knowledge-base text escaped.
"""

from __future__ import annotations

import html
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
    return Card(
        title=item.get_text("title", lang),
        answer=item.get_text("answer", lang),
        sections=tuple(sections),
    )


def render_plain(card: Card) -> str:
    """Render a card as plain text for a terminal."""
    out = [f"【{card.title}】", card.answer]
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
    out = [f"<b>{esc(card.title)}</b>", esc(card.answer)]
    for section in card.sections:
        if section.lines:
            out.append(f"\n<b>{esc(section.label)}</b>")
            for number, line in enumerate(section.lines, start=1):
                out.append(f"{number}. {esc(line)}" if section.numbered else f"• {esc(line)}")
        else:
            out.append(f"<b>{esc(section.label)}</b>：{esc(section.text)}")
    return "\n".join(out)
