"""Who may read which ticket, and the reads the console's ticket pages are made of, at the
domain level (the console's HTTP tests check the same rules through the pages)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.models import Ticket
from bot.core.vocabulary import TicketStatus, TicketType
from bot.tickets.desk import Actor, TicketDesk
from bot.tickets.reads import (
    department_waiting,
    identity_of,
    may_see,
    may_see_identity,
    ticket_by_number,
    triage_queue,
)
from tests.fixtures_tickets import MovableClock, add_resident, draft

URBAN = "urban-management"
ECOLOGY = "ecology-environment"
STAFF = Actor.staff("staff-1", "张工作人员")
UNROUTABLE = {"category": "其他", "description": "有件事想反映一下，不知道该找哪个部门。"}


@dataclass(frozen=True)
class Reader:
    role: str
    department_id: str | None = None


MANAGER = Reader("manager")
URBAN_OFFICER = Reader("officer", URBAN)
ECOLOGY_OFFICER = Reader("officer", ECOLOGY)
OFFICER_WITHOUT_DEPARTMENT = Reader("officer")
STAFF_MEMBER = Reader("staff")
ADMIN = Reader("admin")


def ticket(status: TicketStatus, department_id: str | None, **fields: object) -> Ticket:
    values: dict[str, object] = {
        "number": "TS-2026-000001",
        "type": TicketType.COMPLAINT,
        "status": status,
        "department_id": department_id,
        "anonymous": False,
        "share_identity": False,
    }
    return Ticket(**(values | fields))


IN_TRIAGE = ticket(TicketStatus.RECEIVED, None)
HANDED_BACK = ticket(TicketStatus.RETURNED, None)
WITH_URBAN = ticket(TicketStatus.ASSIGNED, URBAN)
ACKNOWLEDGED_BY_URBAN = ticket(TicketStatus.ACKNOWLEDGED, URBAN)
CLOSED_BY_URBAN = ticket(TicketStatus.CLOSED, URBAN)
REJECTED = ticket(TicketStatus.REJECTED, None)


@pytest.mark.parametrize(
    "seen", [IN_TRIAGE, HANDED_BACK, WITH_URBAN, ACKNOWLEDGED_BY_URBAN, CLOSED_BY_URBAN, REJECTED]
)
def test_a_manager_sees_every_ticket(seen: Ticket) -> None:
    assert may_see(MANAGER, seen)


def test_an_officer_sees_their_own_departments_tickets_whatever_their_status() -> None:
    for seen in (WITH_URBAN, ACKNOWLEDGED_BY_URBAN, CLOSED_BY_URBAN):
        assert may_see(URBAN_OFFICER, seen), seen.status


def test_an_officer_of_another_department_sees_none_of_them() -> None:
    for seen in (WITH_URBAN, ACKNOWLEDGED_BY_URBAN, CLOSED_BY_URBAN):
        assert not may_see(ECOLOGY_OFFICER, seen), seen.status


def test_an_officer_sees_no_ticket_without_a_department() -> None:
    for seen in (IN_TRIAGE, HANDED_BACK, REJECTED):
        assert not may_see(URBAN_OFFICER, seen), seen.status
    # An account with the officer role but no department sees nothing, unrouted tickets neither.
    for seen in (IN_TRIAGE, HANDED_BACK, REJECTED, WITH_URBAN):
        assert not may_see(OFFICER_WITHOUT_DEPARTMENT, seen), seen.status


def test_staff_see_only_the_tickets_waiting_in_triage() -> None:
    assert may_see(STAFF_MEMBER, IN_TRIAGE)
    assert may_see(STAFF_MEMBER, HANDED_BACK)
    for seen in (WITH_URBAN, ACKNOWLEDGED_BY_URBAN, CLOSED_BY_URBAN, REJECTED):
        assert not may_see(STAFF_MEMBER, seen), seen.status


def test_admins_and_unknown_roles_see_no_ticket() -> None:
    for reader in (ADMIN, Reader("resident"), Reader("")):
        for seen in (IN_TRIAGE, WITH_URBAN, CLOSED_BY_URBAN):
            assert not may_see(reader, seen), (reader.role, seen.status)


def test_who_filed_is_shown_to_managers_and_to_the_department_with_consent_only() -> None:
    consented = ticket(TicketStatus.ASSIGNED, URBAN, share_identity=True)
    private = ticket(TicketStatus.ASSIGNED, URBAN, share_identity=False)
    assert may_see_identity(MANAGER, consented)
    assert may_see_identity(MANAGER, private)
    assert may_see_identity(URBAN_OFFICER, consented)
    assert not may_see_identity(URBAN_OFFICER, private)
    for reader in (STAFF_MEMBER, ADMIN):
        assert not may_see_identity(reader, consented), reader.role


def test_nobody_learns_who_filed_an_anonymous_report() -> None:
    anonymous = ticket(
        TicketStatus.ASSIGNED, URBAN, type=TicketType.REPORT, anonymous=True, share_identity=True
    )
    for reader in (MANAGER, URBAN_OFFICER, STAFF_MEMBER, ADMIN):
        assert not may_see_identity(reader, anonymous), reader.role


async def test_a_ticket_is_found_by_its_number_as_typed_in_a_link(
    desk: TicketDesk, sessions: async_sessionmaker[AsyncSession]
) -> None:
    resident = await add_resident(sessions, 6001)
    filed = await desk.file(
        draft(resident, contact_name="韩梅梅", contact_phone="010-12345678", share_identity=True)
    )
    async with sessions() as session:
        found = await ticket_by_number(session, f"  {filed.number.lower()} ")
        assert found is not None
        assert found.id == filed.id
        assert await ticket_by_number(session, "TS-2026-999999") is None
        identity = await identity_of(session, found)
    assert identity.any
    assert (identity.contact_name, identity.contact_phone) == ("韩梅梅", "+861012345678")
    assert (identity.resident_name, identity.telegram_user_id) == ("居民6001", 6001)
    assert identity.shown() == [
        "contact_name",
        "contact_phone",
        "resident_name",
        "telegram_user_id",
    ]
    # An officer gets what the resident shared, never the Telegram account; a manager gets both.
    async with sessions() as session:
        for_officer = await identity_of(session, found, URBAN_OFFICER)
        for_manager = await identity_of(session, found, MANAGER)
    assert for_officer.shown() == ["contact_name", "contact_phone"]
    assert for_manager.telegram_user_id == 6001


async def test_the_triage_queue_is_oldest_first_with_the_reason_of_a_hand_back(
    desk: TicketDesk, sessions: async_sessionmaker[AsyncSession], clock: MovableClock
) -> None:
    resident = await add_resident(sessions, 6002)
    unrouted = await desk.file(draft(resident, **UNROUTABLE))
    clock.advance(minutes=5)
    returned = await desk.file(draft(resident))
    await desk.hand_back(returned.number, Actor.department(URBAN), "不属于本部门。")
    clock.advance(minutes=5)
    await desk.file(draft(resident))  # routed: not in triage
    rejected = await desk.file(draft(resident, **UNROUTABLE))
    await desk.reject(rejected.number, STAFF, "重复提交。")

    async with sessions() as session:
        queue = await triage_queue(session, limit=10)
        first_only = await triage_queue(session, limit=1)
    assert [t.number for t in queue.tickets] == [unrouted.number, returned.number]
    assert queue.reasons == {returned.id: f"{URBAN}: 不属于本部门。"}
    assert [t.number for t in first_only.tickets] == [unrouted.number]
    assert first_only.reasons == {}


async def test_a_departments_waiting_tickets_come_by_reply_deadline(
    desk: TicketDesk, sessions: async_sessionmaker[AsyncSession], clock: MovableClock
) -> None:
    resident = await add_resident(sessions, 6003)
    # Suggestions get 20 working days, help requests 5: the later filing is due first.
    suggestion = await desk.file(draft(resident, type=TicketType.SUGGESTION))
    clock.advance(hours=1)
    help_request = await desk.file(draft(resident, type=TicketType.HELP))
    acknowledged = await desk.file(draft(resident))
    await desk.acknowledge(acknowledged.number, Actor.department(URBAN))
    answered = await desk.file(draft(resident))
    await desk.reply(answered.number, Actor.department(URBAN), "已处理。")
    other = await desk.file(
        draft(
            resident,
            type=TicketType.REPORT,
            category="生态环境",
            description="河里有死鱼，水发臭。",
        )
    )
    assert other.department_id == ECOLOGY

    async with sessions() as session:
        waiting = await department_waiting(session, URBAN, limit=10)
        ecology = await department_waiting(session, ECOLOGY, limit=10)
        first = await department_waiting(session, URBAN, limit=1)
    assert [t.number for t in waiting] == [
        help_request.number,
        acknowledged.number,
        suggestion.number,
    ]
    assert [t.number for t in ecology] == [other.number]
    assert [t.number for t in first] == [help_request.number]
