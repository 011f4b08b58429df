"""Logging in and out of the console: throttled password checks and server-side sessions.

The browser holds only a random token; the database holds its SHA-256, so a leaked database
copy cannot be replayed as a login. Each session carries its own CSRF token.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.console.accounts import find_user, hash_password, needs_rehash, verify_password
from bot.core.audit import record_audit
from bot.core.config import WebSettings
from bot.core.db import write_gate
from bot.core.models import LoginAttempt, User, WebSession, utcnow

# Older than this, login attempts no longer matter to throttling and are swept away.
ATTEMPTS_KEPT = dt.timedelta(days=30)


def token_hash(token: str) -> str:
    """Return what the database stores for a session token."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


@dataclass(frozen=True, slots=True)
class LoginResult:
    """What became of a login: a new session token, or why there is none."""

    outcome: Literal["ok", "invalid", "throttled"]
    token: str = ""
    user: User | None = None


async def _recent_failures(
    session: AsyncSession, since: dt.datetime, *, username: str | None, ip: str | None
) -> int:
    query = select(func.count()).where(
        LoginAttempt.created_at >= since, LoginAttempt.success.is_(False)
    )
    if username is not None:
        query = query.where(LoginAttempt.username == username)
    if ip is not None:
        query = query.where(LoginAttempt.ip == ip)
    return int((await session.execute(query)).scalar_one())


async def over_the_limit(
    session: AsyncSession, settings: WebSettings, username: str, ip: str
) -> bool:
    """Tell whether the attempts that did not succeed lately, this one included, are more than
    allowed for this user name or from this address."""
    since = utcnow() - dt.timedelta(minutes=settings.login_window_minutes)
    if await _recent_failures(session, since, username=username, ip=None) > (
        settings.login_attempts
    ):
        return True
    return (
        await _recent_failures(session, since, username=None, ip=ip)
        > settings.login_attempts_per_ip
    )


async def log_in(
    sessions: async_sessionmaker[AsyncSession],
    settings: WebSettings,
    username: str,
    password: str,
    ip: str,
) -> LoginResult:
    """Check a password unless throttled; on success open a session. Commits what it does.

    Checking the limit and counting the attempt are one step, across processes: the attempt is
    first committed as a failure, and only then are the failures counted, this one included.
    Of many attempts racing, the k-th to commit counts at least k, so no more than the limit
    ever reach the password check, however many arrive at once and on however many consoles
    share the database. An attempt stays counted as a failure until its password is found
    right; a login whose password is still being checked holds a place in the limit.
    """
    name = username.strip().lower()[:64]
    address = ip[:64]
    gate = write_gate(sessions)
    async with gate, sessions() as session, session.begin():
        attempt = LoginAttempt(username=name, ip=address, success=False)
        session.add(attempt)
        await session.flush()
        attempt_id = attempt.id
    async with sessions() as session:
        throttled = await over_the_limit(session, settings, name, address)
        user = None if throttled or not name else await find_user(session, name)
    if throttled:
        # The attempt stays a failure, so that hammering a throttled account keeps it throttled.
        async with gate, sessions() as session, session.begin():
            await record_audit(
                session, user_id=None, action="login.throttled", detail={"username": name}, ip=ip
            )
        return LoginResult("throttled")
    # argon2 takes a tenth of a second on purpose; the event loop keeps serving meanwhile.
    valid = await asyncio.to_thread(
        verify_password, user.password_hash if user else None, password
    )
    async with gate, sessions() as session, session.begin():
        # Read again: the account may have been disabled while the password was checked.
        current = await session.get(User, user.id) if user is not None else None
        if current is None or not valid or current.disabled:
            await record_audit(
                session,
                user_id=current.id if current else None,
                action="login.failed",
                detail={"username": name, "disabled": bool(current and current.disabled)},
                ip=ip,
            )
            return LoginResult("invalid")
        await session.execute(
            update(LoginAttempt).where(LoginAttempt.id == attempt_id).values(success=True)
        )
        if needs_rehash(current.password_hash):
            current.password_hash = hash_password(password)
        current.last_login_at = utcnow()
        token = await open_session(session, current, settings, ip)
        await record_audit(session, user_id=current.id, action="login", ip=ip)
    return LoginResult("ok", token=token, user=current)


async def open_session(session: AsyncSession, user: User, settings: WebSettings, ip: str) -> str:
    """Store a new session for a user and return the token for the cookie."""
    token = secrets.token_urlsafe(32)
    session.add(
        WebSession(
            token_hash=token_hash(token),
            user_id=user.id,
            csrf_token=secrets.token_urlsafe(32),
            expires_at=utcnow() + dt.timedelta(hours=settings.session_hours),
            ip=ip[:64],
        )
    )
    await session.flush()
    return token


async def find_session(session: AsyncSession, token: str) -> tuple[WebSession, User] | None:
    """Return the live session of a cookie token and its user (None when expired or disabled)."""
    if not token or len(token) > 128:
        return None
    row = (
        await session.execute(
            select(WebSession, User)
            .join(User, User.id == WebSession.user_id)
            .where(WebSession.token_hash == token_hash(token))
        )
    ).one_or_none()
    if row is None:
        return None
    web_session, user = row[0], row[1]
    if web_session.expires_at <= utcnow() or user.disabled:
        return None
    return web_session, user


async def close_session(session: AsyncSession, web_session: WebSession, ip: str) -> None:
    """Log out: the session row goes, so the cookie is worthless even if it was copied."""
    await session.execute(delete(WebSession).where(WebSession.id == web_session.id))
    await record_audit(session, user_id=web_session.user_id, action="logout", ip=ip)


async def sweep_expired(session: AsyncSession) -> None:
    """Delete expired sessions and login attempts too old to matter."""
    now = utcnow()
    await session.execute(delete(WebSession).where(WebSession.expires_at <= now))
    await session.execute(
        delete(LoginAttempt).where(LoginAttempt.created_at < now - ATTEMPTS_KEPT)
    )
