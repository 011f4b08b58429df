"""Reading forms and query strings safely: bounded text, allowed choices, local redirects only."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from yarl import URL

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
