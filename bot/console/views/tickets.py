"""Tickets in the console: the staff triage queue, a department's queue, one ticket and its actions.

Who sees a ticket is the rule of `bot.tickets.reads.may_see`: managers every ticket; officers
their own department's; staff those waiting in triage. Anyone else gets the same 404 as for a
number that does not exist (and the attempt is audited), so guessing numbers tells nothing.
Actions go through `TicketDesk`, the same code the departments' Telegram buttons and signed
callbacks use.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from aiohttp import web
from aiohttp.typedefs import Handler

from bot.console.forms import form_text, positive_int
from bot.console.messages import input_notice, redirect_with
from bot.console.rendering import page, render
from bot.console.security import SECURITY_HEADERS, SESSION_COOKIE, VIEWER, Viewer, allow, client_ip
from bot.console.sessions import find_session
from bot.console.state import SERVICES, ZONE, department_names
from bot.core.audit import record_audit
from bot.core.audit_chain import ticket_proof
from bot.core.config import Settings
from bot.core.models import Ticket, TicketDocument, utcnow
from bot.core.vocabulary import TicketStatus, TicketType
from bot.tickets.attachments import PhotoState, stored_photo, ticket_photos
from bot.tickets.complaint_log import Cursor, LogFilters, list_tickets
from bot.tickets.desk import (
    DISCLOSURE_OUTCOMES,
    HELD_STATUSES,
    MAX_OFFICER_TEXT,
    MAX_REASON_TEXT,
    OPEN_STATUSES,
    Actor,
    InvalidTicketInput,
    TicketDesk,
    TicketError,
    TimelineEntry,
)
from bot.tickets.documents import (
    MAX_URL,
    Document,
    DocumentRefused,
    allowed_extensions,
    check_file,
    check_link,
)
from bot.tickets.reads import (
    Identity,
    department_waiting,
    identity_of,
    may_see,
    may_see_identity,
    ticket_by_number,
    triage_queue,
)

TRIAGE_LIMIT = 200
QUEUE_LIMIT = 300
# Deadlines this close are shown in amber, before they turn red.
SOON = dt.timedelta(days=2)


def deadline_state(deadline: dt.datetime | None, done: bool, now: dt.datetime) -> str:
    """Return "overdue", "soon" or "" for a deadline not yet met (done means it was met)."""
    if deadline is None or done:
        return ""
    if deadline < now:
        return "overdue"
    if deadline - now < SOON:
        return "soon"
    return ""


def reply_state(ticket: Ticket, now: dt.datetime) -> str:
    """Return the highlight of a ticket's reply deadline."""
    if ticket.overdue and ticket.replied_at is None:
        return "overdue"
    finished = ticket.replied_at is not None or ticket.status in (
        TicketStatus.CLOSED,
        TicketStatus.REJECTED,
    )
    return deadline_state(ticket.reply_deadline, finished, now)


def ack_state(ticket: Ticket, now: dt.datetime) -> str:
    """Return the highlight of a ticket's acknowledgement deadline."""
    if ticket.status != TicketStatus.ASSIGNED:
        return ""
    return deadline_state(ticket.ack_deadline, False, now)


async def visible_ticket(request: web.Request) -> Ticket:
    """Return the ticket of the URL if the viewer may see it; 404 (audited) otherwise."""
    services = request.app[SERVICES]
    viewer = request[VIEWER]
    number = request.match_info["number"].strip().upper()[:32]
    async with services.sessions() as session:
        ticket = await ticket_by_number(session, number)
        if ticket is None or not may_see(viewer, ticket):
            await record_audit(
                session,
                user_id=viewer.user_id,
                action="ticket.denied",
                target_type="ticket",
                target_id=number,
                detail={"exists": ticket is not None, "role": viewer.role},
                ip=client_ip(request),
            )
            await session.commit()
            raise web.HTTPNotFound()
    return ticket


async def _identity(request: web.Request, ticket: Ticket) -> Identity | None:
    viewer = request[VIEWER]
    if not may_see_identity(viewer, ticket):
        return None
    services = request.app[SERVICES]
    async with services.sessions() as session:
        identity = await identity_of(session, ticket, viewer)
        if identity.any:
            await record_audit(
                session,
                user_id=viewer.user_id,
                action="ticket.view_personal_data",
                target_type="ticket",
                target_id=ticket.number,
                detail={"fields": identity.shown(), "phone_masked": identity.phone_masked},
                ip=client_ip(request),
            )
            await session.commit()
    return identity


def actions_for(viewer: Viewer, ticket: Ticket) -> set[str]:
    """Return the actions a user may take on a ticket now (the desk checks again)."""
    if viewer.role == "officer" and ticket.department_id == viewer.department_id:
        if ticket.status not in HELD_STATUSES:
            return set()
        allowed = {"reply", "hand_back"}
        if ticket.status == TicketStatus.ASSIGNED:
            allowed.add("acknowledge")
        if ticket.resident_id is not None or ticket.resident_sealed:
            allowed.add("ask")
        if ticket.type == TicketType.DISCLOSURE and not ticket.extended:
            allowed.add("extend")
        return allowed
    if viewer.role == "staff" and ticket.status in OPEN_STATUSES:
        return {"reassign", "reject"}
    return set()


@allow("staff", "officer", "manager")
async def ticket_page(request: web.Request) -> web.StreamResponse:
    """Show a ticket, its whole timeline and the actions the viewer may take."""
    viewer = request[VIEWER]
    ticket = await visible_ticket(request)
    services = request.app[SERVICES]
    timeline = await services.tickets.timeline(ticket.id)
    identity = await _identity(request, ticket)
    async with services.sessions() as session:
        photos = await ticket_photos(session, ticket.id)
    documents = await services.tickets.documents(ticket.id)
    context = ticket_context(
        request, ticket, timeline, identity, actions_for(viewer, ticket), documents
    )
    return render(request, "ticket.html", context | place_and_photos(request, ticket, photos))


def place_and_photos(
    request: web.Request, ticket: Ticket, photos: list[PhotoState]
) -> dict[str, Any]:
    """Return the shared location (coordinates and a map link) and the photos of a ticket.

    Both are part of the report, shown to whoever may see the ticket, as the department's
    Telegram group sees them; neither says who the resident is."""
    web_settings = request.app[SERVICES].settings.web
    coordinates = map_link = None
    if ticket.latitude is not None and ticket.longitude is not None:
        coordinates = f"{ticket.latitude:.5f}, {ticket.longitude:.5f}"
        map_link = web_settings.map_link(ticket.latitude, ticket.longitude)
    return {"photos": photos, "coordinates": coordinates, "map_link": map_link}


PHOTO_EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/gif": "gif",
    "image/webp": "webp",
}


@allow("staff", "officer", "manager")
async def ticket_photo(request: web.Request) -> web.StreamResponse:
    """Send one kept photo of a ticket to a viewer who may see the ticket (audited)."""
    viewer = request[VIEWER]
    ticket = await visible_ticket(request)
    attachment_id = positive_int(request.match_info["attachment_id"])
    services = request.app[SERVICES]
    async with services.sessions() as session:
        photo = await stored_photo(session, ticket.id, attachment_id) if attachment_id else None
        if photo is None:
            raise web.HTTPNotFound()
        await record_audit(
            session,
            user_id=viewer.user_id,
            action="ticket.view_personal_data",
            target_type="ticket",
            target_id=ticket.number,
            detail={"fields": ["photo"], "photo": photo.attachment_id},
            ip=client_ip(request),
        )
        await session.commit()
    extension = PHOTO_EXTENSIONS.get(photo.content_type, "bin")
    name = f"{ticket.number}-{photo.attachment_id}.{extension}"
    return web.Response(
        body=photo.content,
        headers={
            # The type was read from the bytes when the photo was kept (image_type).
            "Content-Type": photo.content_type,
            "Content-Disposition": f'inline; filename="{name}"',
            # Personal data: kept by neither the browser nor a proxy; never run as a page.
            "Cache-Control": "private, no-store",
            "Cross-Origin-Resource-Policy": "same-origin",
            "ETag": f'"{photo.sha256}"',
        },
    )


@allow("staff", "officer", "manager")
async def ticket_proof_download(request: web.Request) -> web.StreamResponse:
    """Download a ticket's events with their hashes and the chain up to its head (audited).

    `python -m bot audit check-proof FILE` checks it without the database (docs/security.md).
    """
    viewer = request[VIEWER]
    ticket = await visible_ticket(request)
    services = request.app[SERVICES]
    async with services.sessions() as session:
        proof = await ticket_proof(session, ticket)
        await record_audit(
            session,
            user_id=viewer.user_id,
            action="ticket.export_proof",
            target_type="ticket",
            target_id=ticket.number,
            detail={"head_seq": proof["head"]["seq"]},
            ip=client_ip(request),
        )
        await session.commit()
    name = f"{ticket.number}-proof.json"
    return web.Response(
        body=json.dumps(proof, ensure_ascii=False, indent=1).encode("utf-8"),
        headers={
            **SECURITY_HEADERS,
            "Content-Type": "application/json; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


def ticket_context(
    request: web.Request,
    ticket: Ticket,
    timeline: list[TimelineEntry],
    identity: Identity | None,
    actions: set[str],
    documents: Sequence[TicketDocument] = (),
) -> dict[str, Any]:
    """Return what the ticket page shows."""
    now = utcnow()
    kb = request.app[SERVICES].knowledge.kb
    return {
        "ticket": ticket,
        "timeline": timeline,
        "identity": identity,
        "actions": actions,
        "reply_state": reply_state(ticket, now),
        "ack_state": ack_state(ticket, now),
        "departments": department_names(request),
        "department_choices": sorted(kb.departments.values(), key=lambda d: d.id),
        "outcomes": DISCLOSURE_OUTCOMES,
        "documents": documents,
        "document_types": allowed_extensions(),
        "max_document_mb": round(
            request.app[SERVICES].settings.disclosure.max_document_bytes / 1024 / 1024, 1
        ),
        "max_text": MAX_OFFICER_TEXT,
        "max_reason": MAX_REASON_TEXT,
    }


def posted_document(form: Mapping[str, Any], desk: TicketDesk) -> Document | None:
    """Return the document of a disclosure answer's form: the uploaded file, else the link, else
    None. DocumentRefused when it is not fit to go to the applicant."""
    upload = form.get("document")
    if isinstance(upload, web.FileField) and upload.filename:
        content = upload.file.read(desk.settings.disclosure.max_document_bytes + 1)
        if content:
            return check_file(
                upload.filename, content, max_bytes=desk.settings.disclosure.max_document_bytes
            )
    link = form_text(form, "document_url", MAX_URL + 1)
    return check_link(link) if link else None


def upload_limit(settings: Settings) -> int:
    """Return the largest body the reply form may post: the document and the form around it."""
    return settings.disclosure.max_document_bytes + 64 * 1024


@web.middleware
async def document_uploads(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Let the reply form, and it alone, post a body as large as a document may be, and only
    for a logged-in officer: anyone else keeps the console's small limit."""
    if request.method != "POST" or not _REPLY_PATH.fullmatch(request.path):
        return await handler(request)
    services = request.app[SERVICES]
    token = request.cookies.get(SESSION_COOKIE, "")
    found = None
    if token:
        async with services.sessions() as session:
            found = await find_session(session, token)
    if found is None or found[1].role != "officer":
        return await handler(request)
    settings = services.settings
    request = request.clone(client_max_size=upload_limit(settings))
    try:
        return await handler(request)
    finally:
        # aiohttp keeps uploaded files in temporary files it leaves open: close them.
        if request.content_type == "multipart/form-data" and request.body_exists:
            with contextlib.suppress(web.HTTPException, ValueError, LookupError):
                for value in (await request.post()).values():
                    if isinstance(value, web.FileField):
                        value.file.close()


_REPLY_PATH = re.compile(r"/tickets/[A-Za-z0-9-]{1,32}/reply")


@allow("staff", "officer", "manager")
async def ticket_document(request: web.Request) -> web.StreamResponse:
    """Download a document given with a ticket's answer (to whoever may see the ticket)."""
    viewer = request[VIEWER]
    ticket = await visible_ticket(request)
    document_id = positive_int(request.match_info.get("document_id"))
    services = request.app[SERVICES]
    try:
        document = await services.tickets.document_content(ticket.id, document_id or 0)
    except TicketError:
        raise web.HTTPNotFound() from None
    if document.content is None:
        raise web.HTTPNotFound()
    async with services.sessions() as session:
        await record_audit(
            session,
            user_id=viewer.user_id,
            action="ticket.document",
            target_type="ticket",
            target_id=ticket.number,
            detail={"document_id": document.id, "name": document.file_name},
            ip=client_ip(request),
        )
        await session.commit()
    name = document.file_name or "document"
    return web.Response(
        body=document.content,
        headers={
            "Content-Type": document.media_type or "application/octet-stream",
            "Content-Disposition": f"attachment; filename=\"document\"; filename*=UTF-8''{quote(name)}",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
        },
    )


def _actor(viewer: Viewer) -> Actor:
    if viewer.role == "officer" and viewer.department_id:
        return Actor.department(viewer.department_id, str(viewer.user_id), viewer.name)
    return Actor.staff(str(viewer.user_id), viewer.name)


async def _act(request: web.Request, action: str) -> web.StreamResponse:
    """Run one ticket action for the viewer, audit it, and go back to the ticket (or queue)."""
    services = request.app[SERVICES]
    viewer = request[VIEWER]
    ticket = await visible_ticket(request)
    if action not in actions_for(viewer, ticket):
        raise redirect_with(request, "ticket", {"number": ticket.number}, "not_allowed")
    form = await request.post()
    desk: TicketDesk = request.app[SERVICES].tickets
    actor = _actor(viewer)
    code = action
    failed = False
    try:
        if action == "acknowledge":
            await desk.acknowledge(ticket.id, actor)
            code = "acknowledged"
        elif action == "reply":
            disclosure = ticket.type == TicketType.DISCLOSURE
            outcome = form_text(form, "outcome", 32) or None
            if disclosure and outcome not in DISCLOSURE_OUTCOMES:
                raise redirect_with(request, "ticket", {"number": ticket.number}, "invalid")
            await desk.reply(
                ticket.id,
                actor,
                form_text(form, "text", MAX_OFFICER_TEXT + 1),
                outcome=outcome if disclosure else None,
                reason=form_text(form, "reason", MAX_REASON_TEXT + 1) if disclosure else None,
                document=posted_document(form, desk) if disclosure else None,
            )
            code = "replied"
        elif action == "hand_back":
            await desk.hand_back(ticket.id, actor, form_text(form, "reason", MAX_REASON_TEXT + 1))
            code = "returned"
        elif action == "ask":
            await desk.ask_resident(
                ticket.id, actor, form_text(form, "question", MAX_OFFICER_TEXT + 1)
            )
            code = "info_requested"
        elif action == "extend":
            days = positive_int(form_text(form, "days", 3)) or 0
            await desk.extend(
                ticket.id, actor, days, form_text(form, "reason", MAX_REASON_TEXT + 1)
            )
            code = "extended"
        elif action == "reassign":
            await desk.reassign(
                ticket.id,
                actor,
                form_text(form, "department", 128),
                note=form_text(form, "note", MAX_REASON_TEXT + 1),
            )
            code = "reassigned"
        elif action == "reject":
            await desk.reject(ticket.id, actor, form_text(form, "reason", MAX_REASON_TEXT + 1))
            code = "rejected"
    except DocumentRefused as refused:
        code = "document_url_invalid" if refused.code == "url" else "document_refused"
    except TicketError as error:
        failed = True
        code = (
            "invalid"
            if error.code in ("empty", "too_long", "invalid", "days")
            else ("not_allowed")
        )
        if error.code == "department":
            code = "invalid"
        if isinstance(error, InvalidTicketInput):
            # Say which text and its limit rather than "something is missing or too long".
            code = input_notice(error.code, error.field) or code
        if error.code == "reason":
            code = "reason_required"
    async with services.sessions() as session:
        await record_audit(
            session,
            user_id=viewer.user_id,
            action=f"ticket.{action}",
            target_type="ticket",
            target_id=ticket.number,
            detail={"result": code},
            ip=client_ip(request),
        )
        await session.commit()
    succeeded = not failed
    if succeeded and action in ("hand_back", "reassign", "reject"):
        # The ticket has left the viewer's queue: they could no longer open it.
        raise redirect_with(request, "department" if action == "hand_back" else "triage", {}, code)
    raise redirect_with(request, "ticket", {"number": ticket.number}, code)


def _action_handler(action: str, *roles: str) -> Any:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await _act(request, action)

    handler.__name__ = handler.__qualname__ = f"ticket_{action}"
    handler.__doc__ = f"Ticket action: {action}."
    return allow(*roles)(handler)  # type: ignore[arg-type]


acknowledge = _action_handler("acknowledge", "officer")
reply = _action_handler("reply", "officer")
hand_back = _action_handler("hand_back", "officer")
ask_resident = _action_handler("ask", "officer")
extend = _action_handler("extend", "officer")
reassign = _action_handler("reassign", "staff")
reject = _action_handler("reject", "staff")


@allow("staff", "manager")
@page("triage.html")
async def triage(request: web.Request) -> dict[str, Any]:
    """List the tickets no department holds, oldest first, with why they are here."""
    services = request.app[SERVICES]
    async with services.sessions() as session:
        queue = await triage_queue(session, limit=TRIAGE_LIMIT)
    return {
        "tickets": queue.tickets,
        "reasons": queue.reasons,
        "departments": department_names(request),
        "now": utcnow(),
    }


@allow("officer")
@page("department.html")
async def department_queue(request: web.Request) -> dict[str, Any]:
    """An officer's department: tickets to act on by deadline, then all of them, newest first."""
    services = request.app[SERVICES]
    viewer = request[VIEWER]
    department = viewer.department_id
    now = utcnow()
    async with services.sessions() as session:
        waiting = await department_waiting(session, department, limit=QUEUE_LIMIT)
        page = await list_tickets(
            session,
            LogFilters.parse(dict(request.query)),
            zone=request.app[ZONE],
            after=Cursor.decode(request.query.get("after", "")),
            before=Cursor.decode(request.query.get("before", "")),
            scope=Ticket.department_id == department,
        )
    return {
        "waiting": waiting,
        "page": page,
        "reply_states": {t.id: reply_state(t, now) for t in [*waiting, *page.tickets]},
        "ack_states": {t.id: ack_state(t, now) for t in waiting},
        "departments": department_names(request),
    }
