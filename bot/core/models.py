"""Database tables. Nothing a resident or officer did is ever deleted: tickets keep a timeline.

Times are stored as UTC. SQLite has no time zones, so `UTCDateTime` stores naive UTC and hands
back aware datetimes on every backend.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Named constraints so that migrations (and SQLite batch mode) can refer to them.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    """Return the current time, aware, in UTC."""
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp stored as naive UTC and read back as aware UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; use bot.core.models.utcnow()")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        return value.replace(tzinfo=dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


# -- residents and their questions ---------------------------------------------------------------


class Resident(Base):
    """A person who talks to the bot; identified by their Telegram user id."""

    __tablename__ = "residents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    telegram_user_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    # The private chat with the bot, where answers and notifications go.
    chat_id: Mapped[int] = mapped_column(BigInteger)
    language: Mapped[str] = mapped_column(String(8), default="zh")
    display_name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set when Telegram says the resident blocked the bot: notifications stop, nothing is lost.
    blocked_bot: Mapped[bool] = mapped_column(Boolean, default=False)
    # Personal data (docs/tickets.md, "Personal data"): when the privacy notice was shown, when
    # the resident last took a copy of their data, when they asked to be forgotten (the row is
    # then a husk: no name, no Telegram account).
    privacy_notice_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    data_exported_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    forgotten_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Question(Base):
    """One question a resident asked, what the matcher made of it, and how it ended."""

    __tablename__ = "questions"
    __table_args__ = (
        Index("ix_questions_created_at", "created_at"),
        # bot.tickets.figures counts a month's questions from this index alone.
        Index(
            "ix_questions_figures",
            "created_at",
            "decision",
            "escalated",
            "chosen_item_id",
            "feedback",
            "reason",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), index=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    text: Mapped[str] = mapped_column(Text)
    normalized: Mapped[str] = mapped_column(Text, default="")
    language: Mapped[str] = mapped_column(String(8), default="zh")
    decision: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(64), default="")
    score: Mapped[float] = mapped_column(Float, default=0.0)
    item_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    candidates: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # The item the resident picked from the suggestions, if any.
    chosen_item_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    # "helpful" or "not_helpful", from the buttons under the answer card.
    feedback: Mapped[str | None] = mapped_column(String(16), nullable=True)
    feedback_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    escalated: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set when the text (and the chat it came from) was erased after [privacy] question_days.
    text_erased_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Escalation(Base):
    """A question handed to staff, and the staff answer that went back to the resident."""

    __tablename__ = "escalations"
    __table_args__ = (Index("ix_escalations_status", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    question_id: Mapped[int] = mapped_column(ForeignKey("questions.id"), unique=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), index=True)
    # "open", "answered" or "closed" (closed without an answer, e.g. spam).
    status: Mapped[str] = mapped_column(String(16), default="open")
    # Why it reached staff: "escalate" (nothing fits), "not_helpful", "person" (asked for one).
    cause: Mapped[str] = mapped_column(String(32), default="escalate")
    staff_chat_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    staff_message_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    posted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    repost_count: Mapped[int] = mapped_column(Integer, default=0)
    answered_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    answered_via: Mapped[str | None] = mapped_column(String(16), nullable=True)
    answer_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    answered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Set when staff taught the knowledge base this question as a new phrasing of an item.
    learned_item_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    learned_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class BotState(Base):
    """python-telegram-bot persistence (conversations, user and chat data), so restarts lose nothing."""

    __tablename__ = "bot_state"
    __table_args__ = (UniqueConstraint("kind", "key", name="uq_bot_state_kind_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # "user_data", "chat_data", "bot_data", "callback_data" or "conversation:<name>".
    kind: Mapped[str] = mapped_column(String(128))
    key: Mapped[str] = mapped_column(String(256))
    value: Mapped[Any] = mapped_column(JSON)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


# -- tickets: complaints, reports, suggestions, help requests, disclosure applications -----------


class TicketCounter(Base):
    """The last ticket number given out per year, for numbers like TS-2026-000123."""

    __tablename__ = "ticket_counters"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_number: Mapped[int] = mapped_column(Integer, default=0)


class Ticket(Base):
    """A complaint, report, suggestion, help request or disclosure application.

    The status is a summary of the timeline (`TicketEvent`), kept for fast listing; the events
    are the record.
    """

    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_status_department", "status", "department_id"),
        Index("ix_tickets_created_at", "created_at"),
        Index("ix_tickets_department_created", "department_id", "created_at"),
        Index("ix_tickets_reply_deadline", "reply_deadline"),
        # The figures count tickets by the month they were assigned and replied in.
        Index("ix_tickets_assigned_at", "assigned_at"),
        Index("ix_tickets_replied_at", "replied_at"),
        # The console's complaint log pages by (created_at, id); on PostgreSQL migration 0004
        # also adds a GIN index over ticket_bigrams(description) for full-text search.
        Index("ix_tickets_created_id", "created_at", "id"),
        Index("ix_tickets_type_created", "type", "created_at", "id"),
        Index("ix_tickets_status_created", "status", "created_at", "id"),
        Index("ix_tickets_category_created", "category", "created_at", "id"),
        # bot.tickets.figures reads a month from these alone (index-only scans on PostgreSQL).
        Index(
            "ix_tickets_figures_assigned",
            "assigned_at",
            "department_id",
            "status",
            "acknowledged_at",
            "ack_deadline",
        ),
        Index("ix_tickets_figures_due", "reply_deadline", "department_id", "status", "replied_at"),
        Index("ix_tickets_figures_replied", "replied_at", "department_id", "rating"),
        Index("ix_tickets_resident_pseudonym", "resident_pseudonym"),
        Index("ix_tickets_closed_at", "closed_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    # A bot.core.vocabulary.TicketType value: complaint, report, suggestion, help, disclosure
    type: Mapped[str] = mapped_column(String(16), index=True)
    category: Mapped[str] = mapped_column(String(128), index=True)
    department_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    # A bot.core.vocabulary.TicketStatus value: received, assigned, acknowledged, replied,
    # closed, returned, rejected (the lifecycle is in docs/tickets.md)
    status: Mapped[str] = mapped_column(String(16), default="received")
    resident_id: Mapped[int | None] = mapped_column(
        ForeignKey("residents.id"), nullable=True, index=True
    )
    language: Mapped[str] = mapped_column(String(8), default="zh")
    description: Mapped[str] = mapped_column(Text)
    location_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    latitude: Mapped[float | None] = mapped_column(Float, nullable=True)
    longitude: Mapped[float | None] = mapped_column(Float, nullable=True)
    contact_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    contact_phone: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The resident agreed that the department may see who they are and how to reach them.
    share_identity: Mapped[bool] = mapped_column(Boolean, default=False)
    anonymous: Mapped[bool] = mapped_column(Boolean, default=False)
    routing_confidence: Mapped[float] = mapped_column(Float, default=0.0)
    ack_deadline: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    reply_deadline: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    extended: Mapped[bool] = mapped_column(Boolean, default=False)
    extension_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    assigned_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    replied_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    overdue: Mapped[bool] = mapped_column(Boolean, default=False)
    # The acknowledgement deadline passed without 签收 (escalated once, like `overdue`).
    ack_overdue: Mapped[bool] = mapped_column(Boolean, default=False)
    ack_reminded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    reply_reminded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The department asked the resident for more information and is waiting for it.
    awaiting_resident: Mapped[bool] = mapped_column(Boolean, default=False)
    # How a disclosure application was answered (公开, 部分公开, 不予公开, …), for annual reports.
    outcome: Mapped[str | None] = mapped_column(String(32), nullable=True)
    supervised: Mapped[bool] = mapped_column(Boolean, default=False)
    solved: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    rating: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rating_comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    rated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    supporters: Mapped[int] = mapped_column(Integer, default=0)
    # Made up by the try-out's sample data (tryout/samples.py), never filed by anyone: shown as a
    # sample in the console, left alone by the ticket clock, removed with the samples.
    sample: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false(), index=True
    )
    # The resident's form this ticket was filed from: the same form submitted again (a button
    # handled twice, e.g. by a new leader after a crash) finds this ticket instead of a twin.
    form_key: Mapped[str | None] = mapped_column(
        String(64), nullable=True, unique=True, index=True
    )
    # An anonymous report has no resident_id: its keyed pseudonym and sealed address
    # (bot/core/privacy.py) let the resident follow it without the database knowing who they are.
    resident_pseudonym: Mapped[str | None] = mapped_column(String(64), nullable=True)
    resident_sealed: Mapped[str | None] = mapped_column(String(80), nullable=True)
    # Set when the retention sweep or the resident's /forget erased the personal data.
    personal_data_erased_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class TicketAttachment(Base):
    """A photo or file the resident attached, kept by its Telegram file id."""

    __tablename__ = "ticket_attachments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    telegram_file_id: Mapped[str] = mapped_column(String(256))
    file_unique_id: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class AttachmentFile(Base):
    """The bytes of a resident's photo, fetched from Telegram in the background and kept here,
    so that it outlives Telegram's file links (bot/tickets/attachments.py).

    `status`: pending (not fetched yet, or to be tried again at `next_attempt_at`), stored,
    too_large (over [tickets] max_photo_bytes), failed (gave up after the last try).
    """

    __tablename__ = "attachment_files"
    __table_args__ = (Index("ix_attachment_files_status_next", "status", "next_attempt_at"),)

    attachment_id: Mapped[int] = mapped_column(
        ForeignKey("ticket_attachments.id"), primary_key=True
    )
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    claim_token: Mapped[str | None] = mapped_column(String(64), nullable=True)
    content_type: Mapped[str | None] = mapped_column(String(64), nullable=True)
    size: Mapped[int | None] = mapped_column(Integer, nullable=True)
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    content: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, deferred=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    fetched_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class TicketDocument(Base):
    """A document a department gave a disclosure applicant with its answer: a file (its bytes,
    and its Telegram file id once Telegram has it) or a link. Kept for the console."""

    __tablename__ = "ticket_documents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    # The replied event the document came with.
    event_id: Mapped[int | None] = mapped_column(ForeignKey("ticket_events.id"), nullable=True)
    file_name: Mapped[str] = mapped_column(String(200), default="")
    media_type: Mapped[str] = mapped_column(String(100), default="")
    size: Mapped[int] = mapped_column(Integer, default=0)
    sha256: Mapped[str] = mapped_column(String(64), default="")
    # NULL for a link, or for a file Telegram holds that was too large to fetch.
    content: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, deferred=True)
    telegram_file_id: Mapped[str] = mapped_column(String(256), default="")
    url: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class TicketEvent(Base):
    """One step in a ticket's timeline: who did what, when. Never updated, never deleted.

    Chained by hash to the event before it, so a change made past the application shows.
    """

    __tablename__ = "ticket_events"
    __table_args__ = (Index("ix_ticket_events_ticket_created", "ticket_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    kind: Mapped[str] = mapped_column(String(32))
    # resident, staff, department, system
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str] = mapped_column(String(200), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    visible_to_resident: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The tamper-evident chain (bot/core/audit_chain.py): set when the row is inserted.
    chain_seq: Mapped[int | None] = mapped_column(Integer, nullable=True, unique=True, index=True)
    content_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    chain_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)


class TicketSupporter(Base):
    """A resident who added their voice to an existing open ticket instead of filing again."""

    __tablename__ = "ticket_supporters"
    __table_args__ = (UniqueConstraint("ticket_id", "resident_id", name="uq_ticket_supporter"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class OutboxMessage(Base):
    """A delivery to a department, written in the same transaction as the event it carries.

    Delivered at least once by the worker; the department de-duplicates by `idempotency_key`.
    A staff answer to an escalated question goes to the resident the same way, without a
    ticket or an event.
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_status_next", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(
        ForeignKey("tickets.id"), nullable=True, index=True
    )
    event_id: Mapped[int | None] = mapped_column(ForeignKey("ticket_events.id"), nullable=True)
    department_id: Mapped[str] = mapped_column(String(128))
    # telegram, webhook (a department); resident, staff, supervisor (Telegram notices)
    channel: Mapped[str] = mapped_column(String(16))
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    # pending, sent, failed (after the last try; staff are alerted), dropped (the recipient
    # cannot be reached and retrying would not help, e.g. a resident blocked the bot)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Which claim holds the lease: a worker whose lease ran out cannot overwrite the next one's.
    claim_token: Mapped[str | None] = mapped_column(String(64), nullable=True)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_failed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CallbackNonce(Base):
    """Signed callbacks already accepted from departments' systems, so replays are refused."""

    __tablename__ = "callback_nonces"
    __table_args__ = (Index("ix_callback_nonces_created_at", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    department_id: Mapped[str] = mapped_column(String(128))
    nonce: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


# -- the web console: accounts, audit log, login throttling, sessions ----------------------------


class User(Base):
    """An account of the web console."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    # staff, officer, manager, admin
    role: Mapped[str] = mapped_column(String(16))
    department_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    telegram_user_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AuditEntry(Base):
    """Every view of personal data and every change made in the console."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_created_at", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True, index=True)
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(32), default="")
    target_id: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ip: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The tamper-evident chain (bot/core/audit_chain.py): set when the row is inserted.
    chain_seq: Mapped[int | None] = mapped_column(Integer, nullable=True, unique=True, index=True)
    content_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    chain_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)


class ChainHead(Base):
    """The last link of a tamper-evident chain ("audit_log", "ticket_events"): its seq and hash.

    Appends lock this row, so they queue and the chain never forks (bot/core/audit_chain.py).
    """

    __tablename__ = "audit_chain_heads"

    chain: Mapped[str] = mapped_column(String(32), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    hash: Mapped[str] = mapped_column(String(64))


class LoginAttempt(Base):
    """A login attempt, for throttling guessers."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_username_created", "username", "created_at"),
        Index("ix_login_attempts_ip_created", "ip", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    ip: Mapped[str] = mapped_column(String(64), default="")
    success: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebSession(Base):
    """A console session, stored server side so logging out and disabling a user end it."""

    __tablename__ = "web_sessions"
    __table_args__ = (Index("ix_web_sessions_expires_at", "expires_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    ip: Mapped[str] = mapped_column(String(64), default="")


# -- the knowledge base edited in the console ----------------------------------------------------


class KnowledgeChange(Base):
    """A proposed change to one item of the knowledge base, and what its reviewer decided.

    The files of the knowledge base stay the source of truth: an approved change is written to
    its TOML file and becomes a `KnowledgeVersion`.
    """

    __tablename__ = "knowledge_changes"
    __table_args__ = (
        Index("ix_knowledge_changes_status", "status", "created_at"),
        Index("ix_knowledge_changes_item", "item_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[str] = mapped_column(String(128))
    # "guide" or "disclosure"
    kind: Mapped[str] = mapped_column(String(16))
    # The department answering for the item (the new one when the change moves it).
    department_id: Mapped[str] = mapped_column(String(128), index=True)
    # create, edit, retire, restore
    action: Mapped[str] = mapped_column(String(16))
    # The item's fields as written to its file; None when the item is retired.
    content: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # The SHA-256 of the file the change was made against ("" for a new item): an item changed
    # since cannot be overwritten by an outdated proposal.
    base_hash: Mapped[str] = mapped_column(String(64), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    # proposed, approved, sent_back, withdrawn
    status: Mapped[str] = mapped_column(String(16), default="proposed")
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    author_name: Mapped[str] = mapped_column(String(200), default="")
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    reviewer_name: Mapped[str] = mapped_column(String(200), default="")
    review_comment: Mapped[str] = mapped_column(Text, default="")
    reviewed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The version an approved change became.
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class KnowledgeVersion(Base):
    """One version of an item as it was published: its file, who wrote and who approved it."""

    __tablename__ = "knowledge_versions"
    __table_args__ = (
        UniqueConstraint("item_id", "number", name="uq_knowledge_versions_item_number"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[str] = mapped_column(String(128), index=True)
    number: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    # baseline (the file as found before the first change), create, edit, retire, restore
    action: Mapped[str] = mapped_column(String(16))
    content: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # The file's text ("" once retired).
    toml: Mapped[str] = mapped_column(Text, default="")
    change_id: Mapped[int | None] = mapped_column(
        ForeignKey("knowledge_changes.id"), nullable=True
    )
    author_name: Mapped[str] = mapped_column(String(200), default="")
    reviewer_name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class KnowledgeReview(Base):
    """When an item was last confirmed current, and by whom (freshness)."""

    __tablename__ = "knowledge_reviews"

    item_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    reviewed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    reviewer_name: Mapped[str] = mapped_column(String(200), default="")
    # The department's name and phone when the item was reviewed (None: reviewed before they
    # were recorded); a change of either makes the item due for review again.
    department_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    department_phone: Mapped[str | None] = mapped_column(String(100), nullable=True)


class KnowledgeState(Base):
    """The knowledge base's published version: every process polls it and reloads on a change."""

    __tablename__ = "knowledge_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)
    changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class KnowledgeFile(Base):
    """The full text of one knowledge-base file as a published version left it.

    A published change stores every file it changed, with the version it raised
    (bot/answering/replication.py); every host brings its knowledge folder to the newest row
    of each path, so a change published on one host reaches the others.
    """

    __tablename__ = "knowledge_files"
    __table_args__ = (UniqueConstraint("path", "version", name="uq_knowledge_files_path_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The published version (`knowledge_state.version`) the change raised.
    version: Mapped[int] = mapped_column(Integer, index=True)
    # Relative to the knowledge folder, with "/" (guides/marriage-registration.toml).
    path: Mapped[str] = mapped_column(String(300))
    # The file's text, verbatim (comments and layout kept); None when the change removed it.
    content: Mapped[str | None] = mapped_column(Text, nullable=True)
    # SHA-256 of the text ("" when removed), and of the file the change was made against ("" when
    # there was none): a host's file with neither hash of any row was changed by hand.
    sha256: Mapped[str] = mapped_column(String(64), default="")
    base_sha256: Mapped[str] = mapped_column(String(64), default="")
    published_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class AnswerWatch(Base):
    """A resident who asked to be told when their unanswered question gets an answer."""

    __tablename__ = "answer_watches"
    __table_args__ = (Index("ix_answer_watches_open", "notified_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    question_id: Mapped[int] = mapped_column(ForeignKey("questions.id"), unique=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), index=True)
    # The item that answered it, once one did.
    item_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    notified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


# -- several processes: leadership, clock ticks, Telegram updates handled ----------------------


class Lease(Base):
    """Who leads (serves Telegram) until when: one row per lease name, renewed by its holder.

    The times are the database's clock, never a process's, so hosts whose clocks differ agree.
    """

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    # Grows by one whenever another holder (or the same after losing it) takes the lease.
    term: Mapped[int] = mapped_column(BigInteger, default=1)
    acquired_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class ClockTick(Base):
    """A periodic job's tick, claimed by the one process that runs it."""

    __tablename__ = "clock_ticks"

    job: Mapped[str] = mapped_column(String(64), primary_key=True)
    tick: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    claimed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class TelegramUpdate(Base):
    """A Telegram update handled to the end, kept until the confirmed offset passes it."""

    __tablename__ = "telegram_updates"

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    handled_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class TelegramSend(Base):
    """A Bot API call an update's handlers made, with Telegram's answer, kept until the update
    is confirmed: a leader that handles the update again (the last one was killed before it was
    recorded) takes these answers instead of sending again (bot/telegram/journal.py)."""

    __tablename__ = "telegram_sends"

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    # The call's place among the update's journaled calls (0, 1, ...).
    ordinal: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    method: Mapped[str] = mapped_column(String(64))
    chat_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The Bot API's answer as it came (JSON), handed back to the handler on a replay.
    result: Mapped[str] = mapped_column(Text)
    sent_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class TelegramCursor(Base):
    """The next getUpdates offset: every update below it was handled and is confirmed."""

    __tablename__ = "telegram_cursor"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    next_offset: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
