"""The ticket side of a running process: the delivery worker, the ticket clock, and the signed
callback endpoint, started and stopped together.

`python -m bot run` starts them beside the Telegram bot with the application's Bot (so Telegram
deliveries share its rate limiter):

    workers = TicketWorkers(services.tickets, application.bot)
    await workers.start()   # once the application runs
    ...
    await workers.stop()    # before it stops

`python -m bot worker` runs them in a process of their own, e.g. as extra delivery workers
against one PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import signal
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import select
from telegram import Bot, InlineKeyboardMarkup, InputFile
from telegram.error import BadRequest, ChatMigrated, Forbidden, RetryAfter, TelegramError

from bot.answering.freshness import ReviewReminders, is_review_reminder, reminder_text
from bot.answering.publishing import KnowledgeSync
from bot.answering.replication import KnowledgeReplica
from bot.answering.store import KnowledgeFiles
from bot.api.callbacks import build_callback_app
from bot.core.config import PRIVACY_SECRET_ENV, PRIVACY_SECRET_MIN_CHARS, Settings
from bot.core.i18n import Html, language_or_default, t
from bot.core.models import Resident, TicketAttachment
from bot.core.workdays import time_zone
from bot.ops.health import serving_ops
from bot.services import Services, catch_up_folder, open_database
from bot.telegram.escalation_posts import answer_messages, published_answer_messages
from bot.telegram.ticket_keyboards import (
    department_message,
    resident_notice,
    staff_message,
    supervisor_message,
)
from bot.tickets.attachments import AttachmentStore, PhotoFetcher, PhotoFetchFailed
from bot.tickets.clock import TicketClock
from bot.tickets.delivery import Channel, Delivery, DeliveryFailed, DeliveryWorker, WebhookChannel
from bot.tickets.desk import TicketDesk, TicketError
from bot.tickets.outbox import document_to_send, is_escalation_answer, is_published_answer
from bot.tickets.privacy import PrivacyDesk

log = logging.getLogger(__name__)

TELEGRAM_CHANNELS = ("telegram", "resident", "staff", "supervisor")
# Adds routes of its own to the callback listener's application before it starts.
CallbackRoutes = Callable[[web.Application], None]
# How often a worker looks for departments to remind of items to review.
REMINDER_SWEEP_SECONDS = 900.0
# Photos a department card shows before its text (Telegram albums hold 10).
MAX_PHOTOS_SHOWN = 10


class TelegramChannel:
    """Delivers to Telegram chats: departments' chats, residents, staff and the supervisor."""

    def __init__(self, desk: TicketDesk, bot: Bot) -> None:
        self.desk = desk
        self.settings = desk.settings
        self.bot = bot
        self.zone = time_zone(self.settings.timezone)

    def _names(self, department_id: str | None, language: str) -> str | None:
        return self.desk.department_name(department_id, language)

    async def deliver(self, item: Delivery) -> None:
        try:
            if item.channel == "telegram":
                await self._to_department(item)
            elif item.channel == "resident":
                await self._to_resident(item)
            elif item.channel == "staff":
                await self._to_staff(item)
            elif item.channel == "supervisor":
                await self._to_supervisor(item)
            else:
                raise DeliveryFailed(f"unknown channel {item.channel}", permanent=True)
        except RetryAfter as error:
            seconds = error.retry_after
            wait = seconds.total_seconds() if isinstance(seconds, dt.timedelta) else float(seconds)
            raise DeliveryFailed("Telegram flood control", retry_after=wait) from error
        except ChatMigrated as error:
            raise DeliveryFailed(
                f"the chat became supergroup {error.new_chat_id}: update config.toml",
                permanent=True,
            ) from error
        except Forbidden as error:
            if item.channel == "resident":
                raise DeliveryFailed(
                    f"resident unreachable: {error.message}", drop=True, resident_blocked=True
                ) from error
            raise DeliveryFailed(f"Telegram refused: {error.message}") from error
        except BadRequest as error:
            if item.channel == "resident" and "chat not found" in error.message.lower():
                raise DeliveryFailed("resident chat not found", drop=True) from error
            raise DeliveryFailed(f"Telegram: {error.message}", permanent=True) from error
        except TelegramError as error:
            raise DeliveryFailed(f"Telegram: {error.message}") from error

    async def _send(self, chat_id: int, message: tuple[Html, InlineKeyboardMarkup | None]) -> None:
        text, markup = message
        await self.bot.send_message(chat_id, text, reply_markup=markup, parse_mode="HTML")

    async def _to_department(self, item: Delivery) -> None:
        config = self.settings.departments.get(item.department_id)
        if config is None or config.telegram_chat_id is None:
            raise DeliveryFailed(f"{item.department_id} has no Telegram chat", permanent=True)
        language = self.settings.telegram.staff_language
        if is_review_reminder(item.payload):
            text = reminder_text(item.payload, language)
            await self.bot.send_message(config.telegram_chat_id, text, parse_mode="HTML")
            return
        message = department_message(item.payload, language, self.zone)
        if message is None:
            return
        kind = item.payload["event"]["kind"]
        photos = 0
        if kind in ("assigned", "reopened"):
            photos = int(item.payload["ticket"].get("photos") or 0)
        elif kind == "information_added":
            photos = int((item.payload["event"].get("data") or {}).get("photos") or 0)
        if photos and item.ticket_id is not None:
            for file_id in (await self._photos(item.ticket_id))[-photos:][:MAX_PHOTOS_SHOWN]:
                await self.bot.send_photo(
                    config.telegram_chat_id, file_id, caption=item.payload["ticket"]["number"]
                )
        await self._send(config.telegram_chat_id, message)

    async def _photos(self, ticket_id: int) -> list[str]:
        async with self.desk.sessions() as session:
            result = await session.execute(
                select(TicketAttachment.telegram_file_id)
                .where(TicketAttachment.ticket_id == ticket_id, TicketAttachment.kind == "photo")
                .order_by(TicketAttachment.id)
            )
            return list(result.scalars())

    async def _to_resident(self, item: Delivery) -> None:
        resident_id = item.payload.get("resident_id")
        sealed = item.payload.get("resident_sealed")
        async with self.desk.sessions() as session:
            resident = await session.get(Resident, resident_id) if resident_id else None
            if resident is None and isinstance(sealed, str) and sealed:
                # An anonymous report: only the secret opens the resident's address.
                pseudonyms = self.desk.pseudonyms
                user_id = pseudonyms.unseal(sealed) if pseudonyms is not None else None
                if user_id is not None:
                    resident = await session.scalar(
                        select(Resident).where(Resident.telegram_user_id == user_id)
                    )
        if resident is None or resident.forgotten_at is not None:
            raise DeliveryFailed("no resident to tell", drop=True)
        if is_escalation_answer(item.payload):
            for text in answer_messages(item.payload):
                await self.bot.send_message(resident.chat_id, text, parse_mode="HTML")
            return
        if is_published_answer(item.payload):
            for text in published_answer_messages(item.payload):
                await self.bot.send_message(resident.chat_id, text, parse_mode="HTML")
            return
        language = language_or_default(resident.language)
        document_id = document_to_send(item.payload)
        if document_id is not None:
            await self._send_document(resident.chat_id, item, document_id, language)
            return
        message = resident_notice(item.payload, language, self.zone, self._names)
        if message is None:
            return
        await self._send(resident.chat_id, message)

    async def _send_document(
        self, chat_id: int, item: Delivery, document_id: int, language: str
    ) -> None:
        """Send the file of a disclosure answer: by its Telegram file id once Telegram has it,
        else uploaded from the database (then its file id is kept for next time)."""
        number = str(item.payload.get("number", ""))
        try:
            document = await self.desk.document_content(number, document_id)
        except TicketError as error:
            raise DeliveryFailed(f"document {document_id}: {error}", drop=True) from error
        caption = t("tkt_disclosure_file_caption", language, number=number)
        if document.telegram_file_id:
            try:
                await self.bot.send_document(
                    chat_id, document.telegram_file_id, caption=caption, parse_mode="HTML"
                )
                return
            except BadRequest:
                if document.content is None:
                    raise
                # A file id of another bot, or one Telegram forgot: upload the bytes instead.
        if document.content is None:
            raise DeliveryFailed(f"document {document_id} has no file to send", permanent=True)
        sent = await self.bot.send_document(
            chat_id,
            InputFile(document.content, filename=document.file_name or "document"),
            caption=caption,
            parse_mode="HTML",
        )
        if sent.document is not None:
            await self.desk.remember_telegram_file(document_id, sent.document.file_id)

    async def _to_staff(self, item: Delivery) -> None:
        chat_id = self.settings.telegram.staff_chat_id
        if chat_id is None:
            raise DeliveryFailed("no staff chat configured ([telegram] staff_chat_id)", drop=True)
        language = self.settings.telegram.staff_language
        message = staff_message(item.payload, language, self._names)
        if message is not None:
            await self._send(chat_id, message)

    async def _to_supervisor(self, item: Delivery) -> None:
        telegram = self.settings.telegram
        # Without a supervisor chat, overdue tickets go to the staff chat rather than nowhere.
        chat_id = telegram.supervisor_chat_id or telegram.staff_chat_id
        if chat_id is None:
            raise DeliveryFailed("no supervisor or staff chat configured", drop=True)
        message = supervisor_message(item.payload, telegram.staff_language, self._names)
        if message is not None:
            await self._send(chat_id, message)


class TelegramPhotoSource:
    """Downloads residents' photos through the bot's Bot API server (getFile, then the file)."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def fetch(self, file_id: str, max_bytes: int) -> bytes:
        try:
            file = await self.bot.get_file(file_id)
            if file.file_size is not None and file.file_size > max_bytes:
                raise PhotoFetchFailed(f"{file.file_size} bytes, over {max_bytes}", too_large=True)
            data = bytes(await file.download_as_bytearray())
        except RetryAfter as error:
            raise PhotoFetchFailed("Telegram flood control") from error
        except BadRequest as error:
            # An unknown or expired file id, or a file too big for bots: trying again won't help.
            too_large = "too big" in error.message.lower()
            raise PhotoFetchFailed(
                f"Telegram: {error.message}", permanent=True, too_large=too_large
            ) from error
        except TelegramError as error:
            raise PhotoFetchFailed(f"Telegram: {error.message}") from error
        return data


def photo_fetcher(desk: TicketDesk, bot: Bot) -> PhotoFetcher:
    """Return the fetcher that keeps residents' photos, downloading them through `bot`."""
    return PhotoFetcher(AttachmentStore(desk.settings, desk.sessions), TelegramPhotoSource(bot))


def delivery_channels(
    desk: TicketDesk, bot: Bot | None, http: aiohttp.ClientSession
) -> dict[str, Channel]:
    """Return the channels a worker can serve: webhooks always, Telegram chats with a bot."""
    channels: dict[str, Channel] = {"webhook": WebhookChannel(desk.settings, http)}
    if bot is not None:
        telegram = TelegramChannel(desk, bot)
        channels.update(dict.fromkeys(TELEGRAM_CHANNELS, telegram))
    return channels


class TicketWorkers:
    """Starts and stops the delivery worker, the ticket clock and the callback endpoint."""

    def __init__(
        self,
        desk: TicketDesk,
        bot: Bot | None,
        *,
        run_clock: bool = True,
        callbacks: bool | None = None,
        callback_routes: Sequence[CallbackRoutes] = (),
        callbacks_optional: bool = False,
    ) -> None:
        """`callbacks_optional`: when the callback port is taken (the bot on this host serves
        it), deliver and run the clock without it instead of failing."""
        self.desk = desk
        self.callbacks_optional = callbacks_optional
        self.bot = bot
        self.run_clock = run_clock
        self.serve_callbacks = desk.settings.callbacks.enabled if callbacks is None else callbacks
        # More routes served beside the callback endpoint, on the same listener.
        self.callback_routes = tuple(callback_routes)
        self.worker: DeliveryWorker | None = None
        # Keeps residents' photos (with a bot to download them through).
        self.photos: PhotoFetcher | None = photo_fetcher(desk, bot) if bot is not None else None
        self.clock = TicketClock(desk)
        self.privacy = privacy_desk(desk)
        self.reminders = ReviewReminders(desk.settings, desk.sessions, desk.knowledge)
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._http: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Start delivering, ticking and (if enabled) listening for department callbacks.

        If anything fails on the way, what was started is stopped again before the error is
        raised: no task is left running and no HTTP session open."""
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        _check_departments(self.desk)
        self._stop.clear()
        self._http = aiohttp.ClientSession()
        self.worker = DeliveryWorker(self.desk, delivery_channels(self.desk, self.bot, self._http))
        self.desk.on_change(self.worker.wake)
        self._tasks.append(
            asyncio.create_task(self.worker.run_forever(self._stop), name="ticket-delivery")
        )
        if self.photos is not None:
            self.desk.on_change(self.photos.wake)
            self._tasks.append(
                asyncio.create_task(self.photos.run_forever(self._stop), name="ticket-photos")
            )
        if self.run_clock:
            self._tasks.append(
                asyncio.create_task(self.clock.run_forever(self._stop), name="ticket-clock")
            )
            # Retention of personal data runs on the same clock ([privacy] sweep_interval_minutes).
            self._tasks.append(
                asyncio.create_task(self.privacy.run_forever(self._stop), name="privacy-sweep")
            )
            # Reminders of knowledge base items to review ([knowledge] reminder_days).
            self._tasks.append(
                asyncio.create_task(self._remind_forever(), name="knowledge-reminders")
            )
        if self.serve_callbacks:
            settings = self.desk.settings.callbacks
            app = build_callback_app(self.desk)
            for add_routes in self.callback_routes:
                add_routes(app)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            try:
                await web.TCPSite(self._runner, settings.host, settings.port).start()
            except OSError as error:
                if not self.callbacks_optional:
                    raise
                await self._runner.cleanup()
                self._runner = None
                log.warning(
                    "department callbacks not served: %s:%d is in use (%s); another process "
                    "on this host (e.g. python -m bot run) serves them, and this worker delivers "
                    "and runs the clock only",
                    settings.host,
                    settings.port,
                    error.strerror or error,
                )
                return
            log.info(
                "department callbacks on http://%s:%d/api/departments/…",
                settings.host,
                settings.port,
            )

    async def _remind_forever(self) -> None:
        """Sweep for review reminders now and then; each is sent once per interval anyway."""
        while not self._stop.is_set():
            try:
                if await self.reminders.sweep():
                    assert self.worker is not None
                    self.worker.wake()
            except Exception:
                log.exception("adding knowledge review reminders failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self._reminder_sweep_seconds())

    def _reminder_sweep_seconds(self) -> float:
        """At least four sweeps per reminder interval, at most one every REMINDER_SWEEP_SECONDS."""
        interval = self.reminders.interval.total_seconds()
        return (
            min(REMINDER_SWEEP_SECONDS, interval / 4) if interval > 0 else REMINDER_SWEEP_SECONDS
        )

    async def stop(self) -> None:
        """Stop everything; a delivery under way is given back to the outbox, not lost."""
        self._stop.set()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=5)
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._tasks.clear()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._http is not None:
            await self._http.close()
            self._http = None


def privacy_desk(desk: TicketDesk) -> PrivacyDesk:
    """Return the privacy desk on the ticket desk's database, clock and pseudonyms."""
    return PrivacyDesk(desk.settings, desk.sessions, clock=desk.clock, pseudonyms=desk.pseudonyms)


def _check_departments(desk: TicketDesk) -> None:
    """Log what is wrong with [departments.*]: unknown ids, secrets missing from the environment."""
    known = desk.knowledge().departments
    for department_id, config in desk.settings.departments.items():
        if department_id not in known:
            log.error("[departments.%s]: no such department in departments.toml", department_id)
        if config.secret_env and config.secret() is None:
            log.error(
                "[departments.%s]: environment variable %s is not set: webhooks to it fail "
                "and its callbacks are refused",
                department_id,
                config.secret_env,
            )
    if desk.pseudonyms is None:
        log.error(
            "%s is not set (at least %d characters): residents cannot file anonymous reports",
            PRIVACY_SECRET_ENV,
            PRIVACY_SECRET_MIN_CHARS,
        )


async def run_worker_process(settings: Settings, *, once: bool = False) -> int:
    """Run delivery, the clock and callbacks in this process until SIGINT/SIGTERM (or once).

    A worker needs the departments, not the question matcher, so it loads the knowledge base
    without building the matcher's index and starts in a fraction of the bot's time.
    """
    files = KnowledgeFiles(settings.knowledge_dir)
    settings.check_departments(files.kb.departments)
    async with open_database(settings, migrate=True) as sessions:
        # The folder at the published version before any work: another host may have published
        # since (loading the files without an index again costs little).
        replica = KnowledgeReplica(settings.knowledge_dir, sessions)
        caught = await catch_up_folder(replica)
        if caught is not None and caught.changed:
            await files.reload()
            settings.check_departments(files.kb.departments)
        desk = TicketDesk(settings, sessions, lambda: files.kb)
        # Polls the published knowledge version as the bot and the console do, so a change
        # approved in the console (e.g. a department's new name) reaches this process too.
        sync = KnowledgeSync(files, sessions, settings.knowledge.reload_poll_seconds, replica)
        bot: Bot | None = None
        if settings.telegram_token:
            bot = Bot(
                settings.telegram_token,
                base_url=settings.telegram_api_base_url,
                base_file_url=settings.telegram_file_url(),
            )
            await bot.initialize()
        else:
            log.warning("no TELEGRAM_BOT_TOKEN: this worker delivers webhooks only")
        try:
            if once:
                async with aiohttp.ClientSession() as http:
                    worker = DeliveryWorker(desk, delivery_channels(desk, bot, http))
                    report = await TicketClock(desk).sweep()
                    await ReviewReminders(settings, sessions, desk.knowledge).sweep()
                    await privacy_desk(desk).sweep()
                    delivered = await worker.run_until_idle()
                    fetched = await photo_fetcher(desk, bot).run_until_idle() if bot else 0
                log.info(
                    "delivered %d outbox rows; %d clock decisions; %d photos fetched",
                    delivered,
                    report.total,
                    fetched,
                )
                return 0
            # An extra worker on the host of `python -m bot run` finds the callback port taken:
            # the bot serves the callbacks, this worker delivers and runs the clock.
            workers = TicketWorkers(desk, bot, callbacks_optional=True)
            probe = bot.get_me if bot is not None else None
            polling = (
                sync.running()
                if settings.knowledge.reload_poll_seconds > 0
                else contextlib.nullcontext()
            )
            try:
                await workers.start()
                stopped = asyncio.Event()
                loop = asyncio.get_running_loop()
                for name in (signal.SIGINT, signal.SIGTERM):
                    loop.add_signal_handler(name, stopped.set)
                # /healthz, /readyz, /metrics on [metrics] worker_port (bot/ops/health.py).
                async with (
                    polling,
                    serving_ops(
                        settings,
                        "worker",
                        sessions=sessions,
                        knowledge=lambda: files.kb,
                        bot_api=probe,
                    ),
                ):
                    await stopped.wait()
            finally:
                await workers.stop()
            return 0
        finally:
            if bot is not None:
                await bot.shutdown()


@contextlib.asynccontextmanager
async def serving_ticket_workers(
    services: Services, application: Any, *, callback_routes: Sequence[CallbackRoutes] = ()
) -> AsyncIterator[None]:
    """Run the ticket workers beside the bot in `python -m bot run` (bot.runner.RUN_SERVICES).

    `callback_routes` are served beside the department callback endpoint.
    """
    bot = getattr(application, "bot", None)
    workers = TicketWorkers(
        services.tickets, bot if isinstance(bot, Bot) else None, callback_routes=callback_routes
    )
    await workers.start()
    try:
        yield
    finally:
        await workers.stop()
