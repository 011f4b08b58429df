"""The console's guards, as middlewares: security headers, who is logged in, CSRF, who may see what.

Every route is closed unless its handler is marked: `@public` (the login page) or
`@allow(role, ...)`. A handler someone forgets to mark answers 403 to everyone, never to all.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import cast

from aiohttp import web
from aiohttp.typedefs import Handler

from bot.console.accounts import Role
from bot.console.forms import FORM_TYPES, read_form, unsafe_input
from bot.console.sessions import find_session
from bot.console.state import LANGUAGE, SERVICES
from bot.console.translations import LANGUAGES
from bot.core.audit import record_audit

log = logging.getLogger(__name__)


SESSION_COOKIE = "console_session"
LANGUAGE_COOKIE = "console_lang"
LOGIN_CSRF_COOKIE = "console_login_csrf"
CSRF_FIELD = "csrf_token"

# No script at all: every page is plain HTML and CSS from this server.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_ACCESS: dict[Callable[..., Awaitable[web.StreamResponse]], frozenset[str]] = {}
_PUBLIC = "public"
# Pages a user who must change their password may still open.
_WHILE_CHANGING_PASSWORD = frozenset({"password", "password_post", "logout", "language"})


@dataclass(frozen=True, slots=True)
class Viewer:
    """The logged-in user of a request, copied from the session and account rows."""

    user_id: int
    username: str
    display_name: str
    role: str
    department_id: str | None
    must_change_password: bool
    session_id: int
    csrf_token: str

    @property
    def name(self) -> str:
        return self.display_name or self.username


VIEWER = web.RequestKey("viewer", Viewer)

H = Callable[[web.Request], Awaitable[web.StreamResponse]]


def allow(*roles: Role) -> Callable[[H], H]:
    """Mark a handler as open to these roles (everyone else gets 403)."""

    def mark(handler: H) -> H:
        _ACCESS[handler] = frozenset(roles)
        return handler

    return mark


def public(handler: H) -> H:
    """Mark a handler as open without logging in."""
    _ACCESS[handler] = frozenset({_PUBLIC})
    return handler


def roles_of(handler: object) -> frozenset[str] | None:
    """Return who may call a handler ({"public"} for everyone), None when it is unmarked."""
    return _ACCESS.get(cast(H, handler))


def client_ip(request: web.Request) -> str:
    """Return the client's address: the peer's, or what a trusted reverse proxy says it is."""
    peer = request.remote or ""
    if peer in request.app[SERVICES].settings.web.trusted_proxies:
        forwarded = request.headers.get("X-Forwarded-For", "")
        # The proxy appends the address it saw; anything before it came from the client.
        last = forwarded.split(",")[-1].strip()
        if last:
            return last[:64]
    return peer


def current_language(request: web.Request) -> str:
    """Return the console language chosen by cookie; Simplified Chinese unless English."""
    chosen = request.cookies.get(LANGUAGE_COOKIE, "")
    return chosen if chosen in LANGUAGES else "zh"


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Add the security headers to every response, errors included."""
    try:
        response = await handler(request)
    except web.HTTPException as error:
        error.headers.update(SECURITY_HEADERS)
        raise
    if not response.prepared:
        response.headers.update(SECURITY_HEADERS)
        if not request.path.startswith("/static/"):
            # Pages carry personal data: never kept by the browser or a proxy.
            response.headers.setdefault("Cache-Control", "no-store")
    return response


@web.middleware
async def refuse_unsafe_input(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer 400 before anything else reads a request whose path, query string or form holds a
    NUL, or whose form cannot be decoded.

    PostgreSQL cannot store a NUL in text, so one reaching a query or the audit log failed the
    request with an error (and an export after its headers were sent); no page needs one.
    """
    request[LANGUAGE] = current_language(request)
    if await unsafe_input(request):
        log.info("request with a NUL refused: %s %r", request.method, request.path)
        raise web.HTTPBadRequest(reason="NUL characters are not accepted")
    return await handler(request)


@web.middleware
async def load_viewer(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Find who is logged in and check they may open this route."""
    request[LANGUAGE] = current_language(request)
    route = request.match_info.route
    if isinstance(route.resource, web.StaticResource):
        return await handler(request)
    token = request.cookies.get(SESSION_COOKIE, "")
    services = request.app[SERVICES]
    if token:
        async with services.sessions() as session:
            found = await find_session(session, token)
        if found is not None:
            web_session, user = found
            request[VIEWER] = Viewer(
                user_id=user.id,
                username=user.username,
                display_name=user.display_name,
                role=user.role,
                department_id=user.department_id,
                must_change_password=user.must_change_password,
                session_id=web_session.id,
                csrf_token=web_session.csrf_token,
            )
    if request.match_info.http_exception:
        return await handler(request)
    allowed = roles_of(request.match_info.handler)
    if allowed is None:
        log.error("route %s has no access rule; refused", request.path)
        raise web.HTTPForbidden()
    if _PUBLIC in allowed:
        return await handler(request)
    viewer = request.get(VIEWER)
    if viewer is None:
        login = request.app.router["login"].url_for().with_query(next=request.path_qs)
        raise web.HTTPSeeOther(login)
    if viewer.must_change_password and route.name not in _WHILE_CHANGING_PASSWORD:
        raise web.HTTPSeeOther(request.app.router["password"].url_for())
    if viewer.role not in allowed:
        async with services.sessions() as session:
            await record_audit(
                session,
                user_id=viewer.user_id,
                action="access.denied",
                target_type="page",
                target_id=request.path[:64],
                detail={"method": request.method, "role": viewer.role},
                ip=client_ip(request),
            )
            await session.commit()
        raise web.HTTPForbidden()
    return await handler(request)


@web.middleware
async def csrf_protection(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse a form that does not carry the session's CSRF token (the login form's own)."""
    if request.method in _SAFE_METHODS:
        return await handler(request)
    viewer = request.get(VIEWER)
    expected = viewer.csrf_token if viewer else request.cookies.get(LOGIN_CSRF_COOKIE, "")
    submitted = ""
    if request.content_type in FORM_TYPES:
        form = await read_form(request)
        value = form.get(CSRF_FIELD)
        submitted = value if isinstance(value, str) else ""
    if not expected or not secrets.compare_digest(expected.encode(), submitted.encode()):
        log.info("form without a valid CSRF token refused: %s %s", request.method, request.path)
        raise web.HTTPForbidden(reason="CSRF token missing or invalid")
    return await handler(request)


def login_csrf_token(request: web.Request) -> str:
    """Return the login form's CSRF token: the browser's cookie, or a new one."""
    token = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    return token if 32 <= len(token) <= 64 else secrets.token_urlsafe(32)


def set_login_csrf_cookie(request: web.Request, response: web.StreamResponse, token: str) -> None:
    """Store the login form's CSRF token in its cookie (a double-submit check before login)."""
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="Strict",
        secure=request.app[SERVICES].settings.web.cookie_secure,
        path="/",
    )


def set_session_cookie(request: web.Request, response: web.StreamResponse, token: str) -> None:
    """Give the browser its session token: HTTPS only, invisible to scripts, first-party only."""
    settings = request.app[SERVICES].settings.web
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.session_hours * 3600,
        httponly=True,
        samesite="Strict",
        secure=settings.cookie_secure,
        path="/",
    )


def clear_session_cookie(response: web.StreamResponse) -> None:
    """Make the browser forget its session token."""
    response.del_cookie(SESSION_COOKIE, path="/")
