"""Managers: the complaint log, its exports, unanswered questions and the disclosure figures."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import quote

from aiohttp import web

from bot.answering.unanswered import (
    TREND_WEEKS,
    history_since,
    trends,
    unanswered_questions,
)
from bot.console.forms import positive_int
from bot.console.rendering import page
from bot.console.security import SECURITY_HEADERS, VIEWER, allow, client_ip
from bot.console.state import LANGUAGE, SERVICES, ZONE, category_names, department_names
from bot.console.translations import label, translator
from bot.console.views.tickets import reply_state
from bot.core.audit import record_audit
from bot.core.exports import MAX_XLSX_ROWS, Cell, Column, csv_chunks, xlsx_bytes
from bot.core.models import Ticket, utcnow
from bot.tickets.complaint_log import (
    RATING_CHOICES,
    TICKET_STATUSES,
    TICKET_TYPES,
    UNROUTED,
    Cursor,
    LogFilters,
    latest_replies,
    list_tickets,
)
from bot.tickets.desk import DISCLOSURE_OUTCOMES
from bot.tickets.disclosure_report import UNKNOWN_OUTCOME, disclosure_report
from bot.tickets.routing import complaint_categories

log = logging.getLogger(__name__)

EXPORT_BATCH = 2000
UNANSWERED_DAYS = (7, 30, 90, 365)


def log_filters(request: web.Request) -> LogFilters:
    """Read the complaint-log filters of a request."""
    kb = request.app[SERVICES].knowledge.kb
    return LogFilters.parse(dict(request.query), departments=list(kb.departments))


def filter_choices(request: web.Request) -> dict[str, Any]:
    """Return the options of the filter form."""
    kb = request.app[SERVICES].knowledge.kb
    return {
        "types": TICKET_TYPES,
        "statuses": TICKET_STATUSES,
        "ratings": RATING_CHOICES,
        "categories": complaint_categories(kb),
        "unrouted": UNROUTED,
    }


@allow("manager")
@page("log.html")
async def complaint_log(request: web.Request) -> dict[str, Any]:
    """The complaint log: filters, search, newest first, paged by keyset."""
    services = request.app[SERVICES]
    filters = log_filters(request)
    async with services.sessions() as session:
        page = await list_tickets(
            session,
            filters,
            zone=request.app[ZONE],
            after=Cursor.decode(request.query.get("after", "")),
            before=Cursor.decode(request.query.get("before", "")),
        )
    now = utcnow()
    return {
        "filters": filters,
        "query": filters.as_query(),
        "page": page,
        "reply_states": {t.id: reply_state(t, now) for t in page.tickets},
        "departments": department_names(request),
        **filter_choices(request),
    }


def export_header(language: str) -> list[Column]:
    """Return the columns of a complaint-log export."""
    _ = translator(language)
    return [
        Column(_("编号")),
        Column(_("类型")),
        Column(_("类别")),
        Column(_("承办部门")),
        Column(_("状态")),
        Column(_("提交时间"), "datetime"),
        Column(_("签收期限"), "datetime"),
        Column(_("签收时间"), "datetime"),
        Column(_("答复期限"), "datetime"),
        Column(_("答复时间"), "datetime"),
        Column(_("超期")),
        Column(_("办理结果")),
        Column(_("评价"), "count"),
        Column(_("内容")),
        Column(_("答复内容")),
    ]


def export_row(
    ticket: Ticket,
    language: str,
    departments: dict[str, str],
    zone: Any,
    *,
    categories: dict[str, str] | None = None,
    reply: str = "",
) -> list[Cell]:
    """Return a ticket as a row of an export (no contact details: exports leave the system).

    Times are in the deployment's zone; `categories` names categories in the language."""

    def when(moment: dt.datetime | None) -> dt.datetime | None:
        return moment.astimezone(zone) if moment else None

    return [
        ticket.number,
        label("type", ticket.type, language),
        (categories or {}).get(ticket.category, ticket.category),
        departments.get(ticket.department_id or "", ticket.department_id or ""),
        label("status", ticket.status, language),
        when(ticket.created_at),
        when(ticket.ack_deadline),
        when(ticket.acknowledged_at),
        when(ticket.reply_deadline),
        when(ticket.replied_at),
        translator(language)("是") if ticket.overdue else "",
        label("outcome", ticket.outcome, language) if ticket.outcome else "",
        ticket.rating,
        ticket.description,
        reply,
    ]


async def _export_rows(
    request: web.Request, filters: LogFilters, limit: int | None = None
) -> AsyncIterator[list[Cell]]:
    """Yield the log's rows for an export, a batch per short transaction."""
    services = request.app[SERVICES]
    language = request[LANGUAGE]
    departments = department_names(request)
    categories = category_names(request)
    zone = request.app[ZONE]
    after: Cursor | None = None
    sent = 0
    while True:
        async with services.sessions() as session:
            page = await list_tickets(session, filters, zone=zone, after=after, limit=EXPORT_BATCH)
            replies = await latest_replies(session, [t.id for t in page.tickets])
        for ticket in page.tickets:
            yield export_row(
                ticket,
                language,
                departments,
                zone,
                categories=categories,
                reply=replies.get(ticket.id, ""),
            )
            sent += 1
            if limit is not None and sent >= limit:
                return
        if page.next is None:
            return
        after = page.next


async def _audit_export(request: web.Request, kind: str, detail: dict[str, Any]) -> None:
    services = request.app[SERVICES]
    async with services.sessions() as session:
        await record_audit(
            session,
            user_id=request[VIEWER].user_id,
            action=f"export.{kind}",
            target_type="export",
            detail=detail,
            ip=client_ip(request),
        )
        await session.commit()


def _attachment(name: str) -> str:
    """Return a Content-Disposition value for a file name (ASCII fallback and UTF-8 name)."""
    return f"attachment; filename=\"{name}\"; filename*=UTF-8''{quote(name)}"


async def send_csv(
    request: web.Request,
    name: str,
    header: Sequence[str | Column],
    rows: AsyncIterator[list[Cell]],
) -> web.StreamResponse:
    """Stream a CSV download."""
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": _attachment(name),
            "Cache-Control": "no-store",
        }
    )
    # Headers are sent before the middleware sees the response, so they are added here.
    response.headers.update(SECURITY_HEADERS)
    chunks = csv_chunks(header, rows)
    # The first piece is read before the headers go, so that a failing query is still an error
    # page rather than a download.
    first = await anext(chunks)
    await response.prepare(request)
    try:
        await response.write(first)
        async for chunk in chunks:
            await response.write(chunk)
    except ConnectionError:
        raise  # the browser went away; nothing to tell it
    except Exception:
        # The headers are gone, so no error page can follow; ending the connection makes the
        # browser report a failed download instead of waiting for the rest forever.
        log.exception("export %s failed half way; the download is cut short", name)
        response.force_close()
        if request.transport is not None:
            request.transport.abort()
        return response
    await response.write_eof()
    return response


async def send_xlsx(
    request: web.Request,
    name: str,
    title: str,
    header: Sequence[str | Column],
    rows: AsyncIterator[list[Cell]],
    cut_note: str = "",
) -> web.Response:
    """Build an XLSX file in a worker thread and send it; `cut_note` is written below the rows
    only when there were more than an XLSX export holds."""
    collected = [row async for row in rows]
    body = await asyncio.to_thread(xlsx_bytes, title, header, collected, cut_note=cut_note)
    return web.Response(
        body=body,
        headers={
            "Content-Type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "Content-Disposition": _attachment(name),
        },
    )


@allow("manager")
async def export_log(request: web.Request) -> web.StreamResponse:
    """Export the complaint log, as filtered, to CSV or XLSX."""
    filters = log_filters(request)
    kind = request.match_info["format"]
    language = request[LANGUAGE]
    stamp = utcnow().astimezone(request.app[ZONE]).strftime("%Y%m%d-%H%M")
    await _audit_export(request, f"log.{kind}", {"filters": filters.as_query()})
    header = export_header(language)
    if kind == "csv":
        return await send_csv(
            request, f"complaint-log-{stamp}.csv", header, _export_rows(request, filters)
        )
    rows = _export_rows(request, filters, limit=MAX_XLSX_ROWS + 1)
    note = translator(language)("XLSX 最多导出 {count} 行；完整数据请导出 CSV。").format(
        count=MAX_XLSX_ROWS
    )
    return await send_xlsx(
        request,
        f"complaint-log-{stamp}.xlsx",
        translator(language)("投诉记录"),
        header,
        rows,
        note,
    )


@allow("manager", "editor")
@page("unanswered.html")
async def unanswered(request: web.Request) -> dict[str, Any]:
    """The questions the bot could not answer lately, grouped by similarity, most asked first."""
    services = request.app[SERVICES]
    days = positive_int(request.query.get("days")) or 30
    days = days if days in UNANSWERED_DAYS else 30
    now = utcnow()
    async with services.sessions() as session:
        questions = await unanswered_questions(session, history_since(now, days))
    groups = await asyncio.to_thread(trends, questions, now, days)
    kb = services.knowledge.kb
    return {
        "groups": groups,
        "days": days,
        "choices": UNANSWERED_DAYS,
        "total": sum(g.count for g in groups),
        "weeks": TREND_WEEKS,
        "items": {
            item.id: item.get_text("title", request[LANGUAGE]) for item in kb.items.values()
        },
    }


def _year(request: web.Request) -> int:
    current = utcnow().astimezone(request.app[ZONE]).year
    year = positive_int(request.query.get("year")) or current
    return year if 2000 <= year <= current else current


@allow("manager")
@page("disclosure.html")
async def disclosure(request: web.Request) -> dict[str, Any]:
    """The disclosure-application figures of a year, in total and per department."""
    services = request.app[SERVICES]
    year = _year(request)
    async with services.sessions() as session:
        report = await disclosure_report(session, year, request.app[ZONE])
    current = utcnow().astimezone(request.app[ZONE]).year
    return {
        "report": report,
        "year": year,
        "years": list(range(current, current - 6, -1)),
        "outcomes": [*DISCLOSURE_OUTCOMES, UNKNOWN_OUTCOME],
        "departments": department_names(request),
    }


@allow("manager")
async def export_disclosure(request: web.Request) -> web.StreamResponse:
    """Export a year's disclosure figures to CSV or XLSX."""
    services = request.app[SERVICES]
    year = _year(request)
    kind = request.match_info["format"]
    language = request[LANGUAGE]
    _ = translator(language)
    async with services.sessions() as session:
        report = await disclosure_report(session, year, request.app[ZONE])
    departments = department_names(request)
    outcomes = [*DISCLOSURE_OUTCOMES, UNKNOWN_OUTCOME]
    header = [
        Column(_("部门")),
        *[
            Column(name, "count")
            for name in (
                _("本年新收"),
                _("上年结转"),
                _("本年办结"),
                _("按时答复"),
                _("超期答复"),
                _("延期"),
                _("逾期未答复"),
                _("结转下年"),
                *[label("outcome", o, language) for o in outcomes],
            )
        ],
    ]

    def row(figures: Any, name: str) -> list[Cell]:
        return [
            name,
            figures.received,
            figures.carried_over,
            figures.answered,
            figures.answered_on_time,
            figures.answered_late,
            figures.extended,
            figures.overdue,
            figures.carried_forward,
            *[figures.outcomes.get(o, 0) for o in outcomes],
        ]

    rows = [
        row(f, departments.get(f.department_id or "", f.department_id or _("未分派")))
        for f in report.departments
    ]
    rows.append(row(report.total, _("合计")))
    await _audit_export(request, f"disclosure.{kind}", {"year": year})

    async def each() -> AsyncIterator[list[Cell]]:
        for r in rows:
            yield r

    name = f"disclosure-{year}.{kind}"
    if kind == "csv":
        return await send_csv(request, name, header, each())
    return await send_xlsx(request, name, _("依申请公开"), header, each())
