"""Ticket messages as Telegram shows them: the texts of bot.tickets.messages with their buttons.

The delivery worker sends outbox rows with these; the handlers use the same keyboards for
/status and a department's card. Every button's data comes from bot.telegram.callback_data, so
what is sent here is what handlers/status.py and handlers/departments.py read. What each button
does is described in docs/tickets.md.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.core.i18n import Html, t
from bot.telegram.callback_data import (
    DepartmentAction,
    StaffAssign,
    TicketAddInformation,
    TicketRemedies,
    TicketServiceRating,
    TicketSolved,
    TicketView,
    button,
)
from bot.tickets.messages import (
    DepartmentNames,
    department_text,
    resident_notice_text,
    staff_text,
    supervisor_text,
)

TicketMessage = tuple[Html, InlineKeyboardMarkup | None]
# Candidate departments offered as buttons under a triage alert.
MAX_TRIAGE_BUTTONS = 3


# -- residents ---------------------------------------------------------------------------------


def view_button(ticket_id: int, language: str) -> InlineKeyboardButton:
    return button(t("tkt_button_view", language), TicketView(ticket_id))


def add_information_button(ticket_id: int, language: str) -> InlineKeyboardButton:
    return button(t("tkt_button_add_information", language), TicketAddInformation(ticket_id))


def solved_row(ticket_id: int, language: str) -> list[InlineKeyboardButton]:
    """Return "solved" / "not solved", asked after a department's reply."""
    return [
        button(t("tkt_button_solved", language), TicketSolved(ticket_id, True)),
        button(t("tkt_button_not_solved", language), TicketSolved(ticket_id, False)),
    ]


def service_rating_rows(ticket_id: int, language: str) -> list[list[InlineKeyboardButton]]:
    """Return the stars of a disclosure application's service, and what to do when disagreeing."""
    stars = [button("★" * n, TicketServiceRating(ticket_id, n)) for n in range(1, 6)]
    return [stars[:3], stars[3:], [remedies_button(ticket_id, language)]]


def remedies_button(ticket_id: int, language: str) -> InlineKeyboardButton:
    return button(t("tkt_button_remedies", language), TicketRemedies(ticket_id))


def resident_notice_keyboard(
    payload: Mapping[str, Any], language: str
) -> InlineKeyboardMarkup | None:
    """Return the buttons under a resident's notice: details, and what the event asks of them."""
    kind = payload["event"]["kind"]
    ticket_id = int(payload["ticket_id"])
    if kind == "rejected":
        return None
    rows = [[view_button(ticket_id, language)]]
    if kind == "info_requested":
        rows.insert(0, [add_information_button(ticket_id, language)])
    elif kind == "replied" and payload.get("type") == "disclosure":
        rows[:0] = service_rating_rows(ticket_id, language)
    elif kind == "replied":
        rows.insert(0, solved_row(ticket_id, language))
    return InlineKeyboardMarkup(rows)


def resident_notice(
    payload: Mapping[str, Any], language: str, zone: dt.tzinfo, names: DepartmentNames
) -> TicketMessage | None:
    """Return the notice a resident gets about an event, or None when it needs none."""
    text = resident_notice_text(payload, language, zone, names)
    if text is None:
        return None
    return text, resident_notice_keyboard(payload, language)


# -- departments --------------------------------------------------------------------------------


def department_buttons(
    number: str, ticket_type: str, status: str, language: str
) -> InlineKeyboardMarkup | None:
    """Return the buttons a department's card shows in a ticket's current status."""
    if status not in ("assigned", "acknowledged"):
        return None
    row: list[InlineKeyboardButton] = []
    if status == "assigned":
        row.append(button(t("tkt_dept_ack", language), DepartmentAction("ack", number)))
    row.append(button(t("tkt_dept_reply", language), DepartmentAction("reply", number)))
    second = [
        button(t("tkt_dept_hand_back", language), DepartmentAction("back", number)),
        button(t("tkt_dept_ask", language), DepartmentAction("ask", number)),
    ]
    if ticket_type == "disclosure":
        second.append(button(t("tkt_dept_extend", language), DepartmentAction("ext", number)))
    return InlineKeyboardMarkup([row, second])


def department_message(
    payload: Mapping[str, Any], language: str, zone: dt.tzinfo
) -> TicketMessage | None:
    """Return what a department's chat shows for an event (None: nothing to show)."""
    text = department_text(payload, language, zone)
    if text is None:
        return None
    markup = None
    if payload["event"]["kind"] in ("assigned", "reopened"):
        ticket = payload["ticket"]
        # A new or reopened ticket waits for the department's acknowledgement.
        markup = department_buttons(ticket["number"], ticket.get("type", ""), "assigned", language)
    return text, markup


# -- staff and supervisor ------------------------------------------------------------------------


def staff_keyboard(
    payload: Mapping[str, Any], language: str, names: DepartmentNames
) -> InlineKeyboardMarkup | None:
    """Return the candidate departments under a triage alert, one button each."""
    event = payload["event"]
    if event["kind"] != "triage":
        return None
    data = event.get("data") or {}
    candidates = [c for c in data.get("candidates", []) if isinstance(c, str)]
    if not candidates:
        return None
    ticket_id = int(payload["ticket_id"])
    return InlineKeyboardMarkup(
        [
            [button("→ " + (names(c, language) or c), StaffAssign(ticket_id, c))]
            for c in candidates[:MAX_TRIAGE_BUTTONS]
        ]
    )


def staff_message(
    payload: Mapping[str, Any], language: str, names: DepartmentNames
) -> TicketMessage | None:
    """Return the staff chat's alert for an event (triage, hand-back, failed delivery)."""
    text = staff_text(payload, language, names)
    if text is None:
        return None
    return text, staff_keyboard(payload, language, names)


def supervisor_message(
    payload: Mapping[str, Any], language: str, names: DepartmentNames
) -> TicketMessage | None:
    """Return the supervisor chat's 督办 alert for an overdue ticket (it has no buttons)."""
    text = supervisor_text(payload, language, names)
    return None if text is None else (text, None)
