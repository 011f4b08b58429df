"""Checking a signed HTTP request as a department's system does (bot.tickets.signatures signs).

What a department's system does with the bot's webhooks, and what the bot's own test endpoints,
benchmarks and try-out department do; the bot's callback endpoint (`bot.api.callbacks`) checks
its requests with the same `verify`, reading the body under a size limit first.
"""

from __future__ import annotations

import time

from aiohttp import web

from bot.tickets.signatures import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify


async def verified_body(
    request: web.Request, secret: bytes, *, tolerance_seconds: float = 300
) -> bytes:
    """Read a signed request's body and check its signature; raise SignatureError if forged."""
    body = await request.read()
    verify(
        secret,
        timestamp=request.headers.get(TIMESTAMP_HEADER),
        signature=request.headers.get(SIGNATURE_HEADER),
        body=body,
        now=time.time(),
        tolerance_seconds=tolerance_seconds,
    )
    return body
