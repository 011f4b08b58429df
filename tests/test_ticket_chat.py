"""Residents file tickets with the real bot over HTTP (LocalBotApi on 127.0.0.1); departments
answer in their Telegram group or receive a webhook; residents follow and rate. SQLite and
PostgreSQL. The local server refuses invalid HTML as Telegram does, so unescaped text fails.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import pytest
from sqlalchemy import delete, func, select

from bot.core.db import create_engine, session_factory
from bot.core.models import BotState, OutboxMessage, Resident, Ticket, utcnow
from bot.tickets.clock import TicketClock
from bot.tickets.delivery import DeliveryWorker
from bot.tickets.desk import Actor, TicketDesk
from tests.fixtures_conversation import press_forged
from tests.fixtures_tickets import TicketBot
from tryout.local_bot_api import ChatMessage, ChatTranscript

RUBBISH = "幸福小区东门外的垃圾堆了一个星期没人清理，气味很大。"


async def choose_category(chat: ChatTranscript, name: str) -> None:
    """Page through the categories until `name` shows, then press it."""
    for _ in range(6):
        latest = chat.last_bot_message
        assert latest is not None
        if latest.find_button(name) is not None:
            await chat.press(name, expect=2)
            return
        await chat.press("下一页 ➡️" if latest.find_button("下一页 ➡️") else "Next ➡️", expect=2)
    raise AssertionError(f"no category {name}")


async def file_rubbish_complaint(chat: ChatTranscript, *, photos: int = 0) -> ChatMessage:
    """Go through the whole form for a complaint about rubbish; return the confirmation."""
    await chat.send("/complain")
    await chat.press("📢 投诉", expect=2)
    await choose_category(chat, "市容环境")
    replies = await chat.send(RUBBISH)
    if "已经有居民反映过类似的问题" in replies.text:
        replies = await chat.press("📝 不是同一件事，继续提交", expect=2)
    assert "可以补充<b>照片</b>" in replies[0].html
    for _ in range(photos):
        await chat.send_photo()
    await chat.press("➡️ 下一步", expect=2)
    await chat.press("🙈 不提供", expect=2)
    replies = await chat.press("✅ 确认提交", expect=2)
    return replies[0]


async def count_tickets(bot: TicketBot) -> int:
    async with bot.services.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Ticket)) or 0)


async def test_a_complaint_goes_from_the_resident_to_the_department_and_back(
    ticket_bot: TicketBot,
) -> None:
    bot = ticket_bot
    chat = bot.resident()
    department = bot.department_room()
    before = bot.cursor(bot.department_group)
    confirmation = await file_rubbish_complaint(chat, photos=2)

    assert confirmation.text.startswith("✅ 已受理，工单号 TS-2026-")
    number = confirmation.text.split("工单号 ")[1].split("\n")[0]
    assert "已转交示例市城市管理综合执法局办理" in confirmation.text
    assert "答复期限：" in confirmation.text
    assert "个工作日" in confirmation.text
    ticket = await bot.desk.get(number)
    assert ticket.status == "assigned"
    assert ticket.description == RUBBISH

    photos_and_card = await bot.messages_after(bot.department_group, before, 3)
    assert [m.kind for m in photos_and_card] == ["photo", "photo", "text"]
    card = photos_and_card[-1]
    assert f"新投诉</b> {number}" in card.html
    assert RUBBISH in card.text
    assert "居民未同意提供身份" in card.text
    assert card.find_button("✅ 签收") is not None

    resident_cursor = bot.cursor(chat.chat)
    replies = await department.press("✅ 签收", message=card, expect=3)
    assert "王科员 已签收" in replies.text
    [notice] = await bot.messages_after(chat.chat, resident_cursor)
    assert "已由示例市城市管理综合执法局签收" in notice.text

    prompt = (await department.press("💬 答复", message=card, expect=2))[0]
    assert "回复本条消息" in prompt.text
    resident_cursor = bot.cursor(chat.chat)
    replies = await department.reply(prompt, "已安排环卫工人清运，并将东门列入每日巡查。")
    assert f"已答复 {number}" in replies.text
    [answer] = await bot.messages_after(chat.chat, resident_cursor)
    assert "已安排环卫工人清运" in answer.text
    assert "您的问题解决了吗？" in answer.text

    await chat.press("✅ 已解决", message=answer, expect=2)
    replies = await chat.press("★★★★★", expect=2)
    assert "谢谢您的评价" in replies.text
    replies = await chat.send("处理得很快，谢谢！")
    assert "已记录您的评论" in replies.text
    ticket = await bot.desk.get(number)
    assert (ticket.status, ticket.rating, ticket.rating_comment) == (
        "closed",
        5,
        "处理得很快，谢谢！",
    )


async def test_an_anonymous_report_reaches_the_webhook_without_any_identity(
    ticket_bot: TicketBot,
) -> None:
    bot = ticket_bot
    chat = bot.resident("韩梅梅")
    await chat.send("/complain")
    await chat.press("🚨 举报", expect=2)
    await choose_category(chat, "生态环境")
    await chat.send("河边那家工厂每天凌晨偷偷排污，河道发黑发臭。")
    await chat.press("➡️ 下一步", expect=2)
    replies = await chat.press("🕶 匿名举报", expect=2)
    assert "身份：匿名（承办部门看不到您的身份）" in replies.text
    confirmation = (await chat.press("✅ 确认提交", expect=2))[0]
    number = confirmation.text.split("工单号 ")[1].split("\n")[0]
    await asyncio.wait_for(bot.endpoint.arrived.wait(), timeout=5)
    [call] = bot.endpoint.calls
    assert call.key.startswith(number + ":")
    assert call.body["ticket"]["anonymous"] is True
    assert call.body["ticket"]["resident"] is None
    assert "韩梅梅" not in json.dumps(call.body, ensure_ascii=False)
    assert str(chat.user.id) not in json.dumps(call.body)


@pytest.mark.parametrize(
    ("button", "category", "text", "contact"),
    [
        ("💡 建议", "公共交通", "建议早高峰增加8路公交车的班次，现在经常等二十分钟。", "share"),
        (
            "🆘 求助",
            "社会救助",
            "家里老人生病住院，医疗费负担很重，想了解可以申请哪些救助。",
            "private",
        ),
        (
            "📂 政府信息公开申请",
            "政务公开",
            "申请公开2026年老旧小区改造项目的资金安排和实施名单。",
            "applicant",
        ),
    ],
)
async def test_each_ticket_type_is_filed_end_to_end(
    ticket_bot: TicketBot, button: str, category: str, text: str, contact: str
) -> None:
    chat = ticket_bot.resident()
    await chat.send("/complain")
    await chat.press(button, expect=2)
    await choose_category(chat, category)
    await chat.send(text)
    replies = await chat.press("➡️ 下一步", expect=2 if contact != "applicant" else 3)
    if contact == "applicant":
        assert "《政府信息公开条例》第二十九条" in replies.text
    elif contact == "share":
        await chat.press("👤 提供姓名和电话", expect=2)
    else:
        replies = await chat.press("🙈 不提供", expect=2)
    if contact in ("share", "applicant"):
        await chat.send("测试居民")
        replies = await chat.send("138-0000-0000")
        assert "提供给承办部门：测试居民，+8613800000000" in replies.text
    confirmation = (await chat.press("✅ 确认提交", expect=2))[0]
    assert "✅ 已受理" in confirmation.text
    number = confirmation.text.split("工单号 ")[1].split("\n")[0]
    ticket = await ticket_bot.desk.get(number)
    assert ticket.description == text
    assert ticket.category == category
    assert ticket.share_identity is (contact != "private")
    if contact != "private":
        assert ticket.contact_phone == "+8613800000000"
    if contact == "applicant":
        assert ticket.type == "disclosure"
        assert "20 个工作日" in confirmation.text


async def test_back_goes_one_step_back_and_cancel_files_nothing(ticket_bot: TicketBot) -> None:
    chat = ticket_bot.resident()
    await chat.send("/complain")
    await chat.press("📢 投诉", expect=2)
    replies = await chat.press("⬅️ 上一步", expect=2)
    assert "请选择事项类型" in replies.text
    await chat.press("💡 建议", expect=2)
    await choose_category(chat, "公共交通")
    replies = await chat.press("⬅️ 上一步", expect=2)
    assert "建议</b>：请选择类别" in replies[0].html
    await choose_category(chat, "公共交通")
    await chat.send("建议在火车站增加一个公交站台，方便换乘。")
    replies = await chat.press("⬅️ 上一步", expect=2)
    assert "请用文字描述具体情况" in replies.text
    replies = await chat.press("✖️ 取消", expect=2)
    assert "已取消，没有提交任何内容" in replies.text
    await chat.send("/complain")
    await chat.press("📢 投诉", expect=2)
    replies = await chat.send("/cancel")
    assert "已取消" in replies.text
    assert await count_tickets(ticket_bot) == 0
    # A button of the cancelled form does nothing any more.
    replies = await chat.press("📢 投诉", message=chat.bot_messages[-3])
    assert replies.answer is not None
    assert replies.answer.text == "这个按钮已经失效了，请重新打开菜单。"


async def test_limits_are_explained_and_nothing_is_lost(ticket_bot: TicketBot) -> None:
    chat = ticket_bot.resident()
    await chat.send("/complain")
    await chat.press("📢 投诉", expect=2)
    await choose_category(chat, "市容环境")
    replies = await chat.send("垃圾")
    assert "描述太短了，请至少写 5 个字" in replies.text
    replies = await chat.send("很" * 2001)
    assert "描述太长了（2001 字），最多 2000 字" in replies.text
    replies = await chat.send_photo()
    assert "请先用文字描述情况" in replies.text
    await chat.send(RUBBISH)
    for count in range(1, 6):
        assert f"已收到照片 {count}/5" in (await chat.send_photo()).text
    assert "最多 5 张照片，这张没有添加" in (await chat.send_photo()).text
    replies = await chat.send("地" * 201)
    assert "地址太长了，最多 200 字" in replies.text
    replies = await chat.send_location(31.2304, 121.4737)
    assert "已记录位置" in replies.text
    await chat.press("➡️ 下一步", expect=2)
    await chat.press("👤 提供姓名和电话", expect=2)
    await chat.send("张三")
    assert "没能识别这个电话号码" in (await chat.send("请打我电话")).text
    replies = await chat.send("010-12345678")
    assert "照片：5 张" in replies.text
    assert "地点：已发送位置" in replies.text
    assert "请点上面的按钮继续" in (await chat.send("好了吗")).text
    await chat.press("✅ 确认提交", expect=2)
    ticket = (await ticket_bot.desk.tickets_of_resident(await resident_id(ticket_bot, chat)))[0]
    assert len(await ticket_bot.desk.attachments(ticket.number)) == 5


async def resident_id(bot: TicketBot, chat: ChatTranscript) -> int:
    async with bot.services.sessions() as session:
        found = await session.scalar(
            select(Resident.id).where(Resident.telegram_user_id == chat.user.id)
        )
    assert found is not None
    return found


async def test_a_restart_in_the_middle_of_the_form_loses_nothing(ticket_bot: TicketBot) -> None:
    chat = ticket_bot.resident()
    await chat.send("/complain")
    await chat.press("📢 投诉", expect=2)
    await choose_category(chat, "市容环境")
    await chat.send(RUBBISH)
    await chat.send_photo()
    await ticket_bot.restart()
    await chat.send_photo()
    await chat.press("➡️ 下一步", expect=2)
    await chat.press("🙈 不提供", expect=2)
    replies = await chat.press("✅ 确认提交", expect=2)
    assert "✅ 已受理" in replies.text
    number = replies.text.split("工单号 ")[1].split("\n")[0]
    assert (await ticket_bot.desk.get(number)).description == RUBBISH
    assert len(await ticket_bot.desk.attachments(number)) == 2


async def test_a_form_submitted_again_after_a_crash_files_one_ticket(
    ticket_bot: TicketBot,
) -> None:
    chat = ticket_bot.resident()
    await chat.send("/complain")
    await chat.press("📢 投诉", expect=2)
    await choose_category(chat, "市容环境")
    await chat.send(RUBBISH)
    await chat.press("➡️ 下一步", expect=2)
    await chat.press("🙈 不提供", expect=2)
    review = chat.last_bot_message
    assert review is not None
    # A process killed right after filing leaves the form as it stood before the button (the
    # state is written once an update is handled): keep that state to put it back.
    await ticket_bot.stop()
    engine = create_engine(ticket_bot.database_url)
    sessions = session_factory(engine)
    try:
        async with sessions() as session:
            saved = [
                (row.kind, row.key, row.value) for row in await session.scalars(select(BotState))
            ]
        await ticket_bot.start()
        first = await chat.press("✅ 确认提交", message=review, expect=2)
        assert "✅ 已受理" in first.text
        number = first.text.split("工单号 ")[1].split("\n")[0]
        await ticket_bot.stop()
        async with sessions() as session, session.begin():
            await session.execute(delete(BotState))
            session.add_all(
                BotState(kind=kind, key=key, value=value) for kind, key, value in saved
            )
        await ticket_bot.start()

        # The process that takes over handles the same button again: the form files once.
        again = await chat.press("✅ 确认提交", message=review, expect=2)
        assert "✅ 已受理" in again.text
        assert again.text.split("工单号 ")[1].split("\n")[0] == number
        async with sessions() as session:
            filed = await session.scalar(
                select(func.count()).select_from(Ticket).where(Ticket.description == RUBBISH)
            )
        assert filed == 1
    finally:
        await engine.dispose()


async def test_status_shows_only_the_residents_own_tickets(ticket_bot: TicketBot) -> None:
    mine = ticket_bot.resident("李雷")
    theirs = ticket_bot.resident("韩梅梅")
    own = await file_rubbish_complaint(mine)
    other = await file_rubbish_complaint(theirs)
    own_number = own.text.split("工单号 ")[1].split("\n")[0]
    other_number = other.text.split("工单号 ")[1].split("\n")[0]
    replies = await mine.send("/status")
    assert "共 1 件" in replies.text
    labels = [label for row in replies[0].buttons for label, _ in row]
    assert labels == [f"{own_number} · 市容环境 · 已转承办部门"]
    replies = await mine.press(labels[0], expect=2)
    assert f"<b>{own_number}</b>" in replies[0].html
    assert "承办：示例市城市管理综合执法局" in replies.text
    assert "转交示例市城市管理综合执法局办理" in replies.text
    other_id = (await ticket_bot.desk.get(other_number)).id
    answer = await press_forged(ticket_bot.api, mine.user, replies[-1], f"tkt:v:{other_id}")
    assert answer is not None
    assert answer.text == "没有找到这个工单。"
    answer = await press_forged(ticket_bot.api, mine.user, replies[-1], f"tkt:rt:{other_id}:1:5")
    assert (await ticket_bot.desk.get(other_number)).rating is None


async def test_the_department_asks_and_the_residents_answer_reaches_it(
    ticket_bot: TicketBot,
) -> None:
    bot = ticket_bot
    chat = bot.resident()
    before = bot.cursor(bot.department_group)
    await file_rubbish_complaint(chat)
    [card] = await bot.messages_after(bot.department_group, before)
    department = bot.department_room(bot.chief)
    prompt = (await department.press("❓ 请居民补充", message=card, expect=2))[0]
    cursor = bot.cursor(chat.chat)
    await department.reply(prompt, "请问垃圾堆在东门的哪一侧？")
    [question] = await bot.messages_after(chat.chat, cursor)
    assert "请问垃圾堆在东门的哪一侧？" in question.text
    await chat.press("📝 补充信息", message=question, expect=2)
    before = bot.cursor(bot.department_group)
    replies = await chat.send("在东门左边，靠近快递柜。")
    assert "已补充到" in replies.text
    [added] = await bot.messages_after(bot.department_group, before)
    assert "居民补充信息" in added.text
    assert "靠近快递柜" in added.text


async def test_not_solved_reopens_the_ticket_with_the_same_department(
    ticket_bot: TicketBot,
) -> None:
    bot = ticket_bot
    chat = bot.resident()
    confirmation = await file_rubbish_complaint(chat)
    number = confirmation.text.split("工单号 ")[1].split("\n")[0]
    cursor = bot.cursor(chat.chat)
    await bot.desk.reply(number, Actor.department("urban-management", "u", "王科员"), "已清理。")
    [answer] = await bot.messages_after(chat.chat, cursor)
    await chat.press("❌ 未解决", message=answer, expect=2)
    before = bot.cursor(bot.department_group)
    replies = await chat.press("★★", expect=2)
    assert "已重新交示例市城市管理综合执法局办理" in replies.text
    [reopened] = await bot.messages_after(bot.department_group, before)
    assert "居民表示问题未解决" in reopened.text
    assert "★★☆☆☆" in reopened.text
    await chat.send("只清理了一半，还有很多。")
    ticket = await bot.desk.get(number)
    assert (ticket.status, ticket.department_id) == ("assigned", "urban-management")
    assert ticket.rating_comment == "只清理了一半，还有很多。"


async def test_a_resident_who_blocked_the_bot_is_marked_and_work_goes_on(
    ticket_bot: TicketBot,
) -> None:
    bot = ticket_bot
    chat = bot.resident()
    confirmation = await file_rubbish_complaint(chat)
    number = confirmation.text.split("工单号 ")[1].split("\n")[0]
    bot.api.block_bot(chat.user)
    officer = Actor.department("urban-management", "u", "王科员")
    await bot.desk.acknowledge(number, officer)
    await bot.desk.reply(number, officer, "已清理。")
    for _ in range(50):
        async with bot.services.sessions() as session:
            resident = await session.scalar(
                select(Resident).where(Resident.telegram_user_id == chat.user.id)
            )
        if resident is not None and resident.blocked_bot:
            break
        await asyncio.sleep(0.1)
    assert resident is not None
    assert resident.blocked_bot
    async with bot.services.sessions() as session:
        statuses = (
            (
                await session.execute(
                    select(OutboxMessage.status).where(OutboxMessage.channel == "resident")
                )
            )
            .scalars()
            .all()
        )
    assert set(statuses) <= {"dropped", "pending"}
    assert "dropped" in statuses
    assert (await bot.desk.get(number)).status == "replied"


async def test_only_members_of_the_departments_chat_act_on_its_tickets(
    ticket_bot: TicketBot,
) -> None:
    bot = ticket_bot
    chat = bot.resident()
    before = bot.cursor(bot.department_group)
    confirmation = await file_rubbish_complaint(chat)
    number = confirmation.text.split("工单号 ")[1].split("\n")[0]
    [card] = await bot.messages_after(bot.department_group, before)
    bot.api.set_member_status(bot.department_group, bot.officer, "left")
    answer = await press_forged(bot.api, bot.officer, card, f"dpt:ack:{number}")
    assert answer is not None
    assert answer.text == "只有本部门工作群的成员可以处理工单。"
    # A forged button from the staff group cannot act for the department either.
    staff_post = await bot.staff_room().send("大家好", expect=0)
    del staff_post
    answer = await press_forged(
        bot.api, bot.staff, bot.api.messages(bot.staff_group)[-1], f"dpt:ack:{number}"
    )
    assert answer is not None
    assert answer.text == "只有本部门工作群的成员可以处理工单。"
    assert (await bot.desk.get(number)).status == "assigned"


async def test_a_second_resident_adds_their_voice_instead_of_filing_again(
    ticket_bot: TicketBot,
) -> None:
    first = ticket_bot.resident("李雷")
    confirmation = await file_rubbish_complaint(first)
    number = confirmation.text.split("工单号 ")[1].split("\n")[0]
    second = ticket_bot.resident("韩梅梅")
    await second.send("/complain")
    await second.press("📢 投诉", expect=2)
    await choose_category(second, "市容环境")
    replies = await second.send("幸福小区东门外垃圾堆了好几天了，一直没人来清理")
    assert "已经有居民反映过类似的问题" in replies.text
    assert number in replies.text
    replies = await second.press(f"👍 附议 {number}", expect=2)
    assert f"已为 {number} 附议，目前共 1 人" in replies.text
    assert (await ticket_bot.desk.get(number)).supporters == 1
    assert await count_tickets(ticket_bot) == 1
    replies = await second.send("/status")
    assert f"👍 {number}" in replies[0].buttons[0][0][0]


async def test_hostile_text_reaches_the_department_escaped(ticket_bot: TicketBot) -> None:
    bot = ticket_bot
    chat = bot.resident("<b>坏人</b>")
    before = bot.cursor(bot.department_group)
    await chat.send("/complain")
    await chat.press("📢 投诉", expect=2)
    await choose_category(chat, "市容环境")
    hostile = "<script>alert(1)</script> & <b>垃圾</b> 没人管 '; DROP TABLE tickets; --"
    await chat.send(hostile)
    await chat.press("➡️ 下一步", expect=2)
    await chat.press("👤 提供姓名和电话", expect=2)
    await chat.send("<i>张三</i>")
    replies = await chat.send("010-12345678")
    assert "<i>张三</i>" in replies.text
    await chat.press("✅ 确认提交", expect=2)
    [card] = await bot.messages_after(bot.department_group, before)
    assert hostile in card.text
    assert "<i>张三</i>" in card.text


async def test_staff_route_a_ticket_from_triage_and_a_department_hands_one_back(
    ticket_bot: TicketBot,
) -> None:
    bot = ticket_bot
    chat = bot.resident()
    staff_before = bot.cursor(bot.staff_group)
    await chat.send("/complain")
    await chat.press("📢 投诉", expect=2)
    await choose_category(chat, "其他")
    await chat.send("小区里的垃圾和油烟问题一直没人管，不知道找哪个部门。")
    await chat.press("➡️ 下一步", expect=2)
    await chat.press("🙈 不提供", expect=2)
    confirmation = (await chat.press("✅ 确认提交", expect=2))[0]
    assert "工作人员正在确定承办部门" in confirmation.text
    number = confirmation.text.split("工单号 ")[1].split("\n")[0]
    [alert] = await bot.messages_after(bot.staff_group, staff_before)
    assert f"待分派</b> {number}" in alert.html
    staff = bot.staff_room()
    chosen = "→ 示例市城市管理综合执法局"
    others = [b for row in alert.inline_keyboard for b in row if b["text"] != chosen]
    assert others, "the triage alert offers more than one department"
    other = others[0]
    department_before = bot.cursor(bot.department_group)
    resident_before = bot.cursor(chat.chat)
    replies = await staff.press("→ 示例市城市管理综合执法局", message=alert, expect=2)
    assert "已将" in replies.text
    [card] = await bot.messages_after(bot.department_group, department_before)
    [moved] = await bot.messages_after(chat.chat, resident_before)
    assert "已转交示例市城市管理综合执法局办理" in moved.text
    # The alert's buttons are spent; one pressed again (a stale copy, or a colleague a moment
    # later) says what happened and changes nothing: no second card, no second notice.
    department_before = bot.cursor(bot.department_group)
    resident_before = bot.cursor(chat.chat)
    assert alert.inline_keyboard == [] or alert.find_button(other["text"]) is None
    again = await press_forged(bot.api, bot.staff, alert, other["callback_data"])
    assert again is not None
    assert "已经转交给示例市城市管理综合执法局" in again.text
    ticket = await bot.services.tickets.get(number)
    assert ticket.department_id == "urban-management"
    assigned = [e for e in await bot.services.tickets.timeline(number) if e.kind == "assigned"]
    assert len(assigned) == 1
    assert await bot.messages_after(bot.department_group, department_before, 0) == []
    assert await bot.messages_after(chat.chat, resident_before, 0) == []

    department = bot.department_room()
    prompt = (await department.press("↩️ 退单", message=card, expect=2))[0]
    staff_before = bot.cursor(bot.staff_group)
    resident_before = bot.cursor(chat.chat)
    await department.reply(prompt, "油烟属于生态环境部门管理。")
    [returned] = await bot.messages_after(bot.staff_group, staff_before)
    assert "退单" in returned.text
    assert "油烟属于生态环境部门管理" in returned.text
    [told] = await bot.messages_after(chat.chat, resident_before)
    assert "已退回。原因：油烟属于生态环境部门管理。" in told.text
    replies = await staff.send(f"/assign {number} ecology-environment")
    assert "已将" in replies.text
    await asyncio.wait_for(bot.endpoint.arrived.wait(), timeout=5)
    assert bot.endpoint.calls[-1].body["ticket"]["number"] == number


async def test_an_english_speaking_resident_files_and_is_answered_in_english(
    ticket_bot: TicketBot,
) -> None:
    chat = ticket_bot.resident("Alice", language_code="en")
    await chat.send("/complain")
    await chat.press("🆘 Help request", expect=2)
    await choose_category(chat, "Social assistance")
    await chat.send("My elderly neighbour lives alone and needs help with daily meals.")
    await chat.press("➡️ Next", expect=2)
    await chat.press("🙈 Do not share", expect=2)
    replies = await chat.press("✅ Submit", expect=2)
    assert replies.text.startswith("✅ Received: ticket TS-2026-")
    assert "working days" in replies.text


async def test_an_overdue_ticket_is_escalated_to_the_supervisors_group(
    ticket_bot: TicketBot,
) -> None:
    bot = ticket_bot
    chat = bot.resident()
    confirmation = await file_rubbish_complaint(chat)
    number = confirmation.text.split("工单号 ")[1].split("\n")[0]
    # The clock of another process, a month later.
    later = TicketDesk(
        bot.settings,
        bot.services.sessions,
        lambda: bot.knowledge.kb,
        clock=lambda: utcnow() + dt.timedelta(days=40),
    )
    supervisor_before = bot.cursor(bot.supervisor_group)
    resident_before = bot.cursor(chat.chat)
    report = await TicketClock(later).sweep()
    assert report.overdue == 2  # the acknowledgement and the reply
    assert bot.workers is not None
    assert bot.workers.worker is not None
    await DeliveryWorker(later, bot.workers.worker.channels).run_until_idle()
    alerts = await bot.messages_after(bot.supervisor_group, supervisor_before, 2)
    assert all("督办" in alert.text and number in alert.text for alert in alerts)
    [told] = await bot.messages_after(chat.chat, resident_before)
    assert "已超过答复期限" in told.text


async def test_a_form_left_alone_expires_and_a_later_message_is_not_taken_as_a_ticket(
    ticket_bot: TicketBot,
) -> None:
    chat = ticket_bot.resident()
    await chat.send("/complain")
    await chat.press("📢 投诉", expect=2)
    await choose_category(chat, "市容环境")
    # Two hours pass (the conversation's own timeout would do this while the bot runs; after a
    # restart only the form's timestamp knows).
    ticket_bot.app.user_data[chat.user.id]["complaint"]["touched"] -= 2 * 3600
    replies = await chat.send("社保卡丢了怎么补办")
    assert "您的表单很久没有继续，已自动取消" in replies.text
    assert await count_tickets(ticket_bot) == 0
    replies = await chat.send("社保卡丢了怎么补办")
    assert "您的表单" not in replies.text


async def test_a_department_group_that_adds_the_bot_is_not_told_to_talk_privately(
    ticket_bot: TicketBot,
) -> None:
    api = ticket_bot.api
    group = ticket_bot.department_group
    before = len(api.bot_messages(group))
    # The group's admin adds the bot again (as after removing it by mistake).
    api.set_member_status(group, api.bot_user, "left")
    api.add_member(group, api.bot_user, "administrator", announce=False)
    await api.wait_until_idle()
    assert [m.text for m in api.bot_messages(group)[before:]] == []

    stranger = api.create_group("小区业主群", {ticket_bot.chief: "creator"})
    api.add_member(stranger, api.bot_user, "member", announce=False)
    await api.wait_until_idle()
    assert "私聊" in api.bot_messages(stranger)[-1].text


async def test_a_phone_number_that_cannot_be_called_is_refused_with_what_is_expected(
    ticket_bot: TicketBot,
) -> None:
    chat = ticket_bot.resident()
    await chat.send("/complain")
    await chat.press("💡 建议", expect=2)
    await choose_category(chat, "公共交通")
    await chat.send("建议早高峰增加8路公交车的班次，现在经常等二十分钟。")
    await chat.press("➡️ 下一步", expect=2)
    replies = await chat.press("👤 提供姓名和电话", expect=2)
    await chat.send("测试居民")
    for wrong in ("12345", "12345678", "012-12345678", "+1 555", "１２３４５"):
        replies = await chat.send(wrong)
        assert "没能识别这个电话号码" in replies.text
        assert "13800000000" in replies.text
        assert "010-12345678" in replies.text
        assert "+44 20 7946 0958" in replies.text
    # Someone else's contact card is not the resident's number.
    cursor = ticket_bot.cursor(chat.chat)
    ticket_bot.api.send_contact(chat.user, chat.chat, "+8613900000000", first_name="李", own=False)
    [refused] = await ticket_bot.messages_after(chat.chat, cursor)
    assert "没能识别这个电话号码" in refused.text
    replies = await chat.send("+44 20 7946 0958")
    assert "提供给承办部门：测试居民，+442079460958" in replies.text
    await chat.press("✅ 确认提交", expect=2)
    [ticket] = await ticket_bot.desk.tickets_of_resident(await resident_id(ticket_bot, chat))
    assert (await ticket_bot.desk.get(ticket.number)).contact_phone == "+442079460958"


async def test_the_residents_own_shared_number_is_stored_in_e164(ticket_bot: TicketBot) -> None:
    chat = ticket_bot.resident("Alice", language_code="en")
    await chat.send("/complain")
    await chat.press("💡 Suggestion", expect=2)
    await choose_category(chat, "Public transport")
    await chat.send("Please add more buses on route 8 in the morning rush hour.")
    await chat.press("➡️ Next", expect=2)
    replies = await chat.press("👤 Share name and phone", expect=2)
    await chat.send("Alice")
    replies = await chat.send("12345")
    assert "That phone number was not recognised" in replies.text
    assert "a landline with its area code, e.g. 010-12345678" in replies.text
    # Telegram gives the shared number without its "+".
    replies = await chat.send_contact("8613800000000")
    assert "shared with the department: Alice, +8613800000000" in replies.text


async def test_category_pages_change_the_shown_message_instead_of_adding_messages(
    ticket_bot: TicketBot,
) -> None:
    chat = ticket_bot.resident()
    await chat.send("/complain")
    [shown] = await chat.press("📢 投诉", expect=2)
    assert "第 1/" in shown.text
    before = len(chat.bot_messages)
    replies = await chat.press("下一页 ➡️", message=shown, expect=2)
    assert list(replies) == []
    assert [m.message_id for m in replies.edited] == [shown.message_id]
    assert len(chat.bot_messages) == before
    assert "第 2/" in chat.bot_messages[-1].text
    replies = await chat.press("⬅️ 上一页", message=chat.bot_messages[-1], expect=2)
    assert list(replies) == []
    assert "第 1/" in chat.bot_messages[-1].text
    # A page pressed twice (a forged or repeated press) changes nothing and fails nothing.
    answer = await press_forged(ticket_bot.api, chat.user, chat.bot_messages[-1], "cmp:cp:0")
    assert answer is not None
    assert len(chat.bot_messages) == before
    # The form goes on from the edited message.
    await choose_category(chat, "市容环境")
    replies = await chat.send(RUBBISH)
    assert "照片" in replies.text or "已经有居民反映过类似的问题" in replies.text


async def test_an_empty_officer_text_is_answered_with_the_field_and_its_limit(
    ticket_bot: TicketBot,
) -> None:
    bot = ticket_bot
    chat = bot.resident()
    before = bot.cursor(bot.department_group)
    confirmation = await file_rubbish_complaint(chat)
    number = confirmation.text.split("工单号 ")[1].split("\n")[0]
    [card] = await bot.messages_after(bot.department_group, before)
    department = bot.department_room()
    prompt = (await department.press("💬 答复", message=card, expect=2))[0]
    # Only invisible characters: nothing is left once they are taken out.
    replies = await department.reply(prompt, "\u200b\u200b")
    assert "答复内容不能为空" in replies.text
    assert "1–3000 字" in replies.text
    assert "请再次回复那条提示消息" in replies.text
    prompt = (await department.press("↩️ 退单", message=card, expect=2))[0]
    replies = await department.reply(prompt, "理" * 1001)
    assert "理由太长了，最多 1000 字" in replies.text
    assert (await bot.desk.get(number)).status == "assigned"
