"""What an update's handlers said through Telegram, so that handling the update again says
nothing twice.

A leader that is killed after its answer to an update reached Telegram, but before the update
was recorded as handled (bot/telegram/front.py), leaves the update to the next leader, which
handles it again. Telegram's sendMessage has no idempotency key and no way to ask whether a
message went out, so without more the resident would read the answer twice.

While an update is handled (`handling`), every Bot API call that shows or changes something in a
chat (`journaled`: send…, copy…, forward…, edit…, delete…, stop…, pin…, unpin…) is numbered in
the order the handlers make it, and Telegram's answer is written to `telegram_sends` (update id,
number, method, chat) as soon as it comes back, before the handler goes on. When the update is
handled again, a call whose number, method and chat match a written one is not made: the handler
gets the answer Telegram gave the first time (the same message id, so an edit later edits that
message) and carries on with what it had not done. Calls that were not written are made.

What remains: the few milliseconds between Telegram accepting a call and its answer being
written. A kill inside them still shows that one message twice; a kill anywhere later in the
handler, in writing the conversation state or in recording the update no longer does. The rows
go when the update is confirmed (polling) or after two days (webhook).

Calls made outside an update (the delivery workers, the clock's jobs), reads (get…) and calls
that leave nothing behind (answerCallbackQuery, which Telegram accepts again or refuses
harmlessly; sendChatAction) are not journaled.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.core import metrics
from bot.core.db import GroupCommit, HeldConnection, conflict_insert
from bot.core.models import TelegramSend, utcnow

log = logging.getLogger(__name__)

# Method names (lower case) that show or change something in a chat.
_JOURNALED = ("send", "copy", "forward", "edit", "delete", "stop", "pin", "unpin")


def journaled(method: str) -> bool:
    """Tell whether a Bot API method is written to the journal while an update is handled."""
    name = method.lower()
    # "typing…" shows for a few seconds and is gone: shown twice, nobody sees it twice.
    return name.startswith(_JOURNALED) and name != "sendchataction"


@dataclass(frozen=True)
class SentCall:
    """A journaled call as written: its method, its chat and Telegram's answer."""

    method: str
    chat_id: str | None
    result: bytes


Call = Callable[[], Awaitable[tuple[int, bytes]]]


class SendJournal:
    """Writes the journaled calls of the updates one Application handles.

    Calls that come back together (handlers of several updates at once) share one write
    (`GroupCommit`): one prebuilt statement on a connection the journal holds, in autocommit
    (`HeldConnection`).
    """

    def __init__(self, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._rounds: GroupCommit[dict[str, Any], None] = GroupCommit(
            self._insert, name="telegram-journal"
        )
        self._connection = HeldConnection(engine, sessions)
        # One statement for every round (compiled once), its rows as parameters.
        insert = conflict_insert(engine.dialect.name)(TelegramSend)
        # A replay that took another path made a different call under the same number.
        self._statement = insert.on_conflict_do_update(
            index_elements=[TelegramSend.update_id, TelegramSend.ordinal],
            set_={
                "method": insert.excluded.method,
                "chat_id": insert.excluded.chat_id,
                "result": insert.excluded.result,
                "sent_at": insert.excluded.sent_at,
            },
        )

    async def write(
        self, update_id: int, ordinal: int, method: str, chat_id: str | None, result: bytes
    ) -> None:
        """Return once the call is written (a failure is logged: the call was made)."""
        row = {
            "update_id": update_id,
            "ordinal": ordinal,
            "method": method[:64],
            "chat_id": chat_id[:64] if chat_id is not None else None,
            "result": result.decode("utf-8", "replace"),
            "sent_at": utcnow(),
        }
        try:
            await self._rounds.submit(row)
        except Exception as error:
            # The message went out; only a replay after a kill could show it twice.
            log.warning("a Telegram call of update %d was not journaled: %r", update_id, error)

    async def _insert(self, rows: list[dict[str, Any]]) -> list[None]:
        # One row per call: an update handled twice at once (a webhook update Telegram sent again
        # while the first delivery was still being handled) numbers its calls alike.
        distinct = list({(row["update_id"], row["ordinal"]): row for row in rows}.values())
        await self._connection.execute(self._statement, distinct)
        return [None] * len(rows)

    async def close(self) -> None:
        """Write what is queued (a few seconds at most) and give the connection back."""
        await self._rounds.close()
        await self._connection.close()


class UpdateCalls:
    """The journaled calls of one update being handled, numbered in the order they are made."""

    def __init__(
        self, journal: SendJournal, update_id: int, written: Mapping[int, SentCall]
    ) -> None:
        self.journal = journal
        self.update_id = update_id
        self.written = written
        self.open = True
        self.replayed = 0
        self._next = 0

    async def call(self, method: str, chat_id: str | None, make: Call) -> tuple[int, bytes]:
        """Make the call, or hand back Telegram's answer if this update made it before."""
        if not self.open:
            # A task the handlers left running after the update was handled.
            return await make()
        ordinal, self._next = self._next, self._next + 1
        earlier = self.written.get(ordinal)
        if earlier is not None and earlier.method == method and earlier.chat_id == chat_id:
            self.replayed += 1
            metrics.TELEGRAM_CALLS_REPLAYED.inc()
            log.info(
                "update %d handled again: its call %d (%s) had gone out, not made again",
                self.update_id,
                ordinal,
                method,
            )
            return 200, earlier.result
        status, body = await make()
        if status == 200:
            await self.journal.write(self.update_id, ordinal, method, chat_id, body)
        return status, body


_CURRENT: contextvars.ContextVar[UpdateCalls | None] = contextvars.ContextVar(
    "telegram_update_calls", default=None
)


def current() -> UpdateCalls | None:
    """Return the calls of the update this task handles (None outside an update)."""
    return _CURRENT.get()


@contextlib.contextmanager
def handling(calls: UpdateCalls) -> Iterator[UpdateCalls]:
    """Journal the Bot API calls made in this context (tasks started in it inherit it)."""
    token = _CURRENT.set(calls)
    try:
        yield calls
    finally:
        calls.open = False
        _CURRENT.reset(token)
