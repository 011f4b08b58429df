"""A disclosure application (依申请公开) closes as the Regulations ask: the applicant is told the
outcome in words, the reason for anything but full disclosure, the remedies (行政复议 within 60
days, 行政诉讼 within 6 months, to whom) and gets the document; the service is rated without
"is your problem solved?", and disagreeing never reopens it like a complaint. SQLite and
PostgreSQL; the end-to-end tests run the real bot against the local Bot API server.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import io
import re
import zipfile

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.answering.store import LoadedKnowledge
from bot.core.models import OutboxMessage, TicketDocument
from bot.core.workdays import time_zone
from bot.telegram.callback_data import TicketSolved
from bot.tickets.desk import Actor, InvalidTicketInput, TicketDesk, TicketDraft
from bot.tickets.documents import DocumentRefused, check_file, check_link, safe_file_name
from bot.tickets.figures import figures_for_month
from bot.tickets.messages import resident_notice_text
from tests.fixtures_conversation import press_forged
from tests.fixtures_tickets import MovableClock, TicketBot, add_resident, draft, make_settings
from tests.test_ticket_chat import choose_category
from tryout.local_bot_api import ChatTranscript

GOVERNMENT = Actor.department("government-office", "gov-1", "周科员")
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
CHINA = time_zone("Asia/Shanghai")


def application(resident: int) -> TicketDraft:
    return draft(
        resident,
        type="disclosure",
        category="政务公开",
        description="申请公开2026年老旧小区改造项目的资金安排和实施名单。",
        contact_name="测试申请人",
        contact_phone="13800138000",
        share_identity=True,
    )


def names(department_id: str | None, language: str) -> str | None:
    return {"government-office": "市政府办公室"}.get(department_id or "")


async def resident_rows(
    sessions: async_sessionmaker[AsyncSession], number: str
) -> list[OutboxMessage]:
    async with sessions() as session:
        rows = await session.execute(
            select(OutboxMessage)
            .where(OutboxMessage.channel == "resident")
            .order_by(OutboxMessage.id)
        )
        return [r for r in rows.scalars() if r.payload.get("number") == number]


# -- the department's answer ---------------------------------------------------------------------


@pytest.mark.parametrize("outcome", ["partly_disclosed", "withheld", "not_held", "other"])
async def test_an_answer_other_than_full_disclosure_needs_its_reason(
    desk: TicketDesk, sessions: async_sessionmaker[AsyncSession], outcome: str
) -> None:
    filed = await desk.file(application(await add_resident(sessions, 7001)))
    for empty in ("", "   ", "\u200b\n"):
        with pytest.raises(InvalidTicketInput) as refused:
            await desk.reply(
                filed.number, GOVERNMENT, "经审查作出如下答复。", outcome=outcome, reason=empty
            )
        assert refused.value.code == "reason"
        assert str(refused.value).startswith("reason:")
    assert (await desk.get(filed.number)).status == "assigned"
    ticket = await desk.reply(
        filed.number,
        GOVERNMENT,
        "经审查作出如下答复。",
        outcome=outcome,
        reason="依据条例第十五条。",
    )
    assert (ticket.status, ticket.outcome) == ("replied", outcome)


async def test_a_disclosure_answer_needs_its_outcome_and_a_complaint_carries_no_document(
    desk: TicketDesk, sessions: async_sessionmaker[AsyncSession]
) -> None:
    resident = await add_resident(sessions, 7002)
    filed = await desk.file(application(resident))
    with pytest.raises(InvalidTicketInput) as refused:
        await desk.reply(filed.number, GOVERNMENT, "见附件。")
    assert refused.value.code == "outcome"
    complaint = await desk.file(draft(resident))
    with pytest.raises(InvalidTicketInput) as refused:
        await desk.reply(
            complaint.number,
            Actor.department("urban-management"),
            "已清理。",
            document=check_file("a.pdf", PDF, max_bytes=10_000),
        )
    assert refused.value.code == "document"


async def test_the_applicant_is_told_outcome_reason_remedies_and_gets_the_file(
    desk: TicketDesk, sessions: async_sessionmaker[AsyncSession]
) -> None:
    filed = await desk.file(application(await add_resident(sessions, 7003)))
    await desk.reply(
        filed.number,
        GOVERNMENT,
        "您申请的资金安排予以公开，实施名单中的个人信息不予公开。",
        outcome="partly_disclosed",
        reason="实施名单含有住户姓名、门牌号，属于个人隐私，依据条例第十五条不予公开。",
        document=check_file("资金安排.pdf", PDF, max_bytes=10_000),
    )
    [notice, sending] = await resident_rows(sessions, filed.number)
    assert sending.payload["send"] == "document"
    assert sending.idempotency_key.endswith(":document")
    [stored] = await desk.documents(filed.number)
    assert sending.payload["document_id"] == stored.id
    assert (stored.file_name, stored.media_type, stored.size) == (
        "资金安排.pdf",
        "application/pdf",
        len(PDF),
    )
    assert (await desk.document_content(filed.number, stored.id)).content == PDF

    zone = time_zone("Asia/Shanghai")
    chinese = resident_notice_text(notice.payload, "zh", zone, names)
    assert chinese is not None
    assert "答复结果：<b>部分公开</b>" in chinese
    assert "理由：实施名单含有住户姓名" in chinese
    assert "《资金安排.pdf》" in chinese
    assert "60 日内向本级人民政府" in chinese
    assert "申请行政复议" in chinese
    assert "6 个月内向有管辖权的人民法院提起行政诉讼" in chinese
    assert "请为本次服务打分" in chinese
    assert "解决了吗" not in chinese
    english = html.unescape(resident_notice_text(notice.payload, "en", zone, names) or "")
    assert "Outcome: <b>partly disclosed</b>" in english
    assert "Reason: " in english
    assert "administrative review (行政复议)" in english
    assert "within 60 days" in english
    assert "within 6 months" in english
    assert "the people's court with jurisdiction" in english
    assert "Is your problem solved" not in english


async def test_the_review_body_and_court_come_from_the_config(
    sessions: async_sessionmaker[AsyncSession], bundled: LoadedKnowledge, clock: MovableClock
) -> None:
    settings = make_settings(
        disclosure={
            "review_body": "示例市人民政府",
            "review_body_en": "Shili City People's Government",
            "court": "示例市中山区人民法院",
            "court_en": "Zhongshan District People's Court of Shili City",
        }
    )
    desk = TicketDesk(settings, sessions, lambda: bundled.kb, clock=clock)
    filed = await desk.file(application(await add_resident(sessions, 7004)))
    await desk.reply(
        filed.number,
        GOVERNMENT,
        "经检索，本机关未制作或获取该信息。",
        outcome="not_held",
        reason="经检索没有所申请公开的信息（条例第三十六条第四项）。",
        document=check_link("https://xxgk.example.gov.cn/answers/2026-001"),
    )
    [notice] = await resident_rows(sessions, filed.number)  # a link sends no file
    zone = time_zone("Asia/Shanghai")
    chinese = resident_notice_text(notice.payload, "zh", zone, names) or ""
    assert "向示例市人民政府申请行政复议" in chinese
    assert "向示例市中山区人民法院提起行政诉讼" in chinese
    assert "https://xxgk.example.gov.cn/answers/2026-001" in chinese
    assert "无法提供" in chinese
    english = html.unescape(resident_notice_text(notice.payload, "en", zone, names) or "")
    assert "to Shili City People's Government within 60 days" in english


async def test_a_full_disclosure_needs_no_reason_and_still_names_the_remedies(
    desk: TicketDesk, sessions: async_sessionmaker[AsyncSession]
) -> None:
    filed = await desk.file(application(await add_resident(sessions, 7005)))
    await desk.reply(filed.number, GOVERNMENT, "予以公开，详见附件。", outcome="disclosed")
    [notice] = await resident_rows(sessions, filed.number)
    text = resident_notice_text(notice.payload, "zh", time_zone("Asia/Shanghai"), names) or ""
    assert "答复结果：<b>予以公开</b>" in text
    assert "理由：" not in text
    assert "申请行政复议" in text


# -- rating and disagreeing ------------------------------------------------------------------------


async def test_disagreeing_never_reopens_and_the_figures_stay_right(
    desk: TicketDesk, sessions: async_sessionmaker[AsyncSession], clock: MovableClock
) -> None:
    resident = await add_resident(sessions, 7006)
    clock.set_local(2026, 11, 2)
    filed = await desk.file(application(resident))
    await desk.extend(filed.number, GOVERNMENT, 20, "需要征求第三方意见。")
    await desk.reply(
        filed.number, GOVERNMENT, "部分公开。", outcome="withheld", reason="涉及商业秘密。"
    )
    replied = await desk.get(filed.number)
    clock.advance(days=2)
    # An old "not solved" button, or a forged one: the decision stands, the service is rated.
    ticket = await desk.rate(filed.number, resident, solved=False, rating=2)
    assert (ticket.status, ticket.solved, ticket.rating) == ("closed", None, 2)
    assert ticket.replied_at == replied.replied_at
    assert ticket.reply_deadline == replied.reply_deadline
    assert ticket.extended
    kinds = [e.kind for e in await desk.timeline(filed.number)]
    assert "reopened" not in kinds
    assert kinds[-2:] == ["rated", "closed"]

    async with sessions() as session:
        figures = await figures_for_month(
            session, "2026-11", "government-office", now=clock.now + dt.timedelta(days=60)
        )
    row = figures.department("government-office")
    assert (row.replied, row.rated, row.rating_rate) == (1, 1, 1.0)
    month = (
        replied.reply_deadline.astimezone(CHINA).strftime("%Y-%m")
        if replied.reply_deadline
        else ""
    )
    async with sessions() as session:
        due = await figures_for_month(
            session, month, "government-office", now=clock.now + dt.timedelta(days=90)
        )
    assert (
        due.department("government-office").due,
        due.department("government-office").on_time_rate,
    ) == (1, 1.0)


async def test_a_complaint_still_asks_solved_or_not(
    desk: TicketDesk, sessions: async_sessionmaker[AsyncSession]
) -> None:
    resident = await add_resident(sessions, 7007)
    filed = await desk.file(draft(resident))
    await desk.reply(filed.number, Actor.department("urban-management"), "已清理。")
    with pytest.raises(InvalidTicketInput):
        await desk.rate(filed.number, resident, solved=None, rating=4)
    ticket = await desk.rate(filed.number, resident, solved=False, rating=2)
    assert ticket.status == "assigned"


# -- documents -------------------------------------------------------------------------------------


def _docx() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("word/document.xml", "<w:document/>")
    return buffer.getvalue()


def test_files_are_checked_by_size_name_and_first_bytes() -> None:
    assert check_file("答复.docx", _docx(), max_bytes=100_000).media_type.endswith(
        "wordprocessingml.document"
    )
    refusals = [
        ("page.pdf", b"<html><script>alert(1)</script></html>", "type"),
        ("setup.exe", b"MZ\x90\x00", "type"),
        ("noextension", PDF, "type"),
        ("big.pdf", PDF + b"0" * 200, "size"),
        ("empty.pdf", b"", "empty"),
    ]
    for name, content, code in refusals:
        with pytest.raises(DocumentRefused) as refused:
            check_file(name, content, max_bytes=len(PDF) + 10)
        assert refused.value.code == code, name
    assert safe_file_name("../../etc/答复\x00.pdf") == "答复_.pdf"
    assert safe_file_name("C:\\Users\\x\\a<b>.pdf") == "a_b_.pdf"
    assert len(safe_file_name("长" * 300 + ".pdf")) <= 120
    assert safe_file_name("长" * 300 + ".pdf").endswith(".pdf")


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "data:text/html,<b>x</b>",
        "ftp://example.gov.cn/a.pdf",
        "https://user:pw@example.gov.cn/a.pdf",
        "https://",
        "https://example.gov.cn/a b.pdf",
        "https://example.gov.cn/" + "a" * 2001,
    ],
)
def test_links_must_be_plain_http_addresses(url: str) -> None:
    with pytest.raises(DocumentRefused):
        check_link(url)


async def test_documents_are_kept_for_the_console(
    desk: TicketDesk, sessions: async_sessionmaker[AsyncSession]
) -> None:
    filed = await desk.file(application(await add_resident(sessions, 7008)))
    await desk.reply(
        filed.number,
        GOVERNMENT,
        "予以公开。",
        outcome="disclosed",
        document=check_file("名单.docx", _docx(), max_bytes=100_000),
    )
    async with sessions() as session:
        [row] = (await session.execute(select(TicketDocument))).scalars().all()
        assert row.event_id is not None
    other = await desk.file(application(await add_resident(sessions, 7009)))
    with pytest.raises(Exception, match="no document"):
        await desk.document_content(other.number, row.id)


# -- end to end: the real bot, the department's Telegram group, the applicant's chat -------------

APPLICATION = "申请公开2026年老旧小区改造项目的资金安排和实施名单。"
REASON = "实施名单含有住户姓名和门牌号，属于个人隐私，依据条例第十五条不予公开；资金安排见文件。"


async def file_application(bot: TicketBot, chat: ChatTranscript, *, english: bool = False) -> str:
    """File a disclosure application through the form and pass it to the Telegram department."""
    await chat.send("/complain")
    if english:
        await chat.press("📂 Disclosure application", expect=2)
        await choose_category(chat, "Government information disclosure")
        await chat.send("Please disclose the 2026 budget of the old housing renovation.")
        await chat.press("➡️ Next", expect=3)
    else:
        await chat.press("📂 政府信息公开申请", expect=2)
        await choose_category(chat, "政务公开")
        await chat.send(APPLICATION)
        await chat.press("➡️ 下一步", expect=3)
    await chat.send("测试申请人")
    await chat.send("138-0000-0000")
    confirmation = (await chat.press("✅ Submit" if english else "✅ 确认提交", expect=2))[0]
    number = re.search(r"TS-\d{4}-\d{6}", confirmation.text)
    assert number is not None
    # Staff pass it to the department that works in its Telegram group; the applicant is told.
    cursor = bot.cursor(chat.chat)
    await bot.desk.reassign(
        number.group(), Actor.staff("staff-1", "张工作人员"), "urban-management"
    )
    await bot.messages_after(chat.chat, cursor)
    return number.group()


async def test_the_applicant_gets_the_decision_the_file_and_only_a_service_rating(
    ticket_bot: TicketBot,
) -> None:
    bot = ticket_bot
    chat = bot.resident("申请人")
    department = bot.department_room()
    before = bot.cursor(bot.department_group)
    number = await file_application(bot, chat)
    [card] = await bot.messages_after(bot.department_group, before)
    assert f"新政府信息公开申请</b> {number}" in card.html

    choice = (await department.press("💬 答复", message=card))[0]
    prompt = (await department.press("部分公开", message=choice))[0]
    assert "写明理由及依据" in prompt.text
    resident_cursor = bot.cursor(chat.chat)

    # A file without a caption gives no reason; a page renamed to .pdf is no PDF.
    replies = await department.send_document(
        PDF, file_name="资金安排.pdf", mime_type="application/pdf", reply_to=prompt
    )
    assert "必须写明理由" in replies.text
    replies = await department.send_document(
        b"<html><script>alert(1)</script></html>",
        file_name="资金安排.pdf",
        mime_type="application/pdf",
        caption=REASON,
        reply_to=prompt,
    )
    assert "文件未接受：文件类型不在可接受之列，或内容与扩展名不符" in replies.text
    assert (await bot.desk.get(number)).status == "assigned"

    replies = await department.send_document(
        PDF, file_name="资金安排.pdf", mime_type="application/pdf", caption=REASON, reply_to=prompt
    )
    assert f"已答复 {number}" in replies.text
    notice, sent = await bot.messages_after(chat.chat, resident_cursor, 2)
    assert "答复结果：部分公开" in notice.text
    assert "理由：实施名单含有住户姓名" in notice.text
    assert "60 日内向本级人民政府" in notice.text
    assert "申请行政复议" in notice.text
    assert "6 个月内向有管辖权的人民法院提起行政诉讼" in notice.text
    assert "解决了吗" not in notice.text
    assert notice.find_button("✅ 已解决") is None
    assert notice.find_button("❌ 未解决") is None
    assert notice.find_button("★★★★★") is not None
    assert sent.kind == "document"
    assert sent.data["document"]["file_name"] == "资金安排.pdf"
    assert bot.api.file_bytes(sent.data["document"]["file_id"]) == PDF
    [kept] = await bot.desk.documents(number)
    assert (await bot.desk.document_content(number, kept.id)).content == PDF

    # Disagreeing points to the remedies and reopens nothing, even by a forged "not solved".
    replies = await chat.press("⚖️ 不服答复怎么办", message=notice)
    assert "不能像投诉那样" in replies.text
    assert "行政诉讼" in replies.text
    ticket = await bot.desk.get(number)
    forged = TicketSolved(ticket.id, False).encode()
    await press_forged(bot.api, chat.user, notice, forged)
    assert (await bot.desk.get(number)).status == "replied"
    assert "reopened" not in [e.kind for e in await bot.desk.timeline(number)]

    replies = await chat.press("★★★★", message=notice, expect=1)
    assert "谢谢您的评价" in replies.text
    ticket = await bot.desk.get(number)
    assert (ticket.status, ticket.rating, ticket.solved) == ("closed", 4, None)

    await chat.send("/status")
    replies = await chat.press(f"{number} · 政务公开 · 已办结", expect=1)
    assert "答复（部分公开）" in replies.text
    assert replies[-1].find_button("⚖️ 不服答复怎么办") is not None


async def test_a_file_uploaded_elsewhere_reaches_an_english_applicant_as_a_document(
    ticket_bot: TicketBot,
) -> None:
    bot = ticket_bot
    chat = bot.resident("Alice", language_code="en")
    number = await file_application(bot, chat, english=True)
    cursor = bot.cursor(chat.chat)
    # What the console does with an upload: the bytes only, no Telegram file yet.
    await bot.desk.reply(
        number,
        Actor.department("urban-management", "17", "王科员"),
        "The budget is disclosed; see the file.",
        outcome="disclosed",
        document=check_file("budget.pdf", PDF, max_bytes=10_000),
    )
    notice, sent = await bot.messages_after(chat.chat, cursor, 2)
    assert "Outcome: disclosed" in notice.text
    assert "administrative review" in notice.text
    assert "within 6 months" in notice.text
    assert "Please rate the service" in notice.text
    assert "Is your problem solved" not in notice.text
    assert sent.kind == "document"
    assert "The file of the answer to" in sent.text
    assert bot.api.file_bytes(sent.data["document"]["file_id"]) == PDF
    # The worker keeps the file id after Telegram answered: wait for the row to be done.
    for _ in range(200):
        [row] = [
            r for r in await resident_rows(bot.services.sessions, number) if r.payload.get("send")
        ]
        if row.status == "sent":
            break
        await asyncio.sleep(0.05)
    [kept] = await bot.desk.documents(number)
    assert kept.telegram_file_id == sent.data["document"]["file_id"]
