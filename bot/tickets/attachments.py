"""Residents' photos, kept: fetched from Telegram in the background and stored in the database.

A photo reaches the bot as a Telegram file id; Telegram's download links expire, and a console
served on another machine has no Telegram at all. So every photo a ticket gets is queued (an
`AttachmentFile` row, status pending, written with the attachment) and a `PhotoFetcher` beside
the delivery worker downloads it through the bot's own Bot API server (`PhotoSource`, in
bot/workers.py), checks that it is an image no bigger than [tickets] max_photo_bytes, and keeps
its bytes. A failed download is tried again with [delivery]'s back-off, up to [tickets]
photo_fetch_attempts times; several workers share the queue by leases, like the outbox. The
resident's form never waits for any of it.

The console shows a ticket's photos to whoever may see the ticket (`bot.tickets.reads.may_see`):
they are part of the report, not of the resident's identity.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.config import Settings
from bot.core.db import conflict_insert
from bot.core.models import AttachmentFile, TicketAttachment, utcnow

log = logging.getLogger(__name__)

PENDING = "pending"
STORED = "stored"
TOO_LARGE = "too_large"
FAILED = "failed"
PHOTO_STATUSES = (PENDING, STORED, TOO_LARGE, FAILED)
MAX_ERROR_CHARS = 500


class PhotoFetchFailed(Exception):
    """A download did not work. `permanent`: trying again cannot help (an unknown file id);
    `too_large`: the file is bigger than the bot keeps."""

    def __init__(self, message: str, *, permanent: bool = False, too_large: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent or too_large
        self.too_large = too_large


class PhotoSource(Protocol):
    """Where photos are downloaded from (the Telegram Bot API in bot/workers.py)."""

    async def fetch(self, file_id: str, max_bytes: int) -> bytes:
        """Return a file's bytes; raise PhotoFetchFailed."""
        ...


def image_type(data: bytes) -> str | None:
    """Return the content type of a JPEG, PNG, GIF or WebP image by its first bytes, else None.

    The type is read from the bytes, never taken from the sender, so the console serves
    images only, each with its true type."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def queue_photos(session: AsyncSession, attachments: Iterable[TicketAttachment]) -> None:
    """Queue flushed photo attachments for fetching, in the caller's transaction."""
    now = utcnow()
    session.add_all(
        AttachmentFile(
            attachment_id=attachment.id,
            status=PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        for attachment in attachments
        if attachment.kind == "photo"
    )


@dataclass(frozen=True, slots=True)
class Claim:
    """A photo a fetcher holds the lease of."""

    attachment_id: int
    file_id: str
    token: str
    attempts: int


@dataclass(frozen=True, slots=True)
class PhotoState:
    """One photo of a ticket as the console lists it."""

    attachment_id: int
    status: str
    content_type: str | None
    size: int | None
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class StoredPhoto:
    """A kept photo's bytes and their type."""

    attachment_id: int
    content: bytes
    content_type: str
    sha256: str


class AttachmentStore:
    """The queue of photos to fetch and the photos kept."""

    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        *,
        now: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.now = now

    @property
    def max_bytes(self) -> int:
        return self.settings.tickets.max_photo_bytes

    async def queue_missing(self) -> int:
        """Queue photos attached without a queue row (by a version of the bot before this
        one, still running during an upgrade); return how many."""
        async with self.sessions() as session, session.begin():
            dialect = session.get_bind().dialect.name
            now = self.now()
            missing = (
                select(
                    TicketAttachment.id,
                    TicketAttachment.created_at,
                )
                .outerjoin(AttachmentFile, AttachmentFile.attachment_id == TicketAttachment.id)
                .where(TicketAttachment.kind == "photo", AttachmentFile.attachment_id.is_(None))
            )
            rows = (await session.execute(missing)).all()
            if not rows:
                return 0
            insert = conflict_insert(dialect)(AttachmentFile).values(
                [
                    {
                        "attachment_id": attachment_id,
                        "status": PENDING,
                        "attempts": 0,
                        "next_attempt_at": now,
                        "created_at": created_at or now,
                    }
                    for attachment_id, created_at in rows
                ]
            )
            await session.execute(insert.on_conflict_do_nothing(index_elements=["attachment_id"]))
            return len(rows)

    async def claim(self, limit: int) -> list[Claim]:
        """Take the lease of up to `limit` photos due for fetching."""
        now = self.now()
        lease = dt.timedelta(seconds=self.settings.delivery.lease_seconds)
        token = secrets.token_hex(16)
        free = or_(AttachmentFile.locked_until.is_(None), AttachmentFile.locked_until < now)
        due = and_(AttachmentFile.status == PENDING, AttachmentFile.next_attempt_at <= now, free)
        async with self.sessions() as session, session.begin():
            wanted = (
                select(AttachmentFile.attachment_id)
                .where(due)
                .order_by(AttachmentFile.next_attempt_at, AttachmentFile.attachment_id)
                .limit(limit)
            )
            ids = list((await session.execute(wanted)).scalars())
            if not ids:
                return []
            # The condition is checked again as each row is taken: another worker that took
            # it first leaves it locked, and it is skipped.
            await session.execute(
                update(AttachmentFile)
                .where(AttachmentFile.attachment_id.in_(ids), due)
                .values(locked_until=now + lease, claim_token=token)
                .execution_options(synchronize_session=False)
            )
            rows = await session.execute(
                select(
                    AttachmentFile.attachment_id,
                    TicketAttachment.telegram_file_id,
                    AttachmentFile.attempts,
                )
                .join(TicketAttachment, TicketAttachment.id == AttachmentFile.attachment_id)
                .where(AttachmentFile.claim_token == token)
                .order_by(AttachmentFile.attachment_id)
            )
            return [
                Claim(attachment_id, file_id, token, attempts)
                for attachment_id, file_id, attempts in rows.all()
            ]

    async def keep(self, claim: Claim, data: bytes) -> str:
        """Keep a downloaded photo if it is an image within the size limit; return the status."""
        if len(data) > self.max_bytes:
            await self.fail(claim, f"{len(data)} bytes, over {self.max_bytes}", too_large=True)
            return TOO_LARGE
        content_type = image_type(data)
        if content_type is None:
            await self.fail(claim, "not a JPEG, PNG, GIF or WebP image", permanent=True)
            return FAILED
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(AttachmentFile)
                .where(
                    AttachmentFile.attachment_id == claim.attachment_id,
                    AttachmentFile.claim_token == claim.token,
                )
                .values(
                    status=STORED,
                    content=data,
                    content_type=content_type,
                    size=len(data),
                    sha256=hashlib.sha256(data).hexdigest(),
                    fetched_at=self.now(),
                    attempts=claim.attempts + 1,
                    locked_until=None,
                    claim_token=None,
                    last_error=None,
                )
                .execution_options(synchronize_session=False)
            )
        return STORED

    async def fail(
        self, claim: Claim, error: str, *, permanent: bool = False, too_large: bool = False
    ) -> str:
        """Record a failed try: again later with back-off, or given up; return the status."""
        attempts = claim.attempts + 1
        delivery = self.settings.delivery
        if too_large:
            status = TOO_LARGE
        elif permanent or attempts >= self.settings.tickets.photo_fetch_attempts:
            status = FAILED
        else:
            status = PENDING
        wait = min(
            delivery.backoff_max_seconds, delivery.backoff_base_seconds * 2 ** (attempts - 1)
        )
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(AttachmentFile)
                .where(
                    AttachmentFile.attachment_id == claim.attachment_id,
                    AttachmentFile.claim_token == claim.token,
                )
                .values(
                    status=status,
                    attempts=attempts,
                    next_attempt_at=self.now() + dt.timedelta(seconds=wait),
                    locked_until=None,
                    claim_token=None,
                    last_error=error[:MAX_ERROR_CHARS],
                )
                .execution_options(synchronize_session=False)
            )
        if status != PENDING:
            log.warning("photo %d not kept (%s): %s", claim.attachment_id, status, error)
        return status


async def ticket_photos(session: AsyncSession, ticket_id: int) -> list[PhotoState]:
    """Return a ticket's photos in the order they came, with whether each is kept yet."""
    rows = await session.execute(
        select(
            TicketAttachment.id,
            AttachmentFile.status,
            AttachmentFile.content_type,
            AttachmentFile.size,
            TicketAttachment.created_at,
        )
        .outerjoin(AttachmentFile, AttachmentFile.attachment_id == TicketAttachment.id)
        .where(TicketAttachment.ticket_id == ticket_id, TicketAttachment.kind == "photo")
        .order_by(TicketAttachment.id)
    )
    return [
        PhotoState(attachment_id, status or PENDING, content_type, size, created_at)
        for attachment_id, status, content_type, size, created_at in rows.all()
    ]


async def stored_photo(
    session: AsyncSession, ticket_id: int, attachment_id: int
) -> StoredPhoto | None:
    """Return a kept photo of a ticket (None: not this ticket's, or not kept)."""
    row = (
        await session.execute(
            select(AttachmentFile.content, AttachmentFile.content_type, AttachmentFile.sha256)
            .join(TicketAttachment, TicketAttachment.id == AttachmentFile.attachment_id)
            .where(
                AttachmentFile.attachment_id == attachment_id,
                TicketAttachment.ticket_id == ticket_id,
                TicketAttachment.kind == "photo",
                AttachmentFile.status == STORED,
            )
        )
    ).first()
    if row is None or row[0] is None or row[1] is None:
        return None
    return StoredPhoto(attachment_id, bytes(row[0]), row[1], row[2] or "")


class PhotoFetcher:
    """Fetches queued photos through a `PhotoSource` until stopped; woken by new tickets."""

    def __init__(
        self,
        store: AttachmentStore,
        source: PhotoSource,
        *,
        batch_size: int = 5,
        poll_interval: float | None = None,
    ) -> None:
        self.store = store
        self.source = source
        self.batch_size = batch_size
        self.poll_interval = (
            poll_interval
            if poll_interval is not None
            else max(store.settings.delivery.poll_interval_seconds, 1.0)
        )
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Look at the queue now rather than at the next poll."""
        self._wake.set()

    async def fetch_one(self, claim: Claim) -> str:
        """Download one claimed photo and keep it, or record why not; return the status."""
        try:
            data = await self.source.fetch(claim.file_id, self.store.max_bytes)
        except PhotoFetchFailed as error:
            return await self.store.fail(
                claim, str(error), permanent=error.permanent, too_large=error.too_large
            )
        except Exception as error:  # a fetch must never stop the loop
            log.exception("fetching photo %d failed", claim.attachment_id)
            return await self.store.fail(claim, f"{type(error).__name__}: {error}")
        return await self.store.keep(claim, data)

    async def run_once(self) -> int:
        """Fetch one batch of due photos; return how many were tried."""
        claims = await self.store.claim(self.batch_size)
        for claim in claims:
            await self.fetch_one(claim)
        return len(claims)

    async def run_until_idle(self) -> int:
        """Fetch until no photo is due; return how many were tried."""
        await self.store.queue_missing()
        total = 0
        while tried := await self.run_once():
            total += tried
        return total

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Fetch until `stop` is set, looking at the queue when woken or every poll interval."""
        try:
            await self.store.queue_missing()
        except Exception:
            log.exception("queueing photos attached by an earlier version failed")
        while not stop.is_set():
            self._wake.clear()
            try:
                if await self.run_once():
                    continue
            except Exception:
                log.exception("the photo fetcher failed; trying again")
            waiters = [
                asyncio.ensure_future(stop.wait()),
                asyncio.ensure_future(self._wake.wait()),
            ]
            try:
                await asyncio.wait(
                    waiters, timeout=self.poll_interval, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                for waiter in waiters:
                    waiter.cancel()
