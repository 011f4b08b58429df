"""Free text from residents goes through the matcher; answers, suggestions, escalations, feedback.

    text ─▶ matcher ─┬─ answer    ─▶ answer card + [helpful] [not helpful] [talk to a person]
                     ├─ suggest   ─▶ up to three items + [none of these]
                     ├─ escalate  ─▶ staff group; the resident is told roughly when
                     └─ small talk / nothing readable ─▶ a friendly word and the menu

Buttons (bot/telegram/callback_data.py: QuestionButton, SuggestionChoice) name the question:
helpful, not helpful, talk to a person, none of these, or the suggested item chosen. The
question must be the resident's own; a forged or foreign id is answered politely and changes
nothing.
"""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.ext import CallbackQueryHandler, MessageHandler, filters

from bot.answering.escalations import Cause, route_question
from bot.answering.matching import MatchResult
from bot.answering.question_log import MAX_QUESTION_CHARS
from bot.core.i18n import t
from bot.telegram.callback_data import (
    QuestionButton,
    SuggestionChoice,
    button,
    item_token,
    prefix_of,
)
from bot.telegram.context import BotApplication, BotContext
from handlers.browse import clip_label, find_item, send_card
from handlers.start import AWAITING_PERSON, back_to_menu, main_menu


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
    await message.reply_text(handover.notice, do_quote=False)
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

    result = services.knowledge.matcher.match(text)
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
    elif route.reply == "empty":
        await message.reply_text(t("empty_question", language), reply_markup=main_menu(language))
    elif route.reply == "answer" and result.best is not None:
        await send_card(
            message,
            services.knowledge.kb,
            result.best.item,
            language,
            extra_rows=[feedback_row(question_id, language)],
        )
    elif route.reply == "suggest":
        await offer_suggestions(message, context, question_id, result)
    elif route.cause is not None:
        if route.preface is not None:
            await message.reply_text(route.preface)
        await escalate(message, context, question_id, route.cause)


async def offer_suggestions(
    message: Message, context: BotContext, question_id: int, result: MatchResult
) -> None:
    """Offer the best few items as buttons, and a way to a person."""
    language = context.language
    limit = context.services.settings.matching.max_suggestions
    rows = [
        [
            button(
                clip_label(c.item.get_text("title", language)),
                SuggestionChoice(question_id, item_token(c.item.id)),
            )
        ]
        for c in result.suggestions(limit)
    ]
    rows.append([button(t("suggest_none", language), QuestionButton("none_fits", question_id))])
    await message.reply_text(t("suggest_intro", language), reply_markup=InlineKeyboardMarkup(rows))


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
        await send_card(
            message, kb, item, language, extra_rows=[feedback_row(question_id, language)]
        )
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
            markup = InlineKeyboardMarkup(
                [
                    [button(t("answer_person", language), QuestionButton("person", question_id))],
                    [back_to_menu(language)],
                ]
            )
            await message.reply_text(
                t("sorry_not_helpful", language), reply_markup=markup, do_quote=False
            )
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
