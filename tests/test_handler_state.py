"""What handlers share lives in each application's bot_data, not in module globals: the
membership cache, the flood gate, and the group chats other areas serve."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from telegram import Bot, ChatMember
from telegram.error import NetworkError

import handlers.guards
from bot.services import Services
from bot.telegram.application import build_application
from bot.telegram.membership import MEMBER_SECONDS, STRANGER_SECONDS, ChatMembership
from handlers.departments import served_group


class FakeBot:
    """Answers getChatMember from a table, and counts the questions."""

    def __init__(self, statuses: dict[int, Any]) -> None:
        self.statuses = statuses
        self.asked: list[tuple[int, int]] = []

    async def get_chat_member(self, chat_id: int, user_id: int) -> object:
        self.asked.append((chat_id, user_id))
        status = self.statuses[user_id]
        if isinstance(status, Exception):
            raise status
        status, is_member = status if isinstance(status, tuple) else (status, False)
        return SimpleNamespace(status=status, is_member=is_member)


async def test_membership_is_asked_once_and_remembered_for_a_while() -> None:
    now = [1000.0]
    fake = FakeBot(
        {
            1: ChatMember.MEMBER,
            2: ChatMember.LEFT,
            3: (ChatMember.RESTRICTED, True),
            4: (ChatMember.RESTRICTED, False),
            5: NetworkError("Telegram is away"),
        }
    )
    members = ChatMembership(clock=lambda: now[0])
    bot: Bot = fake  # type: ignore[assignment]
    answers = [await members.is_member(bot, -100, user) for user in (1, 2, 3, 4, 5)]
    assert answers == [True, False, True, False, False]
    assert [await members.is_member(bot, -100, user) for user in (1, 2, 3, 4, 5)] == answers
    assert len(fake.asked) == 5
    # Another chat is another question.
    assert await members.is_member(bot, -200, 1)
    assert len(fake.asked) == 6
    # Refusals are remembered for less time than memberships.
    now[0] += STRANGER_SECONDS + 1
    fake.statuses[2] = ChatMember.MEMBER
    assert await members.is_member(bot, -100, 2)
    assert await members.is_member(bot, -100, 1)
    assert len(fake.asked) == 7
    now[0] += MEMBER_SECONDS
    fake.statuses[1] = ChatMember.BANNED
    assert not await members.is_member(bot, -100, 1)


async def test_each_application_keeps_its_own_state(services: Services) -> None:
    first = build_application(services, token="1:first", base_url="http://127.0.0.1:9/bot")
    second = build_application(services, token="2:second", base_url="http://127.0.0.1:9/bot")
    for application in (first, second):
        assert application.bot_data.served_groups == [served_group]
        assert application.bot_data.flood_gate is not None
        assert application.bot_data.flood_gate.limit == services.settings.telegram.flood_messages
    assert first.bot_data.members is not second.bot_data.members
    assert first.bot_data.flood_gate is not second.bot_data.flood_gate
    # Nothing is left behind in the guards' module for the next application to inherit.
    assert not any(isinstance(value, list) for value in vars(handlers.guards).values())
