"""`python -m bot run`: the whole service in one process.

With TELEGRAM_BOT_TOKEN set, the bot talks to Telegram (polling by default, or a webhook behind a
reverse proxy when [telegram] mode = "webhook"). Without a token it starts the local try-out: a
local Bot API server on [telegram] tryout_host:tryout_port with a generated token, a resident and
a staff group in it, and the real bot running against it, so anyone can try every flow in a
browser. The other long-running parts of the process (web console, delivery worker, deadline
scheduler) are started from RUN_SERVICES.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import gc
import importlib
import logging
import os
import secrets
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.core.config import Settings

if TYPE_CHECKING:
    from bot.answering.store import KnowledgeStore
    from bot.core.services import Services
    from bot.telegram.context import BotApplication
    from tryout.local_bot_api import LocalBotApi

log = logging.getLogger(__name__)

# The other parts of the process, started in this order after the bot and stopped in reverse:
# "module:function", where function(services, application) returns an async context manager
# that runs the part until it exits. The web console (issue 5) and the ticket workers (issue 4)
# add themselves here.
RUN_SERVICES: list[str] = [
    # The web console on [web] host:port (unless [web] enabled = false).
    "bot.console.app:serving_console",
    # Ticket delivery to departments and residents, deadlines (督办), department callbacks.
    "bot.workers:serving_ticket_workers",
]

ServiceStarter = Callable[["Services", "BotApplication"], AbstractAsyncContextManager[Any]]


@dataclass(frozen=True)
class Running:
    """What `run` started, for whoever waits on it (tests, the banner)."""

    settings: Settings
    services: Services
    application: BotApplication
    tryout: LocalBotApi | None


def _starter(path: str) -> ServiceStarter:
    module_name, _, function = path.partition(":")
    starter: ServiceStarter = getattr(importlib.import_module(module_name), function)
    return starter


def tryout_settings(settings: Settings, staff_chat_id: int) -> Settings:
    """Return the settings of a try-out: its staff group, and its own SQLite file."""
    database = settings.database
    if not (os.environ.get("DATABASE_URL") or database.url):
        database = database.model_copy(update={"path": database.path.with_name("tryout.sqlite3")})
    return settings.model_copy(
        update={
            "database": database,
            "telegram": settings.telegram.model_copy(
                update={"staff_chat_id": staff_chat_id, "mode": "polling"}
            ),
        }
    )


# Console accounts of the try-out, one per role (its own database, never a real deployment's).
TRYOUT_ACCOUNTS = (
    ("tryout-staff", "staff", None, "试用工作人员"),
    ("tryout-officer", "officer", "urban-management", "试用城管局办理人员"),
    ("tryout-manager", "manager", None, "试用管理人员"),
    ("tryout-admin", "admin", None, "试用系统管理员"),
)


async def tryout_accounts(services: Services) -> str:
    """Create the try-out's console accounts (or give them a new password); return it.

    The password is new at every start and printed only to the terminal of the person trying.
    """
    from bot.console.accounts import create_user, find_user, hash_password, one_time_password

    password = one_time_password()
    departments = set(services.knowledge.kb.departments)
    async with services.sessions() as session:
        for username, role, department, name in TRYOUT_ACCOUNTS:
            user = await find_user(session, username)
            if user is None:
                await create_user(
                    session,
                    username=username,
                    password=password,
                    role=role,
                    departments=departments,
                    department_id=department,
                    display_name=name,
                )
            else:
                user.password_hash = hash_password(password)
                user.disabled = False
                user.must_change_password = False
        await session.commit()
    return password


def _banner(api: LocalBotApi, settings: Settings, password: str | None) -> str:
    world = api.tryout
    staff = "、".join(person.first_name for person in world.staff)
    text = (
        "\n"
        "  本地试用 Local try-out (no TELEGRAM_BOT_TOKEN set)\n"
        f"  Open {api.tryout_url} in your browser.\n"
        f"  You can be the resident {world.resident.first_name} talking to the bot, or the staff\n"
        f"  ({staff}) in the group “{world.staff_group.title}”, who answer by replying to the\n"
        "  bot's posts. Stop with Ctrl+C.\n"
    )
    if password is not None:
        web = settings.web
        names = ", ".join(username for username, *_ in TRYOUT_ACCOUNTS)
        text += (
            f"\n  Web console 网页后台: http://{web.host}:{web.port}/\n"
            f"  Log in as {names}\n"
            f"  with the password {password} (new at every start).\n"
        )
    return text


@contextlib.asynccontextmanager
async def running(
    settings: Settings,
    *,
    tryout_port: int | None = None,
    knowledge: KnowledgeStore | None = None,
) -> AsyncIterator[Running]:
    """Start the bot (and the try-out server without a token) and the RUN_SERVICES; stop all.

    `tryout_port` overrides [telegram] tryout_port (0: any free port); `knowledge` shares an
    already loaded knowledge base.
    """
    from telegram import Update

    from bot.core.services import open_services
    from bot.telegram.application import build_application, publish_commands

    async with AsyncExitStack() as stack:
        token = settings.telegram_token
        base_url = settings.telegram_api_base_url
        api: LocalBotApi | None = None
        if not token:
            from tryout.local_bot_api import LocalBotApi

            token = f"{secrets.randbelow(10**9) + 10**9}:{secrets.token_urlsafe(24)}"
            telegram = settings.telegram
            api = LocalBotApi(
                token=token,
                host=telegram.tryout_host,
                port=telegram.tryout_port if tryout_port is None else tryout_port,
            )
            await stack.enter_async_context(api)
            world = api.setup_tryout()
            settings = tryout_settings(settings, world.staff_group.id)
            # A department chat, a supervisor chat and a department's system to try tickets with.
            from tryout.department_demo import tryout_ticket_settings

            settings = tryout_ticket_settings(api, settings)
            base_url = api.base_url
        services = await stack.enter_async_context(open_services(settings, knowledge=knowledge))
        application = build_application(services, token=token, base_url=base_url)
        await stack.enter_async_context(application)
        await publish_commands(application)
        await application.start()
        stack.push_async_callback(application.stop)
        updater = application.updater
        assert updater is not None
        telegram = settings.telegram
        if telegram.mode == "webhook" and api is None:
            await updater.start_webhook(
                listen=telegram.webhook_listen,
                port=telegram.webhook_port,
                url_path="telegram",
                webhook_url=telegram.webhook_url,
                secret_token=os.environ.get("TELEGRAM_WEBHOOK_SECRET") or None,
                allowed_updates=Update.ALL_TYPES,
            )
        else:
            await updater.start_polling(poll_interval=0, allowed_updates=Update.ALL_TYPES)
        stack.push_async_callback(updater.stop)
        for path in RUN_SERVICES:
            await stack.enter_async_context(_starter(path)(services, application))
        if api is not None:
            password = await tryout_accounts(services) if settings.web.enabled else None
            print(_banner(api, settings, password), flush=True)
        log.info("the bot is running (%s)", "try-out" if api else telegram.mode)
        yield Running(settings, services, application, api)


async def run(settings: Settings) -> None:
    """Run until SIGINT or SIGTERM."""
    # httpx logs every request URL, and Bot API URLs contain the token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # On Windows asyncio has no signal handlers; Ctrl+C ends the run with KeyboardInterrupt,
    # which unwinds `running` the same way.
    if sys.platform != "win32":
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    async with running(settings):
        # What is loaded by now (above all the knowledge base's index) lives as long as the
        # process; left to the garbage collector, every full collection walks it all and
        # stalls the bot. (A knowledge base reloaded later is not frozen.)
        gc.collect()
        gc.freeze()
        await stop.wait()
    log.info("stopped")


def command_run(args: argparse.Namespace, settings: Settings) -> int:
    """Run the bot and everything else in one process."""
    try:
        asyncio.run(run(settings))
    except OSError as error:
        if error.errno != errno.EADDRINUSE:
            raise
        # Most often a second copy of the bot, or another program on the same port.
        log.error("%s", error)
        print(
            f"{error.strerror or error}. Another copy of the bot may be running: stop it, or "
            "choose other ports in config.toml ([telegram] tryout_port, [web] port, "
            "[callbacks] port, [telegram] webhook_port).\n"
            "端口已被占用：可能已有一个机器人在运行。请先停止它，或在 config.toml 中改用其他端口。",
            file=sys.stderr,
        )
        return 1
    return 0


def add_run_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `run` to the command line."""
    parser = commands.add_parser(
        "run",
        help="run the bot (and the web console); without TELEGRAM_BOT_TOKEN, the local try-out",
    )
    parser.set_defaults(handler=command_run)
