"""What the resident wants, in the chat: a problem to report is offered as a ticket and the form
starts filled in; what is out of scope, and small talk, never reach staff unless the resident
asks; a vague word gets a choice. The real bot over HTTP, the real matcher with the bundled
knowledge base, SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from bot.answering.unanswered import unanswered_questions
from bot.core.models import Escalation, Question, Ticket
from tests.fixtures_conversation import BotHarness, press_forged
from tests.fixtures_tickets import TicketBot
from tryout.local_bot_api import ChatTranscript, Replies

STREET_LIGHT = "我家楼下的路灯坏了"
OFFER = (
    "听起来这是需要有关部门来处理的问题。我可以帮您登记成举报工单：根据您的消息填好表单，"
    "您补充照片和地点后提交，承办部门会按期限答复您，进展也会在这里通知您。"
)


async def questions(bot: BotHarness) -> list[Question]:
    async with bot.services.sessions() as session:
        return list((await session.scalars(select(Question).order_by(Question.id))).all())


async def tickets(bot: BotHarness) -> list[Ticket]:
    async with bot.services.sessions() as session:
        return list((await session.scalars(select(Ticket).order_by(Ticket.id))).all())


async def escalations(bot: BotHarness) -> int:
    async with bot.services.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Escalation)) or 0)


async def choose_category(chat: ChatTranscript, name: str) -> Replies:
    """Page through the categories until `name` shows, then press it; return the replies."""
    for _ in range(6):
        latest = chat.last_bot_message
        assert latest is not None
        if latest.find_button(name) is not None:
            return await chat.press(name, expect=2)
        await chat.press("下一页 ➡️", expect=2)
    raise AssertionError(f"no category {name}")


async def submit_without_contact(chat: ChatTranscript) -> str:
    """From the attachments step, file the ticket without contact details; return its number."""
    await chat.press("➡️ 下一步", expect=2)
    await chat.press("🙈 不提供", expect=2)
    confirmation = (await chat.press("✅ 确认提交", expect=2))[0]
    assert confirmation.text.startswith("✅ 已受理，工单号 TS-")
    return confirmation.text.split("工单号 ")[1].split("\n")[0]


async def submit_anonymously(chat: ChatTranscript) -> str:
    """From the attachments step, file the report anonymously; return the ticket number."""
    await chat.press("➡️ 下一步", expect=2)
    replies = await chat.press("🕶 匿名举报", expect=2)
    assert "身份：匿名" in replies.text
    confirmation = (await chat.press("✅ 确认提交", expect=2))[0]
    assert confirmation.text.startswith("✅ 已受理，工单号 TS-")
    return confirmation.text.split("工单号 ")[1].split("\n")[0]


# -- a problem to report ------------------------------------------------------------------------


async def test_a_broken_street_light_is_offered_as_a_report_and_filed_prefilled(
    ticket_bot: TicketBot,
) -> None:
    bot = ticket_bot
    chat = bot.resident()
    replies = await chat.send(STREET_LIGHT)
    assert replies.text == OFFER
    assert replies[0].buttons == [
        [("📝 登记为举报", "cmp:q:1")],
        [("🙋 转人工", "q:p:1")],
        [("🏠 主菜单", "m:menu")],
    ]
    (question,) = await questions(bot)
    assert (question.decision, question.reason, question.escalated) == (
        "report",
        "problem_words",
        False,
    )

    replies = await chat.press("📝 登记为举报", expect=3)
    assert replies.texts[0] == (
        "📝 好的，按举报为您登记。\n已根据您的消息填好（要修改请点“⬅️ 上一步”）：\n"
        f"类别：市容环境\n内容：\n{STREET_LIGHT}"
    )
    # The form goes on after the description: photos and the place.
    assert "可以补充<b>照片</b>" in replies[1].html
    replies = await chat.send("幸福小区 3 号楼东侧")
    assert "已记录地点" in replies.text
    number = await submit_anonymously(chat)

    (ticket,) = await tickets(bot)
    assert (ticket.number, ticket.type, ticket.category, ticket.description) == (
        number,
        "report",
        "市容环境",
        STREET_LIGHT,
    )
    assert ticket.department_id == "urban-management"
    # A report goes to its department, never to the staff who answer questions.
    assert not bot.api.bot_messages(bot.staff_group)
    assert await escalations(bot) == 0


async def test_trips_in_vain_to_an_office_are_offered_as_a_complaint_not_sent_to_staff(
    ticket_bot: TicketBot,
) -> None:
    bot = ticket_bot
    chat = bot.resident()
    replies = await chat.send("办个证跑了五趟还没办好，你们这个效率太低了")
    assert replies.text == OFFER.replace("举报工单", "投诉工单")
    assert replies[0].buttons[0] == [("📝 登记为投诉", "cmp:q:1")]
    replies = await chat.press("📝 登记为投诉", expect=3)
    assert replies.texts[0].startswith("📝 好的，按投诉为您登记。")
    assert not bot.api.bot_messages(bot.staff_group)
    assert await escalations(bot) == 0


async def test_a_suggestion_is_offered_as_a_suggestion_and_filed_as_one(
    ticket_bot: TicketBot,
) -> None:
    bot = ticket_bot
    chat = bot.resident()
    text = "建议在我们小区门口加个红绿灯，早上上学的孩子过马路太危险"
    replies = await chat.send(text)
    assert replies.text.startswith("谢谢您的建议。我可以帮您登记成建议工单")
    assert replies[0].buttons[0] == [("📝 登记为建议", "cmp:q:1")]
    replies = await chat.press("📝 登记为建议", expect=3)
    assert replies.texts[0].startswith("📝 好的，按建议为您登记。")
    assert text in replies.texts[0]
    # 小区 before 门口 only says where (it is the housing bureau's keyword): 红绿灯 is the
    # traffic police's, a keyword of their category 道路交通秩序, where the form starts.
    assert "类别：道路交通秩序" in replies.texts[0]
    number = await submit_without_contact(chat)
    (ticket,) = await tickets(bot)
    assert ticket.number == number
    assert (ticket.type, ticket.category, ticket.description) == (
        "suggestion",
        "道路交通秩序",
        text,
    )
    assert ticket.department_id == "traffic-police"
    assert not bot.api.bot_messages(bot.staff_group)
    assert await escalations(bot) == 0


async def test_someone_in_difficulty_is_told_whom_to_call_and_offered_a_help_request(
    ticket_bot: TicketBot,
) -> None:
    bot = ticket_bot
    chat = bot.resident()
    text = "我家老人走丢了，能帮忙找找吗"
    replies = await chat.send(text, expect=2)
    offer, choice = replies
    assert offer.text.startswith("很抱歉您遇到了困难。如果有人正处在危险中，请马上拨打 110")
    assert "登记成求助工单" in offer.text
    assert offer.buttons[0] == [("📝 登记为求助", "cmp:q:1")]
    # The items that may help follow, without a second file button.
    shown = [b for row in choice.buttons for b in row]
    assert ("都不是，转人工", "q:x:1") in shown
    assert ("📝 登记为求助", "cmp:q:1") not in shown
    (question,) = await questions(bot)
    assert (question.decision, question.escalated) == ("suggest", False)

    replies = await chat.press("📝 登记为求助", expect=3)
    assert replies.texts[0].startswith("📝 好的，按求助为您登记。")
    assert text in replies.texts[0]
    await choose_category(chat, "治安与消防")
    number = await submit_without_contact(chat)
    (ticket,) = await tickets(bot)
    assert ticket.number == number
    assert (ticket.type, ticket.category, ticket.description) == ("help", "治安与消防", text)
    assert ticket.department_id == "public-security"
    assert not bot.api.bot_messages(bot.staff_group)
    assert await escalations(bot) == 0


async def test_someone_missing_in_english_gets_the_emergency_numbers_in_english(
    ticket_bot: TicketBot,
) -> None:
    chat = ticket_bot.resident("Alice", language_code="en")
    replies = await chat.send("My father went missing this morning")
    assert replies.text.startswith(
        "Sorry you are in difficulty. If anyone is in danger right now, call 110 (police)"
    )
    assert replies[0].buttons[0][0][0] == "📝 File it as a help request"


async def test_asking_after_ones_own_ticket_in_words_shows_ones_tickets(
    ticket_bot: TicketBot,
) -> None:
    bot = ticket_bot
    chat = bot.resident()
    replies = await chat.send("我上次提的工单怎么样了")
    assert replies.text.startswith("您还没有提交过工单。")
    await chat.send(STREET_LIGHT)
    await chat.press("📝 登记为举报", expect=3)
    await chat.send("幸福小区 3 号楼东侧")
    number = await submit_anonymously(chat)

    replies = await chat.send("我反映的问题有结果了吗？")
    assert replies.text.startswith("我的工单（共 1 件，第 1/1 页）")
    assert replies[0].buttons[0][0][0].startswith(f"{number} · 市容环境 · ")
    # Neither a question for staff nor one the knowledge base is asked.
    assert not bot.api.bot_messages(bot.staff_group)
    assert [q.text for q in await questions(bot)] == [STREET_LIGHT]

    # Its number typed, alone or in words, shows that ticket; another number shows nothing.
    replies = await chat.send(f"{number.lower()} 怎么样了")
    assert replies.text.startswith(f"{number}（举报 · 市容环境）\n状态：")
    assert replies[-1].buttons[-1] == [("⬅️ 我的工单", "tkt:start")]
    replies = await chat.send("查一下TS-2026-999999")
    assert replies.text == "没有找到这个工单。"
    other = bot.resident("王五")
    replies = await other.send(number)
    assert replies.text == "没有找到这个工单。"

    # Someone who asked for a person gets one for this message too.
    await chat.press("🏠 主菜单", expect=2)
    await chat.press("🙋 转人工", expect=2)
    replies = await chat.send("我上次提的工单怎么样了", expect=2)
    assert "已经转给工作人员" in replies.text


async def test_an_english_resident_asks_after_their_complaint(ticket_bot: TicketBot) -> None:
    chat = ticket_bot.resident("Alice", language_code="en")
    replies = await chat.send("What happened to my complaint?")
    assert replies.text.startswith("You have no tickets yet.")


async def test_a_report_whose_category_is_not_clear_lands_on_the_category_step(
    ticket_bot: TicketBot,
) -> None:
    bot = ticket_bot
    chat = bot.resident()
    text = "楼道里的灯不亮已经一个星期了"
    replies = await chat.send(text)
    assert replies.text == OFFER
    replies = await chat.press("📝 登记为举报", expect=3)
    assert replies.texts[0] == (
        f"📝 好的，按举报为您登记。\n已根据您的消息填好（要修改请点“⬅️ 上一步”）：\n内容：\n{text}"
    )
    assert replies.texts[1].startswith("举报：请选择类别")
    # The description is kept: after the category, the photos.
    replies = await choose_category(chat, "住房与物业")
    assert "可以补充<b>照片</b>" in replies[0].html
    await submit_anonymously(chat)
    (ticket,) = await tickets(bot)
    assert (ticket.type, ticket.category, ticket.description) == ("report", "住房与物业", text)


async def test_a_report_too_short_to_file_lands_on_the_description_step(
    ticket_bot: TicketBot,
) -> None:
    bot = ticket_bot
    chat = bot.resident()
    await chat.send("路灯不亮")
    replies = await chat.press("📝 登记为举报", expect=3)
    assert replies.texts[0] == (
        "📝 好的，按举报为您登记。\n已根据您的消息填好（要修改请点“⬅️ 上一步”）：\n类别：市容环境"
    )
    assert replies.texts[1].startswith("请用文字描述具体情况（5–2000 字）")
    replies = await chat.send("幸福小区门口的路灯晚上不亮，已经三天了。")
    assert "可以补充<b>照片</b>" in replies[0].html
    await submit_anonymously(chat)
    (ticket,) = await tickets(bot)
    assert (ticket.category, ticket.description) == (
        "市容环境",
        "幸福小区门口的路灯晚上不亮，已经三天了。",
    )


async def test_a_complaint_answered_by_a_card_can_still_be_filed(ticket_bot: TicketBot) -> None:
    bot = ticket_bot
    chat = bot.resident()
    text = "我想投诉窗口工作人员，怎么给差评"
    replies = await chat.send(text)
    card = replies[-1]
    # The card as always, and one more row: file it, as a complaint (about conduct).
    assert card.buttons[0] == [
        ("👍 有帮助", "q:h:1"),
        ("👎 没帮助", "q:n:1"),
        ("🙋 转人工", "q:p:1"),
    ]
    assert card.buttons[1] == [("📝 登记为投诉", "cmp:q:1")]
    replies = await chat.press("📝 登记为投诉", expect=3)
    assert replies.texts[0].startswith("📝 好的，按投诉为您登记。")
    assert "类别：政务服务" in replies.texts[0]
    await submit_without_contact(chat)
    (ticket,) = await tickets(bot)
    assert (ticket.type, ticket.category, ticket.description) == ("complaint", "政务服务", text)


async def test_a_choice_for_a_message_about_a_problem_offers_a_ticket_too(
    bot: BotHarness,
) -> None:
    chat = bot.resident()
    replies = await chat.send("噪音扰民打什么电话")
    # One item fits (the hotline): is it that one? Or a person, or a report.
    assert replies.text == "您问的是不是这一项？请点选查看；如果不是，可以转人工："
    rows = replies[0].buttons
    assert rows[-2] == [("都不是，转人工", "q:x:1")]
    assert rows[-1] == [("📝 登记为举报", "cmp:q:1")]


async def test_a_report_offered_beside_a_choice_starts_on_its_categorys_keywords(
    ticket_bot: TicketBot,
) -> None:
    bot = ticket_bot
    chat = bot.resident()
    text = "小区门口乱停车太严重了"
    replies = await chat.send(text)
    assert replies[0].buttons[-1] == [("📝 登记为举报", "cmp:q:1")]
    replies = await chat.press("📝 登记为举报", expect=3)
    # 乱停车 is a keyword of the traffic police's second category (complaint_category_keywords
    # in departments.toml); neither category's name shares a character with the message.
    assert replies.texts[0].startswith(
        "📝 好的，按举报为您登记。\n已根据您的消息填好（要修改请点“⬅️ 上一步”）：\n"
        "类别：道路交通秩序\n"
    )
    replies = await chat.send("幸福小区南门")
    assert "已记录地点" in replies.text
    number = await submit_anonymously(chat)
    (ticket,) = await tickets(bot)
    assert (ticket.number, ticket.type, ticket.category, ticket.department_id) == (
        number,
        "report",
        "道路交通秩序",
        "traffic-police",
    )


async def test_an_english_report_is_offered_in_english_and_asks_for_the_category(
    bot: BotHarness,
) -> None:
    chat = bot.resident("Alice", language_code="en")
    text = "The street light outside my building is broken"
    replies = await chat.send(text)
    assert replies.text.startswith("This sounds like a problem the city should look into.")
    assert replies[0].buttons[0] == [("📝 File it as a report", "cmp:q:1")]
    replies = await chat.press("📝 File it as a report", expect=3)
    assert replies.texts[0] == (
        "📝 Filing it as a report.\nFilled in from your message (press “⬅️ Back” to change "
        f"it):\nText:\n{text}"
    )
    assert replies.texts[1].startswith("report: choose a category")


# -- out of scope and small talk ----------------------------------------------------------------


async def test_out_of_scope_is_declined_politely_and_staff_get_it_only_if_asked(
    bot: BotHarness,
) -> None:
    chat = bot.resident()
    replies = await chat.send("昨晚的足球赛谁赢了")
    assert replies.text.startswith("抱歉，这个问题不在示例市政务服务的范围内，我帮不上忙。")
    assert replies[0].buttons == [[("🙋 转人工", "q:p:1")], [("🏠 主菜单", "m:menu")]]
    assert not bot.api.bot_messages(bot.staff_group)
    (question,) = await questions(bot)
    assert (question.decision, question.reason, question.escalated) == (
        "decline",
        "out_of_scope",
        False,
    )

    replies = await chat.press("🙋 转人工", expect=2)
    assert "已经转给工作人员" in replies.text
    post = bot.latest_staff_post()
    assert "昨晚的足球赛谁赢了" in post.text
    assert "居民要求转人工" in post.text
    assert await escalations(bot) == 1


async def test_an_english_resident_is_declined_in_english(bot: BotHarness) -> None:
    chat = bot.resident("Alice", language_code="en")
    replies = await chat.send("Who won the football match last night?")
    assert replies.text.startswith(
        "Sorry, this is outside what Shili City's public-service assistant can help with."
    )
    assert replies[0].buttons == [[("🙋 Talk to a person", "q:p:1")], [("🏠 Main menu", "m:menu")]]
    assert not bot.api.bot_messages(bot.staff_group)


async def test_small_talk_gets_a_friendly_word_and_staff_get_nothing(bot: BotHarness) -> None:
    chat = bot.resident()
    replies = await chat.send("还在吗")
    assert replies.text == "您好，很高兴为您服务！有什么政务问题可以直接问我，或者用下面的菜单。"
    assert replies[0].buttons[0][0] == ("💬 我要提问", "m:ask")
    assert not bot.api.bot_messages(bot.staff_group)
    (question,) = await questions(bot)
    assert (question.decision, question.reason) == ("decline", "small_talk")


async def test_an_opener_alone_is_invited_to_ask_and_staff_get_nothing(bot: BotHarness) -> None:
    chat = bot.resident()
    replies = await chat.send("你好，我想问一下")
    assert replies.text == "您好，很高兴为您服务！有什么政务问题可以直接问我，或者用下面的菜单。"
    assert not bot.api.bot_messages(bot.staff_group)
    assert await escalations(bot) == 0


async def test_a_typed_request_for_a_person_works_as_the_button_does(bot: BotHarness) -> None:
    chat = bot.resident()
    replies = await chat.send("转人工")
    assert replies.text == "请把您的问题写下来发给我，我会转给工作人员，答复会发到这里。"
    # The words "转人工" are not a question for staff; the next message is.
    assert not bot.api.bot_messages(bot.staff_group)
    assert await escalations(bot) == 0
    replies = await chat.send("我家老房子想加装电梯，要找哪个部门审批", expect=2)
    assert "已经转给工作人员" in replies.text
    post = bot.latest_staff_post().text
    assert "居民要求转人工" in post
    assert "加装电梯" in post
    assert await escalations(bot) == 1
    first, second = await questions(bot)
    assert (first.decision, first.reason, first.escalated) == ("decline", "asks_person", False)
    assert second.escalated


async def test_an_english_request_for_a_person_is_answered_in_english(bot: BotHarness) -> None:
    chat = bot.resident("Alice", language_code="en")
    replies = await chat.send("I want to talk to a real person")
    assert replies.text.startswith("Please write your question and send it;")
    assert not bot.api.bot_messages(bot.staff_group)


async def test_a_resident_venting_gets_an_apology_and_a_person_if_they_ask(
    bot: BotHarness,
) -> None:
    chat = bot.resident()
    replies = await chat.send("你真笨，啥都不懂")
    assert replies.text == (
        "抱歉没能帮上您。您可以换个说法再问一次，或者点“🙋 转人工”，请工作人员来答复。"
    )
    assert replies[0].buttons == [[("🙋 转人工", "q:p:1")], [("🏠 主菜单", "m:menu")]]
    assert not bot.api.bot_messages(bot.staff_group)
    (question,) = await questions(bot)
    assert (question.decision, question.reason, question.escalated) == (
        "decline",
        "venting",
        False,
    )

    replies = await chat.press("🙋 转人工", expect=2)
    assert "已经转给工作人员" in replies.text
    assert "居民要求转人工" in bot.latest_staff_post().text
    assert await escalations(bot) == 1


async def test_a_follow_up_after_a_card_is_answered_from_that_card(bot: BotHarness) -> None:
    chat = bot.resident()
    await chat.send("身份证丢了怎么补办")
    replies = await chat.send("那要多少钱呢？")
    assert replies.text == "居民身份证挂失补领\n收费：20 元（挂失免费）"
    assert replies[0].buttons[0] == [("📄 查看完整指南", "b:i:id-card-replacement")]
    replies = await chat.send("要带什么材料")
    assert replies.text.startswith("居民身份证挂失补领\n\n需要带的材料\n• 居民户口簿")
    replies = await chat.send("在哪里办")
    assert "办理地点：户籍所在地派出所户籍窗口" in replies.text
    assert "办公时间：" in replies.text
    # None of them is a question for the knowledge base or for staff; and what was shown is
    # kept in memory, not written to the resident's stored data at every answer.
    assert [q.text for q in await questions(bot)] == ["身份证丢了怎么补办"]
    assert not bot.app.user_data.get(chat.user.id)
    assert not bot.api.bot_messages(bot.staff_group)


async def test_a_choice_can_be_made_by_typing_its_number(bot: BotHarness) -> None:
    chat = bot.resident()
    replies = await chat.send("医保")
    labels = [label for row in replies[0].buttons[:-1] for label, _ in row]
    replies = await chat.send("第二个")
    assert replies.text.startswith(f"{labels[1]}\n")
    (question,) = await questions(bot)
    assert question.chosen_item_id is not None
    chosen = bot.services.knowledge.kb.items[question.chosen_item_id]
    assert chosen.get_text("title", "zh").startswith(labels[1].rstrip("…"))
    # The card is the item's: a follow-up is about it.
    replies = await chat.send("在哪里办")
    assert replies.text.startswith(f"{labels[1]}\n")
    # A number beyond the choice, or with no choice lately, is read as before.
    replies = await chat.send("5")
    assert not replies.text.startswith(labels[1])


async def test_a_follow_up_with_no_card_shown_asks_which_service(bot: BotHarness) -> None:
    chat = bot.resident()
    replies = await chat.send("多少钱")
    assert (
        replies.text
        == "请问您想了解哪项业务的费用？请连同事项名称一起问，比如“身份证补办多少钱”。"
    )
    english = bot.resident("Alice", language_code="en")
    replies = await english.send("How long does it take?")
    assert replies.text == (
        "Which service do you mean (for its time limit)? Please name it in your question, "
        "for example “How long does a residence permit take?”."
    )


async def test_saying_an_answer_is_wrong_offers_a_person_for_the_question_not_for_that(
    bot: BotHarness,
) -> None:
    chat = bot.resident()
    await chat.send("身份证丢了怎么补办")
    replies = await chat.send("不对，不是这个")
    assert replies.text.startswith("抱歉没能帮上您。")
    # 🙋 names the question answered before (1), not "不对" (2).
    assert replies[0].buttons[0] == [("🙋 转人工", "q:p:1")]
    assert not bot.api.bot_messages(bot.staff_group)
    replies = await chat.press("🙋 转人工", expect=2)
    assert "已经转给工作人员" in replies.text
    post = bot.latest_staff_post().text
    assert "身份证丢了怎么补办" in post
    assert "不对" not in post


async def test_a_vague_word_gets_a_choice_of_several_items_not_a_card(bot: BotHarness) -> None:
    chat = bot.resident()
    replies = await chat.send("医保")
    assert replies.text == "我不太确定您问的是哪一项，请选择："
    labels = [label for row in replies[0].buttons for label, _ in row]
    assert len(labels) >= 3  # at least two items, and "none of these"
    assert labels[-1] == "都不是，转人工"
    assert all(data.startswith("q:c:1:") for row in replies[0].buttons[:-1] for _, data in row)
    assert "需要带的材料" not in replies.text
    assert not bot.api.bot_messages(bot.staff_group)


async def test_only_what_the_bot_could_not_answer_counts_as_unanswered(bot: BotHarness) -> None:
    chat = bot.resident()
    await chat.send(STREET_LIGHT)
    await chat.send("昨晚的足球赛谁赢了")
    await chat.press("🙋 转人工", expect=2)
    await chat.send("还在吗")
    await chat.send("犬只免疫证明怎么开", expect=2)
    async with bot.services.sessions() as session:
        found = await unanswered_questions(session, dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    assert [q.text for q in found] == ["犬只免疫证明怎么开"]


async def test_a_choice_where_none_fitted_counts_as_unanswered_and_a_chosen_item_does_not(
    bot: BotHarness,
) -> None:
    none_fitted = bot.resident()
    await none_fitted.send("医保")
    await none_fitted.press("都不是，转人工", expect=2)
    picked = bot.resident("韩梅梅")
    choice = await picked.send("房子")
    first_item = choice[0].buttons[0][0][0]
    await picked.press(first_item)
    untouched = bot.resident("张伟")
    await untouched.send("公积金")

    async with bot.services.sessions() as session:
        found = await unanswered_questions(session, dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
        decisions = (await session.execute(select(Question.text, Question.decision))).all()
    assert sorted(decisions) == [("公积金", "suggest"), ("医保", "suggest"), ("房子", "suggest")]
    assert [q.text for q in found] == ["医保"]


# -- forged buttons -----------------------------------------------------------------------------


async def test_a_forged_file_it_button_for_another_residents_question_changes_nothing(
    ticket_bot: TicketBot,
) -> None:
    bot = ticket_bot
    owner = bot.resident("李雷")
    await owner.send(STREET_LIGHT)
    (theirs,) = await questions(bot)

    other = bot.resident("韩梅梅")
    menu = (await other.send("/start", expect=2))[1]
    answer = await press_forged(bot.api, other.user, menu, f"cmp:q:{theirs.id}")
    assert answer is not None
    assert answer.text == "这个按钮不属于您的对话。"
    for data, said in (
        ("cmp:q:999999", "这个按钮不属于您的对话。"),
        ("cmp:q:x", "这个按钮已经失效了，请重新打开菜单。"),
        ("cmp:q:01", "这个按钮已经失效了，请重新打开菜单。"),
    ):
        answer = await press_forged(bot.api, other.user, menu, data)
        assert answer is not None
        assert answer.text == said
    assert other.last_bot_message is menu
    assert "complaint" not in bot.app.user_data.get(other.user.id, {})
    # No form was begun: free text is a question again.
    replies = await other.send("还在吗")
    assert replies.text.startswith("您好，很高兴为您服务！")

    # A form in progress stays on its step.
    await other.send("/complain")
    await other.press("📢 投诉", expect=2)
    form = other.last_bot_message
    assert form is not None
    answer = await press_forged(bot.api, other.user, form, f"cmp:q:{theirs.id}")
    assert answer is not None
    assert answer.text == "这个按钮不属于您的对话。"
    assert bot.app.user_data[other.user.id]["complaint"]["type"] == "complaint"
    replies = await choose_category(other, "市容环境")
    assert replies.text.startswith("请用文字描述具体情况")

    assert await tickets(bot) == []
    mine = (await questions(bot))[0]
    assert (mine.id, mine.decision, mine.escalated) == (theirs.id, "report", False)
    assert await escalations(bot) == 0
    assert not bot.api.bot_messages(bot.staff_group)
