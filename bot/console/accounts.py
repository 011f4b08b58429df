"""Accounts of the web console: roles, argon2 password hashes, creating, disabling, resetting.

Used by `python -m bot user ...` and by the console's admin pages; every change is written to the
audit log in the same transaction.
"""

from __future__ import annotations

import re
import secrets
from typing import Literal, get_args

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.audit import record_audit
from bot.core.models import User, WebSession

Role = Literal["staff", "officer", "editor", "manager", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)

USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")
MIN_PASSWORD_LENGTH = 10
# argon2 hashes whatever it is given; a cap keeps a huge "password" from costing memory and time.
MAX_PASSWORD_LENGTH = 256
# Letters and digits that cannot be misread for one another when read out or copied by hand.
_ONE_TIME_ALPHABET = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"

# argon2id with OWASP's recommended minimum (19 MiB, 2 passes, 1 lane): about 0.1 s per check
# on a small server, which is what makes guessing a stolen hash slow.
_hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
# Verified against when the user name is unknown, so that a guess costs the same either way.
_dummy_hash = ""


def use_password_hasher(hasher: PasswordHasher) -> PasswordHasher:
    """Hash and check with other argon2 parameters (tests use cheap ones); return the old."""
    global _hasher, _dummy_hash
    previous, _hasher, _dummy_hash = _hasher, hasher, ""
    return previous


def _dummy() -> str:
    global _dummy_hash
    if not _dummy_hash:
        _dummy_hash = _hasher.hash(secrets.token_urlsafe(16))
    return _dummy_hash


class AccountError(ValueError):
    """A request about an account cannot be done; says why in Chinese and in English."""

    def __init__(self, chinese: str, english: str) -> None:
        super().__init__(english)
        self.chinese = chinese
        self.english = english

    def text(self, language: str) -> str:
        """Return the reason in the reader's language."""
        return self.english if language == "en" else self.chinese


def hash_password(password: str) -> str:
    """Return the argon2id hash of a password."""
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Tell whether a password matches a hash (always spends the time of one verification)."""
    if len(password) > MAX_PASSWORD_LENGTH:
        return False
    try:
        return _hasher.verify(password_hash or _dummy(), password) and bool(password_hash)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Tell whether a hash was made with weaker parameters than today's."""
    return _hasher.check_needs_rehash(password_hash)


def check_username(username: str) -> str:
    """Return the user name normalised, or raise AccountError saying what is wrong."""
    name = username.strip().lower()
    if not USERNAME_PATTERN.match(name):
        raise AccountError(
            "用户名：3 到 64 个字符，小写字母、数字、“.”“_”或“-”，以字母或数字开头",
            "user name: 3 to 64 characters, lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
        )
    return name


def check_password(password: str) -> str:
    """Return the password if it is acceptable, or raise AccountError saying what is wrong."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(
            f"密码至少 {MIN_PASSWORD_LENGTH} 个字符",
            f"password: at least {MIN_PASSWORD_LENGTH} characters",
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError(
            f"密码最多 {MAX_PASSWORD_LENGTH} 个字符",
            f"password: at most {MAX_PASSWORD_LENGTH} characters",
        )
    if not password.strip() or len(set(password)) < 4:
        raise AccountError("密码过于简单", "password: too simple")
    return password


def check_role(role: str, department_id: str | None, departments: set[str]) -> Role:
    """Return the role if it fits the department binding, or raise AccountError."""
    if role not in ROLES:
        raise AccountError(f"角色须为 {', '.join(ROLES)} 之一", f"role: one of {', '.join(ROLES)}")
    if role == "officer":
        if not department_id:
            raise AccountError(
                "部门办理人员须绑定一个部门",
                "an officer is bound to one department (--department ID)",
            )
        if department_id not in departments:
            raise AccountError(
                f"未知部门：{department_id}", f"department: unknown id {department_id!r}"
            )
    elif department_id:
        raise AccountError("只有部门办理人员绑定部门", "only officers are bound to a department")
    return role


def one_time_password() -> str:
    """Return a random password to hand over once; its owner must change it at next login."""
    return "-".join(
        "".join(secrets.choice(_ONE_TIME_ALPHABET) for _ in range(4)) for _ in range(4)
    )


async def find_user(session: AsyncSession, username: str) -> User | None:
    """Return the account with this user name, if any."""
    name = username.strip().lower()
    return (await session.execute(select(User).where(User.username == name))).scalar_one_or_none()


async def create_user(
    session: AsyncSession,
    *,
    username: str,
    password: str,
    role: str,
    departments: set[str],
    department_id: str | None = None,
    display_name: str = "",
    must_change_password: bool = False,
    actor_id: int | None = None,
    ip: str = "",
) -> User:
    """Add an account (the caller commits); raise AccountError when anything is invalid."""
    name = check_username(username)
    checked_role = check_role(role, department_id or None, departments)
    check_password(password)
    if await find_user(session, name) is not None:
        raise AccountError(f"用户名 {name} 已被使用", f"user name {name!r} is taken")
    user = User(
        username=name,
        password_hash=hash_password(password),
        role=checked_role,
        department_id=department_id or None,
        display_name=display_name.strip()[:200],
        must_change_password=must_change_password,
    )
    session.add(user)
    await session.flush()
    await record_audit(
        session,
        user_id=actor_id,
        action="user.create",
        target_type="user",
        target_id=str(user.id),
        detail={"username": name, "role": checked_role, "department_id": department_id},
        ip=ip,
    )
    return user


async def end_sessions_of(session: AsyncSession, user_id: int) -> None:
    """Log a user out everywhere."""
    await session.execute(delete(WebSession).where(WebSession.user_id == user_id))


def _is_active_admin(user: User) -> bool:
    return user.role == "admin" and not user.disabled


async def _lock_admins(session: AsyncSession) -> None:
    """Make every other transaction that changes an admin wait until this one ends.

    PostgreSQL locks the active admins' rows (in id order, so two transactions cannot deadlock);
    a transaction waiting for them reads them again, as the first left them. SQLite has no row
    locks: writing to the table takes the database's one write lock, and what this transaction
    reads next is the latest.
    """
    active = (User.role == "admin") & User.disabled.is_(False)
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(select(User.id).where(active).order_by(User.id).with_for_update())
    else:
        await session.execute(update(User).where(active).values(disabled=User.disabled))


async def _keep_an_admin(session: AsyncSession, user: User, actor_id: int | None) -> None:
    """Refuse a change that would leave no active admin, checked under the admins' lock.

    Two admins disabling each other at once each see the other still active; with the lock the
    second waits for the first and then sees it is the last one. An admin disabled or demoted a
    moment ago (whose page was already open) may not change admins either.
    """
    await _lock_admins(session)
    await session.refresh(user)
    if actor_id is not None:
        actor = await session.get(User, actor_id, populate_existing=True)
        if actor is None or not _is_active_admin(actor):
            raise AccountError(
                "您的账号已不是在用的系统管理员，不能修改账号",
                "your account is no longer an active admin; it cannot change accounts",
            )
    if not _is_active_admin(user):
        return
    others = await session.scalar(
        select(func.count())
        .select_from(User)
        .where(User.role == "admin", User.disabled.is_(False), User.id != user.id)
    )
    if not others:
        raise AccountError(
            "至少要保留一个在用的系统管理员账号，不能停用或改变最后一个",
            "at least one active admin must remain: the last one cannot be disabled or demoted",
        )


async def set_disabled(
    session: AsyncSession, user: User, disabled: bool, *, actor_id: int | None = None, ip: str = ""
) -> None:
    """Disable an account (its sessions end at once) or enable it again. The last active admin
    cannot be disabled (AccountError)."""
    if disabled:
        await _keep_an_admin(session, user, actor_id)
    user.disabled = disabled
    if disabled:
        await end_sessions_of(session, user.id)
    await record_audit(
        session,
        user_id=actor_id,
        action="user.disable" if disabled else "user.enable",
        target_type="user",
        target_id=str(user.id),
        detail={"username": user.username},
        ip=ip,
    )


async def reset_password(
    session: AsyncSession, user: User, *, actor_id: int | None = None, ip: str = ""
) -> str:
    """Give the account a one-time password, end its sessions, and return the password."""
    password = one_time_password()
    user.password_hash = hash_password(password)
    user.must_change_password = True
    await end_sessions_of(session, user.id)
    await record_audit(
        session,
        user_id=actor_id,
        action="user.reset_password",
        target_type="user",
        target_id=str(user.id),
        detail={"username": user.username},
        ip=ip,
    )
    return password


async def change_role(
    session: AsyncSession,
    user: User,
    *,
    role: str,
    department_id: str | None,
    departments: set[str],
    actor_id: int | None = None,
    ip: str = "",
) -> None:
    """Change what an account may do; its sessions end so the new role applies at once. The last
    active admin cannot be given another role (AccountError)."""
    checked = check_role(role, department_id or None, departments)
    if checked != "admin":
        await _keep_an_admin(session, user, actor_id)
    before = {"role": user.role, "department_id": user.department_id}
    user.role = checked
    user.department_id = department_id or None
    await end_sessions_of(session, user.id)
    await record_audit(
        session,
        user_id=actor_id,
        action="user.change_role",
        target_type="user",
        target_id=str(user.id),
        detail={"before": before, "after": {"role": checked, "department_id": department_id}},
        ip=ip,
    )


async def change_password(
    session: AsyncSession, user: User, new_password: str, *, keep_session_id: int | None, ip: str
) -> None:
    """Set a password chosen by its owner; other sessions of the account end."""
    check_password(new_password)
    if verify_password(user.password_hash, new_password):
        raise AccountError(
            "新密码不能与当前密码相同", "password: choose a new one, not the current one"
        )
    user.password_hash = hash_password(new_password)
    user.must_change_password = False
    others = delete(WebSession).where(WebSession.user_id == user.id)
    if keep_session_id is not None:
        others = others.where(WebSession.id != keep_session_id)
    await session.execute(others)
    await record_audit(
        session,
        user_id=user.id,
        action="user.change_password",
        target_type="user",
        target_id=str(user.id),
        ip=ip,
    )
