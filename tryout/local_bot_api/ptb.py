"""Glue for python-telegram-bot: an Application builder pointed at a LocalBotApi, and running it."""

from __future__ import annotations

import functools
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from telegram.ext import Application
from telegram.request import HTTPXRequest

if TYPE_CHECKING:
    from telegram.ext._applicationbuilder import InitApplicationBuilder

    from tryout.local_bot_api.server import LocalBotApi

AnyApplication = TypeVar("AnyApplication", bound=Application[Any, Any, Any, Any, Any, Any])


@functools.cache
def _shared_ssl_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()


def local_request(*, connection_pool_size: int = 256) -> HTTPXRequest:
    """Return python-telegram-bot's HTTP client, sharing one TLS context with the others."""
    # Each new TLS context loads the CA bundle (~80 ms), and tests build many Applications.
    return HTTPXRequest(
        connection_pool_size=connection_pool_size,
        httpx_kwargs={"verify": _shared_ssl_context()},
    )


def application_builder(api: LocalBotApi) -> InitApplicationBuilder:
    """Return an ApplicationBuilder with the token and URLs of `api`; add handlers and build.

    It sets `request` and `get_updates_request`, so the builder's connection settings
    (pool size, timeouts) cannot be set on it as well.
    """
    return (
        Application.builder()
        .token(api.token)
        .base_url(api.base_url)
        .base_file_url(api.base_file_url)
        .request(local_request())
        .get_updates_request(local_request(connection_pool_size=1))
    )


@asynccontextmanager
async def running_application(app: AnyApplication) -> AsyncIterator[AnyApplication]:
    """Initialise, start and poll an Application; stop and shut it down on exit."""
    async with app:
        await app.start()
        updater = app.updater
        if updater is None:
            raise RuntimeError("the Application was built without an Updater")
        # poll_interval=0: the next getUpdates goes out as soon as the last one answered.
        await updater.start_polling(poll_interval=0)
        try:
            yield app
        finally:
            if updater.running:
                await updater.stop()
            if app.running:
                await app.stop()
