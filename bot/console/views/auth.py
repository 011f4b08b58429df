"""Logging in and out, changing one's password, choosing the language, the home page."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.console.accounts import AccountError, change_password, verify_password
from bot.console.forms import form_text, redirect_back, safe_next
from bot.console.rendering import page, render
from bot.console.security import (
    LANGUAGE_COOKIE,
    SESSION_COOKIE,
    VIEWER,
    allow,
    clear_session_cookie,
    client_ip,
    login_csrf_token,
    public,
    set_login_csrf_cookie,
    set_session_cookie,
)
from bot.console.sessions import close_session, find_session, log_in
from bot.console.state import LANGUAGE, SERVICES
from bot.console.translations import LANGUAGES
from bot.core.models import User

HOME_OF_ROLE = {
    "staff": "inbox",
    "officer": "department",
    "editor": "knowledge_changes",
    "manager": "log",
    "admin": "users",
}


def _render_login(
    request: web.Request, *, error: str = "", username: str = "", status: int = 200
) -> web.Response:
    token = login_csrf_token(request)
    response = render(
        request,
        "login.html",
        {
            "error": error,
            "username": username,
            "login_csrf": token,
            "next": safe_next(request.query.get("next", "")),
        },
        status=status,
    )
    set_login_csrf_cookie(request, response, token)
    return response


@public
async def login_page(request: web.Request) -> web.StreamResponse:
    """Show the login form (or go home when already logged in)."""
    if request.get(VIEWER) is not None:
        raise web.HTTPSeeOther(request.app.router["home"].url_for())
    return _render_login(request)


@public
async def login(request: web.Request) -> web.StreamResponse:
    """Check the password (throttled) and open a session."""
    services = request.app[SERVICES]
    form = await request.post()
    username = form_text(form, "username", 64)
    password = form_text(form, "password", 1024, strip=False)
    result = await log_in(
        services.sessions, services.settings.web, username, password, client_ip(request)
    )
    if result.outcome == "throttled":
        return _render_login(request, error="throttled", username=username, status=429)
    if result.outcome != "ok" or result.user is None:
        return _render_login(request, error="invalid", username=username, status=401)
    target = safe_next(form_text(form, "next", 500)) or str(request.app.router["home"].url_for())
    response = web.HTTPSeeOther(target)
    set_session_cookie(request, response, result.token)
    raise response


@allow("staff", "officer", "editor", "manager", "admin")
async def logout(request: web.Request) -> web.StreamResponse:
    """End the session on the server and in the browser."""
    services = request.app[SERVICES]
    async with services.sessions() as session:
        found = await find_session(session, request.cookies.get(SESSION_COOKIE, ""))
        if found is not None:
            await close_session(session, found[0], client_ip(request))
        await session.commit()
    response = web.HTTPSeeOther(request.app.router["login"].url_for())
    clear_session_cookie(response)
    raise response


@allow("staff", "officer", "editor", "manager", "admin")
@page("password.html")
async def password_page(request: web.Request) -> dict[str, Any]:
    """Show the form to change one's password."""
    return {"error": "", "done": request.query.get("done") == "1"}


@allow("staff", "officer", "editor", "manager", "admin")
async def password_change(request: web.Request) -> web.StreamResponse:
    """Change one's own password after checking the current one."""
    services = request.app[SERVICES]
    viewer = request[VIEWER]
    form = await request.post()
    current = form_text(form, "current", 1024, strip=False)
    new = form_text(form, "new", 1024, strip=False)
    repeated = form_text(form, "repeat", 1024, strip=False)
    error = ""
    async with services.sessions() as session:
        user = await session.get(User, viewer.user_id)
        assert user is not None
        if not verify_password(user.password_hash, current):
            error = "当前密码不正确"
        elif new != repeated:
            error = "两次输入的新密码不一致"
        else:
            try:
                await change_password(
                    session, user, new, keep_session_id=viewer.session_id, ip=client_ip(request)
                )
            except AccountError as problem:
                error = problem.text(request[LANGUAGE])
            else:
                await session.commit()
    if error:
        return render(request, "password.html", {"error": error, "done": False}, status=400)
    raise web.HTTPSeeOther(request.app.router["password"].url_for().with_query(done="1"))


@public
async def switch_language(request: web.Request) -> web.StreamResponse:
    """Remember the chosen language in a cookie and go back to the page."""
    language = request.match_info["language"]
    if language not in LANGUAGES:
        raise web.HTTPNotFound()
    response = redirect_back(request)
    response.set_cookie(
        LANGUAGE_COOKIE,
        language,
        max_age=365 * 24 * 3600,
        samesite="Strict",
        secure=request.app[SERVICES].settings.web.cookie_secure,
        httponly=True,
        path="/",
    )
    raise response


@allow("staff", "officer", "editor", "manager", "admin")
async def home(request: web.Request) -> web.StreamResponse:
    """Send each role to its main page."""
    viewer = request[VIEWER]
    raise web.HTTPSeeOther(request.app.router[HOME_OF_ROLE[viewer.role]].url_for())
