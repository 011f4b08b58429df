"""The words of the ticket domain: types, statuses, event kinds and disclosure outcomes.

Each is a `StrEnum` whose values are the strings stored in the database (`tickets.type`,
`tickets.status`, `ticket_events.kind`, `tickets.outcome`), sent to departments' systems and
used in callback data: a member compares equal to its string, so code and stored rows agree, and
a value must never change. The lifecycle these statuses and events describe is in
docs/tickets.md; this module depends on nothing else of the bot.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class TicketType(StrEnum):
    """What a resident files (docs/tickets.md, the table at the top)."""

    COMPLAINT = "complaint"  # 投诉
    REPORT = "report"  # 举报
    SUGGESTION = "suggestion"  # 建议
    HELP = "help"  # 求助
    DISCLOSURE = "disclosure"  # 依申请公开


class TicketStatus(StrEnum):
    """Where a ticket stands: a summary of its timeline, kept for listing."""

    RECEIVED = "received"  # filed, waiting for staff to choose a department (triage)
    ASSIGNED = "assigned"  # with a department
    ACKNOWLEDGED = "acknowledged"  # the department acknowledged it (签收)
    REPLIED = "replied"  # answered, waiting for the resident's rating
    CLOSED = "closed"
    RETURNED = "returned"  # handed back by the department (退单), waiting in triage
    REJECTED = "rejected"  # refused by staff, with a reason the resident sees


class EventKind(StrEnum):
    """One step of a ticket's timeline (`ticket_events.kind`)."""

    RECEIVED = "received"
    DEADLINE_SET = "deadline_set"
    ASSIGNED = "assigned"
    TRIAGE = "triage"
    ACKNOWLEDGED = "acknowledged"
    INFO_REQUESTED = "info_requested"
    INFORMATION_ADDED = "information_added"
    REPLIED = "replied"
    RETURNED = "returned"
    REJECTED = "rejected"
    EXTENDED = "extended"
    REMINDER = "reminder"
    OVERDUE = "overdue"
    ESCALATED = "escalated"  # 督办
    SUPPORTER_ADDED = "supporter_added"
    RATED = "rated"
    RATING_COMMENT = "rating_comment"
    REOPENED = "reopened"
    CLOSED = "closed"
    # A delivery to a department gave up after its last try; staff are alerted.
    DELIVERY_FAILED = "delivery_failed"


class DisclosureOutcome(StrEnum):
    """How a disclosure application was answered, as the annual disclosure report counts them."""

    DISCLOSED = "disclosed"  # 予以公开
    PARTLY_DISCLOSED = "partly_disclosed"  # 部分公开
    WITHHELD = "withheld"  # 不予公开
    NOT_HELD = "not_held"  # 无法提供（本机关不掌握、没有现成信息等）
    NOT_PROCESSED = "not_processed"  # 不予处理
    OTHER = "other"  # 其他处理


# What a department's system or group receives, in place of the event, when staff move a ticket
# it held to another department. It is a kind of delivery only, never stored as an event.
WITHDRAWN: Final = "withdrawn"
