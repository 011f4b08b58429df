"""The staff group: answering escalated questions by replying, and teaching the bot phrasings.

    escalation post ◀─ reply (text) ─── staff member ─▶ answer_escalation ─▶ outbox ─▶ resident
         │                                 first answer wins; the post shows who answered
         └─ [📚 learn this phrasing] ─▶ pick an item (LearnItem) or /learn ITEM-ID
                                         ─▶ question appended to the item's file, KB reloaded

Only members of the staff group (asked of Telegram with getChatMember, cached briefly) can do
staff things; buttons pressed or commands sent anywhere else are refused politely. What staff
do is described in docs/telegram.md.
"""

from __future__ import annotations

import re

from telegram import InlineKeyboardMarkup, Message, Update, User
from telegram.ext import CallbackQueryHandler, CommandHandler, MessageHandler, filters

from bot.answering.escalations import MAX_ANSWER_CHARS, EscalationView
from bot.answering.learning import LearnResult
from bot.core.i18n import add_strings, t
from bot.telegram.callback_data import LearnButton, LearnItem, button, item_token, prefix_of
from bot.telegram.context import BotApplication, BotContext
from bot.telegram.editing import edit_pressed_message
from handlers.browse import clip_label, find_item

add_strings(
    "staff",
    {
        "staff_answer_queued": {
            "zh": "⏳ 答复已记录，暂时没能发给居民，系统会自动重试。",
            "en": "⏳ The answer is recorded but could not be sent just now; it will be sent "
            "again automatically.",
        },
    },
)


async def is_staff(context: BotContext, user: User | None, message: Message | None = None) -> bool:
    """Tell whether `user` is a member of the staff group (asked of Telegram, cached briefly)."""
    staff_chat_id = context.services.settings.telegram.staff_chat_id
    if staff_chat_id is None or user is None:
        return False
    # An anonymous administrator posts as the group itself.
    if message is not None and message.sender_chat is not None:
        return message.sender_chat.id == staff_chat_id
    return await context.bot_data.members.is_member(context.bot, staff_chat_id, user.id)


def _staff_name(message: Message) -> str:
    if message.sender_chat is not None:
        return message.sender_chat.title or "admin"
    return message.from_user.full_name if message.from_user else "?"


def _in_staff_chat(update: Update, context: BotContext) -> bool:
    chat = update.effective_chat
    return chat is not None and chat.id == context.services.settings.telegram.staff_chat_id


_POST_NUMBER = re.compile(r"(?:居民提问|Resident question) #(\d{1,12})")


async def _escalation_replied_to(message: Message, context: BotContext) -> EscalationView | None:
    """Return the escalation whose staff post `message` replies to (the newest or an older one)."""
    replied = message.reply_to_message
    if replied is None:
        return None
    desk = context.services.escalations
    view = await desk.find_by_staff_message(message.chat_id, replied.message_id)
    if view is not None:
        return view
    # An older post of a re-posted escalation: only the bot writes these, and each names its
    # escalation's number in its heading.
    if replied.from_user is None or replied.from_user.id != context.bot.id:
        return None
    number = _POST_NUMBER.search((replied.text or "")[:200])
    if number is None:
        return None
    view = await desk.get(int(number.group(1)))
    if view is None or view.staff_chat_id != message.chat_id:
        return None
    return view


async def answer_by_reply(update: Update, context: BotContext) -> None:
    """Send a staff member's reply to an escalation post to the resident who asked."""
    message = update.effective_message
    if message is None or not _in_staff_chat(update, context):
        return
    view = await _escalation_replied_to(message, context)
    if view is None:
        return  # staff talking among themselves
    language = context.language
    if not await is_staff(context, message.from_user, message):
        await message.reply_text(t("staff_only", language))
        return
    if not message.text:
        await message.reply_text(t("staff_answer_empty", language))
        return
    outcome = await context.services.escalations.answer_escalation(
        view.id, message.text, staff_name=_staff_name(message), via="telegram"
    )
    if outcome.status == "delivered":
        await message.reply_text(t("staff_answer_sent", language))
    elif outcome.status == "queued":
        await message.reply_text(t("staff_answer_queued", language))
    elif outcome.status == "undeliverable":
        await message.reply_text(t("staff_answer_undeliverable", language))
    elif outcome.status == "already_answered" and outcome.escalation is not None:
        await message.reply_text(
            t("staff_already_answered", language, name=outcome.escalation.answered_by or "?")
        )
    elif outcome.problem == "too_long":
        await message.reply_text(t("staff_answer_too_long", language, limit=MAX_ANSWER_CHARS))
    else:
        await message.reply_text(t("staff_answer_empty", language))


async def learn_button(update: Update, context: BotContext) -> None:
    """Offer the items a staff-answered question can be taught to, or teach one."""
    query = update.callback_query
    assert query is not None
    assert query.data is not None
    language = context.services.settings.telegram.staff_language
    if not _in_staff_chat(update, context) or not await is_staff(context, query.from_user):
        await query.answer(t("staff_only", language), show_alert=True)
        return
    pressed = LearnButton.decode(query.data) or LearnItem.decode(query.data)
    if pressed is None:
        await query.answer(t("stale_button", language), show_alert=True)
        return
    desk = context.services.escalations
    view = await desk.get(pressed.escalation_id)
    if view is None:
        await query.answer(t("stale_button", language), show_alert=True)
        return
    message = query.message
    assert isinstance(message, Message)
    if isinstance(pressed, LearnItem):
        item = find_item(context.services.knowledge.kb, pressed.item)
        await query.answer()
        if item is None:
            await edit_pressed_message(
                query, language, t("staff_learn_unknown_item", language, item=pressed.item)
            )
            return
        result = await teach(context, view, item.id, query.from_user.full_name)
        await edit_pressed_message(
            query, language, _learn_report(result, language, query.from_user.full_name)
        )
    elif pressed.action == "offer":
        if view.status != "answered":
            await query.answer(t("staff_learn_not_answered", language), show_alert=True)
            return
        await query.answer()
        kb = context.services.knowledge.kb
        rows = [
            [
                button(
                    clip_label(f"{c.get('title', '')} ({c.get('id', '')})"),
                    LearnItem(view.id, item_token(str(c.get("id", "")))),
                )
            ]
            for c in view.candidates[:3]
            if str(c.get("id", "")) in kb.items
        ]
        rows.append([button(t("staff_learn_cancel", language), LearnButton("cancel", view.id))])
        await message.reply_text(
            t("staff_learn_choose", language, question=clip_label(view.question, 200)),
            reply_markup=InlineKeyboardMarkup(rows),
        )
    else:
        await query.answer()
        await message.delete()


async def learn_command(update: Update, context: BotContext) -> None:
    """/learn ITEM-ID, as a reply to an answered escalation post."""
    message = update.effective_message
    if message is None or not _in_staff_chat(update, context):
        return
    language = context.language
    if not await is_staff(context, message.from_user, message):
        await message.reply_text(t("staff_only", language))
        return
    view = await _escalation_replied_to(message, context)
    if view is None or len(context.args or []) != 1:
        await message.reply_text(t("staff_learn_usage", language))
        return
    if view.status != "answered":
        await message.reply_text(t("staff_learn_not_answered", language))
        return
    item_id = (context.args or [""])[0]
    if item_id not in context.services.knowledge.kb.items:
        await message.reply_text(t("staff_learn_unknown_item", language, item=item_id))
        return
    result = await teach(context, view, item_id, _staff_name(message))
    await message.reply_text(_learn_report(result, language, _staff_name(message)))


def register(application: BotApplication) -> None:
    """Register the staff group's handlers."""
    # Buttons are checked inside (a forged "s:" button from any chat is refused politely).
    application.add_handler(
        CallbackQueryHandler(learn_button, pattern=prefix_of(LearnButton, LearnItem))
    )
    services = application.bot_data.services
    staff_chat_id = services.settings.telegram.staff_chat_id if services else None
    if staff_chat_id is None:
        return
    # Only the staff chat's messages: other groups (departments' chats) belong to other modules.
    staff_chat = filters.Chat(chat_id=staff_chat_id)
    application.add_handler(
        MessageHandler(staff_chat & filters.REPLY & ~filters.COMMAND, answer_by_reply)
    )
    application.add_handler(CommandHandler("learn", learn_command, filters=staff_chat))


async def teach(
    context: BotContext, view: EscalationView, item_id: str, staff_name: str
) -> LearnResult:
    """Add the escalation's question to an item's phrasings and show it on the staff post."""
    services = context.services
    result = await services.teacher.add_phrasing(item_id, view.question)
    if result.status == "learned":
        learned = await services.escalations.mark_learned(view.id, item_id)
        if learned is not None:
            await services.escalations.refresh_staff_post(learned)
    return result


def _learn_report(result: LearnResult, language: str, staff_name: str) -> str:
    if result.status == "learned":
        return t(
            "staff_learned", language, name=staff_name, title=result.title, item=result.item_id
        )
    if result.status == "duplicate":
        return t("staff_learn_duplicate", language, title=result.title)
    if result.status == "unknown_item":
        return t("staff_learn_unknown_item", language, item=result.item_id)
    return t("staff_learn_failed", language, problem=result.problem)
