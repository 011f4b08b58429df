"""The web console's aiohttp application: `init_app(services)` builds it, `start_console` serves it.

Shaped like aiohttp-demos' blog: one factory, `setup_routes`, views returning template contexts,
typed keys (`SERVICES`) instead of string keys, and background work in `cleanup_ctx`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp.typedefs import Handler

from bot.console.rendering import render
from bot.console.routes import setup_routes
from bot.console.security import (
    csrf_protection,
    load_viewer,
    refuse_unsafe_input,
    security_headers,
)
from bot.console.sessions import sweep_expired
from bot.console.state import SAMPLES, SERVICES, ZONE
from bot.console.views.figures import setup_figures
from bot.console.views.health import setup_health
from bot.console.views.tickets import document_uploads
from bot.core.config import Settings
from bot.ops.health import serving_ops
from bot.services import Services, open_services
from bot.telegram.escalation_posts import connect as connect_staff_group
from bot.telegram.escalation_posts import standalone_bot
from bot.tickets.reads import sample_ticket_count

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
SWEEP_SECONDS = 3600
# Form posts are short texts; nothing is uploaded through the console.
MAX_REQUEST_BYTES = 256 * 1024


_ERROR_TEMPLATES = {
    400: "bad_request",
    403: "forbidden",
    404: "not_found",
    405: "not_found",
    413: "too_large",
}


@web.middleware
async def error_pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Show errors as pages in the console's language, never as a traceback."""
    try:
        return await handler(request)
    except web.HTTPException as error:
        if error.status < 400 or (error.status not in _ERROR_TEMPLATES and error.status < 500):
            raise
        status = error.status
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("error while serving %s %s", request.method, request.path)
        status = 500
    kind = _ERROR_TEMPLATES.get(status, "error")
    return render(request, "error.html", {"kind": kind, "status": status}, status=status)


async def sweep_sessions(app: web.Application) -> AsyncIterator[None]:
    """Delete expired sessions and old login attempts every hour while the console runs."""
    services = app[SERVICES]

    async def sweep_forever() -> None:
        while True:
            try:
                async with services.sessions() as session:
                    await sweep_expired(session)
                    await session.commit()
            except Exception:
                log.exception("sweeping expired console sessions failed")
            await asyncio.sleep(SWEEP_SECONDS)

    task = asyncio.create_task(sweep_forever(), name="console-session-sweep")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@web.middleware
async def count_samples(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Note how many sample tickets exist, for the banner pages show while there are any."""
    if request.method == "GET" and not request.path.startswith("/static/"):
        async with request.app[SERVICES].sessions() as session:
            request[SAMPLES] = await sample_ticket_count(session)
    return await handler(request)


def init_app(services: Services) -> web.Application:
    """Build the console for services someone else started (and will close)."""
    app = web.Application(
        middlewares=[
            security_headers,
            error_pages,
            document_uploads,
            refuse_unsafe_input,
            load_viewer,
            csrf_protection,
            count_samples,
        ],
        client_max_size=MAX_REQUEST_BYTES,
    )
    app[SERVICES] = services
    app[ZONE] = ZoneInfo(services.settings.tickets.timezone)
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    app.router.add_static("/static", STATIC, name="static", append_version=True)
    setup_routes(app)
    setup_figures(app)
    setup_health(app)
    app.cleanup_ctx.append(sweep_sessions)
    return app


async def start_console(services: Services, host: str, port: int) -> web.AppRunner:
    """Serve the console on host:port; `await runner.cleanup()` stops it."""
    runner = web.AppRunner(init_app(services), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    log.info("web console on http://%s:%d/", host, port)
    return runner


@contextlib.asynccontextmanager
async def serving_console(services: Services, application: object) -> AsyncIterator[None]:
    """Serve the console beside the bot in `python -m bot run` (see bot.runner.RUN_SERVICES)."""
    settings = services.settings.web
    if not settings.enabled:
        log.info("web console disabled ([web] enabled = false)")
        yield
        return
    runner = await start_console(services, settings.host, settings.port)
    try:
        yield
    finally:
        await runner.cleanup()


def run_standalone(settings: Settings, host: str, port: int) -> None:
    """Serve the console alone (`python -m bot web`) until interrupted.

    Answers to escalated questions still reach residents: with a token the console sends them
    through a Bot of its own; without one they are saved and reported as not delivered.
    """

    async def make_app() -> web.Application:
        opened = contextlib.AsyncExitStack()
        # Health and metrics first, on [metrics] web_port (bot/ops/health.py).
        ops = await opened.enter_async_context(serving_ops(settings, "web"))
        services = await opened.enter_async_context(open_services(settings))
        ops.readiness.attach(sessions=services.sessions, knowledge=lambda: services.knowledge.kb)
        if settings.telegram_token:
            bot = standalone_bot(settings)
            await bot.initialize()
            opened.push_async_callback(bot.shutdown)
            connect_staff_group(services, bot)
        else:
            log.warning("no TELEGRAM_BOT_TOKEN: answers from the console cannot be delivered")
        app = init_app(services)

        async def close_services(_: web.Application) -> AsyncIterator[None]:
            yield
            await opened.aclose()

        app.cleanup_ctx.append(close_services)
        return app

    web.run_app(make_app(), host=host, port=port, print=None, access_log=None)
