"""Residents talk to the real bot over HTTP (LocalBotApi on 127.0.0.1); staff answer in their group.

Every test runs on SQLite and on PostgreSQL. The local server refuses invalid HTML the way
Telegram does, so any unescaped text from a resident or staff member would fail the test.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from telegram.ext import MessageHandler, filters

from bot.answering.escalations import staff_answer_notice
from bot.answering.store import KnowledgeStore, thresholds_from
from bot.core.models import Escalation, Question, utcnow
from bot.telegram.application import REPOST_JOB
from tests.fixtures_conversation import BotHarness, conversation_settings, press_forged
from tryout.local_bot_api import LocalBotApi

# -- menus and language ------------------------------------------------------------------------


async def test_start_greets_the_resident_by_name_and_shows_the_main_menu(bot: BotHarness) -> None:
    chat = bot.resident("李雷")
    replies = await chat.send("/start", expect=2)
    assert replies.texts[0].startswith("您好，李雷！我是示例市政务服务助手。")
    menu = replies[1]
    assert [label for row in menu.buttons for label, _ in row] == [
        "💬 我要提问",
        "📚 办事指南",
        "📂 政府信息公开",
        "📝 投诉·举报·建议",
        "🔎 我的工单",
        "🙋 转人工",
        "🌐 Language / 语言",
    ]
    assert ("📝 投诉·举报·建议", "cmp:start") in menu.buttons[1]
    assert ("🔎 我的工单", "tkt:start") in menu.buttons[2]


async def test_a_resident_with_an_english_telegram_gets_english(bot: BotHarness) -> None:
    chat = bot.resident("Alice", language_code="en")
    replies = await chat.send("/start", expect=2)
    assert replies.texts[0].startswith("Hello, Alice! I am the public-service assistant of Shili")
    replies = await chat.send("/help")
    assert "How to use me" in replies.text


async def test_the_chosen_language_is_remembered_across_a_restart(bot: BotHarness) -> None:
    chat = bot.resident()
    await chat.send("/language")
    replies = await chat.press("English", expect=3)
    assert replies.edited[0].text == "Done: I will talk to you in English from now on."
    assert "Choose what you need" in replies.text
    await bot.restart()
    replies = await chat.send("/start", expect=2)
    assert replies.texts[0].startswith("Hello, 李雷!")
    await chat.press("🌐 语言 / Language", expect=2)
    await chat.press("简体中文", expect=3)
    assert "请选择您要办理的事项" in (await chat.send("/start", expect=2)).text


async def test_a_request_for_a_person_survives_a_restart(bot: BotHarness) -> None:
    chat = bot.resident()
    await chat.send("/start", expect=2)
    await chat.press("🙋 转人工", expect=2)
    await bot.restart()
    replies = await chat.send("我想找人当面问问", expect=2)
    assert "已经转给工作人员" in replies.text
    assert "居民要求转人工" in bot.latest_staff_post().text


# -- browsing ----------------------------------------------------------------------------------


async def test_a_resident_browses_categories_pages_items_and_opens_a_card(bot: BotHarness) -> None:
    chat = bot.resident()
    await chat.send("/start", expect=2)
    replies = await chat.press("📚 办事指南", expect=2)
    categories = replies.edited[0]
    assert categories.text == "办事指南：请选择类别（共 16 类）"
    assert ("下一页 ➡️", "b:k:guide:1") in categories.buttons[-2]
    assert all(len((data or "").encode()) <= 64 for row in categories.buttons for _, data in row)
    replies = await chat.press("下一页 ➡️", expect=2)
    assert ("⬅️ 上一页", "b:k:guide:0") in replies.edited[0].buttons[-2]
    replies = await chat.press("户籍与身份证", expect=2)
    items = replies.edited[0]
    assert items.text == "户籍与身份证：请选择事项（第 1/1 页）"
    replies = await chat.press("居民身份证挂失补领", expect=2)
    card = replies.text
    assert card.startswith("居民身份证挂失补领\n")
    for label in ("需要带的材料", "办理流程", "办理时限", "收费", "办理地点", "咨询电话"):
        assert label in card
    assert ("🔗 临时居民身份证申领", "b:i:temporary-id-card") in replies[-1].buttons[0]


async def test_disclosure_items_are_browsed_in_english(bot: BotHarness) -> None:
    chat = bot.resident("Bob", language_code="en")
    await chat.send("/start", expect=2)
    replies = await chat.press("📂 Information disclosure", expect=2)
    assert replies.edited[0].text.startswith("Information disclosure: choose a category")


async def test_forged_and_stale_buttons_are_answered_politely(bot: BotHarness) -> None:
    chat = bot.resident()
    menu = (await chat.send("/start", expect=2))[1]
    for data in (
        "b:c:guide:ffffffffff:0",
        "b:k:guide:99",
        "b:k:rumours:0",
        "b:i:../../etc/passwd",
        "q:h:notanumber",
        "m:nothing",
        "zzz",
    ):
        answer = await press_forged(bot.api, chat.user, menu, data)
        assert answer is not None
        assert answer.text == "这个按钮已经失效了，请重新打开菜单。"
    assert chat.last_bot_message is menu


# -- questions ---------------------------------------------------------------------------------


async def test_a_confident_answer_sends_the_card_and_records_the_feedback(
    bot: BotHarness,
) -> None:
    chat = bot.resident()
    replies = await chat.send("身份证丢了怎么补办")
    assert replies.texts[0].startswith("居民身份证挂失补领")
    assert replies[-1].buttons[0] == [
        ("👍 有帮助", "q:h:1"),
        ("👎 没帮助", "q:n:1"),
        ("🙋 转人工", "q:p:1"),
    ]
    replies = await chat.press("👍 有帮助", expect=2)
    assert replies.text == "谢谢您的反馈！还有其他问题可以继续问我。"
    replies = await chat.press("👎 没帮助", expect=2)
    assert replies.text == "已经收到您的反馈了，谢谢。"
    async with bot.services.sessions() as session:
        question = (await session.scalars(select(Question))).one()
    assert (question.decision, question.item_id, question.feedback) == (
        "answer",
        "id-card-replacement",
        "helpful",
    )
    assert not bot.api.bot_messages(bot.staff_group)


async def test_an_english_question_gets_the_english_card(bot: BotHarness) -> None:
    chat = bot.resident("Alice", language_code="en")
    replies = await chat.send("How do I renew my passport")
    assert "What to bring" in replies.text
    assert replies[-1].buttons[0][0] == ("👍 Helpful", "q:h:1")


async def test_an_unhelpful_answer_can_go_to_a_person(bot: BotHarness) -> None:
    chat = bot.resident()
    await chat.send("结婚登记需要什么材料")
    replies = await chat.press("👎 没帮助", expect=2)
    assert replies.text.startswith("抱歉没能帮到您。")
    replies = await chat.press("🙋 转人工", message=replies[0], expect=3)
    assert "已经转给工作人员" in replies.text
    post = bot.latest_staff_post()
    assert "居民认为答复没帮助" in post.text
    assert "结婚登记需要什么材料" in post.text
    replies = await chat.press("🙋 转人工", expect=2)
    assert replies.text == "这个问题已经在工作人员那里了，请耐心等候答复。"


@pytest.mark.parametrize(
    ("question", "intro", "chosen"),
    [
        # Several items fit, none far ahead.
        ("公积金", "我不太确定您问的是哪一项，请选择：", "housing-fund-"),
        # Not sure enough for a card, but the first item well ahead of the others.
        (
            "老家的社保怎么转到这边来",
            "您问的很可能是第一项；如果不是，请选择其他项：",
            "pension-insurance-transfer",
        ),
    ],
)
async def test_an_unsure_match_offers_choices_and_the_choice_gets_its_card(
    bot: BotHarness, question: str, intro: str, chosen: str
) -> None:
    chat = bot.resident()
    replies = await chat.send(question)
    assert replies.text == intro
    labels = [label for row in replies[0].buttons for label, _ in row]
    assert 3 <= len(labels) <= 4  # two or three items, and "none of these"
    assert labels[-1] == "都不是，转人工"
    first_choice = labels[0]
    replies = await chat.press(first_choice, expect=2)
    assert replies.texts[0].startswith(first_choice)
    async with bot.services.sessions() as session:
        stored = (await session.scalars(select(Question))).one()
    assert stored.decision == "suggest"
    assert stored.chosen_item_id is not None
    assert stored.chosen_item_id.startswith(chosen)


async def test_a_choice_of_one_item_asks_whether_it_is_the_one(bot: BotHarness) -> None:
    chat = bot.resident("Alice", language_code="en")
    replies = await chat.send("我想开个小饭馆")
    assert replies.text == "Is this what you mean? Tap it to see the answer, or ask a person:"
    rows = replies[0].buttons
    assert len(rows) == 2
    assert rows[-1][0][0] == "None of these: ask a person"
    replies = await chat.press(rows[0][0][0], expect=2)
    assert "food business" in replies.texts[0].lower()


async def test_none_of_the_choices_sends_the_question_to_staff(bot: BotHarness) -> None:
    chat = bot.resident("Alice", language_code="en")
    await chat.send("housing fund")
    replies = await chat.press("None of these: ask a person", expect=3)
    assert "passed it to a member of staff" in replies.text
    assert "housing fund" in bot.latest_staff_post().text


async def test_small_talk_gets_a_friendly_word_and_the_menu_not_staff(bot: BotHarness) -> None:
    chat = bot.resident()
    replies = await chat.send("你好")
    assert replies.text.startswith("您好，很高兴为您服务！")
    assert replies[0].buttons[0][0] == ("💬 我要提问", "m:ask")
    replies = await chat.send("🙂🙂")
    assert replies.text.startswith("我没看懂这条消息。")
    assert not bot.api.bot_messages(bot.staff_group)


async def test_a_question_about_another_city_goes_to_staff_with_a_note(bot: BotHarness) -> None:
    chat = bot.resident()
    replies = await chat.send("北京市的公积金怎么提取", expect=3)
    assert replies.texts[0] == "您的问题似乎涉及北京的事务，我只掌握示例市的办事信息。"
    assert "已经转给工作人员" in replies.texts[1]
    post = bot.latest_staff_post().text
    # Staff read why in words, not the matcher's internal code.
    assert "问的是北京的事务" in post
    assert "other_place" not in post


# -- escalation and staff ----------------------------------------------------------------------


async def test_an_escalated_question_reaches_staff_and_their_reply_reaches_the_resident(
    bot: BotHarness,
) -> None:
    chat = bot.resident()
    replies = await chat.send("犬只免疫证明怎么开", expect=2)
    # Staff are on duty all day in these tests, but only on working days (a weekend in the
    # deployment's time zone gives the after-hours notice): the notice of this moment.
    assert replies.text.startswith("这个问题我暂时答不了，已经转给工作人员")
    assert replies.text == staff_answer_notice(bot.settings, "zh")
    post = bot.latest_staff_post()
    assert post.text.startswith("🆕 居民提问 #1（中文，机器人答不了）\n犬只免疫证明怎么开")
    assert "直接回复本条消息即可答复居民" in post.text

    staff = bot.staff_room()
    replies = await staff.reply(post, "导盲犬可以进，其他宠物请不要带进大厅。", expect=3)
    assert replies.text == "✅ 答复已发送给居民。"
    assert [m.text for m in replies.elsewhere] == [
        "👩\u200d💼 工作人员答复\n您的问题：犬只免疫证明怎么开\n\n导盲犬可以进，其他宠物请不要带进大厅。"
    ]
    assert "✅ 已由 王芳 答复" in post.text
    assert post.find_button("📚 记为某事项的新问法") is not None
    async with bot.services.sessions() as session:
        escalation = (await session.scalars(select(Escalation))).one()
    assert (escalation.status, escalation.answered_by, escalation.answered_via) == (
        "answered",
        "王芳",
        "telegram",
    )


async def test_an_english_resident_hears_in_english_and_staff_see_the_language(
    bot: BotHarness,
) -> None:
    chat = bot.resident("Alice", language_code="en")
    await chat.send("/start", expect=2)
    await chat.press("🙋 Talk to a person", expect=2)
    replies = await chat.send("Can I bring my cat to the service centre?", expect=2)
    assert replies.text == staff_answer_notice(bot.settings, "en")
    post = bot.latest_staff_post()
    assert "（英文，居民要求转人工）" in post.text
    replies = await bot.staff_room().reply(post, "Yes, in a carrier.", expect=3)
    assert replies.elsewhere[0].text == (
        "👩\u200d💼 Answer from a member of staff\n"
        "You asked: Can I bring my cat to the service centre?\n\nYes, in a carrier."
    )


async def test_the_first_staff_answer_wins_and_the_second_is_told(bot: BotHarness) -> None:
    chat = bot.resident()
    await chat.send("犬只免疫证明怎么开", expect=2)
    post = bot.latest_staff_post()
    await bot.staff_room().reply(post, "不可以。", expect=3)
    replies = await bot.staff_room(bot.second_staff).reply(post, "可以。")
    assert replies.text == "ℹ️ 这个问题已经由 王芳 答复过了，您的回复没有发给居民。"
    assert [m.text for m in chat.bot_messages if "工作人员答复" in m.text] == [
        "👩\u200d💼 工作人员答复\n您的问题：犬只免疫证明怎么开\n\n不可以。"
    ]


async def test_staff_chatter_is_not_sent_to_residents(bot: BotHarness) -> None:
    chat = bot.resident()
    await chat.send("犬只免疫证明怎么开", expect=2)
    staff = bot.staff_room()
    await staff.send("大家好，今天谁值班？", expect=0)
    replies = await staff.reply(bot.latest_staff_post(), "/learn id-card-replacement")
    assert replies.text == "请先答复这个问题，再记录问法。"
    assert not [m for m in chat.bot_messages if "工作人员答复" in m.text]


async def test_an_unanswered_escalation_is_posted_again_after_the_set_time(
    bot: BotHarness,
) -> None:
    chat = bot.resident()
    await chat.send("犬只免疫证明怎么开", expect=2)
    first_post = bot.latest_staff_post()
    async with bot.services.sessions() as session:
        escalation = (await session.scalars(select(Escalation))).one()
        escalation.posted_at = utcnow() - dt.timedelta(minutes=61)
        await session.commit()
    (job,) = bot.app.job_queue.get_jobs_by_name(REPOST_JOB)  # type: ignore[union-attr]
    await job.run(bot.app)
    repost = bot.latest_staff_post()
    assert repost is not first_post
    assert repost.text.startswith("⏰ 61 分钟仍未答复（第 1 次提醒）\n🆕 居民提问 #1")
    assert first_post.text.endswith("⏰ 已在下方重新发出，请回复新的那条。")
    # Staff who reply to the older post are heard too.
    replies = await bot.staff_room().reply(first_post, "不可以。", expect=3)
    assert replies.elsewhere[0].text.endswith("不可以。")
    assert "✅ 已由 王芳 答复" in repost.text
    posts = len(bot.api.bot_messages(bot.staff_group))
    await job.run(bot.app)
    assert len(bot.api.bot_messages(bot.staff_group)) == posts


async def test_a_resident_who_blocked_the_bot_is_noted_and_staff_are_told(
    bot: BotHarness,
) -> None:
    chat = bot.resident()
    await chat.send("犬只免疫证明怎么开", expect=2)
    bot.api.block_bot(chat.user)
    staff = bot.api.group_chat(bot.staff_group, bot.staff, raise_on_refused=False)
    replies = await staff.reply(bot.latest_staff_post(), "不可以。", expect=3)
    assert [call.description for call in replies.refused] == [
        "Forbidden: bot was blocked by the user"
    ]
    assert replies.text == "⚠️ 答复已记录，但没能发给居民（对方可能已停用机器人）。"


async def test_residents_cannot_do_staff_things(bot: BotHarness) -> None:
    chat = bot.resident()
    await chat.send("犬只免疫证明怎么开", expect=2)
    await bot.staff_room().reply(bot.latest_staff_post(), "不可以。", expect=3)
    menu = (await chat.send("/start", expect=2))[1]
    for data in ("s:l:1", "s:L:1:id-card-replacement"):
        answer = await press_forged(bot.api, chat.user, menu, data)
        assert answer is not None
        assert answer.text == "只有工作人员群的成员可以这样做。"
    replies = await chat.send("/learn id-card-replacement")
    assert replies.texts[0] == "这种消息我处理不了，请用文字输入您的问题，或者用下面的菜单。"
    async with bot.services.sessions() as session:
        escalation = (await session.scalars(select(Escalation))).one()
    assert escalation.learned_item_id is None


# -- learning a phrasing -------------------------------------------------------------------------


@pytest.fixture
async def learning_bot(
    database_url: str, engine: AsyncEngine, knowledge_copy: Path
) -> AsyncIterator[BotHarness]:
    """The bot on a private copy of the knowledge base, which staff may teach."""
    settings = conversation_settings(database_url)
    store = KnowledgeStore(knowledge_copy, thresholds_from(settings))
    async with LocalBotApi() as api:
        harness = BotHarness(api, database_url, store)
        await harness.start()
        try:
            yield harness
        finally:
            await harness.stop()


async def test_staff_teach_the_bot_a_new_phrasing_and_it_answers_it_next_time(
    learning_bot: BotHarness, knowledge_copy: Path
) -> None:
    bot = learning_bot
    chat = bot.resident()
    question = "身份证让小偷摸走了"
    await chat.send("/start", expect=2)
    await chat.press("🙋 转人工", expect=2)
    assert "已经转给工作人员" in (await chat.send(question, expect=2)).text
    post = bot.latest_staff_post()
    staff = bot.staff_room()
    await staff.reply(post, "请先挂失，再补领。", expect=3)
    replies = await staff.press("📚 记为某事项的新问法", message=post, expect=2)
    choose = replies[0]
    assert choose.text.startswith("把“身份证让小偷摸走了”记为哪个事项的新问法？")
    replies = await staff.press(
        "居民身份证挂失补领 (id-card-replacement)", message=choose, expect=3
    )
    assert choose.text == (
        "📚 王芳 已把这个问法加入事项“居民身份证挂失补领”（id-card-replacement），知识库已重新加载。"
    )
    assert post.find_button("📚 记为某事项的新问法") is None
    saved = (knowledge_copy / "guides" / "id-card-replacement.toml").read_text("utf-8")
    assert question in saved
    again = await chat.send(question)
    assert again.texts[0].startswith("居民身份证挂失补领")


async def test_staff_teach_a_phrasing_with_the_learn_command(
    learning_bot: BotHarness, knowledge_copy: Path
) -> None:
    bot = learning_bot
    chat = bot.resident()
    await chat.send("/start", expect=2)
    await chat.press("🙋 转人工", expect=2)
    await chat.send("我的证件不见了", expect=2)
    post = bot.latest_staff_post()
    staff = bot.staff_room()
    await staff.reply(post, "身份证请按挂失补领办理。", expect=3)
    replies = await staff.reply(post, "/learn no-such-item")
    assert replies.text == "没有找到事项 no-such-item。"
    replies = await staff.reply(post, "/learn id-card-replacement", expect=2)
    assert replies.text.startswith("📚 王芳 已把这个问法加入事项“居民身份证挂失补领”")
    replies = await staff.reply(post, "/learn id-card-replacement")
    assert replies.text == "事项“居民身份证挂失补领”已经有这个问法了。"
    assert (await chat.send("我的证件不见了")).texts[0].startswith("居民身份证挂失补领")


async def test_staff_can_cancel_teaching_when_no_item_fits(bot: BotHarness) -> None:
    chat = bot.resident()
    await chat.send("/start", expect=2)
    await chat.press("🙋 转人工", expect=2)
    await chat.send("🙂", expect=2)
    post = bot.latest_staff_post()
    staff = bot.staff_room()
    await staff.reply(post, "请问您想咨询什么？", expect=3)
    replies = await staff.press("📚 记为某事项的新问法", message=post, expect=2)
    choose = replies[0]
    # Nothing in the knowledge base resembles the question: only /learn or cancel.
    assert [label for row in choose.buttons for label, _ in row] == ["取消"]
    await staff.press("取消", message=choose, expect=2)
    assert choose.deleted


# -- messages that are not questions -------------------------------------------------------------


async def test_stickers_photos_voice_files_locations_and_contacts_get_useful_answers(
    bot: BotHarness,
) -> None:
    chat = bot.resident()
    assert (await chat.send_sticker()).text.startswith("收到您的表情了")
    assert "/complain" in (await chat.send_photo()).text
    assert (await chat.send_voice()).text == "暂时听不了语音，请用文字输入您的问题。"
    assert (await chat.send_document(b"hello")).text.startswith("收到文件了。")
    assert "/complain" in (await chat.send_location(39.9, 116.4)).text
    assert (await chat.send_contact("+8613800000000")).text.startswith("收到联系人了。")
    assert (await chat.send("/whatever")).text.startswith("这种消息我处理不了")


async def test_an_edited_message_gets_a_note_instead_of_a_second_answer(bot: BotHarness) -> None:
    chat = bot.resident("Alice", language_code="en")
    await chat.send("hello")
    mine = next(m for m in reversed(chat.messages) if not m.from_bot)
    replies = await chat.edit(mine, "hello again")
    assert replies.text == (
        "I see you edited a message. I only read new messages, so please send the corrected "
        "text again if needed."
    )


async def test_a_group_other_than_the_staff_group_is_asked_to_talk_privately(
    bot: BotHarness,
) -> None:
    resident = bot.api.create_user("李雷")
    group = bot.api.create_group("小区业主群", [resident])
    room = bot.api.group_chat(group, resident)
    replies = await room.send("/start")
    assert replies.text.startswith("您好！为了保护您的隐私，请私聊我提问")
    assert not bot.api.bot_messages(bot.staff_group)


async def test_a_flooding_resident_is_told_once_to_slow_down(
    database_url: str, engine: AsyncEngine, bundled_store: KnowledgeStore
) -> None:
    async with LocalBotApi() as api:
        bot = BotHarness(api, database_url, bundled_store, flood_messages=3)
        await bot.start()
        try:
            chat = bot.resident()
            for _ in range(3):
                await chat.send("你好")
            replies = await chat.send("你好")
            assert replies.text.startswith("您发消息有点快，请稍等")
            assert (await chat.send("你好", expect=0)) == []
        finally:
            await bot.stop()


# -- hostile text --------------------------------------------------------------------------------


async def test_html_in_questions_and_staff_answers_is_shown_as_text(bot: BotHarness) -> None:
    chat = bot.resident()
    question = "<b>犬只</b> & <a href='x'>登记怎么办理</a> </i>"
    # Asked of a person: matched, its tags' words would give it a choice of 登记 items.
    await chat.send("转人工")
    await chat.send(question, expect=2)
    post = bot.latest_staff_post()
    assert question in post.text
    answer = "<script>alert(1)</script> & 不可以 <宠物> </b>"
    replies = await bot.staff_room().reply(post, answer, expect=3)
    delivered = replies.elsewhere[0]
    assert delivered.text.endswith(answer)
    assert question in delivered.text
    assert answer in post.text


# -- the web console, errors, updates the bot does not serve ------------------------------------


async def test_an_answer_from_the_web_console_reaches_the_resident_and_the_staff_post(
    bot: BotHarness,
) -> None:
    chat = bot.resident()
    await chat.send("犬只免疫证明怎么开", expect=2)
    post = bot.latest_staff_post()
    (open_one,) = await bot.services.escalations.open_escalations()
    outcome = await bot.services.escalations.answer_escalation(
        open_one.id, "大厅不能带宠物，导盲犬除外。", "李科长", "console"
    )
    assert outcome.status == "delivered"
    assert chat.last_bot_message is not None
    assert chat.last_bot_message.text.endswith("大厅不能带宠物，导盲犬除外。")
    assert "✅ 已由 李科长 答复" in post.text
    assert "网页后台" in post.text
    replies = await bot.staff_room().reply(post, "不可以。")
    assert replies.text == "ℹ️ 这个问题已经由 李科长 答复过了，您的回复没有发给居民。"


async def test_a_failing_handler_is_logged_and_the_resident_is_told_politely(
    bot: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    async def break_down(update: object, context: object) -> None:
        raise RuntimeError("the database is on fire")

    bot.app.add_handler(MessageHandler(filters.Regex("^boom$"), break_down), group=-1)
    chat = bot.resident()
    replies = await chat.send("boom")
    assert replies.text.startswith("抱歉，系统刚才出了点问题")
    assert "the database is on fire" not in replies.text
    assert any("the database is on fire" in str(r.exc_info) for r in caplog.records)


async def test_updates_the_bot_does_not_serve_are_ignored_quietly(bot: BotHarness) -> None:
    chat = bot.resident()
    bot.api.push_update(
        "channel_post",
        {"message_id": 1, "date": 0, "chat": {"id": -100999, "type": "channel"}, "text": "x"},
    )
    bot.api.push_update(
        "edited_channel_post",
        {
            "message_id": 1,
            "date": 0,
            "edit_date": 1,
            "chat": {"id": -100999, "type": "channel"},
            "text": "y",
        },
    )
    replies = await chat.send("你好")
    assert replies.text.startswith("您好，很高兴为您服务！")
    assert not [call for call in bot.api.calls if not call.ok]
