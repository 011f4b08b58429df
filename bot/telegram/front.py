"""The Telegram side of `python -m bot run`, served only while this process leads.

Several processes may run the bot against one PostgreSQL (bot/core/leadership.py): the leader
serves Telegram, the others stand by. `TelegramFront` follows the lease:

- on becoming leader it builds a fresh Application (which loads conversations and user data from
  the database as the last leader left them), starts it, and polls — or, in webhook mode, sets
  the webhook and starts accepting updates;
- on losing the lease it stops at once: the persistence is fenced (writes nothing more), polling
  is cancelled, the webhook answers 503, then the Application is stopped.

**No update lost.** Polling does not use python-telegram-bot's Updater, which
confirms a batch to Telegram (the next getUpdates) before its updates are handled. Here a batch
is handled to the end — each update's conversation state written (`update_persistence`) and the
update recorded in `telegram_updates` — and only then is the next offset stored in
`telegram_cursor` and sent to Telegram with the next getUpdates. A new leader starts from the
stored offset; Telegram still holds every update from there on, and the ones already recorded as
handled are skipped. An update whose handler was cut off half-way by a kill is handled again by
the next leader (at least once, never silently dropped) — and so is one whose answer had gone out
but whose record had not yet been written. What its handlers said through Telegram the first
time is not said again: each such call was journaled with Telegram's answer, and handling the
update again hands the handler that answer instead of calling (bot/telegram/journal.py). The
updates handled together are recorded together (`UpdateRecorder`: one persistence round and one
insert for all that finished meanwhile, not one each behind the persistence lock).

**Webhook mode.** Every process listens on [telegram] webhook_listen:webhook_port; a standby
answers 503 (Telegram retries, and a reverse proxy with both processes as upstreams moves on to
the next one). The leader handles an update to the end before answering 200, so an update is
confirmed to Telegram only once handled. See docs/telegram.md for the proxy.

The process's Bot for deliveries (`front.bot`) lives as long as the process: the delivery
workers run in every process, leader or not.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hmac
import json
import logging
import os
from collections.abc import AsyncIterator, Callable, Sequence

from aiohttp import web
from sqlalchemy import Executable, delete, func, select
from telegram import Bot, Update
from telegram.error import Conflict, InvalidToken, NetworkError, RetryAfter, TelegramError

from bot.core.db import GroupCommit, HeldConnection, conflict_insert, write_gate
from bot.core.leadership import Leadership
from bot.core.models import TelegramCursor, TelegramSend, TelegramUpdate, utcnow
from bot.services import Services
from bot.telegram import journal
from bot.telegram.context import BotApplication
from bot.telegram.journal import SendJournal, SentCall, UpdateCalls
from bot.telegram.persistence import DatabasePersistence

log = logging.getLogger(__name__)

POLLING_CURSOR = "polling"
# Seconds a getUpdates waits for updates (long polling).
POLL_TIMEOUT = 10
# The largest webhook body accepted (Telegram's updates are far smaller).
MAX_WEBHOOK_BODY = 1 << 20
WEBHOOK_PATH = "/telegram"
# Handled updates kept for webhook redeliveries (Telegram gives up on an update within a day).
HANDLED_KEPT = dt.timedelta(days=2)

ApplicationBuilder = Callable[[Services, str, str], BotApplication]


class UpdateLedger:
    """What the database knows of Telegram updates: the confirmed offset, the handled ones."""

    def __init__(self, services: Services) -> None:
        self.sessions = services.sessions
        self.engine = services.engine
        self._dialect = services.engine.dialect.name

    async def next_offset(self) -> int:
        """Return the offset to poll from (0: Telegram's oldest unconfirmed update)."""
        async with self.sessions() as session:
            value = await session.scalar(
                select(TelegramCursor.next_offset).where(TelegramCursor.name == POLLING_CURSOR)
            )
        return int(value or 0)

    async def handled(self, update_ids: Sequence[int]) -> set[int]:
        """Return those of `update_ids` already handled to the end."""
        if not update_ids:
            return set()
        async with self.sessions() as session:
            result = await session.scalars(
                select(TelegramUpdate.update_id).where(TelegramUpdate.update_id.in_(update_ids))
            )
            return set(result)

    async def journal_horizon(self) -> int:
        """Return the highest update id with journaled calls (-1: none).

        A later update cannot have been handled before, so polling asks for the journal of an
        update only at or below this (or after a batch that failed).
        """
        async with self.sessions() as session:
            value = await session.scalar(select(func.max(TelegramSend.update_id)))
        return -1 if value is None else int(value)

    async def sent(self, update_ids: Sequence[int]) -> dict[int, dict[int, SentCall]]:
        """Return the journaled calls of `update_ids` (those handled before, not recorded)."""
        if not update_ids:
            return {}
        async with self.sessions() as session:
            rows = await session.execute(
                select(
                    TelegramSend.update_id,
                    TelegramSend.ordinal,
                    TelegramSend.method,
                    TelegramSend.chat_id,
                    TelegramSend.result,
                ).where(TelegramSend.update_id.in_(update_ids))
            )
            written: dict[int, dict[int, SentCall]] = {}
            for update_id, ordinal, method, chat_id, result in rows:
                written.setdefault(update_id, {})[ordinal] = SentCall(
                    method, chat_id, result.encode("utf-8")
                )
            return written

    def _marking(self, update_ids: Sequence[int]) -> list[Executable]:
        insert = conflict_insert(self._dialect)
        now = utcnow()
        statements: list[Executable] = [
            insert(TelegramUpdate)
            .values([{"update_id": update_id, "handled_at": now} for update_id in set(update_ids)])
            .on_conflict_do_nothing(index_elements=[TelegramUpdate.update_id])
        ]
        if any(update_id % 1000 == 0 for update_id in update_ids):
            # In webhook mode no offset is confirmed: forget what Telegram no longer retries.
            statements.append(
                delete(TelegramUpdate).where(TelegramUpdate.handled_at < now - HANDLED_KEPT)
            )
            statements.append(
                delete(TelegramSend).where(TelegramSend.sent_at < now - HANDLED_KEPT)
            )
        return statements

    async def mark_handled_on(self, connection: HeldConnection, *update_ids: int) -> None:
        """Record these updates as handled, on a connection held for it (one round trip)."""
        if update_ids:
            for statement in self._marking(update_ids):
                await connection.execute(statement)

    async def confirm(self, next_offset: int) -> None:
        """Store the offset to poll from next; forget the handled updates below it."""
        insert = conflict_insert(self._dialect)
        statement = insert(TelegramCursor).values(
            name=POLLING_CURSOR, next_offset=next_offset, updated_at=utcnow()
        )
        statement = statement.on_conflict_do_update(
            index_elements=[TelegramCursor.name],
            set_={"next_offset": next_offset, "updated_at": statement.excluded.updated_at},
        )
        async with write_gate(self.sessions), self.sessions() as session:
            await session.execute(statement)
            await session.execute(
                delete(TelegramUpdate).where(TelegramUpdate.update_id < next_offset)
            )
            await session.execute(delete(TelegramSend).where(TelegramSend.update_id < next_offset))
            await session.commit()


class NotRecorded(Exception):
    """Updates were not recorded as handled (this process stopped serving, or writing failed)."""


class UpdateRecorder:
    """Records the updates one Application handled, several in one round.

    An update counts as handled once a persistence round that began after its handlers returned
    has written what they left (conversation states, user and chat data) and its id is in
    `telegram_updates`. Between its handlers' answer reaching Telegram and that record, a kill
    makes the next leader handle the update again, so the record is kept short: updates handled
    together (a batch of getUpdates, concurrent webhook calls) share one round — one
    `update_persistence` and one insert — instead of a round each, one after another behind
    python-telegram-bot's persistence lock. The first update to finish starts a round; those that
    finish meanwhile go in the next one. The insert goes over a connection the recorder holds, in
    autocommit: one round trip to PostgreSQL, one hop to SQLite's driver thread.
    """

    def __init__(self, application: BotApplication, ledger: UpdateLedger) -> None:
        self.application = application
        self.ledger = ledger
        # What the handlers said through Telegram, update by update (bot/telegram/journal.py).
        self.journal = SendJournal(ledger.engine, ledger.sessions)
        self._rounds: GroupCommit[int, None] = GroupCommit(self._write, name="telegram-record")
        self._connection = HeldConnection(ledger.engine, ledger.sessions)
        self._closed = False

    @property
    def rounds(self) -> int:
        """Rounds written so far."""
        return self._rounds.rounds

    async def record(self, update_id: int) -> None:
        """Return once `update_id` is recorded as handled; raise NotRecorded if it was not."""
        if self._closed:
            raise NotRecorded("this Application no longer serves Telegram")
        await self._rounds.submit(update_id)

    async def _write(self, update_ids: list[int]) -> list[None]:
        try:
            # The form step each handler just took is in the database before its update
            # counts as handled (and before Telegram hears it was received).
            await self.application.update_persistence()
            persistence = self.application.persistence
            if isinstance(persistence, DatabasePersistence) and persistence.fenced:
                # Another process leads: nothing was written, so nothing is recorded.
                raise NotRecorded("this process no longer leads")
            await self.ledger.mark_handled_on(self._connection, *update_ids)
        except NotRecorded:
            raise
        except Exception as error:
            raise NotRecorded(f"writing failed: {error!r}") from error
        return [None] * len(update_ids)

    async def close(self) -> None:
        """Stop recording: a round being written is cancelled, every caller hears NotRecorded."""
        self._closed = True
        await self._rounds.close(NotRecorded("this Application no longer serves Telegram"))
        await self._connection.close()
        await self.journal.close()


async def handle_update(
    recorder: UpdateRecorder, update: Update, written: dict[int, SentCall] | None = None
) -> None:
    """Handle one update to the end: handlers, state written, recorded as handled.

    `written` holds the calls an earlier handling of the update made (`UpdateLedger.sent`):
    they are not made again.
    """
    application = recorder.application
    calls = UpdateCalls(recorder.journal, update.update_id, written or {})
    with journal.handling(calls):
        await application.update_processor.process_update(
            update, application.process_update(update)
        )
    await recorder.record(update.update_id)


async def poll_confirmed(
    application: BotApplication, ledger: UpdateLedger, *, long_poll: int = POLL_TIMEOUT
) -> None:
    """Poll Telegram from the stored offset, confirming each batch only once it is handled."""
    recorder = UpdateRecorder(application, ledger)
    try:
        await _poll(recorder, long_poll)
    finally:
        await recorder.close()


async def _poll(recorder: UpdateRecorder, long_poll: int) -> None:
    application, ledger = recorder.application, recorder.ledger
    offset = await ledger.next_offset()
    # Updates above this were never handled by an earlier leader (nor, so far, by this one).
    horizon = await ledger.journal_horizon()
    log.info("polling from the confirmed offset %d", offset)
    pause = 0.0
    while True:
        if pause:
            await asyncio.sleep(pause)
        try:
            updates = await application.bot.get_updates(
                offset=offset or None, timeout=long_poll, allowed_updates=Update.ALL_TYPES
            )
        except InvalidToken:
            raise
        except RetryAfter as error:
            retry = error.retry_after
            pause = retry if isinstance(retry, int | float) else retry.total_seconds()
            continue
        except Conflict as error:
            # Another getUpdates (a process that has not yet noticed it lost the lease).
            log.warning("getUpdates: %s", error.message)
            pause = 1.0
            continue
        except (NetworkError, TelegramError) as error:
            log.warning("getUpdates failed: %s", error)
            pause = min(max(pause * 2, 0.5), 10.0)
            continue
        pause = 0.0
        if not updates:
            continue
        try:
            done = await ledger.handled([update.update_id for update in updates])
            waiting = [update for update in updates if update.update_id not in done]
            written = await ledger.sent(
                [update.update_id for update in waiting if update.update_id <= horizon]
            )
            await asyncio.gather(
                *(
                    handle_update(recorder, update, written.get(update.update_id))
                    for update in waiting
                )
            )
            await ledger.confirm(updates[-1].update_id + 1)
        except Exception:
            # The database failed us: nothing is confirmed, the batch comes again (and what
            # its handlers journaled is looked up then).
            log.exception("a batch of updates was not recorded; fetching it again")
            horizon = max(horizon, updates[-1].update_id)
            pause = 1.0
            continue
        offset = updates[-1].update_id + 1


def default_builder(services: Services, token: str, base_url: str) -> BotApplication:
    from bot.telegram.application import build_application

    return build_application(services, token=token, base_url=base_url)


class TelegramFront:
    """Serves Telegram while this process leads (see the module's text)."""

    def __init__(
        self,
        services: Services,
        leadership: Leadership,
        *,
        token: str,
        base_url: str,
        webhook: bool = False,
        builder: ApplicationBuilder = default_builder,
    ) -> None:
        self.services = services
        self.leadership = leadership
        self.token = token
        self.base_url = base_url
        self.webhook = webhook
        self.builder = builder
        self.ledger = UpdateLedger(services)
        # The process's Bot: deliveries go through it whether or not this process leads.
        from bot.telegram.application import build_delivery_bot

        self.bot: Bot = build_delivery_bot(services, token=token, base_url=base_url)
        self.application: BotApplication | None = None
        # Webhook mode: records the updates the current term's Application handled.
        self._recorder: UpdateRecorder | None = None
        self.terms = 0
        self._accepting = False
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._poll: asyncio.Task[None] | None = None
        self._runner: web.AppRunner | None = None
        self._serving = asyncio.Lock()
        self._webhook_secret = os.environ.get("TELEGRAM_WEBHOOK_SECRET") or ""

    # -- leadership --------------------------------------------------------------------------

    def _on_change(self, leading: bool, term: int) -> None:
        if leading:
            return
        # At once, before anything else runs: no more writes, no more updates.
        self._accepting = False
        application = self.application
        if application is not None and isinstance(application.persistence, DatabasePersistence):
            application.persistence.fence()
        if self._poll is not None:
            self._poll.cancel()

    async def _follow(self) -> None:
        while not self._stop.is_set():
            await self.leadership.wait_changed()
            await self._reconcile()

    async def _reconcile(self) -> None:
        async with self._serving:
            if self.leadership.leading and self.application is None and not self._stop.is_set():
                try:
                    await self._begin_term()
                except Exception:
                    log.exception("the bot could not start serving Telegram; trying again")
                    await self._end_term()
                    await asyncio.sleep(1)
                    self.leadership.nudge()
                    return
            if not self.leadership.leading and self.application is not None:
                await self._end_term()

    async def _begin_term(self) -> None:
        from bot.telegram.application import publish_commands

        application = self.builder(self.services, self.token, self.base_url)
        self.application = application
        await application.initialize()
        await application.start()
        self.terms += 1
        if self.webhook:
            settings = self.services.settings.telegram
            await application.bot.set_webhook(
                url=settings.webhook_url,
                secret_token=self._webhook_secret or None,
                allowed_updates=Update.ALL_TYPES,
            )
            self._recorder = UpdateRecorder(application, self.ledger)
            self._accepting = True
        else:
            self._poll = asyncio.create_task(
                poll_confirmed(application, self.ledger), name="telegram-polling"
            )
        log.info("serving Telegram (term %d, %s)", self.leadership.term, self.mode)
        await publish_commands(application)

    @property
    def mode(self) -> str:
        return "webhook" if self.webhook else "polling"

    async def _end_term(self) -> None:
        application, self.application = self.application, None
        self._accepting = False
        poll, self._poll = self._poll, None
        if poll is not None:
            poll.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await poll
        recorder, self._recorder = self._recorder, None
        if recorder is not None:
            await recorder.close()
        if application is None:
            return
        if not self.leadership.leading and isinstance(
            application.persistence, DatabasePersistence
        ):
            application.persistence.fence()
        with contextlib.suppress(Exception):
            if application.running:
                await application.stop()
        with contextlib.suppress(Exception):
            await application.shutdown()
        log.info("stopped serving Telegram")

    # -- webhook -------------------------------------------------------------------------------

    def accepting(self) -> bool:
        """Tell whether the webhook accepts updates now (this process leads and serves)."""
        return self._accepting

    async def _receive(self, request: web.Request) -> web.Response:
        if self._webhook_secret:
            given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
            if not hmac.compare_digest(given.encode(), self._webhook_secret.encode()):
                return web.Response(status=403)
        application, recorder = self.application, self._recorder
        if not self._accepting or application is None or recorder is None:
            # A standby: Telegram retries, a proxy moves on to the leader.
            return web.Response(status=503, headers={"Retry-After": "1"}, text="standby")
        if request.content_length is not None and request.content_length > MAX_WEBHOOK_BODY:
            return web.Response(status=413)
        try:
            body = await request.content.read(MAX_WEBHOOK_BODY + 1)
            if len(body) > MAX_WEBHOOK_BODY:
                return web.Response(status=413)
            data = json.loads(body)
            update = Update.de_json(data, application.bot) if isinstance(data, dict) else None
        except (ValueError, TypeError, KeyError):
            update = None
        if update is None:
            # Unreadable: nothing to retry.
            return web.Response(status=200, text="unreadable")
        if not await self.ledger.handled([update.update_id]):
            written = await self.ledger.sent([update.update_id])
            try:
                await handle_update(recorder, update, written.get(update.update_id))
            except NotRecorded:
                # Stopped serving meanwhile: Telegram delivers it again to the new leader.
                return web.Response(status=503, headers={"Retry-After": "1"})
        if not self.accepting():
            # Lost the lease meanwhile: let Telegram deliver it again to the new leader, which
            # skips it if this process recorded it as handled.
            return web.Response(status=503, headers={"Retry-After": "1"})
        return web.Response(status=200)

    async def _serve_webhook(self) -> None:
        settings = self.services.settings.telegram
        app = web.Application(client_max_size=MAX_WEBHOOK_BODY)
        app.router.add_post(WEBHOOK_PATH, self._receive)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, settings.webhook_listen, settings.webhook_port).start()
        log.info(
            "Telegram webhook on http://%s:%d%s (answers 503 while standing by)",
            settings.webhook_listen,
            settings.webhook_port,
            WEBHOOK_PATH,
        )

    # -- the process ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Serve the webhook listener (webhook mode), then lead or stand by."""
        await self.bot.initialize()
        self.leadership.on_change(self._on_change)
        if self.webhook:
            await self._serve_webhook()
        # One attempt now, so that a process that can lead serves before start returns; the
        # lease is renewed from then on, however long the Application takes to start.
        with contextlib.suppress(Exception):
            await self.leadership.try_acquire()
        self._tasks = [
            asyncio.create_task(self.leadership.run(self._stop), name="telegram-lease"),
            asyncio.create_task(self._follow(), name="telegram-front"),
        ]
        await self._reconcile()
        if not self.leadership.leading:
            log.info("standing by: another process serves Telegram")

    async def stop(self) -> None:
        """Stop serving, release the lease (a standby takes over at once), close the Bot."""
        self._stop.set()
        self._accepting = False
        lease = self._tasks[0] if self._tasks else None
        for task in self._tasks[1:]:
            task.cancel()
        async with self._serving:
            await self._end_term()
        if lease is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await lease
        else:
            await self.leadership.release()
        for task in self._tasks[1:]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        with contextlib.suppress(Exception):
            await self.bot.shutdown()


@contextlib.asynccontextmanager
async def serving_telegram(front: TelegramFront) -> AsyncIterator[TelegramFront]:
    """Start `front`, yield it, stop it."""
    try:
        await front.start()
        yield front
    finally:
        await front.stop()
