"""Admins: console accounts (create, change role, disable, reset password) and the audit log."""

from __future__ import annotations

from dataclasses import dataclass
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
from bot.console.state import LANGUAGE, SERVICES, category_names, department_names
from bot.console.translations import LABELS, label, translator
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


def _value(key: str, value: Any, language: str, names: AuditNames) -> str:
    """Return one detail of an audit entry as words."""
    _ = translator(language)
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return _("是") if value else _("否")
    if isinstance(value, dict):
        colon, joiner = (": ", "; ") if language == "en" else ("：", "；")
        kind = names.kind_of(key)
        return joiner.join(
            f"{label(kind, k, language)}{colon}{_value(k, v, language, names)}"
            for k, v in value.items()
        )
    if isinstance(value, list):
        joiner = ", " if language == "en" else "、"
        return joiner.join(_value(key, v, language, names) for v in value)
    text = str(value)
    if key == "role":
        return label("role", text, language)
    if key in ("department_id", "department"):
        return names.departments.get(text, text)
    if key == "fields":
        return label("personal_field", text, language)
    if key in ("result", "outcome"):
        return label("audit_result", text, language)
    if key == "item_id":
        return names.items.get(text, text)
    if key == "category":
        return names.categories.get(text, text)
    if key in ("type", "status", "rating"):
        return label(key, text, language)
    if key == "overdue":
        return _("是")
    return text


@dataclass(frozen=True, slots=True)
class AuditNames:
    """The names a detail's codes are shown by: departments, knowledge items and complaint
    categories (a log export's filter), in the reader's language."""

    departments: dict[str, str]
    items: dict[str, str]
    categories: dict[str, str]

    @staticmethod
    def kind_of(key: str) -> str:
        """Return the label kind of the keys of a nested detail (filters, before and after)."""
        return "log_filter" if key == "filters" else "audit_detail"


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One line of the audit log page: the entry, its account's name, its details in words."""

    entry: AuditEntry
    username: str | None
    details: list[tuple[str, str]]


def audit_details(
    detail: dict[str, Any], language: str, names: AuditNames
) -> list[tuple[str, str]]:
    """Return an audit entry's details as (name, words) pairs, in the reader's language."""
    return [
        (label("audit_detail", key, language), _value(key, value, language, names))
        for key, value in detail.items()
    ]


def audit_action_choices() -> list[tuple[str, list[str]]]:
    """Return the action filter's options: each group's prefix with the actions it holds."""
    actions = list(LABELS["audit_action"])
    return [
        (prefix, [a for a in actions if a.startswith(prefix)]) for prefix in LABELS["audit_group"]
    ]


@allow("admin")
@page("audit.html")
async def audit_log(request: web.Request) -> dict[str, Any]:
    """The audit log, newest first, paged by id; filter by account name, and by an action (a
    known code) or the start of one ("ticket.")."""
    services = request.app[SERVICES]
    language = request[LANGUAGE]
    before = positive_int(request.query.get("before"))
    action = request.query.get("action", "").strip()[:64]
    account = request.query.get("account", "").strip().lower()[:64]
    query = select(AuditEntry, User.username).outerjoin(User, User.id == AuditEntry.user_id)
    if before:
        query = query.where(AuditEntry.id < before)
    if action in LABELS["audit_action"]:
        query = query.where(AuditEntry.action == action)
    elif action:
        query = query.where(AuditEntry.action.startswith(action, autoescape=True))
    if account:
        # The account's own entries, and failed logins typed with its name (which may have no
        # account behind them, or were refused before the account was looked up).
        query = query.where(
            (User.username == account)
            | (
                AuditEntry.action.startswith("login.", autoescape=True)
                & (AuditEntry.detail["username"].as_string() == account)
            )
        )
    async with services.sessions() as session:
        rows = (
            await session.execute(query.order_by(AuditEntry.id.desc()).limit(AUDIT_PAGE + 1))
        ).all()
    names = AuditNames(
        departments=department_names(request),
        items={
            item.id: item.get_text("title", language)
            for item in services.knowledge.kb.items.values()
        },
        categories=category_names(request),
    )
    entries = [
        AuditRow(entry, username, audit_details(entry.detail or {}, language, names))
        for entry, username in rows[:AUDIT_PAGE]
    ]
    more = len(rows) > AUDIT_PAGE
    groups = audit_action_choices()
    return {
        "entries": entries,
        "next_before": entries[-1].entry.id if more and entries else None,
        "action": action,
        # A prefix typed into the URL by hand is offered as it is.
        "action_known": any(action == p or action in members for p, members in groups),
        "account": account,
        "action_groups": groups,
    }
