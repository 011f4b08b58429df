"""Every word of the console has its English, and every stored code has a name in both."""

from __future__ import annotations

import re
from pathlib import Path

import jinja2
from jinja2.ext import extract_from_ast

from bot.console.messages import NOTICES
from bot.console.translations import ENGLISH, LABELS, label, translator
from bot.core.vocabulary import EventKind
from bot.tickets.complaint_log import RATING_CHOICES, TICKET_STATUSES, TICKET_TYPES
from bot.tickets.desk import DISCLOSURE_OUTCOMES

WEB = Path(__file__).resolve().parent.parent / "bot" / "console"


def template_strings() -> set[str]:
    environment = jinja2.Environment(autoescape=True)
    found = set()
    for path in (WEB / "templates").glob("*.html"):
        tree = environment.parse(path.read_text(encoding="utf-8"))
        found |= {message for _, _, message in extract_from_ast(tree, ("_",)) if message}
    return {text for text in found if isinstance(text, str)}


def python_strings() -> set[str]:
    found = set()
    for path in WEB.rglob("*.py"):
        found |= set(re.findall(r'\b_\("([^"]+)"\)', path.read_text(encoding="utf-8")))
    return found


def test_every_chinese_string_of_the_console_has_its_english() -> None:
    strings = template_strings() | python_strings()
    assert len(strings) > 150
    missing = sorted(s for s in strings if s not in ENGLISH)
    assert missing == []


def test_the_english_has_the_same_placeholders_as_the_chinese() -> None:
    for chinese, english in ENGLISH.items():
        assert re.findall(r"\{\w+\}", chinese) == re.findall(r"\{\w+\}", english), chinese


def test_chinese_is_shown_as_written_and_english_on_request() -> None:
    assert translator("zh")("投诉记录") == "投诉记录"
    assert translator("en")("投诉记录") == "Complaint log"
    assert translator("fr")("投诉记录") == "投诉记录"


def test_every_code_the_tickets_store_has_a_name_in_both_languages() -> None:
    expected = {
        "type": set(TICKET_TYPES),
        "status": set(TICKET_STATUSES),
        "outcome": set(DISCLOSURE_OUTCOMES),
        "rating": set(RATING_CHOICES),
        "event": set(EventKind),
    }
    for kind, codes in expected.items():
        assert codes, kind
        assert codes <= set(LABELS[kind]), (kind, codes - set(LABELS[kind]))
    for names in LABELS.values():
        for chinese, english in names.values():
            assert chinese
            assert english
    assert label("status", "replied", "en") == "Replied"
    assert label("status", "something-new", "zh") == "something-new"


def test_every_notice_exists_in_both_languages() -> None:
    for code, (kind, chinese, english) in NOTICES.items():
        assert kind in ("ok", "error"), code
        assert chinese != english, code
