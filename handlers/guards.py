"""Guards that run before every other handler (negative groups), in this order:

   -100  every update → counted (bot_updates_handled) and its id put on what its task logs
    -50  updates the bot does not serve: channel posts, polls, reactions, … → ignored quietly;
         the bot blocked or unblocked by a resident → noted, so nobody keeps writing to them
    -45  buttons under no message the bot can see (inline mode, deleted or inaccessible messages)
         → "this button has expired", so no handler meets a press without its message
    -40  edited messages → a polite note that only new messages are read
    -30  group chats other than the staff group → "please talk to me privately"
    -20  the per-resident flood limit → one friendly notice, then silence until it passes
    -10  private chats: find or create the resident, so later handlers know their language

A guard that has answered raises ApplicationHandlerStop so no later group sees the update.
"""

from __future__ import annotations

import logging
import time

from telegram import ChatMember, ChatMemberUpdated, Message, Update
from telegram.constants import ChatType
from telegram.ext import (
    ApplicationHandlerStop,
    ChatMemberHandler,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.core import metrics
from bot.core.i18n import t
from bot.core.logs import set_update
from bot.core.residents import language_from_telegram
from bot.telegram.context import BotApplication, BotContext
from bot.telegram.editing import answer_expired
from bot.telegram.flood import FloodGate

log = logging.getLogger(__name__)

GROUP_COUNT = -100
GROUP_UNKNOWN = -50
GROUP_DETACHED = -45
GROUP_EDITED = -40
GROUP_STRANGERS = -30
GROUP_FLOOD = -20
GROUP_RESIDENT = -10

_SERVED = (
    "message",
    "callback_query",
    "my_chat_member",
)


def served_elsewhere(context: BotContext, chat_id: int) -> bool:
    """Tell whether another area serves this group chat (e.g. a department's ticket chat).

    Areas that serve group chats of their own add a test to `bot_data.served_groups` in their
    register(app).
    """
    return any(serves(context, chat_id) for serves in context.bot_data.served_groups)


async def stop_unserved_updates(update: Update, context: BotContext) -> None:
    """Drop updates of kinds the bot does not serve, before any handler spends time on them."""
    if any(getattr(update, kind) is not None for kind in _SERVED):
        return
    if update.edited_message is not None:
        return
    raise ApplicationHandlerStop


async def answer_detached_buttons(update: Update, context: BotContext) -> None:
    """Answer a press whose message the bot cannot see as an expired button, and stop there.

    A button of an inline-mode message comes with `inline_message_id` and no `message`; one
    under a deleted or otherwise inaccessible message with an `InaccessibleMessage`. Every
    handler of a button works on the message under it, so none of them gets such a press.
    """
    query = update.callback_query
    if query is None or isinstance(query.message, Message):
        return
    log.info(
        "callback query %s without an accessible message (inline: %s) answered as expired",
        query.id,
        query.inline_message_id is not None,
    )
    await answer_expired(query, language_from_telegram(query.from_user.language_code))
    raise ApplicationHandlerStop


async def note_blocked_or_unblocked(update: Update, context: BotContext) -> None:
    """Remember that a resident blocked or unblocked the bot; greet a new staff group."""
    change: ChatMemberUpdated | None = update.my_chat_member
    if change is None:
        return
    status = change.new_chat_member.status
    if change.chat.type == ChatType.PRIVATE:
        blocked = status in (ChatMember.BANNED, ChatMember.LEFT)
        await context.services.residents.mark_blocked(change.chat.id, blocked)
    elif status in (ChatMember.MEMBER, ChatMember.ADMINISTRATOR):
        settings = context.services.settings
        if change.chat.id == settings.telegram.staff_chat_id:
            await context.bot.send_message(
                change.chat.id,
                t("staff_group_ready", settings.telegram.staff_language, city=settings.city),
            )
        elif served_elsewhere(context, change.chat.id):
            # A department's or the supervisors' group: their own module greets them, if at all.
            pass
        else:
            language = language_from_telegram(change.from_user.language_code)
            await context.bot.send_message(change.chat.id, t("private_only", language))
    raise ApplicationHandlerStop


async def answer_edited_message(update: Update, context: BotContext) -> None:
    """Tell a resident who edited a message that only new messages are read."""
    message = update.edited_message
    if message is not None and message.chat.type == ChatType.PRIVATE:
        await message.reply_text(t("edited_message", await _profile(update, context)))
    raise ApplicationHandlerStop


async def _profile(update: Update, context: BotContext) -> str | None:
    user = update.effective_user
    chat = update.effective_chat
    if user is None or chat is None or chat.type != ChatType.PRIVATE:
        return None
    resident = await context.services.residents.touch(
        user.id, chat.id, display_name=user.full_name, language_hint=user.language_code
    )
    return resident.language


async def ask_strangers_to_talk_privately(update: Update, context: BotContext) -> None:
    """In any group but the staff group, answer only what is addressed to the bot, privately."""
    chat = update.effective_chat
    if chat is None or chat.type == ChatType.PRIVATE:
        return
    if chat.id == context.services.settings.telegram.staff_chat_id:
        return
    if served_elsewhere(context, chat.id):
        return
    # Also how an admin finds the id of a new staff group (docs/telegram.md).
    log.info("update from group %r (id %d), which is not the staff group", chat.title, chat.id)
    message = update.effective_message
    user = update.effective_user
    language = language_from_telegram(user.language_code if user else None)
    if update.callback_query is not None:
        await update.callback_query.answer(t("private_only", language), show_alert=True)
    elif message is not None and _addressed_to_bot(message, context.bot.username):
        await message.reply_text(t("private_only", language))
    raise ApplicationHandlerStop


def _addressed_to_bot(message: Message, username: str) -> bool:
    replied = message.reply_to_message
    if replied is not None and replied.from_user is not None:
        return replied.from_user.username == username
    text = message.text or message.caption or ""
    return text.startswith("/") or f"@{username}".lower() in text.lower()


async def hold_back_floods(update: Update, context: BotContext) -> None:
    """Let each resident send at most `flood_messages` per window; tell them once."""
    user = update.effective_user
    chat = update.effective_chat
    gate = context.bot_data.flood_gate
    if gate is None or user is None or chat is None or chat.type != ChatType.PRIVATE:
        return
    verdict = gate.check(user.id, time.monotonic())
    if verdict.allowed:
        return
    if verdict.notify:
        language = await _profile(update, context)
        if update.callback_query is not None:
            await update.callback_query.answer(
                t("flood", language, seconds=verdict.retry_after), show_alert=True
            )
        else:
            await context.bot.send_message(
                chat.id, t("flood", language, seconds=verdict.retry_after)
            )
    elif update.callback_query is not None:
        await update.callback_query.answer()
    raise ApplicationHandlerStop


async def count_update(update: Update, context: BotContext) -> None:
    """Count every update (bot_updates_handled) and name it on what its task logs."""
    metrics.UPDATES_HANDLED.inc()
    set_update(update.update_id)


def register(application: BotApplication) -> None:
    """Register the guards in their negative groups."""
    application.add_handler(TypeHandler(Update, count_update), group=GROUP_COUNT)
    services = application.bot_data.services
    limit = services.settings.telegram.flood_messages if services else 20
    window = services.settings.telegram.flood_window_seconds if services else 60
    application.bot_data.flood_gate = FloodGate(limit, window)
    # Within one group only the first matching handler runs: the specific one goes first.
    application.add_handler(
        ChatMemberHandler(note_blocked_or_unblocked, ChatMemberHandler.MY_CHAT_MEMBER),
        group=GROUP_UNKNOWN,
    )
    application.add_handler(TypeHandler(Update, stop_unserved_updates), group=GROUP_UNKNOWN)
    application.add_handler(TypeHandler(Update, answer_detached_buttons), group=GROUP_DETACHED)
    application.add_handler(
        MessageHandler(filters.UpdateType.EDITED, answer_edited_message), group=GROUP_EDITED
    )
    application.add_handler(
        TypeHandler(Update, ask_strangers_to_talk_privately), group=GROUP_STRANGERS
    )
    application.add_handler(TypeHandler(Update, hold_back_floods), group=GROUP_FLOOD)
    application.add_handler(TypeHandler(Update, load_resident), group=GROUP_RESIDENT)


async def load_resident(update: Update, context: BotContext) -> None:
    """Find or create the resident of a private chat and put them on the context."""
    user = update.effective_user
    chat = update.effective_chat
    if user is None or chat is None or chat.type != ChatType.PRIVATE or user.is_bot:
        return
    context.resident = await context.services.residents.touch(
        user.id, chat.id, display_name=user.full_name, language_hint=user.language_code
    )
