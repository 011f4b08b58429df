"""What each ticket event sends, and to whom: rows of the outbox, written in the event's transaction.

The outbox is the only way a ticket change leaves the database. A row is added in the same
transaction as the event it carries, so either both exist or neither does; `bot.tickets.delivery`
then delivers every row at least once. Channels:

- `telegram` and `webhook`: the ticket's department, as configured under [departments.<id>];
  a department with only the web console gets no rows (the console reads the tickets).
- `resident`: a notice to the resident in their Telegram chat, in their language; also a staff
  member's answer to a question the bot handed over (`escalation_answer_message`), which
  belongs to no ticket.
- `staff`: the staff chat ([telegram] staff_chat_id): triage, hand-backs, failed deliveries.
- `supervisor`: the supervisor chat ([telegram] supervisor_chat_id): overdue tickets (督办).

Payloads are written now, not at delivery, so a department receives what was true when the
event happened. The resident's identity and contact go into a department's payload only when
the resident agreed to share them, and never for an anonymous report.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.answering.knowledge_base import KnowledgeBase
from bot.core.config import Settings
from bot.core.models import OutboxMessage, Ticket, TicketAttachment, TicketDocument, TicketEvent
from bot.core.vocabulary import WITHDRAWN, EventKind

# Events a department hears about; `withdrawn` goes to a department a ticket was taken from.
DEPARTMENT_EVENTS = frozenset(
    {
        EventKind.ASSIGNED,
        EventKind.INFORMATION_ADDED,
        EventKind.REMINDER,
        EventKind.ESCALATED,
        EventKind.REOPENED,
        EventKind.CLOSED,
        EventKind.REJECTED,
    }
)
# Events the resident is told about as they happen; the caller passes notify_resident=False
# for the resident's own actions (confirmed in the chat) and for the assignment at filing.
RESIDENT_EVENTS = frozenset(
    {
        EventKind.ASSIGNED,
        EventKind.ACKNOWLEDGED,
        EventKind.INFO_REQUESTED,
        EventKind.REPLIED,
        EventKind.RETURNED,
        EventKind.REJECTED,
        EventKind.EXTENDED,
        EventKind.ESCALATED,
        EventKind.CLOSED,
        EventKind.REOPENED,
    }
)
STAFF_EVENTS = frozenset({EventKind.TRIAGE, EventKind.RETURNED, EventKind.DELIVERY_FAILED})
SUPERVISOR_EVENTS = frozenset({EventKind.ESCALATED})

PAYLOAD_VERSION = 1


# A `resident` row that sends the file of a disclosure answer (its `document_id`), after the
# answer's own notice; a link travels in the notice itself.
DOCUMENT_DELIVERY = "document"


def document_summary(document: TicketDocument) -> dict[str, Any]:
    """Return what an answer's event, its notice and a department's payload say of a document."""
    return {
        "id": document.id,
        "name": document.file_name,
        "media_type": document.media_type,
        "size": document.size,
        "sha256": document.sha256,
        "url": document.url,
    }


def document_to_send(payload: Mapping[str, Any]) -> int | None:
    """Return the id of the document a `resident` row sends, None for any other row."""
    if payload.get("send") != DOCUMENT_DELIVERY:
        return None
    document_id = payload.get("document_id")
    return document_id if isinstance(document_id, int) else None


def idempotency_key(number: str, event_id: int) -> str:
    """Return the key a department de-duplicates deliveries by: ticket number and event id."""
    return f"{number}:{event_id}"


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def department_payload(
    ticket: Ticket,
    event: TicketEvent,
    kb: KnowledgeBase,
    attachments: list[TicketAttachment],
    *,
    kind: str | None = None,
) -> dict[str, Any]:
    """Return what a department receives about an event: the ticket as the department may see it."""
    department = kb.departments.get(ticket.department_id or "")
    identity: dict[str, Any] | None = None
    if ticket.share_identity and not ticket.anonymous:
        identity = {"name": ticket.contact_name, "phone": ticket.contact_phone}
    location: dict[str, Any] | None = None
    if ticket.latitude is not None or ticket.location_text:
        location = {
            "latitude": ticket.latitude,
            "longitude": ticket.longitude,
            "text": ticket.location_text,
        }
    return {
        "version": PAYLOAD_VERSION,
        "idempotency_key": idempotency_key(ticket.number, event.id),
        "event": {
            "id": event.id,
            "kind": kind or event.kind,
            "actor_type": event.actor_type,
            "body": event.body,
            "data": event.data,
            "at": _iso(event.created_at),
        },
        "ticket": {
            "number": ticket.number,
            "type": ticket.type,
            "category": ticket.category,
            "status": ticket.status,
            "department_id": ticket.department_id,
            "department_name": department.name if department else None,
            "description": ticket.description,
            "language": ticket.language,
            "location": location,
            "photos": sum(1 for a in attachments if a.kind == "photo"),
            "anonymous": ticket.anonymous,
            "resident": identity,
            "supporters": ticket.supporters,
            "created_at": _iso(ticket.created_at),
            "ack_deadline": _iso(ticket.ack_deadline),
            "reply_deadline": _iso(ticket.reply_deadline),
            "extended": ticket.extended,
            "supervised": ticket.supervised,
        },
    }


def notice_payload(ticket: Ticket, event: TicketEvent, kb: KnowledgeBase) -> dict[str, Any]:
    """Return what a notice to the resident, staff or the supervisor is rendered from."""
    department = kb.departments.get(ticket.department_id or "")
    return {
        "version": PAYLOAD_VERSION,
        "ticket_id": ticket.id,
        "number": ticket.number,
        "type": ticket.type,
        "category": ticket.category,
        "status": ticket.status,
        "resident_id": ticket.resident_id,
        # An anonymous report's resident, sealed (bot/core/privacy.py): only the bot can open it.
        "resident_sealed": ticket.resident_sealed,
        "department_id": ticket.department_id,
        "department_name": department.name if department else None,
        "department_name_en": department.name_en if department else None,
        "reply_deadline": _iso(ticket.reply_deadline),
        "description": ticket.description,
        "event": {
            "id": event.id,
            "kind": event.kind,
            "actor_type": event.actor_type,
            "body": event.body,
            "data": event.data,
            "at": _iso(event.created_at),
        },
    }


ESCALATION_ANSWER = "escalation_answer"


def escalation_answer_message(
    *,
    escalation_id: int,
    resident_id: int,
    language: str,
    question: str,
    answer: str,
    now: dt.datetime,
    claim: tuple[str, dt.datetime] | None = None,
) -> OutboxMessage:
    """Return the row that sends a staff answer to the resident who asked.

    The caller adds it in the transaction that records the answer. `claim` (token, lease end)
    leases it to the caller, which delivers it at once instead of waiting for a worker.
    """
    payload = {
        "kind": ESCALATION_ANSWER,
        "escalation_id": escalation_id,
        "resident_id": resident_id,
        "language": language,
        "question": question,
        "answer": answer,
    }
    return _to_resident(f"escalation:{escalation_id}:answer", payload, now, claim)


def _to_resident(
    key: str,
    payload: dict[str, Any],
    now: dt.datetime,
    claim: tuple[str, dt.datetime] | None = None,
) -> OutboxMessage:
    """Return a pending row for a resident that belongs to no ticket."""
    token, lease = claim if claim is not None else (None, None)
    return OutboxMessage(
        ticket_id=None,
        event_id=None,
        department_id="",
        channel="resident",
        idempotency_key=key,
        payload={"version": PAYLOAD_VERSION} | payload,
        status="pending",
        attempts=0,
        next_attempt_at=now,
        locked_until=lease,
        claim_token=token,
        created_at=now,
    )


PUBLISHED_ANSWER = "published_answer"


def published_answer_message(
    *,
    watch_id: int,
    resident_id: int,
    language: str,
    question: str,
    item_id: str,
    card_html: str,
    now: dt.datetime,
) -> OutboxMessage:
    """Return the row that tells a resident who asked to be told that a published change of
    the knowledge base now answers their question (the card, as Telegram HTML)."""
    payload = {
        "kind": PUBLISHED_ANSWER,
        "resident_id": resident_id,
        "language": language,
        "question": question,
        "item_id": item_id,
        "card_html": card_html,
    }
    return _to_resident(f"answer-watch:{watch_id}", payload, now)


def is_published_answer(payload: Mapping[str, Any]) -> bool:
    """Tell whether a `resident` row tells a resident the knowledge base answers them now."""
    return payload.get("kind") == PUBLISHED_ANSWER


def is_escalation_answer(payload: Mapping[str, Any]) -> bool:
    """Tell whether a `resident` row carries a staff answer rather than a ticket notice."""
    return payload.get("kind") == ESCALATION_ANSWER


class OutboxWriter:
    """Adds the outbox rows of an event to the event's own transaction."""

    def __init__(self, settings: Settings, knowledge: Callable[[], KnowledgeBase]) -> None:
        self.settings = settings
        self.knowledge = knowledge

    def department_channels(self, department_id: str | None) -> tuple[str, ...]:
        """Return the pushing channels of a department (console-only departments have none)."""
        if not department_id:
            return ()
        config = self.settings.departments.get(department_id)
        if config is None:
            return ()
        return tuple(c for c in config.channels if c != "console")

    async def enqueue(
        self,
        session: AsyncSession,
        ticket: Ticket,
        event: TicketEvent,
        *,
        now: dt.datetime,
        notify_resident: bool = True,
        former_department: str | None = None,
    ) -> list[OutboxMessage]:
        """Add the rows an event causes; the caller's transaction commits them with the event."""
        kb = self.knowledge()
        rows: list[OutboxMessage] = []

        def add(channel: str, department_id: str, payload: dict[str, Any], suffix: str) -> None:
            key = f"{idempotency_key(ticket.number, event.id)}:{suffix}"
            rows.append(
                OutboxMessage(
                    ticket_id=ticket.id,
                    event_id=event.id,
                    department_id=department_id,
                    channel=channel,
                    idempotency_key=key,
                    payload=payload,
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                )
            )

        attachments: list[TicketAttachment] | None = None
        if event.kind in DEPARTMENT_EVENTS and ticket.department_id:
            channels = self.department_channels(ticket.department_id)
            if channels:
                attachments = await _attachments(session, ticket.id)
                payload = department_payload(ticket, event, kb, attachments)
                for channel in channels:
                    add(
                        channel, ticket.department_id, payload, f"{channel}:{ticket.department_id}"
                    )
        if former_department and former_department != ticket.department_id:
            channels = self.department_channels(former_department)
            if channels:
                attachments = attachments or await _attachments(session, ticket.id)
                payload = department_payload(ticket, event, kb, attachments, kind=WITHDRAWN)
                for channel in channels:
                    add(channel, former_department, payload, f"{channel}:{former_department}")
        notice = notice_payload(ticket, event, kb)
        department_id = ticket.department_id or ""
        if notify_resident and event.kind in RESIDENT_EVENTS:
            if ticket.resident_id is not None:
                add("resident", department_id, notice, f"resident:{ticket.resident_id}")
            elif ticket.resident_sealed:
                add("resident", department_id, notice, "resident:sealed")
            document = (event.data or {}).get("document")
            if (
                ticket.resident_id is not None
                and event.kind == EventKind.REPLIED
                and isinstance(document, dict)
                and not document.get("url")
            ):
                # Disclosure applications are never anonymous: the applicant is named.
                sending = notice | {"send": DOCUMENT_DELIVERY, "document_id": document["id"]}
                add("resident", department_id, sending, f"resident:{ticket.resident_id}:document")
        if event.kind in STAFF_EVENTS:
            add("staff", department_id, notice, "staff")
        if event.kind in SUPERVISOR_EVENTS:
            add("supervisor", department_id, notice, "supervisor")
        session.add_all(rows)
        return rows


async def _attachments(session: AsyncSession, ticket_id: int) -> list[TicketAttachment]:
    result = await session.execute(
        select(TicketAttachment).where(TicketAttachment.ticket_id == ticket_id)
    )
    return list(result.scalars())
