"""What the console's handlers share through the application: typed keys and small lookups."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from aiohttp import web

from bot.services import Services
from bot.tickets.routing import complaint_categories, complaint_category_name

SERVICES = web.AppKey("services", Services)
ZONE = web.AppKey("zone", ZoneInfo)
# The console language of a request: "zh" unless the viewer chose English.
LANGUAGE = web.RequestKey("language", str)
# How many sample tickets (made up by the try-out) the database holds: the pages say so.
SAMPLES = web.RequestKey("samples", int)


def department_names(request: web.Request) -> dict[str, str]:
    """Return every department's name in the viewer's language, by id."""
    language = request.get(LANGUAGE, "zh")
    departments = request.app[SERVICES].knowledge.kb.departments
    return {d.id: d.display_name(language) for d in departments.values()}


def category_names(request: web.Request) -> dict[str, str]:
    """Return every complaint category's name in the viewer's language, by its stored name."""
    language = request.get(LANGUAGE, "zh")
    kb = request.app[SERVICES].knowledge.kb
    return {c: complaint_category_name(kb, c, language) for c in complaint_categories(kb)}
