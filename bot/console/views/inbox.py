"""Staff: the inbox of questions the bot handed to a person, answering them, teaching the bot.

Answers go through `EscalationDesk.answer_escalation`, the same path as a reply in the Telegram
staff group: the first answer wins, wherever it was given.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import select

from bot.answering.escalations import MAX_ANSWER_CHARS, EscalationView, reason_phrase
from bot.console.forms import form_text, positive_int
from bot.console.messages import redirect_with
from bot.console.rendering import page, render
from bot.console.security import VIEWER, allow, client_ip
from bot.console.state import LANGUAGE, SERVICES
from bot.core.audit import record_audit
from bot.core.models import Escalation, Question

RECENT_ANSWERED = 30


async def _escalation(request: web.Request) -> EscalationView:
    escalation_id = positive_int(request.match_info["escalation_id"])
    view = await request.app[SERVICES].escalations.get(escalation_id) if escalation_id else None
    if view is None:
        raise web.HTTPNotFound()
    return view


@allow("staff", "manager")
@page("inbox.html")
async def inbox(request: web.Request) -> dict[str, Any]:
    """List the open escalations, oldest first, and the latest answered ones."""
    services = request.app[SERVICES]
    waiting = await services.escalations.open_escalations()
    async with services.sessions() as session:
        rows = await session.execute(
            select(Escalation, Question.text, Question.language)
            .join(Question, Question.id == Escalation.question_id)
            .where(Escalation.status != "open")
            .order_by(Escalation.answered_at.desc(), Escalation.id.desc())
            .limit(RECENT_ANSWERED)
        )
        answered = [
            {"escalation": e, "question": text, "language": language}
            for e, text, language in rows.all()
        ]
    return {"waiting": waiting, "answered": answered}


@allow("staff", "manager")
async def escalation_page(request: web.Request) -> web.StreamResponse:
    """Show one escalated question, the matcher's candidates, the answer and learn forms."""
    view = await _escalation(request)
    return render_escalation(request, view)


def render_escalation(
    request: web.Request,
    view: EscalationView,
    *,
    answer: str | None = None,
    error: str = "",
    status: int = 200,
) -> web.Response:
    """Render the escalation page, the answer box prefilled from a candidate when asked."""
    kb = request.app[SERVICES].knowledge.kb
    candidates = []
    for candidate in view.candidates:
        item = kb.items.get(str(candidate.get("id", "")))
        candidates.append(
            {
                "id": str(candidate.get("id", "")),
                "title": item.get_text("title", view.language) if item else candidate.get("title"),
                "answer": item.get_text("answer", view.language) if item else "",
                "score": float(candidate.get("score", 0) or 0),
                "known": item is not None,
            }
        )
    if answer is None:
        use = kb.items.get(request.query.get("use", ""))
        answer = use.get_text("answer", view.language) if use else ""
    return render(
        request,
        "escalation.html",
        {
            "escalation": view,
            "reason_phrase": lambda code: reason_phrase(code, request.get(LANGUAGE, "zh")),
            "candidates": candidates,
            "answer": answer,
            "error": error,
            "max_answer": MAX_ANSWER_CHARS,
            "items": sorted(kb.items.values(), key=lambda i: i.id),
        },
        status=status,
    )


@allow("staff")
async def answer(request: web.Request) -> web.StreamResponse:
    """Send a staff answer to the resident, as a reply in the staff group would."""
    services = request.app[SERVICES]
    viewer = request[VIEWER]
    view = await _escalation(request)
    form = await request.post()
    text = form_text(form, "answer", MAX_ANSWER_CHARS + 1)
    if not text:
        return render_escalation(request, view, answer=text, error="empty", status=400)
    if len(text) > MAX_ANSWER_CHARS:
        return render_escalation(request, view, answer=text, error="too_long", status=400)
    outcome = await services.escalations.answer_escalation(view.id, text, viewer.name, "console")
    async with services.sessions() as session:
        await record_audit(
            session,
            user_id=viewer.user_id,
            action="escalation.answer",
            target_type="escalation",
            target_id=str(view.id),
            detail={"outcome": outcome.status},
            ip=client_ip(request),
        )
        await session.commit()
    if outcome.status == "invalid":
        return render_escalation(
            request, view, answer=text, error=outcome.problem or "invalid", status=400
        )
    raise redirect_with(request, "escalation", {"escalation_id": str(view.id)}, outcome.status)


@allow("staff")
async def learn(request: web.Request) -> web.StreamResponse:
    """Add the escalated question to an item's questions, so the bot answers it next time."""
    services = request.app[SERVICES]
    viewer = request[VIEWER]
    view = await _escalation(request)
    form = await request.post()
    item_id = form_text(form, "item_id", 128)
    if view.learned_item_id:
        raise redirect_with(
            request, "escalation", {"escalation_id": str(view.id)}, "already_learned"
        )
    result = await services.teacher.add_phrasing(item_id, view.question)
    if result.status in ("learned", "duplicate"):
        await services.escalations.mark_learned(view.id, item_id)
    async with services.sessions() as session:
        await record_audit(
            session,
            user_id=viewer.user_id,
            action="escalation.learn",
            target_type="escalation",
            target_id=str(view.id),
            detail={"item_id": item_id, "result": result.status},
            ip=client_ip(request),
        )
        await session.commit()
    raise redirect_with(
        request, "escalation", {"escalation_id": str(view.id)}, f"learn_{result.status}"
    )
