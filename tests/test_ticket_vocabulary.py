"""The ticket vocabulary: its values are the strings in the database and every one of them has
words in the console and in the chat, in both languages."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import String, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.console.translations import LABELS, label
from bot.core.config import DEFAULT_DEADLINES, TICKET_TYPES
from bot.core.i18n import LANGUAGES
from bot.core.models import Ticket, TicketEvent
from bot.core.vocabulary import DisclosureOutcome, EventKind, TicketStatus, TicketType
from bot.core.workdays import time_zone
from bot.tickets.clock import TicketClock
from bot.tickets.desk import DISCLOSURE_OUTCOMES, Actor, TicketDesk, TimelineEntry
from bot.tickets.messages import staff_text, status_name, timeline_line, type_name
from tests.fixtures_tickets import MovableClock, add_resident, draft

ZONE = time_zone("Asia/Shanghai")
URBAN = Actor.department("urban-management", "officer-1", "王科员")
GOVERNMENT = Actor.department("government-office", "officer-2", "赵科员")
STAFF = Actor.staff("staff-1", "张工作人员")

# The strings databases already hold: changing one would orphan every stored row that has it.
STORED = {
    TicketType: ["complaint", "report", "suggestion", "help", "disclosure"],
    TicketStatus: [
        "received",
        "assigned",
        "acknowledged",
        "replied",
        "closed",
        "returned",
        "rejected",
    ],
    EventKind: [
        "received",
        "deadline_set",
        "assigned",
        "triage",
        "acknowledged",
        "info_requested",
        "information_added",
        "replied",
        "returned",
        "rejected",
        "extended",
        "reminder",
        "overdue",
        "escalated",
        "supporter_added",
        "rated",
        "rating_comment",
        "reopened",
        "closed",
        "delivery_failed",
    ],
    DisclosureOutcome: [
        "disclosed",
        "partly_disclosed",
        "withheld",
        "not_held",
        "not_processed",
        "other",
    ],
}
COLUMNS = {
    TicketType: Ticket.__table__.c.type,
    TicketStatus: Ticket.__table__.c.status,
    EventKind: TicketEvent.__table__.c.kind,
    DisclosureOutcome: Ticket.__table__.c.outcome,
}


@pytest.mark.parametrize("vocabulary", list(STORED), ids=lambda v: v.__name__)
def test_the_values_are_the_strings_stored_and_fit_their_columns(vocabulary: type) -> None:
    values = [member.value for member in vocabulary]
    assert values == STORED[vocabulary]
    assert all(type(value) is str for value in values)
    column_type = COLUMNS[vocabulary].type
    assert isinstance(column_type, String)
    assert column_type.length is not None
    assert max(len(value) for value in values) <= column_type.length


def test_a_member_is_its_string() -> None:
    assert TicketStatus.REPLIED == "replied"
    assert f"tkt_status_{TicketStatus.REPLIED}" == "tkt_status_replied"
    assert "disclosure" in {TicketType.DISCLOSURE}
    assert {TicketType.DISCLOSURE: 1}["disclosure"] == 1


def test_the_ticket_types_of_the_config_and_the_deadlines_are_the_vocabulary() -> None:
    assert tuple(TicketType) == TICKET_TYPES
    assert set(DEFAULT_DEADLINES) == set(TicketType)
    assert tuple(DisclosureOutcome) == DISCLOSURE_OUTCOMES


@pytest.mark.parametrize(
    ("kind", "vocabulary"),
    [
        ("type", TicketType),
        ("status", TicketStatus),
        ("event", EventKind),
        ("outcome", DisclosureOutcome),
    ],
)
def test_the_console_names_every_value_in_both_languages(kind: str, vocabulary: type) -> None:
    for member in vocabulary:
        assert member in LABELS[kind], (kind, member)
        chinese, english = label(kind, member, "zh"), label(kind, member, "en")
        assert chinese
        assert english
        assert chinese != english


def test_the_chat_names_every_type_and_status_in_both_languages() -> None:
    for ticket_type in TicketType:
        names = {language: str(type_name(ticket_type, language)) for language in LANGUAGES}
        assert all(names.values()), ticket_type
        assert names["zh"] != names["en"]
    assert type_name("something-new", "zh") == ""
    for status in TicketStatus:
        names = {language: str(status_name(status, language)) for language in LANGUAGES}
        assert all(names.values()), status
        assert names["zh"] != names["en"]


def entry(kind: EventKind) -> TimelineEntry:
    return TimelineEntry(
        id=1,
        at=dt.datetime(2026, 11, 26, 2, 0, tzinfo=dt.UTC),
        kind=kind,
        actor_type="system",
        actor_id="",
        body="正文",
        data={
            "department_id": "urban-management",
            "from_department_id": "urban-management",
            "reply_date": "2026-12-17",
            "deadline_date": "2026-12-17",
            "which": "reply",
            "rating": 4,
            "solved": True,
            "supporters": 2,
            "channel": "webhook",
            "attempts": 8,
            "error": "HTTP 500",
        },
        visible_to_resident=kind != EventKind.DELIVERY_FAILED,
    )


def names(department_id: str | None, language: str) -> str | None:
    return {"urban-management": "城管局"}.get(department_id or "")


def test_the_chat_words_every_event_in_both_languages() -> None:
    for kind in EventKind:
        lines = {}
        for language in LANGUAGES:
            if kind == EventKind.DELIVERY_FAILED:
                # Only staff hear of a failed delivery; residents never see the event.
                payload = {
                    "number": "TS-2026-000001",
                    "ticket_id": 1,
                    "type": "complaint",
                    "event": {"kind": kind, "body": "", "data": entry(kind).data},
                }
                message = staff_text(payload, language, names)
                assert message is not None
                lines[language] = str(message)
            else:
                line = timeline_line(entry(kind), language, ZONE, names)
                assert line is not None, (kind, language)
                lines[language] = str(line)
        assert lines["zh"] != lines["en"], kind


async def test_what_the_desk_stores_is_exactly_the_vocabulary(
    desk: TicketDesk, sessions: async_sessionmaker[AsyncSession], clock: MovableClock
) -> None:
    resident = await add_resident(sessions, 3001)
    neighbour = await add_resident(sessions, 3002)
    complaint = await desk.file(draft(resident))
    await desk.add_voice(complaint.number, neighbour)
    await desk.acknowledge(complaint.number, URBAN)
    await desk.ask_resident(complaint.number, URBAN, "请说明具体位置。")
    await desk.add_information(complaint.number, resident, "东门外左侧。")
    await desk.reply(complaint.number, URBAN, "已清理。")
    await desk.rate(complaint.number, resident, solved=False, rating=2, comment="还有")
    await desk.reply(complaint.number, URBAN, "已再次清理并加密清扫。")
    await desk.rate(complaint.number, resident, solved=True, rating=5)
    await desk.comment_rating(complaint.number, resident, "谢谢。")
    for ticket_type in (TicketType.REPORT, TicketType.SUGGESTION, TicketType.HELP):
        await desk.file(draft(resident, type=ticket_type))
    unroutable = {"category": "其他", "description": "有件事想反映一下，不知道该找哪个部门。"}
    await desk.file(draft(resident, **unroutable))
    refused = await desk.file(draft(resident, **unroutable))
    await desk.reject(refused.number, STAFF, "重复提交。")
    handed_back = await desk.file(draft(resident))
    await desk.hand_back(handed_back.number, URBAN, "不属于本部门。")
    acknowledged = await desk.file(draft(resident))
    await desk.acknowledge(acknowledged.number, URBAN)
    disclosure = await desk.file(
        draft(
            resident,
            type=TicketType.DISCLOSURE,
            category="政务公开",
            description="申请公开2026年本市老旧小区改造项目的资金安排。",
            contact_name="测试申请人",
            contact_phone="010-87654321",
            share_identity=True,
        )
    )
    await desk.extend(disclosure.number, GOVERNMENT, 10, "需要征求第三方意见。")
    await desk.reply(
        disclosure.number,
        GOVERNMENT,
        "部分公开。",
        outcome=DisclosureOutcome.PARTLY_DISCLOSED,
        reason="其余部分涉及第三方商业秘密。",
    )
    ticking = TicketClock(desk)
    clock.set_local(2026, 11, 27, 21)
    assert (await ticking.sweep()).reminders
    clock.set_local(2026, 11, 28, 1)
    assert (await ticking.sweep()).overdue

    async with sessions() as session:
        tickets = (await session.execute(text("SELECT type, status, outcome FROM tickets"))).all()
        events = (await session.execute(text("SELECT kind FROM ticket_events"))).scalars().all()
    stored_types = {row[0] for row in tickets}
    stored_statuses = {row[1] for row in tickets}
    stored_outcomes = {row[2] for row in tickets} - {None}
    assert {type(value) for value in [*stored_types, *stored_statuses, *events]} == {str}
    assert stored_types == {t.value for t in TicketType}
    assert stored_statuses == {s.value for s in TicketStatus}
    assert stored_outcomes == {DisclosureOutcome.PARTLY_DISCLOSED.value}
    # Every kind but a failed delivery, which only the delivery worker records (test_delivery).
    assert set(events) == {k.value for k in EventKind} - {EventKind.DELIVERY_FAILED.value}
