"""What each event looks like in Telegram, in both languages, with hostile text in every field:
valid Telegram HTML (parsed as the local Bot API server and Telegram parse it), text shown as
text, callback data under 64 bytes."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.answering.store import LoadedKnowledge
from bot.core.i18n import LANGUAGES
from bot.core.models import Ticket, TicketEvent
from bot.core.workdays import time_zone
from bot.telegram.ticket_keyboards import (
    department_message,
    resident_notice,
    staff_message,
    supervisor_message,
)
from bot.tickets.desk import TimelineEntry
from bot.tickets.messages import timeline_line
from bot.tickets.outbox import department_payload, notice_payload
from tryout.local_bot_api.formatting import parse_html

HOSTILE = "<b>粗体</b> & <script>alert('x')</script> 😀 *markdown* `code`"
ZONE = time_zone("Asia/Shanghai")
MOMENT = dt.datetime(2026, 11, 26, 2, 0, tzinfo=dt.UTC)


def names(department_id: str | None, language: str) -> str | None:
    return {"urban-management": "城管<局>"}.get(department_id or "")


def ticket(**fields: object) -> Ticket:
    values: dict[str, object] = {
        "id": 7,
        "number": "TS-2026-000007",
        "type": "disclosure",
        "category": "市容环境",
        "department_id": "urban-management",
        "status": "assigned",
        "resident_id": 3,
        "language": "zh",
        "description": HOSTILE,
        "location_text": HOSTILE,
        "latitude": 31.2,
        "longitude": 121.4,
        "contact_name": HOSTILE,
        "contact_phone": "<12345>",
        "share_identity": True,
        "anonymous": False,
        "supporters": 2,
        "created_at": MOMENT,
        "ack_deadline": MOMENT,
        "reply_deadline": MOMENT,
        "extended": False,
        "supervised": False,
    }
    return Ticket(**(values | fields))


EVENTS = [
    ("assigned", {"department_id": "urban-management"}),
    ("acknowledged", {}),
    ("info_requested", {}),
    ("information_added", {"photos": 2}),
    ("replied", {"outcome": "disclosed"}),
    (
        "replied",
        {
            "outcome": "withheld",
            "reason": HOSTILE,
            "document": {"id": 1, "name": HOSTILE, "url": ""},
            "remedies": {"review_body": HOSTILE, "review_body_en": HOSTILE, "court": HOSTILE},
        },
    ),
    ("replied", {"outcome": "partly_disclosed", "document": {"id": 2, "url": HOSTILE}}),
    ("closed", {"by": "resident", "rating": 4, "solved": None}),
    ("rated", {"rating": 3, "solved": None}),
    ("returned", {"from_department_id": "urban-management"}),
    ("rejected", {}),
    ("extended", {"working_days": 20, "reply_date": "2026-12-24"}),
    ("reminder", {"which": "reply", "deadline_date": "2026-12-17"}),
    ("overdue", {"which": "ack", "deadline_date": "2026-11-27"}),
    ("escalated", {"which": "reply", "deadline_date": "2026-12-17"}),
    ("closed", {"by": "resident", "rating": 4, "solved": True}),
    ("closed", {"by": "system", "days": 7}),
    ("reopened", {"rating": 2, "solved": False}),
    ("triage", {"candidates": ["urban-management", "x" * 60]}),
    ("delivery_failed", {"channel": "webhook", "attempts": 8, "error": HOSTILE}),
    ("rated", {"rating": 5, "solved": True}),
    ("supporter_added", {"supporters": 3}),
    ("deadline_set", {"reply_date": "2026-12-17", "reason": "received"}),
    ("rating_comment", {}),
]


def event(kind: str, data: dict[str, object]) -> TicketEvent:
    return TicketEvent(
        id=41,
        ticket_id=7,
        kind=kind,
        actor_type="department",
        actor_id="5",
        body=HOSTILE,
        data=data,
        visible_to_resident=True,
        created_at=MOMENT,
    )


def check(html: str) -> str:
    """Parse as Telegram would; return the visible text."""
    return parse_html(html).text


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_event_renders_as_valid_html_with_hostile_text_shown_as_text(
    language: str, bundled: LoadedKnowledge
) -> None:
    shown = 0
    for kind, data in EVENTS:
        record = event(kind, data)
        for kind_override in (None, "withdrawn"):
            payload = department_payload(ticket(), record, bundled.kb, [], kind=kind_override)
            rendered = department_message(payload, language, ZONE)
            if rendered is not None:
                shown += 1
                text, markup = rendered
                visible = check(text)
                if kind_override is None and kind in ("assigned", "information_added"):
                    assert HOSTILE in visible
                for row in markup.inline_keyboard if markup else ():
                    for button in row:
                        assert len((button.callback_data or "").encode()) <= 64  # type: ignore[union-attr]
        notice = notice_payload(ticket(), record, bundled.kb)
        for render in (
            lambda p: resident_notice(p, language, ZONE, names),
            lambda p: staff_message(p, language, names),
            lambda p: supervisor_message(p, language, names),
        ):
            rendered = render(notice)
            if rendered is None:
                continue
            shown += 1
            text, markup = rendered
            check(text)
            for row in markup.inline_keyboard if markup else ():
                for button in row:
                    assert len((button.callback_data or "").encode()) <= 64  # type: ignore[union-attr]
        entry = TimelineEntry(41, MOMENT, kind, "department", "", HOSTILE, dict(data), True)
        line = timeline_line(entry, language, ZONE, names)
        if line is not None:
            check(line)
    assert shown >= 20


def test_an_anonymous_report_card_says_so_and_shows_no_contact(bundled: LoadedKnowledge) -> None:
    report = ticket(type="report", anonymous=True, share_identity=False, contact_name=None)
    payload = department_payload(report, event("assigned", {}), bundled.kb, [])
    rendered = department_message(payload, "zh", ZONE)
    assert rendered is not None
    visible = check(rendered[0])
    assert "匿名举报" in visible
    assert "<12345>" not in visible


def test_a_resident_notice_of_a_reply_asks_whether_it_is_solved(bundled: LoadedKnowledge) -> None:
    payload = notice_payload(ticket(type="complaint"), event("replied", {}), bundled.kb)
    rendered = resident_notice(payload, "en", ZONE, names)
    assert rendered is not None
    text, markup = rendered
    assert "Is your problem solved?" in check(text)
    assert markup is not None
    assert [b.callback_data for b in markup.inline_keyboard[0]] == ["tkt:s:7:1", "tkt:s:7:0"]


def test_a_disclosure_decision_asks_only_for_a_rating_of_the_service(
    bundled: LoadedKnowledge,
) -> None:
    data = {"outcome": "not_held", "reason": "经检索，该信息不存在。"}
    payload = notice_payload(ticket(), event("replied", data), bundled.kb)
    for language in ("zh", "en"):
        rendered = resident_notice(payload, language, ZONE, names)
        assert rendered is not None
        text, markup = rendered
        visible = check(text)
        assert "解决了吗" not in visible
        assert "Is your problem solved" not in visible
        assert markup is not None
        pressed = [b.callback_data for row in markup.inline_keyboard for b in row]
        assert "tkt:s:7:0" not in pressed
        assert pressed[:5] == [f"tkt:sr:7:{n}" for n in range(1, 6)]
        assert "tkt:rm:7" in pressed
    assert "无法提供" in check(resident_notice(payload, "zh", ZONE, names)[0])  # type: ignore[index]
