"""Reading forms and query strings safely: bounded text, allowed choices, local redirects only.

`read_form` and `unsafe_input` serve the middleware that refuses, before any view runs, a request
whose path, query string or form holds a NUL or cannot be decoded (bot.console.security).
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy
from yarl import URL

log = logging.getLogger(__name__)

# The form encodings browsers send; nothing else is read as a form.
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})

# Invisible and control characters a form has no business sending (newlines and tabs stay).
_KEEP = frozenset("\n\t")


def clean(text: str, limit: int, *, strip: bool = True) -> str:
    """Return text without control characters, bounded to `limit` characters."""
    kept = "".join(c for c in text if c in _KEEP or not unicodedata.category(c).startswith("C"))
    kept = kept.strip() if strip else kept
    return kept[:limit]


def form_text(form: Mapping[str, Any], name: str, limit: int, *, strip: bool = True) -> str:
    """Return a text field of a posted form ("" when missing or not text)."""
    value = form.get(name, "")
    return clean(value, limit, strip=strip) if isinstance(value, str) else ""


def safe_next(target: str) -> str:
    """Return `target` if it is a path on this site, else "" (no open redirects)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return ""
    url = URL(target)
    if url.is_absolute() or url.scheme or url.host:
        return ""
    return target


def redirect_back(request: web.Request, fallback: str = "/") -> web.HTTPSeeOther:
    """Return a redirect to the `next` query parameter when it is local, else to `fallback`."""
    return web.HTTPSeeOther(safe_next(request.query.get("next", "")) or fallback)


def positive_int(text: str | None) -> int | None:
    """Return a positive integer from a URL part or field, None when it is anything else."""
    if text is None or not text.isascii() or not text.isdigit() or len(text) > 18:
        return None
    value = int(text)
    return value if value > 0 else None


async def read_form(request: web.Request) -> MultiDictProxy[Any]:
    """Return the posted form, or answer 400 when it cannot be read: not UTF-8, an unknown
    charset, a multipart body cut short or without its boundary."""
    try:
        return await request.post()
    except (ValueError, LookupError) as error:  # UnicodeDecodeError is a ValueError
        log.info("unreadable form refused: %s %s (%s)", request.method, request.path, error)
        raise web.HTTPBadRequest(reason="The form cannot be read") from None


def has_nul(texts: Iterable[object]) -> bool:
    """Tell whether any of these texts holds a NUL (U+0000), which PostgreSQL cannot store."""
    return any(isinstance(text, str) and "\x00" in text for text in texts)


async def unsafe_input(request: web.Request) -> bool:
    """Tell whether the path, the query string or a posted form holds a NUL (400 when the form
    cannot be read at all). No page of the console has any use for one."""
    if "\x00" in request.path or has_nul(request.query.keys()) or has_nul(request.query.values()):
        return True
    if request.method in ("GET", "HEAD", "OPTIONS") or request.content_type not in FORM_TYPES:
        return False
    form = await read_form(request)
    return has_nul(form.keys()) or has_nul(form.values())
