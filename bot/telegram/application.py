"""The Telegram application, built in one place from the settings (the composition root).

Handlers live in the `handlers/` package, one module per conversation, each exporting
`register(app)`. `HANDLER_MODULES` holds the modules themselves, imported here by name so that a
missing one stops the bot at import, and says in which order they are registered, which matters:
within a handler group the first handler that accepts an update handles it, so conversations
that collect free text, photos and locations come before the free-text question handler, and
the fallback comes last. Guards live in negative groups and run before everything else.
"""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Awaitable, Hashable, Sequence
from typing import Any, Protocol

from telegram import BotCommand, BotCommandScopeDefault, LinkPreviewOptions, Update
from telegram.constants import ChatType, ParseMode
from telegram.error import TelegramError
from telegram.ext import AIORateLimiter, Application, BaseUpdateProcessor, Defaults, ExtBot

from bot.core.i18n import t
from bot.services import Services
from bot.telegram.context import CONTEXT_TYPES, BotApplication, BotContext
from bot.telegram.escalation_posts import connect as connect_staff_group
from bot.telegram.persistence import DatabasePersistence
from bot.telegram.request import AiohttpRequest, UpdatesRequest
from handlers import (
    browse,
    complaints,
    departments,
    fallback,
    guards,
    privacy,
    questions,
    staff,
    start,
    status,
)

log = logging.getLogger(__name__)


class HandlerModule(Protocol):
    """A module of `handlers/`: it adds its handlers to the application."""

    __name__: str

    def register(self, application: BotApplication) -> None: ...


# Registration order (see the module docstring).
HANDLER_MODULES: tuple[HandlerModule, ...] = (
    # Negative groups: unknown update types, edited messages, group chats other than the staff
    # chat, the per-resident flood limit, and loading the resident (language) for the rest.
    guards,
    # /start, /help, /language and the main menu (callback data "m:", "lang:").
    start,
    # Personal data: the notice at first contact (group -5), /privacy, /mydata, /forget ("pv:").
    privacy,
    # The staff group: replies to escalation posts answer residents; "learn this phrasing".
    staff,
    # Complaints, reports, suggestions, disclosure applications (callback data "cmp:",
    # /complain). Before questions and fallback: the conversation collects text and photos.
    complaints,
    # My tickets (callback data "tkt:", /status).
    status,
    # Departments answering tickets in their own Telegram chats.
    departments,
    # Browsing categories, items and cards (callback data "b:").
    browse,
    # Free text goes to the matcher; answer feedback, suggestions, talk to a person ("q:").
    questions,
    # Last: stickers, photos, voice, files, locations and stale buttons nobody else took.
    fallback,
)

REPOST_JOB = "repost_escalations"
REPOST_CHECK_SECONDS = 60


class PerChatUpdateProcessor(BaseUpdateProcessor):
    """Handles updates concurrently, but one chat's updates strictly in order.

    A resident who types two messages in a row gets two answers in that order and a conversation
    never sees its own updates interleaved, while other residents are not kept waiting.
    """

    def __init__(self, max_concurrent_updates: int) -> None:
        super().__init__(max_concurrent_updates)
        self._locks: dict[Hashable, tuple[asyncio.Lock, int]] = {}

    @staticmethod
    def _key(update: object) -> Hashable:
        if isinstance(update, Update):
            if update.effective_chat is not None:
                return ("chat", update.effective_chat.id)
            if update.effective_user is not None:
                return ("user", update.effective_user.id)
        return ("update", id(update))

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        key = self._key(update)
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                await coroutine
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to release."""


def describe_update(update: object) -> str:
    """Return an update's id and kind (message, callback_query …) and chat type, nothing more."""
    if not isinstance(update, Update):
        return type(update).__name__
    kinds = [
        name
        for name, value in update.to_dict().items()
        if name != "update_id" and value is not None
    ]
    chat = update.effective_chat
    where = f" in a {chat.type} chat" if chat is not None else ""
    return f"{update.update_id} ({', '.join(kinds) or 'empty'}{where})"


async def report_error(update: object, context: BotContext) -> None:
    """Log the error with the update, and tell the person politely (never the traceback)."""
    # The update's id and kind only: its text, the sender's name and phone are personal data.
    log.error(
        "error while handling update %s",
        describe_update(update),
        exc_info=context.error,
    )
    if not isinstance(update, Update) or update.effective_chat is None:
        return
    chat = update.effective_chat
    language = context.resident.language if context.resident else None
    if chat.type != ChatType.PRIVATE:
        if chat.id != context.services.settings.telegram.staff_chat_id:
            return
        language = context.services.settings.telegram.staff_language
    try:
        if update.callback_query is not None:
            await update.callback_query.answer()
        await context.bot.send_message(chat.id, t("error", language))
    except TelegramError as error:
        log.warning(
            "could not tell the %s chat about the error: %s", chat.type, html.escape(str(error))
        )


def register_handlers(application: BotApplication, modules: Sequence[HandlerModule]) -> list[str]:
    """Call each handler module's register(app) in order; return the names of the modules."""
    for module in modules:
        module.register(application)
    return [module.__name__ for module in modules]


async def repost_escalations(context: BotContext) -> None:
    """Post escalations never posted, and re-post those unanswered for too long."""
    posted = await context.services.escalations.repost_due()
    if posted:
        log.info("%d escalation(s) posted to the staff group", posted)


_COMMANDS = {
    "zh": [
        ("start", "主菜单"),
        ("help", "使用说明"),
        ("language", "切换语言 / Language"),
        ("complain", "投诉、举报、建议"),
        ("status", "我的工单"),
        ("privacy", "个人信息保护告知"),
        ("mydata", "获取我的数据"),
        ("forget", "删除我的个人信息"),
    ],
    "en": [
        ("start", "Main menu"),
        ("help", "How to use the bot"),
        ("language", "Language / 语言"),
        ("complain", "Complaints and reports"),
        ("status", "My tickets"),
        ("privacy", "How we handle your data"),
        ("mydata", "A copy of my data"),
        ("forget", "Erase my personal data"),
    ],
}


async def publish_commands(application: BotApplication) -> None:
    """Show the commands in Telegram's menu, in Chinese and (for English clients) English."""
    try:
        for language, commands in _COMMANDS.items():
            await application.bot.set_my_commands(
                [BotCommand(name, text) for name, text in commands],
                scope=BotCommandScopeDefault(),
                language_code=None if language == "zh" else language,
            )
    except TelegramError as error:
        log.warning("the command list was not published: %s", error)


def _defaults() -> Defaults:
    return Defaults(
        parse_mode=ParseMode.HTML,
        link_preview_options=LinkPreviewOptions(is_disabled=True),
    )


def _rate_limiter(services: Services) -> AIORateLimiter | None:
    # Telegram's limits; a local Bot API server has none, and with both set to 0 the limiter
    # (and its retries after "too many requests") is left out altogether.
    telegram = services.settings.telegram
    if not (telegram.rate_limit_per_second or telegram.rate_limit_group_per_minute):
        return None
    return AIORateLimiter(
        overall_max_rate=telegram.rate_limit_per_second,
        overall_time_period=1,
        group_max_rate=telegram.rate_limit_group_per_minute,
        group_time_period=60,
        max_retries=2,
    )


def build_delivery_bot(services: Services, *, token: str, base_url: str) -> ExtBot[Any]:
    """Return the process's Bot for the delivery workers: same HTTP layer, defaults and limits
    as the Application's, but living as long as the process (which may never lead)."""
    telegram = services.settings.telegram
    return ExtBot(
        token,
        base_url=base_url,
        base_file_url=telegram.api_base_file_url or "https://api.telegram.org/file/bot",
        request=AiohttpRequest(connection_pool_size=max(8, telegram.concurrent_updates)),
        defaults=_defaults(),
        rate_limiter=_rate_limiter(services),
    )


def build_application(
    services: Services,
    *,
    token: str | None = None,
    base_url: str | None = None,
    handler_modules: Sequence[HandlerModule] = HANDLER_MODULES,
) -> BotApplication:
    """Build the Application: token and Bot API URL from the settings unless given."""
    settings = services.settings
    telegram = settings.telegram
    token = token or settings.telegram_token
    if not token:
        raise ValueError("no Telegram token: set TELEGRAM_BOT_TOKEN (or run the local try-out)")
    builder = (
        Application.builder()
        .token(token)
        .base_url(base_url or settings.telegram_api_base_url)
        .defaults(_defaults())
        .context_types(CONTEXT_TYPES)
        .persistence(
            DatabasePersistence(
                services.sessions, update_interval=telegram.persistence_interval_seconds
            )
        )
        .concurrent_updates(PerChatUpdateProcessor(telegram.concurrent_updates))
        # aiohttp rather than PTB's default httpx: a fraction of the CPU per Bot API call.
        .request(AiohttpRequest(connection_pool_size=max(8, telegram.concurrent_updates)))
        # Updates it cannot read are skipped one by one, not fatal to the batch (request.py).
        .get_updates_request(UpdatesRequest(connection_pool_size=1))
    )
    limiter = _rate_limiter(services)
    if limiter is not None:
        # The builder's type tracks the limiter's; assigning it back cannot express that.
        builder = builder.rate_limiter(limiter)  # type: ignore[arg-type]
    # Files (residents' photos) come from the same Bot API server as the methods.
    builder = builder.base_file_url(settings.telegram_file_url(base_url))
    application: BotApplication = builder.build()
    application.bot_data.services = services
    connect_staff_group(services, application.bot)
    if application.job_queue is not None:
        application.job_queue.run_repeating(
            repost_escalations, interval=REPOST_CHECK_SECONDS, first=5, name=REPOST_JOB
        )
    register_handlers(application, handler_modules)
    application.add_error_handler(report_error)
    return application
