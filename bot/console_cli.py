"""Console subcommands of `python -m bot`: `web` (the console alone) and `user` (accounts).

Passwords never go on the command line (where `ps` and shell history would keep them): `user add`
asks for one at a prompt, or reads one line from standard input when that is not a terminal.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

from bot.core.config import Settings

T = TypeVar("T")


def _read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("Password / 密码: ")
        if getpass.getpass("Again / 再次输入: ") != first:
            raise ValueError("the two passwords differ / 两次输入不一致")
        return first
    return sys.stdin.readline().rstrip("\r\n")


async def _with_session(
    settings: Settings, work: Callable[..., Awaitable[T]], *arguments: object
) -> T:
    """Run `work(session, departments, *arguments)` in one committed transaction."""
    from bot.answering.knowledge_base import load_knowledge_base
    from bot.core.services import open_database

    departments = set(load_knowledge_base(settings.knowledge_dir).departments)
    async with open_database(settings, migrate=True) as sessions, sessions() as session:
        result = await work(session, departments, *arguments)
        await session.commit()
        return result


def command_user(args: argparse.Namespace, settings: Settings) -> int:
    """Add, disable, enable or list console accounts, or reset a password."""
    from sqlalchemy import select
    from sqlalchemy.ext.asyncio import AsyncSession

    from bot.answering.knowledge_base import KnowledgeBaseError
    from bot.console.accounts import (
        AccountError,
        create_user,
        find_user,
        one_time_password,
        reset_password,
        set_disabled,
    )
    from bot.core.models import User

    async def add(session: AsyncSession, departments: set[str], password: str) -> str:
        user = await create_user(
            session,
            username=args.username,
            password=password,
            role=args.role,
            departments=departments,
            department_id=args.department,
            display_name=args.name or "",
            must_change_password=args.one_time,
        )
        return f"created {user.username} ({user.role}{', ' + user.department_id if user.department_id else ''})"

    async def existing(session: AsyncSession) -> User:
        user = await find_user(session, args.username)
        if user is None:
            raise AccountError(f"没有账号 {args.username}", f"no account {args.username!r}")
        return user

    async def disable(session: AsyncSession, _: set[str]) -> str:
        user = await existing(session)
        await set_disabled(session, user, not args.enable)
        return f"{'enabled' if args.enable else 'disabled'} {user.username}"

    async def reset(session: AsyncSession, _: set[str]) -> str:
        user = await existing(session)
        password = await reset_password(session, user)
        return (
            f"one-time password for {user.username} (shown once; it must be changed at the next "
            f"login):\n{password}"
        )

    async def listing(session: AsyncSession, _: set[str]) -> str:
        users = (await session.execute(select(User).order_by(User.username))).scalars()
        return "\n".join(
            f"{u.username:<24} {u.role:<8} {u.department_id or '-':<24} "
            f"{'disabled' if u.disabled else 'active'}"
            for u in users
        )

    try:
        if args.user_command == "add":
            password = one_time_password() if args.one_time else _read_password()
            message = asyncio.run(_with_session(settings, add, password))
            if args.one_time:
                message += f"\none-time password (shown once; change at first login):\n{password}"
        elif args.user_command == "disable":
            message = asyncio.run(_with_session(settings, disable))
        elif args.user_command == "reset-password":
            message = asyncio.run(_with_session(settings, reset))
        else:
            message = asyncio.run(_with_session(settings, listing))
    except AccountError as error:
        print(f"{error.chinese} / {error.english}", file=sys.stderr)
        return 2
    except (ValueError, KnowledgeBaseError) as error:
        print(error, file=sys.stderr)
        return 2
    print(message)
    return 0


def command_web(args: argparse.Namespace, settings: Settings) -> int:
    """Serve the web console alone, without the Telegram bot."""
    from bot.console.app import run_standalone

    host = args.host or settings.web.host
    port = args.port or settings.web.port
    print(f"web console on http://{host}:{port}/ (Ctrl+C stops it)", flush=True)
    run_standalone(settings, host, port)
    return 0


def add_console_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `web` and `user` to the command line."""
    web = commands.add_parser("web", help="serve the web console alone (see docs/console.md)")
    web.add_argument("--host", help="address to listen on (default: [web] host)")
    web.add_argument("--port", type=int, help="port (default: [web] port)")
    web.set_defaults(handler=command_web)

    user = commands.add_parser("user", help="console accounts: add, disable, reset-password, list")
    actions = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    add = actions.add_parser(
        "add", help="add an account; the password is asked for (or read from standard input)"
    )
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=("staff", "officer", "manager", "admin"))
    add.add_argument("--department", help="department id (officers only)")
    add.add_argument("--name", help="display name")
    add.add_argument(
        "--one-time",
        action="store_true",
        help="generate a one-time password instead of asking; it must be changed at first login",
    )
    disable = actions.add_parser("disable", help="disable an account (its sessions end at once)")
    disable.add_argument("username")
    disable.add_argument("--enable", action="store_true", help="enable it again instead")
    reset = actions.add_parser(
        "reset-password", help="print a one-time password; it must be changed at next login"
    )
    reset.add_argument("username")
    actions.add_parser("list", help="list the accounts")
    user.set_defaults(handler=command_user)
