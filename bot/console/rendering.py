"""Rendering pages: every template gets the viewer, the language and its words, the CSRF token.

aiohttp-jinja2's own context processors store their state under a string key of the request,
which aiohttp warns about; the context is merged here instead.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from bot.console.messages import notice
from bot.console.security import CSRF_FIELD, VIEWER
from bot.console.state import LANGUAGE, SAMPLES, SERVICES, ZONE
from bot.console.translations import label, translator
from bot.tickets.routing import complaint_category_name


def base_context(request: web.Request) -> dict[str, Any]:
    """Return what every template may use."""
    language = request.get(LANGUAGE, "zh")
    viewer = request.get(VIEWER)
    zone = request.app[ZONE]
    services = request.app[SERVICES]
    settings = services.settings

    def local_time(moment: dt.datetime | None, pattern: str = "%Y-%m-%d %H:%M") -> str:
        return moment.astimezone(zone).strftime(pattern) if moment else ""

    return {
        "viewer": viewer,
        "language": language,
        "_": translator(language),
        "label": lambda kind, code: label(kind, code, language),
        # A ticket's category is stored in Chinese; English pages show its English name.
        "category": lambda code: complaint_category_name(services.knowledge.kb, code, language),
        "local_time": local_time,
        "csrf_field": CSRF_FIELD,
        "csrf_token": viewer.csrf_token if viewer else "",
        "city": settings.city,
        "city_en": settings.city_en,
        "request_path": request.path_qs,
        "static_url": lambda name: request.app.router["static"].url_for(filename=name),
        "notice": notice(request.query.get("msg", ""), language),
        "samples": request.get(SAMPLES, 0),
    }


def render(
    request: web.Request, template: str, context: Mapping[str, Any], *, status: int = 200
) -> web.Response:
    """Render a template with the base context and this page's."""
    return aiohttp_jinja2.render_template(
        template, request, base_context(request) | dict(context), status=status
    )


PageHandler = Callable[[web.Request], Awaitable[Mapping[str, Any]]]


def page(
    template: str,
) -> Callable[[PageHandler], Callable[[web.Request], Awaitable[web.Response]]]:
    """Turn a handler returning a context into one returning the rendered template."""

    def decorate(handler: PageHandler) -> Callable[[web.Request], Awaitable[web.Response]]:
        @functools.wraps(handler)
        async def rendered(request: web.Request) -> web.Response:
            return render(request, template, await handler(request))

        return rendered

    return decorate
