"""Who is a member of which group chat, asked of Telegram (getChatMember) and remembered briefly.

Staff buttons and commands are for members of the staff group, a department's buttons for
members of its chat (docs/telegram.md, docs/tickets.md). Asking Telegram on every press would
cost a round trip each time, so answers are kept for a few minutes (a refusal for less, so a
newly added member need not wait long). One cache per application, in `bot_data`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from telegram import Bot, ChatMember
from telegram.error import TelegramError

_MEMBER_STATUSES = (ChatMember.OWNER, ChatMember.ADMINISTRATOR, ChatMember.MEMBER)
MEMBER_SECONDS = 300.0
STRANGER_SECONDS = 30.0


class ChatMembership:
    """Remembers Telegram's answers to "is this user a member of this chat?"."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._known: dict[tuple[int, int], tuple[bool, float]] = {}

    async def is_member(self, bot: Bot, chat_id: int, user_id: int) -> bool:
        """Tell whether the user is in the chat (a restricted member still counts)."""
        now = self.clock()
        known = self._known.get((chat_id, user_id))
        if known is not None and now < known[1]:
            return known[0]
        try:
            member = await bot.get_chat_member(chat_id, user_id)
        except TelegramError:
            # Not known to Telegram, or Telegram unreachable: not a member, for a short while.
            member = None
        present = member is not None and (
            member.status in _MEMBER_STATUSES
            or (
                member.status == ChatMember.RESTRICTED
                and bool(getattr(member, "is_member", False))
            )
        )
        self._known[(chat_id, user_id)] = (
            present,
            now + (MEMBER_SECONDS if present else STRANGER_SECONDS),
        )
        return present
