"""Last in line: whatever no other handler took gets a polite, useful answer, never silence.

Stickers, photos, voice, files, locations and contacts outside a conversation; unknown commands;
buttons nobody understands (stale or forged). /complain, /status and their menu buttons are
answered here only while the complaints area is not installed.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from telegram import Update
from telegram.ext import CallbackQueryHandler, MessageHandler, filters

from bot.core.i18n import t
from bot.telegram.context import BotApplication, BotContext
from handlers.start import main_menu

_BY_KIND = (
    (filters.Sticker.ALL, "fallback_sticker"),
    (filters.PHOTO, "fallback_photo"),
    (filters.VOICE | filters.AUDIO | filters.VIDEO_NOTE, "fallback_voice"),
    (filters.Document.ALL | filters.VIDEO | filters.ANIMATION, "fallback_document"),
    (filters.LOCATION | filters.VENUE, "fallback_location"),
    (filters.CONTACT, "fallback_contact"),
)


def _reply_with(
    key: str, menu: bool = False
) -> Callable[[Update, BotContext], Coroutine[Any, Any, None]]:
    async def reply(update: Update, context: BotContext) -> None:
        message = update.effective_message
        if message is None:
            return
        language = context.language
        await message.reply_text(
            t(key, language), reply_markup=main_menu(language) if menu else None
        )

    reply.__doc__ = f"Answer with the '{key}' text."
    return reply


async def answer_stale_button(update: Update, context: BotContext) -> None:
    """Tell the resident a button no longer works."""
    query = update.callback_query
    assert query is not None
    await query.answer(t("stale_button", context.language), show_alert=True)


def register(application: BotApplication) -> None:
    """Register the fallbacks (private chats only; the staff group gets no chatter from the bot)."""
    private = filters.ChatType.PRIVATE
    for kind, key in _BY_KIND:
        application.add_handler(MessageHandler(private & kind, _reply_with(key)))
    application.add_handler(
        MessageHandler(
            private & filters.UpdateType.MESSAGE, _reply_with("fallback_other", menu=True)
        )
    )
    application.add_handler(CallbackQueryHandler(answer_stale_button))
