"""Managers: the figures of docs/tickets.md ("Figures and `report`") per department and month, as
charts and tables (docs/console.md, "Managers").

The numbers come from `bot.tickets.figures` (the definitions `python -m bot report` prints). A month is a
few grouped queries; a year's trend is twelve of them, so the figures of months already over are
kept for a while (`FiguresCache`) and refreshed in the background, while the current month is
always computed afresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import AsyncIterator

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.console.charts import Series, bar_chart, line_chart
from bot.console.rendering import render
from bot.console.security import allow
from bot.console.state import LANGUAGE, SERVICES, department_names
from bot.console.translations import translator
from bot.console.views.reports import _audit_export, send_csv, send_xlsx
from bot.core.exports import Cell, Column
from bot.core.models import utcnow
from bot.core.workdays import time_zone
from bot.tickets.figures import Month, MonthFigures, TicketFigures, figures_for_month

log = logging.getLogger(__name__)

TREND_MONTHS = 12
# Figures of a finished month still move a little (late ratings, reopened tickets).
CACHE_SECONDS = 600


class FiguresCache:
    """Figures of finished months, kept for CACHE_SECONDS; the current month is never cached."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], timezone: str, ttl: float = CACHE_SECONDS
    ) -> None:
        self.sessions = sessions
        self.timezone = timezone
        self.ttl = ttl
        self._months: dict[Month, tuple[float, MonthFigures]] = {}

    def current_month(self) -> Month:
        return Month.of(utcnow(), time_zone(self.timezone))

    async def compute(self, month: Month) -> MonthFigures:
        """Compute a month's figures from the database."""
        async with self.sessions() as session:
            return await figures_for_month(session, month, timezone=self.timezone)

    async def month(self, month: Month) -> MonthFigures:
        """Return a month's figures, from the cache when the month is over and they are fresh."""
        if ordinal(month) >= ordinal(self.current_month()):
            return await self.compute(month)
        cached = self._months.get(month)
        if cached is not None and time.monotonic() - cached[0] < self.ttl:
            return cached[1]
        figures = await self.compute(month)
        self._months[month] = (time.monotonic(), figures)
        return figures

    async def months(self, last: Month, count: int) -> list[MonthFigures]:
        """Return `count` months of figures ending with `last`, oldest first."""
        wanted = [last]
        while len(wanted) < count:
            wanted.append(previous_month(wanted[-1]))
        return [await self.month(m) for m in reversed(wanted)]

    async def refresh(self) -> None:
        """Recompute the finished months of the trend (run in the background)."""
        month = previous_month(self.current_month())
        for _ in range(TREND_MONTHS - 1):
            figures = await self.compute(month)
            self._months[month] = (time.monotonic(), figures)
            month = previous_month(month)


FIGURES_CACHE = web.AppKey("figures_cache", FiguresCache)


def ordinal(month: Month) -> int:
    """Return a number that orders months."""
    return month.year * 12 + month.month - 1


def previous_month(month: Month) -> Month:
    """Return the month before."""
    return Month(month.year - 1, 12) if month.month == 1 else Month(month.year, month.month - 1)


async def keep_figures_fresh(app: web.Application) -> AsyncIterator[None]:
    """Fill the figures cache at start and refresh it before it goes stale."""
    cache = app[FIGURES_CACHE]

    async def refresh_forever() -> None:
        while True:
            try:
                await cache.refresh()
            except Exception:
                log.exception("refreshing the figures failed")
            await asyncio.sleep(cache.ttl * 0.8)

    task = asyncio.create_task(refresh_forever(), name="console-figures-refresh")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def setup_figures(app: web.Application) -> None:
    """Give the application its figures cache and the task that keeps it fresh."""
    services = app[SERVICES]
    app[FIGURES_CACHE] = FiguresCache(services.sessions, services.settings.tickets.timezone)
    app.cleanup_ctx.append(keep_figures_fresh)


def _chosen_month(request: web.Request, cache: FiguresCache) -> Month:
    current = cache.current_month()
    try:
        month = Month.parse(request.query.get("month", ""))
    except ValueError:
        return current
    return month if ordinal(Month(2000, 1)) <= ordinal(month) <= ordinal(current) else current


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


@allow("manager")
async def figures_page(request: web.Request) -> web.StreamResponse:
    """Show a month's figures per department, and the trend of the twelve months up to it."""
    cache = request.app[FIGURES_CACHE]
    month = _chosen_month(request, cache)
    names = department_names(request)
    department = request.query.get("department", "")
    department = department if department in names else ""
    _ = translator(request[LANGUAGE])
    trend = await cache.months(month, TREND_MONTHS)
    selected = trend[-1]
    rows: list[TicketFigures] = [
        trend_month.department(department) if department else trend_month.total
        for trend_month in trend
    ]
    rate_names = [_("响应率"), _("按时办结率"), _("评价率"), _("满意率")]
    trend_chart = line_chart(
        _("近十二个月趋势"),
        [str(m.month)[2:] for m in trend],
        [
            Series(rate_names[0], tuple(r.response_rate for r in rows)),
            Series(rate_names[1], tuple(r.on_time_rate for r in rows)),
            Series(rate_names[2], tuple(r.rating_rate for r in rows)),
            Series(rate_names[3], tuple(r.satisfaction_rate for r in rows)),
        ],
    )
    by_department = [r for r in selected.departments if r.assigned or r.due or r.replied]
    department_chart = bar_chart(
        _("各部门按时办结率与满意率"),
        [names.get(r.department_id or "", r.department_id or "") for r in by_department],
        [
            Series(rate_names[1], tuple(r.on_time_rate for r in by_department)),
            Series(rate_names[3], tuple(r.satisfaction_rate for r in by_department)),
        ],
    )
    return render(
        request,
        "figures.html",
        {
            "month": str(month),
            "figures": selected,
            "rows": by_department,
            "trend": list(zip(trend, rows, strict=True)),
            "trend_chart": trend_chart,
            "department_chart": department_chart,
            "department": department,
            "departments": names,
            "percent": _percent,
        },
    )


def figures_table(
    figures: MonthFigures, names: dict[str, str], language: str
) -> tuple[list[Column], list[list[Cell]]]:
    """Return a month's figures as typed columns and rows (one per department, then the total):
    the month a date, counts numbers, rates fractions shown as percentages."""
    _ = translator(language)
    header = [
        Column(_("月份"), "month"),
        Column(_("部门")),
        Column(_("交办量"), "count"),
        Column(_("按时签收"), "count"),
        Column(_("响应率"), "percent"),
        Column(_("到期量"), "count"),
        Column(_("按时办结"), "count"),
        Column(_("按时办结率"), "percent"),
        Column(_("答复量"), "count"),
        Column(_("已评价"), "count"),
        Column(_("评价率"), "percent"),
        Column(_("满意"), "count"),
        Column(_("满意率"), "percent"),
    ]
    month = Month.parse(figures.month)
    first_day = dt.date(month.year, month.month, 1)

    def row(name: str, r: TicketFigures) -> list[Cell]:
        def rate(value: float | None) -> Cell:
            return None if value is None else round(value, 4)

        return [
            first_day,
            name,
            r.assigned,
            r.acknowledged_on_time,
            rate(r.response_rate),
            r.due,
            r.replied_on_time,
            rate(r.on_time_rate),
            r.replied,
            r.rated,
            rate(r.rating_rate),
            r.satisfied,
            rate(r.satisfaction_rate),
        ]

    rows = [
        row(names.get(r.department_id or "", r.department_id or ""), r)
        for r in figures.departments
    ]
    rows.append(row(_("合计"), figures.total))
    return header, rows


@allow("manager")
async def export_figures(request: web.Request) -> web.StreamResponse:
    """Export a month's figures per department to CSV or XLSX."""
    cache = request.app[FIGURES_CACHE]
    month = _chosen_month(request, cache)
    language = request[LANGUAGE]
    header, rows = figures_table(await cache.month(month), department_names(request), language)
    kind = request.match_info["format"]
    await _audit_export(request, f"figures.{kind}", {"month": str(month)})

    async def each() -> AsyncIterator[list[Cell]]:
        for row in rows:
            yield row

    name = f"figures-{month}.{kind}"
    if kind == "csv":
        return await send_csv(request, name, header, each())
    return await send_xlsx(request, name, translator(language)("统计"), header, each())
