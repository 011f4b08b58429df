"""The typed context every handler receives: `context.services`, `context.resident`,
`context.language` (after PTB's examples/contexttypesbot.py).
"""

from __future__ import annotations

from typing import Any

from telegram.ext import Application, CallbackContext, ContextTypes, ExtBot

from bot.core.i18n import language_or_default
from bot.core.residents import ResidentProfile
from bot.services import Services


class BotData:
    """bot_data: the process's services (never persisted)."""

    __slots__ = ("services",)

    def __init__(self) -> None:
        self.services: Services | None = None


class BotContext(CallbackContext[ExtBot[Any], dict[Any, Any], dict[Any, Any], BotData]):
    """CallbackContext with the services and the resident the update came from."""

    def __init__(
        self,
        application: Application[Any, Any, Any, Any, Any, Any],
        chat_id: int | None = None,
        user_id: int | None = None,
    ) -> None:
        super().__init__(application=application, chat_id=chat_id, user_id=user_id)
        # Set by the resident guard (handlers/guards.py) for updates from private chats.
        self.resident: ResidentProfile | None = None

    @property
    def services(self) -> Services:
        services = self.bot_data.services
        if services is None:
            raise RuntimeError(
                "the application was built without services (bot.telegram.application)"
            )
        return services

    @property
    def language(self) -> str:
        """The resident's language, or the staff group's for updates from staff."""
        if self.resident is not None:
            return language_or_default(self.resident.language)
        return self.services.settings.telegram.staff_language


CONTEXT_TYPES = ContextTypes(context=BotContext, bot_data=BotData)

BotApplication = Application[ExtBot[Any], BotContext, dict[Any, Any], dict[Any, Any], BotData, Any]
