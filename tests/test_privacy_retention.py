"""Retention of residents' personal data (bot/tickets/privacy.py): the sweep, with tickets and
questions filed by a clock set in the past, on SQLite and PostgreSQL; `python -m bot privacy
sweep`; pseudonyms and masked phones (bot/core/privacy.py); the [privacy] settings.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.answering.store import LoadedKnowledge
from bot.core.audit_chain import verify_all
from bot.core.config import PrivacySettings, Settings
from bot.core.models import (
    AttachmentFile,
    AuditEntry,
    OutboxMessage,
    Question,
    Resident,
    Ticket,
    TicketAttachment,
    TicketEvent,
)
from bot.core.privacy import Pseudonyms, mask_phone
from bot.tickets.desk import Actor, PhotoRef, TicketDesk
from bot.tickets.privacy import PrivacyDesk
from tests.fixtures_tickets import MovableClock, add_resident, draft
from tests.test_cli import run_bot

PHONE = "13812345678"
TOLD = f"东门垃圾没人清，联系我{PHONE}。"
APPLICANT = {
    "type": "disclosure",
    "category": "政务公开",
    "description": "申请公开2026年老旧小区改造项目的资金安排。",
    "contact_name": "韩梅梅",
    "contact_phone": "+8613912345678",
    "share_identity": True,
}


async def add_question(
    sessions: async_sessionmaker[AsyncSession], resident_id: int, text: str, at: dt.datetime
) -> int:
    async with sessions() as session, session.begin():
        question = Question(
            resident_id=resident_id,
            chat_id=1,
            message_id=5,
            text=text,
            normalized=text,
            decision="answer",
            created_at=at,
        )
        session.add(question)
        await session.flush()
        return question.id


def privacy_desk(desk: TicketDesk, clock: MovableClock) -> PrivacyDesk:
    return PrivacyDesk(desk.settings, desk.sessions, clock=clock)


async def test_the_sweep_erases_personal_data_past_its_period_and_keeps_texts_and_figures(
    desk: TicketDesk, sessions: async_sessionmaker[AsyncSession], clock: MovableClock
) -> None:
    resident = await add_resident(sessions, 8001)
    idle = await add_resident(sessions, 8002)
    closed = await desk.file(
        draft(
            resident,
            description=TOLD,
            contact_name="李雷",
            contact_phone=PHONE,
            share_identity=True,
            location_text="幸福小区东门",
            latitude=30.1,
            longitude=120.2,
            photos=(PhotoRef("photo-file-1", "u1"),),
        )
    )
    await desk.reply(closed.number, Actor.department("urban-management"), "已清运。")
    await desk.rate(closed.number, resident, solved=True, rating=4)
    disclosure = await desk.file(draft(resident, **APPLICANT))
    await desk.close(disclosure.number, Actor.staff("1"), "已答复。")
    still_open = await desk.file(draft(resident, contact_phone=PHONE, share_identity=True))
    await add_question(sessions, resident, "居住证怎么办理", clock.now)
    await add_question(sessions, idle, "我的电话13900001111能办吗", clock.now)
    async with sessions() as session, session.begin():
        await session.execute(update(Resident).values(last_seen_at=clock.now))
    sweeper = privacy_desk(desk, clock)

    # Within every period nothing changes.
    clock.advance(days=179)
    assert (await sweeper.sweep()).total == 0

    # Questions' texts go after 180 days, and a resident with nothing left becomes a husk.
    clock.advance(days=2)
    report = await sweeper.sweep()
    assert (report.questions, report.tickets, report.residents) == (2, 0, 1)
    async with sessions() as session:
        texts = (await session.scalars(select(Question.text))).all()
        husk = await session.get(Resident, idle)
        kept_resident = await session.get(Resident, resident)
    assert list(texts) == ["", ""]
    assert husk is not None
    assert (husk.telegram_user_id, husk.display_name) == (-idle, "")
    assert kept_resident is not None
    assert kept_resident.telegram_user_id == 8001

    # Closed tickets lose their personal data a year after closing; the rest waits.
    clock.advance(days=190)
    report = await sweeper.sweep()
    assert report.tickets == 1
    async with sessions() as session:
        erased = await session.scalar(select(Ticket).where(Ticket.number == closed.number))
        assert erased is not None
        photos = await session.scalar(
            select(func.count())
            .select_from(TicketAttachment)
            .where(TicketAttachment.ticket_id == erased.id)
        )
        # The photo's kept bytes (queued when the ticket was filed) go too.
        kept_photos = await session.scalar(select(func.count()).select_from(AttachmentFile))
        payloads = (
            await session.scalars(
                select(OutboxMessage.payload).where(OutboxMessage.ticket_id == erased.id)
            )
        ).all()
        actors = (
            await session.scalars(
                select(TicketEvent.actor_id).where(
                    TicketEvent.ticket_id == erased.id, TicketEvent.actor_type == "resident"
                )
            )
        ).all()
        others = (
            await session.scalars(
                select(Ticket).where(Ticket.number.in_([disclosure.number, still_open.number]))
            )
        ).all()
        audit = (
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "privacy.sweep"))
        ).all()
    assert (erased.contact_name, erased.contact_phone, erased.location_text) == (None, None, None)
    assert (erased.latitude, erased.longitude, erased.resident_id) == (None, None, None)
    assert photos == 0
    assert kept_photos == 0
    # Erasing who the resident was leaves the tamper-evident chains whole.
    async with sessions() as session:
        chains = await verify_all(session)
    assert [(report.chain, report.problem) for report in chains] == [
        ("audit_log", None),
        ("ticket_events", None),
    ]
    assert all(report.count > 0 for report in chains)
    assert erased.description == "东门垃圾没人清，联系我*******5678。"
    assert (erased.status, erased.rating, erased.solved) == ("closed", 4, True)
    assert payloads
    assert PHONE not in json.dumps(payloads)
    assert "李雷" not in json.dumps(payloads)
    assert set(actors) == {""}
    assert all(t.contact_phone for t in others)
    assert [a.detail["tickets"] for a in audit] == [0, 1]
    assert audit[-1].detail["ticket_numbers"] == [closed.number]

    # Sweeping again decides nothing twice.
    assert (await sweeper.sweep()).total == 0

    # Disclosure applications are kept for the law's period, then erased too.
    clock.advance(days=3 * 365)
    report = await sweeper.sweep()
    assert report.tickets == 1
    async with sessions() as session:
        applicant = await session.scalar(select(Ticket).where(Ticket.number == disclosure.number))
        open_one = await session.scalar(select(Ticket).where(Ticket.number == still_open.number))
    assert applicant is not None
    assert applicant.contact_name is None
    assert open_one is not None
    assert open_one.contact_phone == "+86" + PHONE  # stored as E.164


async def test_anonymous_reports_from_before_pseudonyms_are_pseudonymised(
    desk: TicketDesk, sessions: async_sessionmaker[AsyncSession], clock: MovableClock
) -> None:
    resident = await add_resident(sessions, 8101)
    filed = await desk.file(
        draft(
            resident,
            type="report",
            category="生态环境",
            description="河边那家工厂每天凌晨偷偷排污。",
            anonymous=True,
        )
    )
    async with sessions() as session, session.begin():
        ticket = await session.scalar(select(Ticket).where(Ticket.number == filed.number))
        assert ticket is not None
        assert ticket.resident_id is None
        assert ticket.resident_pseudonym
        # As stored before pseudonyms existed.
        await session.execute(
            update(Ticket)
            .where(Ticket.id == ticket.id)
            .values(resident_id=resident, resident_pseudonym=None, resident_sealed=None)
        )
    report = await privacy_desk(desk, clock).sweep()
    assert report.pseudonymised == 1
    async with sessions() as session:
        ticket = await session.scalar(select(Ticket).where(Ticket.number == filed.number))
    assert ticket is not None
    assert ticket.resident_id is None
    pseudonyms = desk.pseudonyms
    assert pseudonyms is not None
    assert ticket.resident_pseudonym == pseudonyms.pseudonym(8101)
    assert ticket.resident_sealed is not None
    assert pseudonyms.unseal(ticket.resident_sealed) == 8101
    # The resident still finds it.
    assert [t.number for t in await desk.tickets_of_resident(resident)] == [filed.number]
    # Long silent, they are not forgotten while the report they follow is open.
    async with sessions() as session, session.begin():
        await session.execute(update(Resident).values(last_seen_at=clock.now))
    clock.advance(days=400)
    report = await privacy_desk(desk, clock).sweep()
    assert report.residents == 0
    async with sessions() as session:
        kept = await session.get(Resident, resident)
    assert kept is not None
    assert kept.telegram_user_id == 8101


async def test_privacy_sweep_on_the_command_line(
    database_url: str,
    sessions: async_sessionmaker[AsyncSession],
    bundled: LoadedKnowledge,
    ticket_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    long_ago = MovableClock()
    long_ago.set_local(2023, 3, 1)
    desk = TicketDesk(ticket_settings, sessions, lambda: bundled.kb, clock=long_ago)
    resident = await add_resident(sessions, 8201)
    filed = await desk.file(draft(resident, contact_phone=PHONE, share_identity=True))
    await desk.close(filed.number, Actor.staff("1"), "已处理。")
    monkeypatch.setenv("DATABASE_URL", database_url)
    done = run_bot("privacy", "sweep", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["tickets"] == 1
    async with sessions() as session:
        ticket = await session.scalar(select(Ticket).where(Ticket.number == filed.number))
    assert ticket is not None
    assert ticket.contact_phone is None


def test_pseudonyms_are_keyed_and_sealed_addresses_cannot_be_forged() -> None:
    one = Pseudonyms(b"a" * 32)
    other = Pseudonyms(b"b" * 32)
    assert one.pseudonym(42) == one.pseudonym(42)
    assert one.pseudonym(42) != other.pseudonym(42)
    assert len(one.pseudonym(42)) == 64
    sealed = one.seal(7_000_000_001)
    assert sealed != one.seal(7_000_000_001)
    assert one.unseal(sealed) == 7_000_000_001
    assert other.unseal(sealed) is None
    tampered = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    assert one.unseal(tampered) is None
    for junk in ("", "s1.", "s1.!!!", "x" * 500, "s1." + "A" * 56):
        assert one.unseal(junk) is None


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("13812341234", "138****1234"),
        ("+8613812341234", "+86 138****1234"),
        ("138 1234 1234", "138****1234"),
        ("0571-8888-1234", "057*****1234"),
        ("+8657188881234", "+86 571****1234"),
        ("+862155501234", "+86 215***1234"),
        ("12345", "***45"),
        ("无", "*"),
        ("", ""),
        (None, None),
    ],
)
def test_phones_are_masked_whatever_their_format(stored: str | None, shown: str | None) -> None:
    assert mask_phone(stored) == shown


def test_privacy_settings_are_validated() -> None:
    assert PrivacySettings().closed_ticket_days == 365
    for bad in (
        {"closed_ticket_days": 0},
        {"question_days": 99999},
        {"disclosure_days": 30, "closed_ticket_days": 365},
        {"notice_url": "javascript:alert(1)"},
        {"export_interval_minutes": 0},
        {"unknown": 1},
    ):
        with pytest.raises(ValidationError):
            PrivacySettings(**bad)  # type: ignore[arg-type]
