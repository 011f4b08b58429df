"""The ticket desk on both databases: filing store-first, numbers, routing, the whole lifecycle,
privacy of what departments receive, the resident's view, similar tickets and voices.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.models import OutboxMessage, Ticket, TicketEvent
from bot.tickets.desk import (
    Actor,
    InvalidTicketInput,
    NotPermitted,
    PhotoRef,
    TicketDesk,
    TicketDraft,
    TicketNotFound,
    TransitionNotAllowed,
    masked_excerpt,
)
from tests.fixtures_tickets import CHINA, MovableClock, add_resident, draft

URBAN = Actor.department("urban-management", "officer-7", "王科员")


def disclosure_application(resident: int) -> TicketDraft:
    """A disclosure application (依申请公开) with its applicant, as the law requires."""
    return draft(
        resident,
        type="disclosure",
        category="政务公开",
        description="申请公开2026年本市老旧小区改造项目的资金安排。",
        contact_name="测试申请人",
        contact_phone="010-87654321",
        share_identity=True,
    )


ECOLOGY = Actor.department("ecology-environment", "eco-1", "李科员")
STAFF = Actor.staff("staff-1", "张工作人员")


async def events_of(sessions: async_sessionmaker[AsyncSession], number: str) -> list[TicketEvent]:
    async with sessions() as session:
        ticket_id = await session.scalar(select(Ticket.id).where(Ticket.number == number))
        result = await session.execute(
            select(TicketEvent).where(TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.id)
        )
        return list(result.scalars())


async def outbox_of(
    sessions: async_sessionmaker[AsyncSession], number: str
) -> list[OutboxMessage]:
    async with sessions() as session:
        ticket_id = await session.scalar(select(Ticket.id).where(Ticket.number == number))
        result = await session.execute(
            select(OutboxMessage)
            .where(OutboxMessage.ticket_id == ticket_id)
            .order_by(OutboxMessage.id)
        )
        return list(result.scalars())


def kinds(rows: list[OutboxMessage]) -> list[tuple[str, str]]:
    return [(r.channel, r.payload["event"]["kind"]) for r in rows]


async def test_one_form_filed_twice_even_at_once_is_one_ticket(
    desk: TicketDesk, sessions: async_sessionmaker[AsyncSession]
) -> None:
    resident = await add_resident(sessions, 1001)
    form = draft(resident, form_key="0f" * 16)
    first, second = await asyncio.gather(desk.file(form), desk.file(form))
    again = await desk.file(form)
    assert first.number == second.number == again.number
    assert (again.reply_date, again.department_id) == (first.reply_date, first.department_id)
    other = await desk.file(draft(resident, form_key="1e" * 16))
    unkeyed = await desk.file(draft(resident, form_key="not a key"))
    assert len({first.number, other.number, unkeyed.number}) == 3
    async with sessions() as session:
        tickets = await session.scalar(select(func.count()).select_from(Ticket))
        events = await session.scalar(
            select(func.count())
            .select_from(TicketEvent)
            .join(Ticket, Ticket.id == TicketEvent.ticket_id)
            .where(Ticket.number == first.number)
        )
        keys = set(await session.scalars(select(Ticket.form_key)))
    assert tickets == 3
    assert events == 3  # received, deadline set, assigned: once
    assert keys == {"0f" * 16, "1e" * 16, None}


async def test_a_filed_complaint_is_stored_with_its_events_deadline_and_delivery(
    desk: TicketDesk, sessions: async_sessionmaker[AsyncSession]
) -> None:
    resident = await add_resident(sessions, 1001)
    filed = await desk.file(draft(resident, photos=(PhotoRef("photo-1", "u1"),)))

    assert filed.number == "TS-2026-000001"
    assert filed.status == "assigned"
    assert filed.department_id == "urban-management"
    # Filed Thursday 26 November 2026: 15 working days is Thursday 17 December.
    assert filed.reply_date == dt.date(2026, 12, 17)
    ticket = await desk.get(filed.number)
    assert ticket.status == "assigned"
    assert ticket.resident_id == resident
    events = await events_of(sessions, filed.number)
    assert [e.kind for e in events] == ["received", "deadline_set", "assigned"]
    assert [e.actor_type for e in events] == ["resident", "system", "system"]
    assert events[1].data["reply_date"] == "2026-12-17"
    assert events[1].data["calendar"] == ["official"]
    rows = await outbox_of(sessions, filed.number)
    # The department's chat gets the ticket; the resident is told in the chat, not by a notice.
    assert kinds(rows) == [("telegram", "assigned")]
    assert rows[0].idempotency_key == f"{filed.number}:{events[2].id}:telegram:urban-management"
    assert rows[0].payload["ticket"]["photos"] == 1


async def test_ticket_numbers_are_unique_and_gapless_when_filed_at_once(
    desk: TicketDesk, sessions: async_sessionmaker[AsyncSession]
) -> None:
    resident = await add_resident(sessions, 1002)
    filed = await asyncio.gather(*(desk.file(draft(resident)) for _ in range(12)))
    numbers = sorted(f.number for f in filed)
    assert numbers == [f"TS-2026-{n:06d}" for n in range(1, 13)]


async def test_numbers_start_again_each_year(
    desk: TicketDesk, sessions: async_sessionmaker[AsyncSession], clock: MovableClock
) -> None:
    resident = await add_resident(sessions, 1003)
    assert (await desk.file(draft(resident))).number == "TS-2026-000001"
    # 31 December 2026, 16:30 UTC is already 1 January 2027 in 示例市.
    clock.now = dt.datetime(2026, 12, 31, 16, 30, tzinfo=dt.UTC)
    assert (await desk.file(draft(resident))).number == "TS-2027-000001"


async def test_a_ticket_that_cannot_be_routed_waits_in_triage_and_staff_are_told(
    desk: TicketDesk, sessions: async_sessionmaker[AsyncSession]
) -> None:
    resident = await add_resident(sessions, 1004)
    filed = await desk.file(
        draft(resident, category="其他", description="有件事想反映一下，不知道该找哪个部门。")
    )
    assert filed.status == "received"
    assert filed.department_id is None
    assert filed.routing.reason == "no_signal"
    assert kinds(await outbox_of(sessions, filed.number)) == [("staff", "triage")]
    ticket = await desk.reassign(filed.number, STAFF, "urban-management", note="属于市容")
    assert ticket.status == "assigned"
    rows = await outbox_of(sessions, filed.number)
    assert ("telegram", "assigned") in kinds(rows)
    assert ("resident", "assigned") in kinds(rows)


async def test_the_whole_lifecycle_is_a_timeline_of_events_with_actors(
    desk: TicketDesk, sessions: async_sessionmaker[AsyncSession], clock: MovableClock
) -> None:
    resident = await add_resident(sessions, 1005)
    filed = await desk.file(draft(resident))
    clock.advance(hours=1)
    await desk.acknowledge(filed.number, URBAN)
    clock.advance(days=2)
    ticket = await desk.reply(filed.number, URBAN, "已安排环卫工人清运，并加密清扫频次。")
    assert ticket.status == "replied"
    clock.advance(hours=3)
    ticket = await desk.rate(filed.number, resident, solved=True, rating=5)
    assert ticket.status == "closed"
    assert ticket.rating == 5
    assert ticket.solved is True

    events = await events_of(sessions, filed.number)
    assert [e.kind for e in events] == [
        "received",
        "deadline_set",
        "assigned",
        "acknowledged",
        "replied",
        "rated",
        "closed",
    ]
    acknowledged = events[3]
    assert (acknowledged.actor_type, acknowledged.actor_id) == ("department", "officer-7")
    assert acknowledged.data["actor_name"] == "王科员"
    assert events[4].body == "已安排环卫工人清运，并加密清扫频次。"
    assert events[4].data["on_time"] is True
    assert [e.created_at for e in events] == sorted(e.created_at for e in events)
    resident_notices = [
        k for c, k in kinds(await outbox_of(sessions, filed.number)) if c == "resident"
    ]
    assert resident_notices == ["acknowledged", "replied"]


async def test_a_department_hands_a_ticket_back_with_a_reason_and_staff_reassign_it(
    desk: TicketDesk, sessions: async_sessionmaker[AsyncSession]
) -> None:
    resident = await add_resident(sessions, 1006)
    filed = await desk.file(draft(resident))
    ticket = await desk.hand_back(filed.number, URBAN, "这是工厂排污，属于生态环境局。")
    assert ticket.status == "returned"
    assert ticket.department_id is None
    ticket = await desk.reassign(filed.number, STAFF, "ecology-environment")
    assert (ticket.status, ticket.department_id) == ("assigned", "ecology-environment")

    timeline = await desk.timeline(filed.number, public_only=True)
    returned = next(e for e in timeline if e.kind == "returned")
    assert returned.body == "这是工厂排污，属于生态环境局。"
    assert returned.data["from_department_id"] == "urban-management"
    assert returned.actor_id == ""  # residents never see who exactly
    rows = kinds(await outbox_of(sessions, filed.number))
    assert ("staff", "returned") in rows
    assert ("resident", "returned") in rows
    assert ("webhook", "assigned") in rows
    # The department that handed it back is not told again that it is gone.
    assert ("telegram", "withdrawn") not in rows


async def test_staff_can_move_a_ticket_and_the_first_department_hears_it_was_withdrawn(
    desk: TicketDesk, sessions: async_sessionmaker[AsyncSession]
) -> None:
    resident = await add_resident(sessions, 1007)
    filed = await desk.file(draft(resident))
    await desk.reassign(filed.number, STAFF, "ecology-environment", note="排污问题")
    rows = kinds(await outbox_of(sessions, filed.number))
    assert ("telegram", "withdrawn") in rows
    assert ("webhook", "assigned") in rows
    with pytest.raises(TransitionNotAllowed):
        await desk.reassign(filed.number, STAFF, "ecology-environment")


async def test_nobody_acts_on_a_ticket_that_is_not_theirs(
    desk: TicketDesk, sessions: async_sessionmaker[AsyncSession]
) -> None:
    resident = await add_resident(sessions, 1008)
    filed = await desk.file(draft(resident))
    with pytest.raises(NotPermitted):
        await desk.acknowledge(filed.number, ECOLOGY)
    with pytest.raises(NotPermitted):
        await desk.reply(filed.number, Actor.resident(resident), "自己回复自己")
    with pytest.raises(NotPermitted):
        await desk.reassign(filed.number, URBAN, "ecology-environment")
    with pytest.raises(NotPermitted):
        await desk.reject(filed.number, URBAN, "不想办")
    with pytest.raises(TicketNotFound):
        await desk.acknowledge("TS-2026-999999", URBAN)
    other = await add_resident(sessions, 1009)
    with pytest.raises(TicketNotFound):
        await desk.add_information(filed.number, other, "我也来补充")
    with pytest.raises(TicketNotFound):
        await desk.ticket_for_resident(filed.number, other)


async def test_steps_out_of_order_are_refused(
    desk: TicketDesk, sessions: async_sessionmaker[AsyncSession]
) -> None:
    resident = await add_resident(sessions, 1010)
    filed = await desk.file(draft(resident))
    with pytest.raises(TransitionNotAllowed):
        await desk.rate(filed.number, resident, solved=True, rating=5)
    await desk.acknowledge(filed.number, URBAN)
    with pytest.raises(TransitionNotAllowed):
        await desk.acknowledge(filed.number, URBAN)
    await desk.reply(filed.number, URBAN, "已处理。")
    with pytest.raises(TransitionNotAllowed):
        await desk.hand_back(filed.number, URBAN, "太晚了")
    with pytest.raises(TransitionNotAllowed):
        await desk.add_information(filed.number, resident, "补充")


async def test_a_rejected_ticket_tells_the_resident_why(
    desk: TicketDesk, sessions: async_sessionmaker[AsyncSession]
) -> None:
    resident = await add_resident(sessions, 1011)
    filed = await desk.file(draft(resident, category="其他", description="广告广告广告广告"))
    ticket = await desk.reject(filed.number, STAFF, "内容为广告，不属于投诉事项。")
    assert ticket.status == "rejected"
    notice = next(r for r in await outbox_of(sessions, filed.number) if r.channel == "resident")
    assert notice.payload["event"]["kind"] == "rejected"
    assert notice.payload["event"]["body"] == "内容为广告，不属于投诉事项。"
    with pytest.raises(InvalidTicketInput):
        await desk.reject(filed.number, STAFF, "   ")


async def test_a_disclosure_application_is_extended_once_with_a_reason(
    desk: TicketDesk, sessions: async_sessionmaker[AsyncSession], clock: MovableClock
) -> None:
    resident = await add_resident(sessions, 1012)
    clock.set_local(2026, 9, 30)
    filed = await desk.file(disclosure_application(resident))
    assert filed.department_id == "government-office"
    assert filed.reply_date == dt.date(2026, 11, 3)
    ticket = await desk.extend(
        filed.number, Actor.department("government-office"), 20, "需要征求第三方意见。"
    )
    assert ticket.reply_deadline is not None
    assert ticket.reply_deadline.astimezone(CHINA).date() == dt.date(2026, 12, 1)
    with pytest.raises(TransitionNotAllowed, match="already extended"):
        await desk.extend(filed.number, Actor.department("government-office"), 5, "再延一次")
    notice = next(r for r in await outbox_of(sessions, filed.number) if r.channel == "resident")
    assert notice.payload["event"]["body"] == "需要征求第三方意见。"
    assert notice.payload["event"]["data"]["reply_date"] == "2026-12-01"


async def test_only_disclosure_applications_are_extended_and_by_at_most_twenty_days(
    desk: TicketDesk, sessions: async_sessionmaker[AsyncSession]
) -> None:
    resident = await add_resident(sessions, 1013)
    filed = await desk.file(draft(resident))
    with pytest.raises(TransitionNotAllowed):
        await desk.extend(filed.number, URBAN, 5, "忙")
    with pytest.raises(InvalidTicketInput):
        await desk.extend(filed.number, URBAN, 21, "忙")


async def test_an_anonymous_report_never_carries_identity_to_the_department(
    desk: TicketDesk, sessions: async_sessionmaker[AsyncSession], webhook_secret: str
) -> None:
    resident = await add_resident(sessions, 1014)
    filed = await desk.file(
        draft(
            resident,
            type="report",
            category="生态环境",
            description="河边那家工厂夜里偷偷排污，河道发黑。",
            anonymous=True,
            contact_name="不该保存的名字",
            contact_phone="13800000000",
            share_identity=True,
        )
    )
    ticket = await desk.get(filed.number)
    assert (ticket.contact_name, ticket.contact_phone, ticket.share_identity) == (
        None,
        None,
        False,
    )
    received = (await events_of(sessions, filed.number))[0]
    assert received.actor_id == ""
    rows = await outbox_of(sessions, filed.number)
    webhook = next(r for r in rows if r.channel == "webhook")
    assert webhook.payload["ticket"]["resident"] is None
    assert webhook.payload["ticket"]["anonymous"] is True
    assert "13800000000" not in str(webhook.payload)
    assert str(resident) not in re.findall(r"\d+", str(webhook.payload["ticket"]["resident"]))


async def test_identity_reaches_the_department_only_with_consent(
    desk: TicketDesk, sessions: async_sessionmaker[AsyncSession]
) -> None:
    resident = await add_resident(sessions, 1015)
    private = await desk.file(
        draft(
            resident,
            category="生态环境",
            description="工厂排污，河道有臭味。",
            contact_name="测试居民",
            contact_phone="13900000000",
        )
    )
    shared = await desk.file(
        draft(
            resident,
            category="生态环境",
            description="工厂排污，河道有臭味。",
            contact_name="测试居民",
            contact_phone="13900000000",
            share_identity=True,
        )
    )
    private_payload = (await outbox_of(sessions, private.number))[0].payload
    shared_payload = (await outbox_of(sessions, shared.number))[0].payload
    assert private_payload["ticket"]["resident"] is None
    assert "13900000000" not in str(private_payload)
    assert shared_payload["ticket"]["resident"] == {"name": "测试居民", "phone": "+8613900000000"}


async def test_the_resident_adds_information_and_it_reaches_the_department(
    desk: TicketDesk, sessions: async_sessionmaker[AsyncSession]
) -> None:
    resident = await add_resident(sessions, 1016)
    filed = await desk.file(draft(resident))
    await desk.ask_resident(filed.number, URBAN, "请问具体是东门还是南门？")
    assert (await desk.get(filed.number)).awaiting_resident is True
    await desk.add_information(filed.number, resident, "是东门，靠近公交站。", [PhotoRef("p2")])
    ticket = await desk.get(filed.number)
    assert ticket.awaiting_resident is False
    rows = kinds(await outbox_of(sessions, filed.number))
    assert ("resident", "info_requested") in rows
    assert ("telegram", "information_added") in rows
    assert len(await desk.attachments(filed.number)) == 1


async def test_not_solved_reopens_the_ticket_with_the_same_department_and_new_deadlines(
    desk: TicketDesk, sessions: async_sessionmaker[AsyncSession], clock: MovableClock
) -> None:
    resident = await add_resident(sessions, 1017)
    filed = await desk.file(draft(resident))
    await desk.reply(filed.number, URBAN, "已清理。")
    clock.advance(days=1)
    ticket = await desk.rate(filed.number, resident, solved=False, rating=2, comment="只清了一半")
    assert (ticket.status, ticket.department_id) == ("assigned", "urban-management")
    assert ticket.replied_at is None
    assert ticket.acknowledged_at is None
    assert ticket.reply_deadline is not None
    assert ticket.reply_deadline > filed.reply_deadline
    assert ticket.rating == 2
    assert ticket.rating_comment == "只清了一半"
    rows = kinds(await outbox_of(sessions, filed.number))
    assert ("telegram", "reopened") in rows
    timeline = await desk.timeline(filed.number)
    assert [e.kind for e in timeline][-3:] == ["rated", "reopened", "deadline_set"]


async def test_a_rating_comment_can_follow_the_stars(
    desk: TicketDesk, sessions: async_sessionmaker[AsyncSession]
) -> None:
    resident = await add_resident(sessions, 1018)
    filed = await desk.file(draft(resident))
    await desk.reply(filed.number, URBAN, "已清理。")
    await desk.rate(filed.number, resident, solved=True, rating=4)
    ticket = await desk.comment_rating(filed.number, resident, "处理很快，谢谢！")
    assert ticket.rating_comment == "处理很快，谢谢！"
    with pytest.raises(TransitionNotAllowed):
        await desk.comment_rating(filed.number, resident, "再评论一次")
    with pytest.raises(InvalidTicketInput):
        await desk.rate(filed.number, resident, solved=True, rating=6)


async def test_the_resident_sees_only_their_own_tickets_and_the_public_timeline(
    desk: TicketDesk, sessions: async_sessionmaker[AsyncSession]
) -> None:
    mine = await add_resident(sessions, 1019)
    theirs = await add_resident(sessions, 1020)
    own = await desk.file(draft(mine))
    await desk.file(draft(theirs, description="另一位居民反映：西门的垃圾桶坏了很久。"))
    listed = await desk.tickets_of_resident(mine)
    assert [t.number for t in listed] == [own.number]
    assert await desk.count_tickets_of_resident(mine) == 1
    detail = await desk.ticket_for_resident(own.number, mine)
    assert detail.can_add_information
    assert not detail.can_rate
    assert all(e.visible_to_resident for e in detail.timeline)
    assert all(e.actor_id == "" for e in detail.timeline)


async def test_similar_open_tickets_are_offered_and_a_voice_is_added_once(
    desk: TicketDesk, sessions: async_sessionmaker[AsyncSession]
) -> None:
    first = await add_resident(sessions, 1021)
    second = await add_resident(sessions, 1022)
    filed = await desk.file(
        draft(first, description="幸福小区东门外垃圾堆了一个星期没人清理，联系电话13812345678")
    )
    await desk.file(draft(first, description="人民公园的路灯晚上全都不亮，很危险。"))

    similar = await desk.similar_open_tickets(
        "complaint", "市容环境", "幸福小区东门的垃圾一直没人清理", exclude_resident_id=second
    )
    assert [s.number for s in similar] == [filed.number]
    assert "13812345678" not in similar[0].excerpt
    assert "13*" in similar[0].excerpt
    assert await desk.similar_open_tickets("complaint", "市容环境", "公交车司机态度很差") == []
    assert await desk.similar_open_tickets("report", "市容环境", "垃圾没人清理") == []

    ticket = await desk.add_voice(filed.number, second)
    assert ticket.supporters == 1
    with pytest.raises(TransitionNotAllowed):
        await desk.add_voice(filed.number, second)
    with pytest.raises(TransitionNotAllowed):
        await desk.add_voice(filed.number, first)
    supported = await desk.tickets_of_resident(second)
    assert [(t.number, t.role) for t in supported] == [(filed.number, "supported")]
    detail = await desk.ticket_for_resident(filed.number, second)
    assert detail.timeline == ()
    assert "13812345678" not in detail.description


REFUSED = [
    ({"description": "   \u200b  "}, "empty"),
    ({"description": "垃圾"}, "too_short"),
    ({"description": "很" * 2001}, "too_long"),
    ({"photos": tuple(PhotoRef(f"p{i}") for i in range(6))}, "photos"),
    ({"anonymous": True}, "anonymous"),
    ({"category": "不存在的类别"}, "category"),
    ({"type": "disclosure", "category": "政务公开"}, "applicant"),
    ({"latitude": 123.0, "longitude": 0.0}, "location"),
]


async def test_what_cannot_be_filed_is_refused_with_a_reason(
    desk: TicketDesk, sessions: async_sessionmaker[AsyncSession]
) -> None:
    resident = await add_resident(sessions, 1023)
    for fields, code in REFUSED:
        with pytest.raises(InvalidTicketInput) as refused:
            await desk.file(draft(resident, **fields))
        assert refused.value.code == code, fields
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Ticket)) == 0


async def test_hostile_text_is_stored_as_text() -> None:
    assert masked_excerpt("<b>电话</b> 138 1234 5678 邮箱 a.b@example.com") == (
        "<b>电话</b> 13*********** 邮箱 ***"
    )


async def test_nul_characters_in_residents_and_officers_words_are_stored_without_them(
    desk: TicketDesk, sessions: async_sessionmaker[AsyncSession]
) -> None:
    # PostgreSQL cannot store U+0000 in text; SQLite would keep it where nobody can see it.
    nul = "\u0000"
    resident = await add_resident(sessions, 1024)
    filed = await desk.file(
        draft(
            resident,
            category="生态环境",
            description=f"工厂排污{nul}，河道有臭味。",
            contact_name=f"测试{nul}居民",
            contact_phone=f"139{nul}00000000",
            location_text=f"河{nul}边",
            share_identity=True,
        )
    )
    officer = Actor.department("ecology-environment", f"eco{nul}-2", f"李{nul}科员")
    await desk.ask_resident(filed.number, officer, f"具体{nul}位置？")
    await desk.add_information(filed.number, resident, f"桥{nul}下。")
    await desk.reply(filed.number, officer, f"已{nul}处理。")
    await desk.rate(filed.number, resident, solved=True, rating=5, comment=f"谢{nul}谢")
    ticket = await desk.get(filed.number)
    stored = [ticket.description, ticket.contact_name, ticket.contact_phone, ticket.location_text]
    assert stored == ["工厂排污，河道有臭味。", "测试居民", "+8613900000000", "河边"]
    assert ticket.rating_comment == "谢谢"
    events = await events_of(sessions, filed.number)
    said = [(e.actor_id, e.data.get("actor_name"), e.body) for e in events if e.body]
    assert said == [
        ("eco-2", "李科员", "具体位置？"),
        (str(resident), None, "桥下。"),
        ("eco-2", "李科员", "已处理。"),
        (str(resident), None, "谢谢"),
    ]


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("13800000000", "+8613800000000"),
        ("138-0000-0000", "+8613800000000"),
        ("+86 138 0000 0000", "+8613800000000"),
        ("１３８００００００００", "+8613800000000"),
        ("010-12345678", "+861012345678"),
        ("(0755) 8888 8888", "+8675588888888"),
        ("+44 20 7946 0958", "+442079460958"),
        ("0044 20 7946 0958", "+442079460958"),
    ],
)
async def test_a_contact_number_is_stored_in_e164(
    desk: TicketDesk, sessions: async_sessionmaker[AsyncSession], typed: str, stored: str
) -> None:
    resident = await add_resident(sessions, 1031)
    filed = await desk.file(
        draft(resident, contact_name="测试居民", contact_phone=typed, share_identity=True)
    )
    assert (await desk.get(filed.number)).contact_phone == stored


@pytest.mark.parametrize(
    "typed",
    ["12345", "12345678", "012-12345678", "+1 555", "请打我电话", "<b>138</b>", "1" * 30],
)
async def test_a_number_that_cannot_be_called_is_refused(
    desk: TicketDesk, sessions: async_sessionmaker[AsyncSession], typed: str
) -> None:
    resident = await add_resident(sessions, 1032)
    with pytest.raises(InvalidTicketInput) as refused:
        await desk.file(
            draft(resident, contact_name="测试居民", contact_phone=typed, share_identity=True)
        )
    assert refused.value.code == "phone"
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Ticket)) == 0
