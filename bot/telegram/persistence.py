"""python-telegram-bot persistence in the database (table bot_state), so restarts lose nothing.

The Application writes after every update it handles (bot/telegram/front.py calls
`update_persistence` before the update counts as handled), so a form step is in the database
before the resident can press the next button, and a process killed right after it loses
nothing; `update_interval` is only the Application's own periodic write on top of that.

Conversations (every ConversationHandler with `persistent=True` and a `name`), user_data and
chat_data are kept; bot_data is not, because it holds the process's live services. Values are
stored as JSON: handlers keep only JSON-serialisable data (str, int, float, bool, None, lists,
dicts with str keys) in user_data and chat_data; tuples come back as lists.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram.ext import BasePersistence, PersistenceInput
from telegram.ext._utils.types import CDCData, ConversationDict, ConversationKey

from bot.core.db import conflict_insert, write_gate
from bot.core.models import BotState, utcnow

log = logging.getLogger(__name__)

UserData = dict[Any, Any]
ChatData = dict[Any, Any]
BotData = Any


def _conversation_kind(name: str) -> str:
    return f"conversation:{name}"


class DatabasePersistence(BasePersistence[UserData, ChatData, BotData]):
    """Keeps conversations, user_data and chat_data in the bot_state table."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, update_interval: float = 5
    ) -> None:
        super().__init__(
            store_data=PersistenceInput(
                bot_data=False, chat_data=True, user_data=True, callback_data=False
            ),
            update_interval=update_interval,
        )
        self.sessions = sessions
        self._gate = write_gate(sessions)
        self._dialect = sessions.kw["bind"].dialect.name
        # What each row last held (as JSON), so unchanged data is not written again: the
        # Application asks to store the data of every user who sent anything.
        self._written: dict[tuple[str, str], str | None] = {}
        self._loaded: set[str] = set()
        # Set when this process stops leading (bot/telegram/front.py): from then on another
        # process owns the conversations, and nothing this one still holds may overwrite them.
        self.fenced = False

    def fence(self) -> None:
        """Write nothing any more: another process may serve these residents now."""
        self.fenced = True

    # -- reading ---------------------------------------------------------------------------

    async def _rows(self, kind: str) -> list[tuple[str, Any]]:
        async with self.sessions() as session:
            result = await session.execute(
                select(BotState.key, BotState.value).where(BotState.kind == kind)
            )
            rows = [(key, value) for key, value in result.all()]
        for key, value in rows:
            self._written[(kind, key)] = json.dumps(value, sort_keys=True, ensure_ascii=False)
        self._loaded.add(kind)
        return rows

    async def _keyed_by_int(self, kind: str) -> dict[int, dict[Any, Any]]:
        data: dict[int, dict[Any, Any]] = defaultdict(dict)
        for key, value in await self._rows(kind):
            data[int(key)] = dict(value) if isinstance(value, dict) else {}
        return data

    async def get_user_data(self) -> dict[int, UserData]:
        return await self._keyed_by_int("user_data")

    async def get_chat_data(self) -> dict[int, ChatData]:
        return await self._keyed_by_int("chat_data")

    async def get_bot_data(self) -> BotData:
        return {}

    async def get_callback_data(self) -> CDCData | None:
        return None

    async def get_conversations(self, name: str) -> ConversationDict:
        conversations: dict[ConversationKey, object] = {}
        for key, value in await self._rows(_conversation_kind(name)):
            conversations[tuple(json.loads(key))] = value
        return conversations

    # -- writing ---------------------------------------------------------------------------

    async def _put(self, kind: str, key: str, value: Any) -> None:
        if self.fenced:
            return
        encoded = json.dumps(value, sort_keys=True, ensure_ascii=False)
        if self._written.get((kind, key)) == encoded:
            return
        values = {"kind": kind, "key": key, "value": value, "updated_at": utcnow()}
        insert = conflict_insert(self._dialect)
        statement = insert(BotState).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=[BotState.kind, BotState.key],
            set_={"value": statement.excluded.value, "updated_at": statement.excluded.updated_at},
        )
        async with self._gate, self.sessions() as session:
            await session.execute(statement)
            await session.commit()
        self._written[(kind, key)] = encoded

    async def _drop(self, kind: str, key: str) -> None:
        if self.fenced:
            return
        # Nothing to delete if the row was deleted already, or never existed.
        if (kind, key) in self._written:
            if self._written[(kind, key)] is None:
                return
        elif kind in self._loaded:
            return
        async with self._gate, self.sessions() as session:
            await session.execute(
                delete(BotState).where(BotState.kind == kind, BotState.key == key)
            )
            await session.commit()
        self._written[(kind, key)] = None

    async def update_conversation(
        self, name: str, key: ConversationKey, new_state: object | None
    ) -> None:
        encoded = json.dumps(list(key))
        if new_state is None:
            await self._drop(_conversation_kind(name), encoded)
        else:
            await self._put(_conversation_kind(name), encoded, new_state)

    async def update_user_data(self, user_id: int, data: UserData) -> None:
        if data:
            await self._put("user_data", str(user_id), data)
        else:
            await self._drop("user_data", str(user_id))

    async def update_chat_data(self, chat_id: int, data: ChatData) -> None:
        if data:
            await self._put("chat_data", str(chat_id), data)
        else:
            await self._drop("chat_data", str(chat_id))

    async def update_bot_data(self, data: BotData) -> None:
        """bot_data holds live services and is never stored."""

    async def update_callback_data(self, data: CDCData) -> None:
        """Callback data is plain strings here (no arbitrary callback data)."""

    async def drop_chat_data(self, chat_id: int) -> None:
        await self._drop("chat_data", str(chat_id))

    async def drop_user_data(self, user_id: int) -> None:
        await self._drop("user_data", str(user_id))

    async def refresh_user_data(self, user_id: int, user_data: UserData) -> None:
        """One process owns the data while it runs; nothing to refresh."""

    async def refresh_chat_data(self, chat_id: int, chat_data: ChatData) -> None:
        """One process owns the data while it runs; nothing to refresh."""

    async def refresh_bot_data(self, bot_data: BotData) -> None:
        """bot_data is not stored."""

    async def flush(self) -> None:
        """Every update is written at once; nothing is buffered."""
