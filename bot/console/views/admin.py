"""Admins: console accounts (create, change role, disable, reset password) and the audit log."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import select

from bot.console.accounts import (
    ROLES,
    AccountError,
    change_role,
    create_user,
    one_time_password,
    reset_password,
    set_disabled,
)
from bot.console.forms import form_text, positive_int
from bot.console.messages import redirect_with
from bot.console.rendering import page, render
from bot.console.security import VIEWER, allow, client_ip
from bot.console.state import LANGUAGE, SERVICES, department_names
from bot.core.models import AuditEntry, User

AUDIT_PAGE = 100


async def _user(request: web.Request) -> User:
    user_id = positive_int(request.match_info["user_id"])
    async with request.app[SERVICES].sessions() as session:
        user = await session.get(User, user_id) if user_id else None
    if user is None:
        raise web.HTTPNotFound()
    return user


def _departments(request: web.Request) -> set[str]:
    return set(request.app[SERVICES].knowledge.kb.departments)


@allow("admin")
async def users(request: web.Request) -> web.StreamResponse:
    """List the accounts, with the form to add one."""
    return await render_users(request)


async def render_users(
    request: web.Request, *, error: str = "", form: dict[str, str] | None = None, status: int = 200
) -> web.Response:
    """Render the account list (with a problem in the add form, if any)."""
    async with request.app[SERVICES].sessions() as session:
        accounts = list((await session.execute(select(User).order_by(User.username))).scalars())
    return render(
        request,
        "users.html",
        {
            "accounts": accounts,
            "roles": ROLES,
            "departments": department_names(request),
            "error": error,
            "form": form or {},
        },
        status=status,
    )


@allow("admin")
async def add_user(request: web.Request) -> web.StreamResponse:
    """Create an account with a one-time password, shown once to the admin."""
    viewer = request[VIEWER]
    posted = await request.post()
    form = {
        name: form_text(posted, name, 200)
        for name in ("username", "display_name", "role", "department")
    }
    password = one_time_password()
    async with request.app[SERVICES].sessions() as session:
        try:
            user = await create_user(
                session,
                username=form["username"],
                password=password,
                role=form["role"],
                departments=_departments(request),
                department_id=form["department"] or None,
                display_name=form["display_name"],
                must_change_password=True,
                actor_id=viewer.user_id,
                ip=client_ip(request),
            )
        except AccountError as problem:
            return await render_users(
                request, error=problem.text(request[LANGUAGE]), form=form, status=400
            )
        await session.commit()
    return render(request, "one_time_password.html", {"account": user, "password": password})


@allow("admin")
@page("user.html")
async def user_page(request: web.Request) -> dict[str, Any]:
    """Show one account with its actions."""
    return {
        "account": await _user(request),
        "roles": ROLES,
        "departments": department_names(request),
        "error": "",
    }


@allow("admin")
async def update_user(request: web.Request) -> web.StreamResponse:
    """Change an account's role, department, name or whether it is disabled."""
    viewer = request[VIEWER]
    target = await _user(request)
    posted = await request.post()
    action = form_text(posted, "action", 32)
    async with request.app[SERVICES].sessions() as session:
        user = await session.get(User, target.id)
        assert user is not None
        ip = client_ip(request)
        try:
            if user.id == viewer.user_id and action in ("disable", "role"):
                # An admin locking themselves out would leave nobody to undo it.
                raise AccountError(
                    "不能停用自己或修改自己的角色",
                    "you cannot disable yourself or change your own role",
                )
            if action == "disable":
                await set_disabled(session, user, True, actor_id=viewer.user_id, ip=ip)
            elif action == "enable":
                await set_disabled(session, user, False, actor_id=viewer.user_id, ip=ip)
            elif action == "role":
                await change_role(
                    session,
                    user,
                    role=form_text(posted, "role", 16),
                    department_id=form_text(posted, "department", 128) or None,
                    departments=_departments(request),
                    actor_id=viewer.user_id,
                    ip=ip,
                )
            elif action == "reset":
                password = await reset_password(session, user, actor_id=viewer.user_id, ip=ip)
                await session.commit()
                return render(
                    request, "one_time_password.html", {"account": user, "password": password}
                )
            else:
                raise web.HTTPBadRequest()
        except AccountError as problem:
            return render(
                request,
                "user.html",
                {
                    "account": target,
                    "roles": ROLES,
                    "departments": department_names(request),
                    "error": problem.text(request[LANGUAGE]),
                },
                status=400,
            )
        await session.commit()
    raise redirect_with(request, "user", {"user_id": str(target.id)}, "user_updated")


@allow("admin")
@page("audit.html")
async def audit_log(request: web.Request) -> dict[str, Any]:
    """The audit log, newest first, paged by id; filter by user or action."""
    before = positive_int(request.query.get("before"))
    action = request.query.get("action", "").strip()[:64]
    user_id = positive_int(request.query.get("user"))
    query = select(AuditEntry, User.username).outerjoin(User, User.id == AuditEntry.user_id)
    if before:
        query = query.where(AuditEntry.id < before)
    if action:
        query = query.where(AuditEntry.action.startswith(action, autoescape=True))
    if user_id:
        query = query.where(AuditEntry.user_id == user_id)
    async with request.app[SERVICES].sessions() as session:
        rows = (
            await session.execute(query.order_by(AuditEntry.id.desc()).limit(AUDIT_PAGE + 1))
        ).all()
    entries = [(entry, username) for entry, username in rows[:AUDIT_PAGE]]
    more = len(rows) > AUDIT_PAGE
    return {
        "entries": entries,
        "next_before": entries[-1][0].id if more and entries else None,
        "action": action,
        "user_filter": user_id or "",
    }
