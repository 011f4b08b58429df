"""The signed callback endpoint: a department's own system reports status changes to the bot.

    POST /api/departments/{department_id}/callback
    X-Timestamp: <Unix seconds>
    X-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>
    Content-Type: application/json

    {"nonce": "7f1c…", "ticket": "TS-2026-000123", "action": "reply",
     "text": "已安排清运。", "officer": "王科员"}

Actions: `acknowledge`, `reply` (text; for disclosure applications `outcome`, `reason` — required
unless the outcome is `disclosed` — and `document_url`), `hand_back`
(text: the reason), `ask_resident` (text: the question), `extend` (disclosure only; `days` and
text: the reason the resident sees). The secret is the department's, from the environment variable
named by [departments.<id>] secret_env; a department without one has no endpoint (404).

Every request is checked in this order and refused with a 4xx that says why, and logged:
size by Content-Length (413), department and secret (404), the body read to its end, chunked or
not (413 past the limit; 400 when the sender goes away before it ends), signature and timestamp window (401), JSON (nested past the parser's depth
too) and schema, U+0000 in a text included (400), nonce already used (409, a replay), then the action itself (404 unknown
ticket, 403 not this department's, 409 not possible in the ticket's state, 422 bad text). A
nonce is spent even when the action is refused, so a captured request can never be replayed.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from bot.api.signatures import BodyTooLarge, read_body
from bot.core import metrics
from bot.core.models import CallbackNonce, Ticket
from bot.tickets.desk import (
    Actor,
    InvalidTicketInput,
    NotPermitted,
    TicketDesk,
    TicketNotFound,
    TransitionNotAllowed,
)
from bot.tickets.documents import DocumentRefused, check_link
from bot.tickets.signatures import SIGNATURE_HEADER, TIMESTAMP_HEADER, SignatureError, verify

log = logging.getLogger(__name__)

DESK = web.AppKey("ticket_desk", TicketDesk)
WALL_CLOCK: web.AppKey[Callable[[], float]] = web.AppKey("wall_clock")
CALLBACK_PATH = "/api/departments/{department_id}/callback"

Nonce = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{16,100}$")]
TicketNumber = Annotated[str, StringConstraints(pattern=r"^TS-\d{4}-\d{6,9}$")]


# The desk's name of a text → the body's field that carries it.
_BODY_FIELDS = {"reply": "text", "reason": "text", "question": "text"}


class CallbackBody(BaseModel):
    """What a department's system may post; anything else is refused."""

    model_config = ConfigDict(extra="forbid", strict=True)

    nonce: Nonce
    ticket: TicketNumber
    action: Literal["acknowledge", "reply", "hand_back", "ask_resident", "extend"]
    text: str = Field("", max_length=4000)
    officer: str = Field("", max_length=100)
    outcome: str | None = Field(None, max_length=32)
    # A disclosure answer: the reason (required unless `outcome` is "disclosed") and a link to
    # the document given to the applicant (http or https; passed on, never fetched).
    reason: str = Field("", max_length=2000)
    document_url: str | None = Field(None, max_length=2000)
    days: int | None = Field(None, ge=1, le=20)

    @field_validator("text", "officer", "outcome", "reason", "document_url")
    @classmethod
    def _without_nul(cls, value: str | None) -> str | None:
        # PostgreSQL cannot store U+0000 in text; a sender that puts one in has a bug to fix,
        # so it is told which field rather than having its words quietly changed.
        if value is not None and "\x00" in value:
            raise ValueError("U+0000 (NUL) is not allowed in text")
        return value


def _refuse(
    request: web.Request, status: int, reason: str, kind: str, **details: str | int
) -> web.Response:
    """Refuse a callback, saying why; `kind` is the reason's fixed word for the metrics."""
    metrics.count_refusal(kind)
    department = request.match_info.get("department_id", "?")[:64]
    log.warning(
        "department callback refused (%d %s) from %s for %r",
        status,
        reason,
        request.remote,
        department,
    )
    return web.json_response({"ok": False, "error": reason} | details, status=status)


async def handle_callback(request: web.Request) -> web.Response:
    """Check a department's signed callback and apply it to the ticket."""
    desk = request.app[DESK]
    settings = desk.settings
    department_id = request.match_info["department_id"]
    limit = settings.callbacks.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        return _refuse(request, 413, "body too large", "too_large")
    config = settings.departments.get(department_id)
    secret = config.secret() if config else None
    if secret is None or department_id not in desk.knowledge().departments:
        return _refuse(
            request, 404, "no callback endpoint for this department", "unknown_department"
        )
    try:
        body = await read_body(request, limit)
    except BodyTooLarge:
        return _refuse(request, 413, "body too large", "too_large")
    except ConnectionError:
        # The sender went away before the body it announced was whole: nobody to answer.
        return _refuse(request, 400, "the body was cut short", "cut_short")
    try:
        verify(
            secret,
            timestamp=request.headers.get(TIMESTAMP_HEADER),
            signature=request.headers.get(SIGNATURE_HEADER),
            body=body,
            now=request.app[WALL_CLOCK](),
            tolerance_seconds=settings.callbacks.tolerance_seconds,
        )
    except SignatureError as error:
        return _refuse(request, 401, str(error), "bad_signature")
    try:
        parsed: Any = json.loads(body.decode("utf-8"))
        callback = CallbackBody.model_validate(parsed)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        # RecursionError: arrays or objects nested deeper than the parser goes, within the
        # size limit ([[[[…]]]]); no callback is shaped like that.
        return _refuse(request, 400, "the body is not JSON", "not_json")
    except ValidationError as error:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) or "body" for e in error.errors())
        return _refuse(request, 400, f"invalid fields: {fields}", "invalid_fields")
    if not await _spend_nonce(desk, department_id, callback.nonce):
        return _refuse(request, 409, "nonce already used (replay)", "replay")
    actor = Actor.department(department_id, callback.officer or "callback", callback.officer)
    try:
        ticket = await _apply(desk, actor, callback)
    except TicketNotFound:
        return _refuse(request, 404, "unknown ticket", "unknown_ticket")
    except NotPermitted:
        return _refuse(request, 403, "the ticket is not with this department", "not_permitted")
    except TransitionNotAllowed as error:
        return _refuse(request, 409, str(error), "transition")
    except InvalidTicketInput as error:
        if error.field is not None and error.limit is not None:
            # Name the body's field and its limit, so the sender's system can say what to fix.
            return _refuse(
                request,
                422,
                str(error),
                "invalid_input",
                code=error.code,
                field=_BODY_FIELDS.get(error.field, error.field),
                limit=error.limit,
            )
        return _refuse(request, 422, str(error), "invalid_input")
    log.info("department %s: %s on %s by callback", department_id, callback.action, ticket.number)
    return web.json_response({"ok": True, "ticket": ticket.number, "status": ticket.status})


async def _apply(desk: TicketDesk, actor: Actor, callback: CallbackBody) -> Ticket:
    number = callback.ticket
    if callback.action == "acknowledge":
        return await desk.acknowledge(number, actor)
    if callback.action == "reply":
        document = None
        if callback.document_url is not None:
            try:
                document = check_link(callback.document_url)
            except DocumentRefused as refused:
                raise InvalidTicketInput(f"document_url: {refused}", code="document") from None
        return await desk.reply(
            number,
            actor,
            callback.text,
            outcome=callback.outcome,
            reason=callback.reason,
            document=document,
        )
    if callback.action == "hand_back":
        return await desk.hand_back(number, actor, callback.text)
    if callback.action == "ask_resident":
        return await desk.ask_resident(number, actor, callback.text)
    if callback.days is None:
        raise InvalidTicketInput("an extension needs days", code="days")
    return await desk.extend(number, actor, callback.days, callback.text)


async def _spend_nonce(desk: TicketDesk, department_id: str, nonce: str) -> bool:
    """Record a nonce; False when it was seen before. Old nonces are forgotten: their
    timestamps are outside the window, so the signature check refuses them anyway."""
    now = desk.clock()
    keep = dt.timedelta(seconds=desk.settings.callbacks.tolerance_seconds * 2)
    try:
        async with desk.sessions() as session, session.begin():
            session.add(
                CallbackNonce(
                    department_id=department_id, nonce=f"{department_id}:{nonce}", created_at=now
                )
            )
            await session.flush()
            await session.execute(
                delete(CallbackNonce).where(CallbackNonce.created_at < now - keep)
            )
    except IntegrityError:
        return False
    return True


def setup_callback_routes(
    app: web.Application, desk: TicketDesk, *, wall_clock: Callable[[], float] = time.time
) -> None:
    """Add the callback endpoint to an aiohttp application (one without CSRF middleware)."""
    app[DESK] = desk
    app[WALL_CLOCK] = wall_clock
    app.router.add_post(CALLBACK_PATH, handle_callback, name="department_callback")


def build_callback_app(
    desk: TicketDesk, *, wall_clock: Callable[[], float] = time.time
) -> web.Application:
    """Return the callback endpoint as an application of its own ([callbacks] host and port)."""
    app = web.Application(client_max_size=desk.settings.callbacks.max_body_bytes)
    setup_callback_routes(app, desk, wall_clock=wall_clock)
    return app
