"""/healthz, /readyz and /metrics of every process: the bot, the console and the workers.

Each process serves them on an address of its own ([metrics] host and bot_port, web_port or
worker_port; BOT_METRICS_PORT overrides the port), so a load balancer, systemd or Prometheus
can ask without going through the console's login:

    GET /healthz   200 while the process's event loop answers ("alive")
    GET /readyz    200 when every part the process needs works, else 503 naming the part:
                   the database answers SELECT 1, the knowledge base is loaded (bot, console,
                   worker), the Bot API answers getMe (the bot; asked at most every
                   [metrics] bot_api_check_seconds, the answer kept meanwhile)
    GET /metrics   Prometheus' text format: bot/core/metrics.py and the database's figures
                   (bot/ops/gauges.py)

A process starts this server first and attaches its parts as they come up (`Readiness.attach`),
so /healthz answers while the knowledge base's index is still being built and /readyz says what
is not there yet. The console also serves /healthz and /readyz, and /metrics to a bearer token
(bot/console/routes.py). Nothing personal is in any answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core import metrics
from bot.core.config import Settings
from bot.ops.gauges import DatabaseGauges

log = logging.getLogger(__name__)

# Something that has a knowledge base with items, or None while there is none yet.
KnowledgeSource = Callable[[], object | None]
# Asks the Bot API who the bot is (getMe); raises when it cannot.
BotApiProbe = Callable[[], Awaitable[object]]


@dataclass(frozen=True)
class Check:
    """One part's state: ok, or why not."""

    name: str
    ok: bool
    detail: str = "ok"


class Readiness:
    """The parts a process needs, attached as they come up, and the checks of each."""

    def __init__(self, settings: Settings, role: str) -> None:
        self.settings = settings
        self.role = role
        self.sessions: async_sessionmaker[AsyncSession] | None = None
        self.knowledge: KnowledgeSource | None = None
        self.bot_api: BotApiProbe | None = None
        # Which parts this process needs at all: the bot needs all three; a process without a
        # Telegram token has no Bot API to ask.
        self.needs_knowledge = True
        self.needs_bot_api = role == "bot"
        self.gauges: DatabaseGauges | None = None
        self._bot_checked_at = -float("inf")
        self._bot_check: Check | None = None
        self._bot_lock = asyncio.Lock()

    def attach(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession] | None = None,
        knowledge: KnowledgeSource | None = None,
        bot_api: BotApiProbe | None = None,
    ) -> None:
        """Hand over a part that has come up."""
        if sessions is not None:
            self.sessions = sessions
            self.gauges = DatabaseGauges(
                sessions, self.settings.metrics.database_cache_seconds, self.timeout
            )
        if knowledge is not None:
            self.knowledge = knowledge
        if bot_api is not None:
            self.bot_api = bot_api
            self.needs_bot_api = True
            self._bot_checked_at = -float("inf")

    @property
    def timeout(self) -> float:
        return self.settings.metrics.check_timeout_seconds

    async def check_database(self) -> Check:
        if self.sessions is None:
            return Check("database", False, "not connected yet")
        try:
            async with asyncio.timeout(self.timeout), self.sessions() as session:
                await session.execute(text("SELECT 1"))
        except Exception as error:
            # The class only: a driver's message may carry the address or the user.
            return Check("database", False, f"unreachable ({type(error).__name__})")
        return Check("database", True)

    def check_knowledge(self) -> Check:
        source = self.knowledge() if self.knowledge is not None else None
        if source is None:
            return Check("knowledge_base", False, "not loaded yet")
        items = getattr(source, "items", None)
        if not items:
            return Check("knowledge_base", False, "no items")
        return Check("knowledge_base", True, f"{len(items)} items")

    async def check_bot_api(self) -> Check:
        if self.bot_api is None:
            return Check("bot_api", False, "not started yet")
        async with self._bot_lock:
            age = time.monotonic() - self._bot_checked_at
            if self._bot_check is None or age >= self.settings.metrics.bot_api_check_seconds:
                try:
                    async with asyncio.timeout(self.timeout):
                        await self.bot_api()
                    self._bot_check = Check("bot_api", True)
                except Exception as error:
                    self._bot_check = Check(
                        "bot_api", False, f"getMe failed ({type(error).__name__})"
                    )
                self._bot_checked_at = time.monotonic()
            return self._bot_check

    async def checks(self) -> list[Check]:
        """Run every check this process needs."""
        found = [await self.check_database()]
        if self.needs_knowledge:
            found.append(self.check_knowledge())
        if self.needs_bot_api:
            found.append(await self.check_bot_api())
        return found


async def metrics_body(readiness: Readiness) -> bytes:
    """Return /metrics: the process's counters and the database's figures (cached)."""
    body = generate_latest(metrics.REGISTRY)
    gauges = readiness.gauges
    if gauges is not None:
        await gauges.refresh()
        registry = CollectorRegistry(auto_describe=False)
        registry.register(gauges)
        body += generate_latest(registry)
    return body


async def healthz(request: web.Request) -> web.Response:
    readiness = request.app[READINESS]
    return web.json_response({"alive": True, "role": readiness.role})


async def readyz(request: web.Request) -> web.Response:
    checks = await request.app[READINESS].checks()
    ready = all(c.ok for c in checks)
    return web.json_response(
        {"ready": ready, "checks": {c.name: c.detail for c in checks}},
        status=200 if ready else 503,
    )


async def metrics_view(request: web.Request) -> web.Response:
    body = await metrics_body(request.app[READINESS])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


READINESS = web.AppKey("readiness", Readiness)


def add_health_routes(app: web.Application, readiness: Readiness) -> None:
    """Add /healthz, /readyz and /metrics to an aiohttp application."""
    app[READINESS] = readiness
    app.router.add_get("/healthz", healthz, name="healthz")
    app.router.add_get("/readyz", readyz, name="readyz")
    app.router.add_get("/metrics", metrics_view, name="metrics")


def bearer_token_matches(header: str | None, token: str) -> bool:
    """Return whether an Authorization header carries `Bearer <token>` (compared in constant
    time); never with an empty token."""
    if not token or not header or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header.removeprefix("Bearer ").strip().encode(), token.encode())


def console_metrics_token(settings: Settings) -> str:
    """Return the token the console's /metrics asks for ("" when the console has no /metrics)."""
    return os.environ.get(settings.metrics.console_token_env, "").strip()


class OpsServer:
    """The health and metrics listener of one process."""

    def __init__(self, settings: Settings, role: str) -> None:
        self.settings = settings
        self.readiness = Readiness(settings, role)
        self.host = settings.metrics.host
        self.port = settings.metrics.port_for(role)
        self._runner: web.AppRunner | None = None

    @property
    def serving(self) -> bool:
        return self._runner is not None

    async def start(self) -> None:
        """Listen; a port already taken is logged and the process goes on without it."""
        app = web.Application()
        add_health_routes(app, self.readiness)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except OSError as error:
            await runner.cleanup()
            log.error(
                "health and metrics not served: %s:%d is in use (%s); give this process a port "
                "of its own with BOT_METRICS_PORT",
                self.host,
                self.port,
                error.strerror or error,
            )
            return
        self._runner = runner
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        log.info(
            "health and metrics on http://%s:%d/healthz, /readyz, /metrics",
            self.host,
            self.port,
        )

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


@contextlib.asynccontextmanager
async def serving_ops(
    settings: Settings,
    role: str,
    *,
    sessions: async_sessionmaker[AsyncSession] | None = None,
    knowledge: KnowledgeSource | None = None,
    bot_api: BotApiProbe | None = None,
) -> AsyncIterator[OpsServer]:
    """Serve /healthz, /readyz and /metrics for a process of `role` (bot, web, worker) while the
    block runs ([metrics] enabled = false: nothing is served, the server is still returned)."""
    metrics.set_role(role)
    server = OpsServer(settings, role)
    server.readiness.attach(sessions=sessions, knowledge=knowledge, bot_api=bot_api)
    if settings.metrics.enabled:
        await server.start()
    try:
        yield server
    finally:
        await server.stop()
