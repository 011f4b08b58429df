"""Browsing: kinds → categories → items → the answer card, with paged inline keyboards.

Buttons (bot/telegram/callback_data.py: BrowseCategories, BrowseCategory, BrowseItem) carry a
kind and a page, a category as a short hash (Chinese names would not fit in Telegram's 64
bytes), or an item id (long ones as a hash too). Anything that does not parse or no longer
exists (a forged button, or one from before a knowledge-base reload) is answered politely and
changes nothing.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import OrderedDict
from collections.abc import Callable

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.ext import CallbackQueryHandler

from bot.answering.cards import build_card
from bot.answering.knowledge_base import Item, KnowledgeBase
from bot.core.i18n import t
from bot.telegram.callback_data import (
    BrowseCategories,
    BrowseCategory,
    BrowseItem,
    CallbackData,
    button,
    category_token,
    item_token,
    prefix_of,
)
from bot.telegram.context import BotApplication, BotContext
from bot.telegram.editing import edit_pressed_message
from bot.telegram.message_split import card_messages
from handlers.start import back_to_menu

KINDS = ("guide", "disclosure")
CATEGORIES_PER_PAGE = 8
ITEMS_PER_PAGE = 8
_BUTTON_TEXT = 60


# What the resident was shown last (bot/telegram/recent.py, in memory): the card (a follow-up
# such as "多少钱" is about it), the question answered ("不对" offers a person for it) and the
# choice offered ("第二个" picks from it), for half an hour.


def remember_shown(context: BotContext, item: Item) -> None:
    """Note that the resident has just been shown `item`'s card."""
    if context.resident is not None:
        context.bot_data.recent.note_item(context.resident.id, item.id)


def recently_shown(context: BotContext, kb: KnowledgeBase) -> Item | None:
    """The item whose card the resident saw in the last half hour, if it still exists."""
    if context.resident is None:
        return None
    item_id = context.bot_data.recent.item(context.resident.id)
    return kb.items.get(item_id) if item_id is not None else None


def remember_question(context: BotContext, question_id: int) -> None:
    """Note the question the resident has just been answered (a card or a choice)."""
    if context.resident is not None:
        context.bot_data.recent.note_question(context.resident.id, question_id)


def recent_question(context: BotContext) -> int | None:
    """The question answered with a card or a choice in the last half hour, if any."""
    if context.resident is None:
        return None
    return context.bot_data.recent.question(context.resident.id)


def remember_choice(context: BotContext, question_id: int, items: list[str]) -> None:
    """Note the items just offered as a choice for `question_id`, in their order."""
    if context.resident is not None:
        context.bot_data.recent.note_choice(context.resident.id, question_id, items)


def recent_choice(context: BotContext) -> tuple[int, tuple[str, ...]] | None:
    """The question and items of the choice offered in the last half hour, if any."""
    if context.resident is None:
        return None
    return context.bot_data.recent.choice(context.resident.id)


def find_item(kb: KnowledgeBase, token: str) -> Item | None:
    """Return the item a callback token names, if it still exists."""
    if not token.startswith("#"):
        return kb.items.get(token)
    for item in kb.items.values():
        if item_token(item.id) == token:
            return item
    return None


def clip_label(text: str, limit: int = _BUTTON_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _categories(kb: KnowledgeBase, kind: str) -> list[str]:
    return kb.categories(kind)


def _items(kb: KnowledgeBase, kind: str, category: str) -> list[Item]:
    return [i for i in kb.items_in_category(category) if i.kind == kind]


def pager(
    to_page: Callable[[int], CallbackData], page: int, pages: int, language: str
) -> list[InlineKeyboardButton]:
    """Return "previous" and "next" (where there is such a page); `to_page` makes their data."""
    row = []
    if page > 0:
        row.append(button(t("page_previous", language), to_page(page - 1)))
    if page < pages - 1:
        row.append(button(t("page_next", language), to_page(page + 1)))
    return row


def categories_view(
    kb: KnowledgeBase, kind: str, page: int, language: str
) -> tuple[str, InlineKeyboardMarkup] | None:
    """Return the text and keyboard of one page of categories, or None if there is no such page."""
    categories = _categories(kb, kind)
    pages = max(1, math.ceil(len(categories) / CATEGORIES_PER_PAGE))
    if not 0 <= page < pages:
        return None
    shown = categories[page * CATEGORIES_PER_PAGE : (page + 1) * CATEGORIES_PER_PAGE]
    buttons = [
        button(
            clip_label(kb.category_name(c, language), 30),
            BrowseCategory(kind, category_token(c)),
        )
        for c in shown
    ]
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    pages_row = pager(lambda n: BrowseCategories(kind, n), page, pages, language)
    if pages_row:
        rows.append(pages_row)
    rows.append([back_to_menu(language)])
    key = "browse_categories" if kind == "guide" else "disclosure_categories"
    return t(key, language, count=len(categories)), InlineKeyboardMarkup(rows)


def items_view(
    kb: KnowledgeBase, kind: str, token: str, page: int, language: str
) -> tuple[str, InlineKeyboardMarkup] | None:
    """Return the text and keyboard of one page of a category's items, or None if stale."""
    category = next((c for c in _categories(kb, kind) if category_token(c) == token), None)
    if category is None:
        return None
    items = _items(kb, kind, category)
    pages = max(1, math.ceil(len(items) / ITEMS_PER_PAGE))
    if not 0 <= page < pages:
        return None
    shown = items[page * ITEMS_PER_PAGE : (page + 1) * ITEMS_PER_PAGE]
    rows = [
        [button(clip_label(i.get_text("title", language)), BrowseItem(item_token(i.id)))]
        for i in shown
    ]
    pages_row = pager(lambda n: BrowseCategory(kind, token, n), page, pages, language)
    if pages_row:
        rows.append(pages_row)
    rows.append(
        [
            button(t("back_to_categories", language), BrowseCategories(kind)),
            back_to_menu(language),
        ]
    )
    text = t(
        "category_items",
        language,
        category=kb.category_name(category, language),
        page=page + 1,
        pages=pages,
    )
    return text, InlineKeyboardMarkup(rows)


def related_buttons(
    kb: KnowledgeBase, item: Item, language: str
) -> list[list[InlineKeyboardButton]]:
    """Return one button per related item that still exists (at most three)."""
    rows = []
    for related_id in item.related[:3]:
        related = kb.items.get(related_id)
        if related is not None:
            rows.append(
                [
                    button(
                        clip_label("🔗 " + related.get_text("title", language)),
                        BrowseItem(item_token(related.id)),
                    )
                ]
            )
    return rows


# Answer cards as sent (the text split into messages, the buttons that do not depend on the
# question): building them is a noticeable part of answering, and the same few hundred cards
# are sent again and again. Keyed by the knowledge base's load, so a reload starts afresh.
_CARD_CACHE_SIZE = 2048
_card_cache: OrderedDict[
    tuple[int, dt.datetime, str, str],
    tuple[tuple[str, ...], tuple[tuple[InlineKeyboardButton, ...], ...]],
] = OrderedDict()


def card_parts(
    kb: KnowledgeBase, item: Item, language: str
) -> tuple[tuple[str, ...], tuple[tuple[InlineKeyboardButton, ...], ...]]:
    """Return an item's card as messages, and the buttons under it (related items, menu)."""
    key = (id(kb), kb.loaded_at, item.id, language)
    parts = _card_cache.get(key)
    if parts is None:
        pieces = tuple(card_messages(build_card(item, kb, language)))
        rows = (
            *(tuple(r) for r in related_buttons(kb, item, language)),
            (back_to_menu(language),),
        )
        parts = _card_cache[key] = (pieces, rows)
        if len(_card_cache) > _CARD_CACHE_SIZE:
            _card_cache.popitem(last=False)
    else:
        _card_cache.move_to_end(key)
    return parts


async def send_card(
    message: Message,
    kb: KnowledgeBase,
    item: Item,
    language: str,
    extra_rows: list[list[InlineKeyboardButton]] | None = None,
) -> Message:
    """Send an item's full answer card (several messages if long); buttons go on the last."""
    pieces, card_rows = card_parts(kb, item, language)
    rows = [*(extra_rows or []), *card_rows]
    sent = message
    for number, piece in enumerate(pieces, start=1):
        markup = InlineKeyboardMarkup(rows) if number == len(pieces) else None
        sent = await message.reply_text(piece, reply_markup=markup, do_quote=False)
    return sent


async def browse(update: Update, context: BotContext) -> None:
    """Show categories, a category's items, or an item's card, as the button says."""
    query = update.callback_query
    assert query is not None
    language = context.language
    kb = context.services.knowledge.kb
    view: tuple[str, InlineKeyboardMarkup] | None = None
    if (pressed := BrowseCategories.decode(query.data)) and pressed.kind in KINDS:
        view = categories_view(kb, pressed.kind, pressed.page, language)
    elif (chosen := BrowseCategory.decode(query.data)) and chosen.kind in KINDS:
        view = items_view(kb, chosen.kind, chosen.category, chosen.page, language)
    elif opened := BrowseItem.decode(query.data):
        item = find_item(kb, opened.item)
        if item is not None and query.message is not None:
            await query.answer()
            await send_card(query.message, kb, item, language)  # type: ignore[arg-type]
            remember_shown(context, item)
            return
    if view is None:
        await query.answer(t("stale_button", language), show_alert=True)
        return
    text, markup = view
    # Edit first: a message the bot cannot edit (a forged press) is answered as expired.
    if await edit_pressed_message(query, language, text, reply_markup=markup):
        await query.answer()


def register(application: BotApplication) -> None:
    """Register the browsing buttons."""
    application.add_handler(
        CallbackQueryHandler(
            browse, pattern=prefix_of(BrowseCategories, BrowseCategory, BrowseItem)
        )
    )
