"""/start, /help, /language and the main menu.

The main menu's buttons (their data in bot/telegram/callback_data.py):

    💬 ask                  how to ask                         (here)
    📚 public services      service guide categories           (handlers/browse.py)
    📂 disclosure           disclosure categories              (handlers/browse.py)
    📝 complaints           the complaint form; /complain      (handlers/complaints.py)
    🔎 my tickets           the resident's tickets; /status    (handlers/status.py)
    🙋 talk to a person     here: the next message goes to staff
    🌐 language             简体中文 / English
    ⬅️ menu                 the menu again

What residents see is described in docs/telegram.md.
"""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.ext import CallbackQueryHandler, CommandHandler, filters

from bot.core.i18n import LANGUAGES, t
from bot.telegram.callback_data import (
    BrowseCategories,
    ComplaintStep,
    LanguageChoice,
    MenuButton,
    TicketList,
    button,
)
from bot.telegram.context import BotApplication, BotContext
from bot.telegram.editing import edit_pressed_message

# user_data flag: the resident asked for a person; their next text goes to staff as it is.
AWAITING_PERSON = "awaiting_person"


def main_menu(language: str) -> InlineKeyboardMarkup:
    """Return the main menu in the resident's language."""
    return InlineKeyboardMarkup(
        [
            [
                button(t("menu_ask", language), MenuButton("ask")),
                button(t("menu_browse", language), BrowseCategories("guide")),
            ],
            [
                button(t("menu_disclosure", language), BrowseCategories("disclosure")),
                button(t("menu_complaint", language), ComplaintStep("start")),
            ],
            [
                button(t("menu_tickets", language), TicketList()),
                button(t("menu_person", language), MenuButton("person")),
            ],
            [button(t("menu_language", language), MenuButton("lang"))],
        ]
    )


def back_to_menu(language: str) -> InlineKeyboardButton:
    """Return the button that brings the main menu back."""
    return button(t("menu_back", language), MenuButton("menu"))


def language_menu() -> InlineKeyboardMarkup:
    """Return the language choice (each label in its own language)."""
    return InlineKeyboardMarkup(
        [[button("简体中文", LanguageChoice("zh")), button("English", LanguageChoice("en"))]]
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
    choice = LanguageChoice.decode(query.data)
    if choice is None or choice.language not in LANGUAGES or context.resident is None:
        await query.answer(t("stale_button", context.language))
        return
    language = choice.language
    message = query.message
    # The guards let through only presses under a message the bot can see.
    assert isinstance(message, Message)
    # Edit first: a press on a message the bot cannot edit (a forged one) changes nothing and
    # is answered as expired, in the language the resident has.
    if not await edit_pressed_message(query, context.language, t("language_set", language)):
        return
    await context.services.residents.set_language(context.resident.telegram_user_id, language)
    await query.answer()
    await message.reply_text(t("menu_title", language), reply_markup=main_menu(language))


async def menu_action(update: Update, context: BotContext) -> None:
    """Handle the main menu's own buttons: ask, talk to a person, menu again."""
    query = update.callback_query
    assert query is not None
    language = context.language
    pressed = MenuButton.decode(query.data)
    action = pressed.action if pressed is not None else None
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
    application.add_handler(CallbackQueryHandler(set_language, pattern=LanguageChoice.prefix()))
    application.add_handler(CallbackQueryHandler(menu_action, pattern=MenuButton.prefix()))
