"""/start, /help, /language and the main menu.

Menu buttons and their callback data (64 bytes at most, Telegram's limit):

    m:ask          how to ask                    (here)
    b:k:guide:0    service guide categories      (handlers/browse.py)
    b:k:disclosure:0  disclosure categories      (handlers/browse.py)
    cmp:start      complaints, reports, …        (handlers/complaints.py, issue 4; /complain)
    tkt:start      my tickets                    (handlers/status.py, issue 4; /status)
    m:person       talk to a person              (here: the next message goes to staff)
    m:lang         choose a language → lang:zh / lang:en
    m:menu         the menu again
"""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ChatType
from telegram.ext import CallbackQueryHandler, CommandHandler, filters

from bot.core.i18n import LANGUAGES, t
from bot.telegram.context import BotApplication, BotContext

COMPLAINT_CALLBACK = "cmp:start"
TICKETS_CALLBACK = "tkt:start"
# user_data flag: the resident asked for a person; their next text goes to staff as it is.
AWAITING_PERSON = "awaiting_person"


def main_menu(language: str) -> InlineKeyboardMarkup:
    """Return the main menu in the resident's language."""
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(t("menu_ask", language), callback_data="m:ask"),
                InlineKeyboardButton(t("menu_browse", language), callback_data="b:k:guide:0"),
            ],
            [
                InlineKeyboardButton(
                    t("menu_disclosure", language), callback_data="b:k:disclosure:0"
                ),
                InlineKeyboardButton(
                    t("menu_complaint", language), callback_data=COMPLAINT_CALLBACK
                ),
            ],
            [
                InlineKeyboardButton(t("menu_tickets", language), callback_data=TICKETS_CALLBACK),
                InlineKeyboardButton(t("menu_person", language), callback_data="m:person"),
            ],
            [InlineKeyboardButton(t("menu_language", language), callback_data="m:lang")],
        ]
    )


def back_to_menu(language: str) -> InlineKeyboardButton:
    """Return the button that brings the main menu back."""
    return InlineKeyboardButton(t("menu_back", language), callback_data="m:menu")


def language_menu() -> InlineKeyboardMarkup:
    """Return the language choice (each label in its own language)."""
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("简体中文", callback_data="lang:zh"),
                InlineKeyboardButton("English", callback_data="lang:en"),
            ]
        ]
    )


async def start(update: Update, context: BotContext) -> None:
    """Greet the resident and show the main menu."""
    message = update.effective_message
    user = update.effective_user
    assert message is not None
    language = context.language
    settings = context.services.settings
    name = ""
    if user is not None and user.first_name:
        name = ("，" if language == "zh" else ", ") + user.first_name[:40]
    city = settings.city_en if language == "en" else settings.city
    if context.user_data is not None:
        context.user_data.pop(AWAITING_PERSON, None)
    await message.reply_text(t("welcome", language, name=name, city=city))
    await message.reply_text(t("menu_title", language), reply_markup=main_menu(language))


async def show_help(update: Update, context: BotContext) -> None:
    """Explain how to use the bot."""
    message = update.effective_message
    assert message is not None
    await message.reply_text(
        t("help", context.language),
        reply_markup=InlineKeyboardMarkup([[back_to_menu(context.language)]]),
    )


async def choose_language(update: Update, context: BotContext) -> None:
    """Offer 简体中文 and English."""
    if update.callback_query is not None:
        await update.callback_query.answer()
    message = update.effective_message
    assert message is not None
    await message.reply_text(t("language_prompt", context.language), reply_markup=language_menu())


async def set_language(update: Update, context: BotContext) -> None:
    """Remember the language the resident picked, and show the menu in it."""
    query = update.callback_query
    assert query is not None
    assert query.data is not None
    language = query.data.removeprefix("lang:")
    if language not in LANGUAGES or context.resident is None:
        await query.answer(t("stale_button", context.language))
        return
    await context.services.residents.set_language(context.resident.telegram_user_id, language)
    await query.answer()
    await query.edit_message_text(t("language_set", language))
    await query.message.reply_text(  # type: ignore[union-attr]
        t("menu_title", language), reply_markup=main_menu(language)
    )


async def menu_action(update: Update, context: BotContext) -> None:
    """Handle the main menu's own buttons: ask, talk to a person, menu again."""
    query = update.callback_query
    assert query is not None
    assert query.data is not None
    language = context.language
    action = query.data.removeprefix("m:")
    message = update.effective_message
    assert message is not None
    if action == "ask":
        await query.answer()
        await message.reply_text(t("ask_prompt", language))
    elif action == "person":
        await query.answer()
        if context.user_data is not None:
            context.user_data[AWAITING_PERSON] = True
        await message.reply_text(t("person_prompt", language))
    elif action == "menu":
        await query.answer()
        await message.reply_text(t("menu_title", language), reply_markup=main_menu(language))
    elif action == "lang":
        await choose_language(update, context)
    else:
        await query.answer(t("stale_button", language))


def register(application: BotApplication) -> None:
    """Register /start, /help, /language and the menu buttons (private chats only)."""
    private = filters.ChatType.PRIVATE
    application.add_handler(CommandHandler("start", start, filters=private))
    application.add_handler(CommandHandler("help", show_help, filters=private))
    application.add_handler(CommandHandler("language", choose_language, filters=private))
    application.add_handler(CallbackQueryHandler(set_language, pattern=r"^lang:"))
    application.add_handler(CallbackQueryHandler(menu_action, pattern=r"^m:"))


def is_private(update: Update) -> bool:
    """Tell whether the update comes from a private chat."""
    return update.effective_chat is not None and update.effective_chat.type == ChatType.PRIVATE
