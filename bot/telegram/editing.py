"""Editing the message under a pressed button, which may not be there to edit.

A button press may come from a message the bot cannot edit: an inline-mode message (the query
has an `inline_message_id` and no `message`), a message deleted or no longer accessible, or a
forged press naming someone else's message. Telegram then refuses the edit with a BadRequest;
the resident gets the usual "this button has expired" answer instead of an error.
"""

from __future__ import annotations

import logging

from telegram import CallbackQuery, InlineKeyboardMarkup
from telegram.error import BadRequest

from bot.core.i18n import t

log = logging.getLogger(__name__)

# Telegram's descriptions of an edit that cannot be made (lower case, matched as substrings).
UNEDITABLE = (
    "message can't be edited",
    "message to edit not found",
    "message_id_invalid",
    "message is not accessible",
)


def uneditable(error: BadRequest) -> bool:
    """Tell whether Telegram refused an edit because the message cannot be edited at all."""
    reason = error.message.lower()
    return any(known in reason for known in UNEDITABLE)


async def answer_expired(query: CallbackQuery, language: str | None) -> None:
    """Answer a press with "this button has expired", unless it was answered already."""
    try:
        await query.answer(t("stale_button", language), show_alert=True)
    except BadRequest as error:
        # Answered before the edit failed: the resident saw the spinner stop; nothing more to say.
        log.debug("callback query %s not answered again: %s", query.id, error.message)


async def edit_pressed_message(
    query: CallbackQuery,
    language: str | None,
    text: str,
    *,
    reply_markup: InlineKeyboardMarkup | None = None,
) -> bool:
    """Edit the text of the message under the button; False (and answered) if it cannot be."""
    try:
        await query.edit_message_text(text, reply_markup=reply_markup)
    except BadRequest as error:
        if "message is not modified" in error.message.lower():
            # The message already shows this (the same page pressed twice): nothing to change.
            return True
        if not uneditable(error):
            raise
        log.info("callback query %s: the message cannot be edited (%s)", query.id, error.message)
        await answer_expired(query, language)
        return False
    return True
