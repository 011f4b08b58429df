"""Free text from residents goes through the matcher; answers, suggestions, escalations, feedback.

    text ─▶ matcher ─┬─ answer    ─▶ answer card + [helpful] [not helpful] [talk to a person]
                     ├─ suggest   ─▶ up to three items + [none of these]
                     ├─ report    ─▶ "the city should look into this" + [file it] [person] [menu]
                     ├─ decline   ─▶ out of scope: a polite word + [talk to a person] [menu]
                     ├─ escalate  ─▶ staff group; the resident is told roughly when
                     ├─ small talk / nothing readable ─▶ a friendly word and the menu
                     └─ "转人工" typed ─▶ as the menu's [talk to a person]: the next message

Before the matcher, a message that only asks after the resident's own tickets ("我上次提的工单
怎么样了", "my complaint status") gets their list, as the menu's "my tickets" (handlers/status.py);
one that only asks about a part of a card ("多少钱", "在哪里办") is answered from the card shown
last (bot/answering/followups.py), or asks which service is meant.

A card or a choice for a message that also describes a problem gets one more row: [file it].
Which reply a question gets is bot.answering.escalations.route_question's decision.

Buttons (bot/telegram/callback_data.py: QuestionButton, SuggestionChoice) name the question:
helpful, not helpful, talk to a person, none of these, or the suggested item chosen; "file it"
(ComplaintFromQuestion) starts the complaint form (handlers/complaints.py). The question must be
the resident's own; a forged or foreign id is answered politely and changes nothing.
"""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.ext import CallbackQueryHandler, MessageHandler, filters

from bot.answering.cards import build_card, render_html
from bot.answering.escalations import Cause, route_question
from bot.answering.followups import chosen_number, focused_card, followup_aspect
from bot.answering.intents import asks_about_own_tickets, ticket_number_in
from bot.answering.knowledge_base import Item
from bot.answering.matching import MatchResult
from bot.answering.question_log import MAX_QUESTION_CHARS
from bot.core import metrics
from bot.core.i18n import add_strings, t
from bot.core.text import normalize
from bot.telegram.callback_data import (
    BrowseItem,
    QuestionButton,
    SuggestionChoice,
    button,
    item_token,
    prefix_of,
)
from bot.telegram.context import BotApplication, BotContext
from bot.tickets.messages import type_name
from handlers.browse import (
    clip_label,
    find_item,
    recent_choice,
    recent_question,
    recently_shown,
    remember_choice,
    remember_question,
    remember_shown,
    send_card,
)
from handlers.complaints import file_question_button, ticket_type_of
from handlers.start import AWAITING_PERSON, back_to_menu, main_menu
from handlers.status import show_list, show_ticket_by_number

add_strings(
    "questions",
    {
        "watch_offer": {
            "zh": "🔔 知识库补充后通知我",
            "en": "🔔 Tell me when this is answered",
        },
        "watch_added": {
            "zh": "好的，知识库有了答复会在这里告诉您。",
            "en": "Done: you will be told here when the knowledge base answers it.",
        },
        "watch_already": {
            "zh": "已经记下了，有答复会告诉您。",
            "en": "Already noted; you will be told when it is answered.",
        },
        "declined_out_of_scope": {
            "zh": "抱歉，这个问题不在{city}政务服务的范围内，我帮不上忙。我可以解答办事指南、"
            "政府信息公开方面的问题，也可以帮您投诉、举报或提建议。"
            "如果您觉得这件事需要政府部门处理，可以转给工作人员看看。",
            "en": "Sorry, this is outside what {city}'s public-service assistant can help with. "
            "I can answer questions about public services and government information, and "
            "help you file a complaint, a report or a suggestion. If you think a government "
            "office should deal with this, a member of staff can have a look.",
        },
        "report_offer": {
            "zh": "听起来这是需要有关部门来处理的问题。我可以帮您登记成<b>{type}</b>工单："
            "根据您的消息填好表单，您补充照片和地点后提交，承办部门会按期限答复您，"
            "进展也会在这里通知您。",
            "en": "This sounds like a problem the city should look into. I can file it for you "
            "as a <b>{type}</b>: the form is filled in from your message; add photos and the "
            "place, submit, and the department handling it answers you by a deadline. You "
            "are told here as it progresses.",
        },
        "followup_which": {
            "zh": "请问您想了解哪项业务的{what}？请连同事项名称一起问，比如“{example}”。",
            "en": "Which service do you mean (for its {what})? Please name it in your "
            "question, for example “{example}”.",
        },
        "followup_full": {"zh": "📄 查看完整指南", "en": "📄 The whole guide"},
        "aspect_fee": {"zh": "费用", "en": "fee"},
        "aspect_fee_example": {"zh": "身份证补办多少钱", "en": "How much is a new passport?"},
        "aspect_materials": {"zh": "所需材料", "en": "documents to bring"},
        "aspect_materials_example": {
            "zh": "办护照要带什么材料",
            "en": "What do I bring to apply for a passport?",
        },
        "aspect_place": {"zh": "办理地点", "en": "place"},
        "aspect_place_example": {
            "zh": "社保卡在哪里办",
            "en": "Where do I get a social security card?",
        },
        "aspect_time": {"zh": "办理时限", "en": "time limit"},
        "aspect_time_example": {
            "zh": "居住证多久能办好",
            "en": "How long does a residence permit take?",
        },
        "aspect_hours": {"zh": "办公时间", "en": "opening hours"},
        "aspect_hours_example": {
            "zh": "政务服务中心几点下班",
            "en": "When is the government service centre open?",
        },
        "aspect_phone": {"zh": "咨询电话", "en": "phone number"},
        "aspect_phone_example": {
            "zh": "公积金中心电话多少",
            "en": "What is the housing fund centre's phone number?",
        },
        "aspect_steps": {"zh": "办理流程", "en": "steps"},
        "aspect_steps_example": {
            "zh": "营业执照怎么办理",
            "en": "How do I get a business licence?",
        },
        "help_offer": {
            "zh": "很抱歉您遇到了困难。如果有人正处在危险中，请马上拨打 {emergency}。我可以帮您"
            "登记成<b>{type}</b>工单：根据您的消息填好表单，您补充地点和联系方式后提交，承办部门"
            "会按期限答复您，进展也会在这里通知您。",
            "en": "Sorry you are in difficulty. If anyone is in danger right now, call "
            "{emergency} at once. I can file this for you as a <b>{type}</b>: the form is filled "
            "in from your message; add the place and how to reach you, submit, and the "
            "department handling it answers you by a deadline. You are told here as it "
            "progresses.",
        },
        "suggestion_offer": {
            "zh": "谢谢您的建议。我可以帮您登记成<b>{type}</b>工单：根据您的消息填好表单，"
            "您确认后提交，承办部门会按期限答复您，进展也会在这里通知您。",
            "en": "Thank you for the suggestion. I can file it for you as a <b>{type}</b>: the "
            "form is filled in from your message; submit it, and the department handling it "
            "answers you by a deadline. You are told here as it progresses.",
        },
    },
)


def feedback_row(question_id: int, language: str) -> list[InlineKeyboardButton]:
    """Return the buttons under an answer card."""
    return [
        button(t("answer_helpful", language), QuestionButton("helpful", question_id)),
        button(t("answer_not_helpful", language), QuestionButton("not_helpful", question_id)),
        button(t("answer_person", language), QuestionButton("person", question_id)),
    ]


async def escalate(message: Message, context: BotContext, question_id: int, cause: Cause) -> None:
    """Hand a question to staff and tell the resident when to expect an answer."""
    services = context.services
    desk = services.escalations
    handover = await desk.hand_over(
        question_id, cause, context.language, services.tickets.calendar
    )
    # Stored first; the resident hears back before the staff post goes out, which they do not
    # wait for (the re-post job posts any escalation that missed its first post).
    markup = None
    if handover.escalation is not None:
        # A resident who agrees is told when a published change answers the question
        # (bot.answering.publishing); nobody is told without asking.
        markup = InlineKeyboardMarkup(
            [[button(t("watch_offer", context.language), QuestionButton("watch", question_id))]]
        )
    await message.reply_text(handover.notice, do_quote=False, reply_markup=markup)
    if handover.escalation is not None:
        await desk.post(handover.escalation)


async def answer_text(update: Update, context: BotContext) -> None:
    """Answer a resident's free-text question, as bot.answering.escalations.route_question says."""
    message = update.effective_message
    assert message is not None
    assert message.text is not None
    resident = context.resident
    if resident is None:
        return
    language = context.language
    services = context.services
    text = message.text
    if len(text) > MAX_QUESTION_CHARS:
        await message.reply_text(t("question_too_long", language, limit=MAX_QUESTION_CHARS))
        text = text[:MAX_QUESTION_CHARS]

    # A resident who asked for a person gets one for this message, whatever it says.
    awaiting_person = bool(context.user_data and context.user_data.get(AWAITING_PERSON))
    if not awaiting_person and await answered_without_matching(update, context, normalize(text)):
        return
    with metrics.MATCH_SECONDS.time():
        result = services.knowledge.matcher.match(text)
    metrics.count_decision(result.decision)
    wants_person = bool(context.user_data and context.user_data.pop(AWAITING_PERSON, None))
    route = route_question(
        result, wants_person=wants_person, settings=services.settings, language=language
    )
    record = services.questions.record_for_person if wants_person else services.questions.record
    question_id = await record(
        resident_id=resident.id,
        chat_id=message.chat_id,
        message_id=message.message_id,
        language=language,
        result=result,
    )
    if route.reply == "small_talk":
        await message.reply_text(t("small_talk", language), reply_markup=main_menu(language))
    elif route.reply == "venting":
        # "不对" after a card or a choice: 🙋 passes that question to a person, not "不对".
        earlier = recent_question(context)
        await message.reply_text(
            t("venting", language),
            reply_markup=InlineKeyboardMarkup(
                person_and_menu(earlier if earlier is not None else question_id, language)
            ),
        )
    elif route.reply == "empty":
        await message.reply_text(t("empty_question", language), reply_markup=main_menu(language))
    elif route.reply == "person":
        # As the menu's "talk to a person": the next message goes to staff.
        if context.user_data is not None:
            context.user_data[AWAITING_PERSON] = True
        await message.reply_text(t("person_prompt", language))
    elif route.reply == "answer" and result.best is not None:
        rows = [feedback_row(question_id, language)]
        if route.offer_ticket:
            rows.append([file_question_button(question_id, result.question, language)])
        await send_card(
            message, services.knowledge.kb, result.best.item, language, extra_rows=rows
        )
        remember_shown(context, result.best.item)
        remember_question(context, question_id)
    elif route.reply == "suggest":
        in_difficulty = route.offer_ticket and result.in_difficulty()
        if in_difficulty:
            # Someone in difficulty ("我家老人走丢了"): whom to call and the offer to file it
            # come first, then the items that may help.
            await offer_ticket(message, context, question_id, result.question)
        await offer_suggestions(
            message,
            context,
            question_id,
            result,
            offer_ticket=route.offer_ticket and not in_difficulty,
        )
    elif route.reply == "report":
        await offer_ticket(message, context, question_id, result.question)
    elif route.reply == "out_of_scope":
        await decline(message, context, question_id)
    elif route.cause is not None:
        if route.preface is not None:
            await message.reply_text(route.preface)
        await escalate(message, context, question_id, route.cause)


def person_and_menu(question_id: int, language: str) -> list[list[InlineKeyboardButton]]:
    """Return the rows that let the resident pass this question to a person, or go back."""
    return [
        [button(t("answer_person", language), QuestionButton("person", question_id))],
        [back_to_menu(language)],
    ]


async def answered_without_matching(update: Update, context: BotContext, normalized: str) -> bool:
    """Answer what is about the resident's tickets or what they were just shown; False (nothing
    done) for anything else, which the matcher reads."""
    message = update.effective_message
    assert message is not None
    # "我上次提的工单怎么样了": the resident's own tickets, as the menu's "my tickets" shows them.
    if asks_about_own_tickets(normalized):
        await show_list(update, context)
        return True
    # A ticket number typed ("TS-2026-000123 怎么样了"): that ticket, if it is theirs.
    number = ticket_number_in(normalized)
    if number is not None:
        await show_ticket_by_number(message, context, number)
        return True
    # "第二个" after a choice: as if its button were pressed.
    if await pick_by_number(message, context, normalized):
        return True
    # "多少钱" after a card: that part of the card (or, with no card shown lately, which service).
    aspect = followup_aspect(normalized)
    if aspect is not None:
        await answer_followup(message, context, aspect)
        return True
    return False


async def send_chosen(message: Message, context: BotContext, question_id: int, item: Item) -> None:
    """Send the card of the item a resident chose from a question's choice."""
    language = context.language
    kb = context.services.knowledge.kb
    await send_card(message, kb, item, language, extra_rows=[feedback_row(question_id, language)])
    remember_shown(context, item)


async def pick_by_number(message: Message, context: BotContext, normalized: str) -> bool:
    """Answer "第二个", "2" or "the first one" typed after a choice as a press of that item's
    button; False (nothing done) when the message is no such pick or no choice is recent."""
    number = chosen_number(normalized)
    choice = recent_choice(context) if number is not None else None
    resident = context.resident
    if number is None or choice is None or resident is None:
        return False
    question_id, items = choice
    if number > len(items):
        return False
    kb = context.services.knowledge.kb
    item = kb.items.get(items[number - 1])
    if item is None or not await context.services.questions.record_choice(
        question_id, resident.id, item.id
    ):
        return False
    await send_chosen(message, context, question_id, item)
    return True


async def answer_followup(message: Message, context: BotContext, aspect: str) -> None:
    """Answer "多少钱", "在哪里办" … from the card shown last; ask which service without one."""
    language = context.language
    kb = context.services.knowledge.kb
    item = recently_shown(context, kb)
    if item is None:
        await message.reply_text(
            t(
                "followup_which",
                language,
                what=t(f"aspect_{aspect}", language),
                example=t(f"aspect_{aspect}_example", language),
            ),
            reply_markup=main_menu(language),
        )
        return
    focused = focused_card(build_card(item, kb, language), aspect)
    if focused is None:  # the item says nothing of it: its whole card
        await send_card(message, kb, item, language)
    else:
        await message.reply_text(
            render_html(focused),
            reply_markup=InlineKeyboardMarkup(
                [
                    [button(t("followup_full", language), BrowseItem(item_token(item.id)))],
                    [back_to_menu(language)],
                ]
            ),
        )
    remember_shown(context, item)


async def offer_ticket(message: Message, context: BotContext, question_id: int, text: str) -> None:
    """Offer to file a message that describes a problem, or makes a suggestion, as a ticket
    (staff only if asked)."""
    language = context.language
    file_it = file_question_button(question_id, text, language)
    kind = ticket_type_of(text)
    offer = {"suggestion": "suggestion_offer", "help": "help_offer"}.get(kind, "report_offer")
    settings = context.services.settings
    emergency = settings.emergency_numbers_en if language == "en" else settings.emergency_numbers
    await message.reply_text(
        t(offer, language, type=type_name(kind, language), emergency=emergency),
        reply_markup=InlineKeyboardMarkup([[file_it], *person_and_menu(question_id, language)]),
    )


async def decline(message: Message, context: BotContext, question_id: int) -> None:
    """Say politely that the bot cannot help with this; a person only if the resident asks."""
    language = context.language
    settings = context.services.settings
    await message.reply_text(
        t(
            "declined_out_of_scope",
            language,
            city=settings.city_en if language == "en" else settings.city,
        ),
        reply_markup=InlineKeyboardMarkup(person_and_menu(question_id, language)),
    )


async def offer_suggestions(
    message: Message,
    context: BotContext,
    question_id: int,
    result: MatchResult,
    *,
    offer_ticket: bool = False,
) -> None:
    """Offer the best few items as buttons, and a way to a person (and to file the message as
    a ticket, when it describes a problem)."""
    language = context.language
    limit = context.services.settings.matching.max_suggestions
    suggestions = result.suggestions(limit)
    rows = [
        [
            button(
                clip_label(c.item.get_text("title", language)),
                SuggestionChoice(question_id, item_token(c.item.id)),
            )
        ]
        for c in suggestions
    ]
    rows.append([button(t("suggest_none", language), QuestionButton("none_fits", question_id))])
    if offer_ticket:
        rows.append([file_question_button(question_id, result.question, language)])
    # One item: is it this one? Several, the first very likely: say so. Otherwise: which one?
    intro = (
        "suggest_one"
        if len(suggestions) == 1
        else "suggest_likely"
        if result.first_is_likely()
        else "suggest_intro"
    )
    await message.reply_text(t(intro, language), reply_markup=InlineKeyboardMarkup(rows))
    remember_choice(context, question_id, [c.item.id for c in suggestions])
    remember_question(context, question_id)


async def question_button(update: Update, context: BotContext) -> None:
    """Handle the buttons under answers and suggestions."""
    query = update.callback_query
    assert query is not None
    language = context.language
    resident = context.resident
    pressed = QuestionButton.decode(query.data) or SuggestionChoice.decode(query.data)
    message = query.message
    if resident is None or pressed is None or message is None:
        await query.answer(t("stale_button", language), show_alert=True)
        return
    assert isinstance(message, Message)
    question_id = pressed.question_id
    services = context.services
    question = await services.questions.owned(question_id, resident.id)
    if question is None:
        await query.answer(t("not_your_button", language), show_alert=True)
        return

    if isinstance(pressed, SuggestionChoice):
        kb = services.knowledge.kb
        item = find_item(kb, pressed.item)
        offered = {c.get("id") for c in question.candidates}
        if item is None or item.id not in offered:
            await query.answer(t("stale_button", language), show_alert=True)
            return
        await query.answer()
        await services.questions.record_choice(question_id, resident.id, item.id)
        await send_chosen(message, context, question_id, item)
    elif pressed.action in ("helpful", "not_helpful"):
        outcome = await services.questions.record_feedback(
            question_id, resident.id, pressed.action
        )
        await query.answer()
        if outcome == "already":
            await message.reply_text(t("feedback_already", language), do_quote=False)
        elif pressed.action == "helpful":
            await message.reply_text(t("thanks_helpful", language), do_quote=False)
        else:
            markup = InlineKeyboardMarkup(person_and_menu(question_id, language))
            await message.reply_text(
                t("sorry_not_helpful", language), reply_markup=markup, do_quote=False
            )
    elif pressed.action == "watch":
        added = await services.editor.watch(question_id, resident.id)
        await query.answer(t("watch_added" if added else "watch_already", language))
    elif pressed.action == "person":
        await query.answer()
        cause: Cause = "not_helpful" if question.feedback == "not_helpful" else "person"
        await escalate(message, context, question_id, cause)
    else:
        await query.answer()
        await escalate(message, context, question_id, "person")


def register(application: BotApplication) -> None:
    """Register free-text questions (private chats) and the answer buttons."""
    application.add_handler(
        MessageHandler(
            filters.ChatType.PRIVATE
            & filters.TEXT
            & ~filters.COMMAND
            & filters.UpdateType.MESSAGE,
            answer_text,
        )
    )
    application.add_handler(
        CallbackQueryHandler(question_button, pattern=prefix_of(QuestionButton, SuggestionChoice))
    )
