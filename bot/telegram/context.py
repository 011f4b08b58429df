"""The typed context every handler receives: `context.services`, `context.resident`,
`context.language` (after PTB's examples/contexttypesbot.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from telegram.ext import Application, CallbackContext, ContextTypes, ExtBot

from bot.core.i18n import language_or_default
from bot.core.residents import ResidentProfile
from bot.services import Services
from bot.telegram.flood import FloodGate
from bot.telegram.membership import ChatMembership
from bot.telegram.recent import RecentlyShown


class BotData:
    """bot_data: what the handlers of one application share (never persisted).

    `services` are the process's; the rest is filled in by the handler modules' register(app).
    """

    __slots__ = ("flood_gate", "members", "recent", "served_groups", "services")

    def __init__(self) -> None:
        self.services: Services | None = None
        # Who is in the staff group and the departments' chats (handlers/staff.py, departments).
        self.members = ChatMembership()
        # The per-resident flood limit (handlers/guards.py sets it from the settings).
        self.flood_gate: FloodGate | None = None
        # Group chats other than the staff group that an area serves: (context, chat id) ->
        # served. The group guard (handlers/guards.py) lets their updates through.
        self.served_groups: list[Callable[[BotContext, int], bool]] = []
        # What each resident was shown last (the card, question and choice), in memory only.
        self.recent = RecentlyShown()


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
