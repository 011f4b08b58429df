"""`python -m bot run`: the whole service in one process.

With TELEGRAM_BOT_TOKEN set, the bot talks to Telegram (polling by default, or a webhook behind a
reverse proxy when [telegram] mode = "webhook"). Without a token it starts the local try-out
(tryout/runner.py): a local Bot API server on [telegram] tryout_host:tryout_port with a generated
token, a resident and a staff group in it, and the real bot running against it, so anyone can try
every flow in a browser. The other long-running parts of the process (web console, delivery
worker, deadline scheduler) are RUN_SERVICES. See README.md and docs/telegram.md.

This is the one module of the product that knows the try-out, and it imports it only to run it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import signal
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.answering.store import KnowledgeStore
from bot.console.app import serving_console
from bot.core.config import Settings
from bot.core.leadership import Leadership
from bot.ops.health import serving_ops
from bot.services import Services, open_services
from bot.telegram.context import BotApplication
from bot.telegram.front import TelegramFront, serving_telegram
from bot.workers import CallbackRoutes, serving_ticket_workers

if TYPE_CHECKING:
    from tryout.local_bot_api import LocalBotApi
    from tryout.runner import TryOut

log = logging.getLogger(__name__)

ServiceStarter = Callable[[Services, TelegramFront], AbstractAsyncContextManager[Any]]

# The other parts of the process, started in this order after the bot and stopped in reverse:
# each starter(services, front) returns an async context manager that runs its part until
# it exits.
RUN_SERVICES: tuple[ServiceStarter, ...] = (
    # The web console on [web] host:port (unless [web] enabled = false).
    serving_console,
    # Ticket delivery to departments and residents, deadlines (督办), department callbacks.
    serving_ticket_workers,
)


@dataclass(frozen=True)
class Running:
    """What `run` started, for whoever waits on it (tests, the banner)."""

    settings: Settings
    services: Services
    # Serves Telegram while this process leads (bot/telegram/front.py); its `bot` delivers.
    front: TelegramFront
    tryout: LocalBotApi | None

    @property
    def application(self) -> BotApplication | None:
        """The Application serving Telegram now (None while this process stands by)."""
        return self.front.application


def _starters(callback_routes: Sequence[CallbackRoutes]) -> list[ServiceStarter]:
    """Return RUN_SERVICES, the ticket workers serving `callback_routes` beside the callbacks."""
    if not callback_routes:
        return list(RUN_SERVICES)
    return [
        functools.partial(serving_ticket_workers, callback_routes=callback_routes)
        if starter is serving_ticket_workers
        else starter
        for starter in RUN_SERVICES
    ]


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
    async with AsyncExitStack() as stack:
        token = settings.telegram_token
        base_url = settings.telegram_api_base_url
        tryout: TryOut | None = None
        if not token:
            from tryout.runner import start_tryout

            tryout = await stack.enter_async_context(start_tryout(settings, port=tryout_port))
            settings, token, base_url = tryout.settings, tryout.token, tryout.api.base_url
        # Health and metrics first: /healthz answers while the knowledge base is being indexed.
        ops = await stack.enter_async_context(serving_ops(settings, "bot"))
        services = await stack.enter_async_context(open_services(settings, knowledge=knowledge))
        ops.readiness.attach(sessions=services.sessions, knowledge=lambda: services.knowledge.kb)
        telegram = settings.telegram
        # Several processes on one PostgreSQL: the one holding the lease serves Telegram, the
        # others stand by (bot/core/leadership.py); on SQLite this process always leads.
        leadership = Leadership(services.engine, ttl=telegram.leader_lease_seconds)
        front = TelegramFront(
            services,
            leadership,
            token=token,
            base_url=base_url,
            webhook=telegram.mode == "webhook" and tryout is None,
        )
        await stack.enter_async_context(serving_telegram(front))
        # The process's Bot answers getMe on a standby too: ready means able to take over.
        ops.readiness.attach(bot_api=front.bot.get_me)
        # The try-out's pretend department system shares the department callback listener.
        callback_routes = [tryout.serve_demo_department] if tryout is not None else []
        for starter in _starters(callback_routes):
            # Each starter gets the front: its `bot` (the process's) delivers to Telegram.
            await stack.enter_async_context(starter(services, front))
        if tryout is not None:
            print(await tryout.welcome(services), flush=True)
        log.info(
            "the bot is running (%s, %s)",
            "try-out" if tryout else telegram.mode,
            "leading" if leadership.leading else "standing by",
        )
        yield Running(settings, services, front, tryout.api if tryout else None)


async def run(settings: Settings) -> None:
    """Run until SIGINT or SIGTERM."""
    # Logging (httpx quiet, tokens redacted) is set up by bot/cli.py for every command.
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
        # stalls the bot. (A knowledge base reloaded later is frozen by its reload:
        # bot/answering/store.py.)
        gc.collect()
        gc.freeze()
        await stop.wait()
    log.info("stopped")
