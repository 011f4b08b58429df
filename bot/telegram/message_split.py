"""Long Telegram HTML messages cut into pieces under Telegram's 4,096-character limit.

Cuts fall between lines, so no tag is ever split; a single line that is too long is cut in its
plain text before escaping, so no entity (&amp;) is split either. Lengths are counted in UTF-16
code units over the HTML, which is at least what Telegram counts over the visible text.
"""

from __future__ import annotations

import html
from collections.abc import Iterable

from bot.answering.cards import Card, label_separator

TELEGRAM_LIMIT = 4096


def utf16_length(text: str) -> int:
    """Return the length Telegram measures: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def _cut_plain(prefix: str, text: str, limit: int) -> list[str]:
    """Escape `text` after an HTML `prefix`, cut so that every piece fits in `limit`."""
    whole = prefix + html.escape(text)
    if utf16_length(whole) <= limit:
        return [whole]
    pieces: list[str] = []
    current, length = [prefix], utf16_length(prefix)
    for char in text:
        escaped = html.escape(char)
        size = 2 if ord(char) > 0xFFFF else len(escaped)
        if length + size > limit:
            pieces.append("".join(current))
            current, length = [], 0
        current.append(escaped)
        length += size
    if current:
        pieces.append("".join(current))
    return pieces


def pack_lines(lines: Iterable[str], limit: int = TELEGRAM_LIMIT) -> list[str]:
    """Join HTML lines into as few messages as fit in `limit` (every line must fit alone)."""
    messages: list[str] = []
    current: list[str] = []
    length = 0
    for line in lines:
        size = utf16_length(line)
        if current and length + 1 + size <= limit:
            current.append(line)
            length += 1 + size
            continue
        if current:
            messages.append("\n".join(current))
        current, length = [line], size
    if current:
        messages.append("\n".join(current))
    return messages


def card_lines(card: Card, limit: int = TELEGRAM_LIMIT) -> list[str]:
    """Render a card as HTML lines, each under `limit` (the same layout as cards.render_html)."""
    esc = html.escape
    lines = _cut_plain(f"<b>{esc(card.title)}</b>\n", card.answer, limit)
    for section in card.sections:
        if section.lines:
            lines.append(f"\n<b>{esc(section.label)}</b>")
            for number, line in enumerate(section.lines, start=1):
                bullet = f"{number}. " if section.numbered else "• "
                lines.extend(_cut_plain(bullet, line, limit))
        else:
            colon = label_separator(card.language)
            lines.extend(_cut_plain(f"<b>{esc(section.label)}</b>{colon}", section.text, limit))
    return lines


def card_messages(card: Card, limit: int = TELEGRAM_LIMIT) -> list[str]:
    """Render a card as one or more Telegram HTML messages, each under `limit`."""
    return pack_lines(card_lines(card, limit), limit)


def text_lines(text: str, limit: int = TELEGRAM_LIMIT) -> list[str]:
    """Escape plain text (e.g. a staff answer) into HTML lines, each under `limit`."""
    lines: list[str] = []
    for line in text.split("\n"):
        lines.extend(_cut_plain("", line, limit) or [""])
    return lines
