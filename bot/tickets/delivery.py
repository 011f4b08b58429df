"""The delivery worker: takes outbox rows and delivers each at least once, with backoff.

Claiming: one statement marks a batch of due rows with a lease (`locked_until`) and a fresh
`claim_token`. On PostgreSQL the rows are picked with `FOR UPDATE SKIP LOCKED`, so several
workers (in one process or many) never pick the same row; on SQLite the database write lock
serialises the claim. A worker that dies mid-delivery leaves its lease to run out; the row is
then claimed again, so nothing is lost. The result of a delivery is written only if the worker
still holds the claim (`claim_token`), so a slow worker cannot overwrite the next one's result.

At least once, not exactly once: a crash after a department received a row and before the row
was marked sent makes the department receive it again, with the same idempotency key (ticket
number and event id); departments de-duplicate by it. Rows of one ticket to one recipient are
delivered in order: a row waits while an earlier one is pending.

After `max_attempts` failures a row is marked `failed`, and a `delivery_failed` event puts an
alert in the staff chat (and in the console, which lists failed rows). A row of no ticket (a
staff answer to an escalated question) is only logged: whoever answered was told at the time
that it had not gone out yet.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import random
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from sqlalchemy import and_, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from bot.core import metrics
from bot.core.config import DeliverySettings, Settings
from bot.core.db import storable
from bot.core.logs import log_context
from bot.core.models import OutboxMessage, Resident
from bot.core.vocabulary import EventKind
from bot.tickets.desk import Actor, TicketDesk
from bot.tickets.signatures import EVENT_HEADER, IDEMPOTENCY_HEADER, signed_headers

log = logging.getLogger(__name__)

USER_AGENT = "public-service-bot (ticket delivery)"
DATABASE_WRITERS = 4
# A delivery failure message kept on the row; long HTML error pages are cut.
_MAX_ERROR = 500


@dataclass(frozen=True, slots=True)
class Delivery:
    """A claimed outbox row, detached from the database session."""

    id: int
    # None for a staff answer to an escalated question (it belongs to no ticket).
    ticket_id: int | None
    event_id: int | None
    department_id: str
    channel: str
    idempotency_key: str
    payload: dict[str, Any]
    attempts: int
    claim_token: str


class DeliveryFailed(Exception):
    """A delivery did not succeed.

    `retry_after` asks for a wait (HTTP Retry-After, Telegram flood control); `permanent` skips
    the remaining tries; `drop` means the recipient cannot be reached and trying again would not
    help (a resident who blocked the bot): the row is `dropped`, and nobody is alerted.
    """

    def __init__(
        self,
        reason: str,
        *,
        retry_after: float | None = None,
        permanent: bool = False,
        drop: bool = False,
        resident_blocked: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.permanent = permanent
        self.drop = drop
        self.resident_blocked = resident_blocked


class Channel(Protocol):
    """Delivers one outbox row or raises DeliveryFailed."""

    async def deliver(self, item: Delivery) -> None: ...


def webhook_body(payload: Mapping[str, Any]) -> bytes:
    """Return the exact bytes posted (and signed) for a payload."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


class WebhookChannel:
    """Posts a department's events to its HTTP endpoint as signed JSON."""

    def __init__(
        self,
        settings: Settings,
        client: aiohttp.ClientSession,
        *,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.client = client
        self.wall_clock = wall_clock

    async def deliver(self, item: Delivery) -> None:
        config = self.settings.departments.get(item.department_id)
        if config is None or "webhook" not in config.channels:
            raise DeliveryFailed(f"{item.department_id} has no webhook configured", permanent=True)
        secret = config.secret()
        if secret is None:
            raise DeliveryFailed(f"environment variable {config.secret_env} is not set")
        body = webhook_body(item.payload)
        key = str(item.payload.get("idempotency_key") or item.idempotency_key)
        event = item.payload.get("event", {})
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": USER_AGENT,
            IDEMPOTENCY_HEADER: key,
            EVENT_HEADER: str(event.get("kind", "")) if isinstance(event, dict) else "",
            **signed_headers(secret, int(self.wall_clock()), body),
        }
        timeout = aiohttp.ClientTimeout(total=self.settings.delivery.webhook_timeout_seconds)
        try:
            async with self.client.post(
                config.webhook_url,
                data=body,
                headers=headers,
                timeout=timeout,
                allow_redirects=False,
            ) as response:
                if 200 <= response.status < 300 or response.status == 409:
                    # 409: the department already has this idempotency key, i.e. delivered.
                    return
                text = (await response.text(errors="replace"))[:200]
                raise DeliveryFailed(
                    f"HTTP {response.status}: {text}",
                    retry_after=_retry_after(response.headers.get("Retry-After")),
                )
        except TimeoutError as error:
            raise DeliveryFailed("timed out") from error
        except aiohttp.ClientError as error:
            raise DeliveryFailed(f"{type(error).__name__}: {error}") from error


def _retry_after(value: str | None) -> float | None:
    if value and value.strip().isdigit():
        return min(float(value.strip()), 24 * 3600.0)
    return None


def backoff_seconds(attempts: int, settings: DeliverySettings) -> float:
    """Return the wait before the next try after `attempts` failures (exponential, jittered)."""
    exponent = min(max(attempts - 1, 0), 30)
    delay = min(settings.backoff_base_seconds * 2.0**exponent, settings.backoff_max_seconds)
    # Jitter keeps many rows that failed together from retrying together.
    return delay * random.uniform(0.8, 1.2)


class DeliveryWorker:
    """Claims due outbox rows and hands each to its channel."""

    def __init__(
        self,
        desk: TicketDesk,
        channels: Mapping[str, Channel],
        *,
        name: str | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.desk = desk
        self.sessions: async_sessionmaker[AsyncSession] = desk.sessions
        self.settings = desk.settings.delivery
        self.channels = dict(channels)
        self.name = name or f"worker-{secrets.token_hex(3)}"
        self.clock = clock or desk.clock
        self._wake = asyncio.Event()
        # A batch is delivered at once, but its results are written a few at a time, so a
        # worker never takes more of the process's database connections than this.
        self._writes = asyncio.Semaphore(DATABASE_WRITERS)

    def wake(self) -> None:
        """Look for work now instead of at the next poll (e.g. right after a ticket is filed)."""
        self._wake.set()

    async def claim(self, limit: int | None = None) -> list[Delivery]:
        """Take a lease on up to `limit` due rows of this worker's channels and return them."""
        if not self.channels:
            return []
        now = self.clock()
        token = secrets.token_hex(16)
        earlier = aliased(OutboxMessage)
        waiting_behind = exists().where(
            and_(
                earlier.ticket_id == OutboxMessage.ticket_id,
                earlier.channel == OutboxMessage.channel,
                earlier.department_id == OutboxMessage.department_id,
                earlier.status == "pending",
                earlier.id < OutboxMessage.id,
            )
        )
        due = (
            select(OutboxMessage.id)
            .where(
                OutboxMessage.status == "pending",
                OutboxMessage.channel.in_(list(self.channels)),
                OutboxMessage.next_attempt_at <= now,
                (OutboxMessage.locked_until.is_(None)) | (OutboxMessage.locked_until < now),
                ~waiting_behind,
            )
            .order_by(OutboxMessage.id)
            .limit(limit or self.settings.batch_size)
        )
        async with self.sessions() as session, session.begin():
            if session.get_bind().dialect.name == "postgresql":
                due = due.with_for_update(skip_locked=True, of=OutboxMessage)
            lease = now + dt.timedelta(seconds=self.settings.lease_seconds)
            claimed = (
                (
                    await session.execute(
                        update(OutboxMessage)
                        .where(OutboxMessage.id.in_(due.scalar_subquery()))
                        .values(locked_until=lease, claim_token=token)
                        .returning(OutboxMessage.id)
                        .execution_options(synchronize_session=False)
                    )
                )
                .scalars()
                .all()
            )
            if not claimed:
                return []
            rows = (
                (
                    await session.execute(
                        select(OutboxMessage)
                        .where(OutboxMessage.id.in_(claimed), OutboxMessage.claim_token == token)
                        .order_by(OutboxMessage.id)
                    )
                )
                .scalars()
                .all()
            )
            return [
                Delivery(
                    id=r.id,
                    ticket_id=r.ticket_id,
                    event_id=r.event_id,
                    department_id=r.department_id,
                    channel=r.channel,
                    idempotency_key=r.idempotency_key,
                    payload=dict(r.payload),
                    attempts=r.attempts,
                    claim_token=token,
                )
                for r in rows
            ]

    async def deliver(self, item: Delivery) -> str:
        """Deliver one claimed row and record the outcome; return the row's new status."""
        ticket = item.payload.get("ticket")
        number = ticket.get("number") if isinstance(ticket, dict) else None
        with log_context(ticket=number if isinstance(number, str) else None):
            status = await self._deliver(item)
        metrics.count_delivery(item.channel, status)
        return status

    async def _deliver(self, item: Delivery) -> str:
        channel = self.channels[item.channel]
        try:
            await channel.deliver(item)
        except asyncio.CancelledError:
            # Stopping: give the row back at once instead of waiting for the lease to run out.
            await asyncio.shield(self._release(item))
            raise
        except DeliveryFailed as failure:
            return await self._failed(item, failure)
        except Exception as error:
            log.exception("delivery %s (%s) crashed", item.id, item.channel)
            return await self._failed(item, DeliveryFailed(f"{type(error).__name__}: {error}"))
        return await self._sent(item)

    async def run_once(self) -> int:
        """Claim one batch and deliver it (rows of different tickets at once); return its size."""
        batch = await self.claim()
        if batch:
            # Collecting exceptions makes a stop (cancellation) wait for every delivery of the
            # batch to give its row back; otherwise the first to finish ends the wait and the
            # others' rows stay leased until their lease runs out.
            results = await asyncio.gather(
                *(self.deliver(item) for item in batch), return_exceptions=True
            )
            for result in results:
                if isinstance(result, BaseException):
                    raise result
        return len(batch)

    async def run_until_idle(self, *, max_batches: int = 10_000) -> int:
        """Deliver until nothing is due now; return how many rows were handled (for tests, CLI)."""
        total = 0
        for _ in range(max_batches):
            done = await self.run_once()
            total += done
            if not done:
                break
        return total

    async def run_forever(self, stop: asyncio.Event | None = None) -> None:
        """Deliver until `stop` is set or the task is cancelled; restarts lose nothing."""
        stop = stop or asyncio.Event()
        log.info("%s delivering %s", self.name, ", ".join(sorted(self.channels)) or "nothing")
        while not stop.is_set():
            try:
                done = await self.run_once()
            except Exception:
                log.exception("%s: claiming outbox rows failed; trying again shortly", self.name)
                done = 0
            if done:
                continue
            self._wake.clear()
            waiters = [
                asyncio.ensure_future(self._wake.wait()),
                asyncio.ensure_future(stop.wait()),
            ]
            try:
                await asyncio.wait(
                    waiters,
                    timeout=self.settings.poll_interval_seconds,
                    return_when=asyncio.FIRST_COMPLETED,
                )
            finally:
                for waiter in waiters:
                    waiter.cancel()

    # -- outcomes -----------------------------------------------------------------------------

    def _mine(self, item: Delivery) -> Any:
        return and_(OutboxMessage.id == item.id, OutboxMessage.claim_token == item.claim_token)

    async def _sent(self, item: Delivery) -> str:
        now = self.clock()
        async with self._writes, self.sessions() as session, session.begin():
            result = await session.execute(
                update(OutboxMessage)
                .where(self._mine(item))
                .values(
                    status="sent",
                    sent_at=now,
                    attempts=OutboxMessage.attempts + 1,
                    locked_until=None,
                    claim_token=None,
                    last_error=None,
                )
                .execution_options(synchronize_session=False)
            )
        if _rowcount(result) == 0:
            # Another worker took the row over after our lease ran out; its result stands.
            log.warning(
                "%s: lost the lease on outbox row %s before marking it sent", self.name, item.id
            )
            return "lost"
        return "sent"

    async def _release(self, item: Delivery) -> None:
        try:
            async with self._writes, self.sessions() as session, session.begin():
                await session.execute(
                    update(OutboxMessage)
                    .where(self._mine(item))
                    .values(locked_until=None, claim_token=None)
                    .execution_options(synchronize_session=False)
                )
        except Exception:
            log.exception("could not release outbox row %s; its lease will run out", item.id)

    async def _failed(self, item: Delivery, failure: DeliveryFailed) -> str:
        now = self.clock()
        attempts = item.attempts + 1
        # The reason may quote what a department's system answered, which may hold anything.
        error = storable(failure.reason)[:_MAX_ERROR]
        if failure.drop:
            status = "dropped"
        elif failure.permanent or attempts >= self.settings.max_attempts:
            status = "failed"
        else:
            status = "pending"
        wait = (
            failure.retry_after
            if failure.retry_after is not None
            else backoff_seconds(attempts, self.settings)
        )
        values: dict[str, Any] = {
            "status": status,
            "attempts": attempts,
            "last_error": error,
            "last_failed_at": now,
            "locked_until": None,
            "claim_token": None,
        }
        if status == "pending":
            values["next_attempt_at"] = now + dt.timedelta(seconds=wait)
        if status == "failed" and item.channel != "staff" and item.ticket_id is not None:
            # The alert is an event of the ticket, so it is written with the ticket locked.
            async with (
                self._writes,
                self.desk.locked_ticket(item.ticket_id) as (session, ticket, moment),
            ):
                result = await session.execute(
                    update(OutboxMessage)
                    .where(self._mine(item))
                    .values(**values)
                    .execution_options(synchronize_session=False)
                )
                if _rowcount(result):
                    await self.desk.record(
                        session,
                        ticket,
                        moment,
                        EventKind.DELIVERY_FAILED,
                        Actor.system(self.name),
                        data={
                            "outbox_id": item.id,
                            "channel": item.channel,
                            "department_id": item.department_id,
                            "attempts": attempts,
                            "error": error,
                        },
                        visible=False,
                    )
        else:
            async with self._writes, self.sessions() as session, session.begin():
                result = await session.execute(
                    update(OutboxMessage)
                    .where(self._mine(item))
                    .values(**values)
                    .execution_options(synchronize_session=False)
                )
                if failure.resident_blocked and _rowcount(result):
                    resident_id = item.payload.get("resident_id")
                    if isinstance(resident_id, int):
                        await session.execute(
                            update(Resident)
                            .where(Resident.id == resident_id)
                            .values(blocked_bot=True)
                            .execution_options(synchronize_session=False)
                        )
        level = logging.ERROR if status == "failed" else logging.WARNING
        log.log(
            level,
            "%s: outbox row %s (%s to %s) try %d: %s -> %s",
            self.name,
            item.id,
            item.channel,
            item.department_id or "-",
            attempts,
            error,
            status,
        )
        return status


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
