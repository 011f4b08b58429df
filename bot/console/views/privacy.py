"""The public privacy page (/privacy): the full text residents are linked to from the bot.

Anyone may open it, logged in or not; it shows the retention periods of this deployment's
config.toml [privacy] section, so the text and the sweep never disagree.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.console.rendering import render
from bot.console.security import public
from bot.console.state import SERVICES


@public
async def privacy_page(request: web.Request) -> web.StreamResponse:
    """Show the full privacy text, in Chinese (English with the language switch)."""
    settings = request.app[SERVICES].settings
    context: dict[str, Any] = {"privacy": settings.privacy}
    return render(request, "privacy.html", context)
