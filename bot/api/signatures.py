"""Checking a signed HTTP request as a department's system does (bot.tickets.signatures signs).

What a department's system does with the bot's webhooks, and what the bot's own test endpoints,
benchmarks and try-out department do; the bot's callback endpoint (`bot.api.callbacks`) checks
its requests with the same `verify`, reading the body under a size limit first (`read_body`).
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


class BodyTooLarge(Exception):
    """A request's body is longer than the reader accepts."""


async def read_body(request: web.Request, limit: int) -> bytes:
    """Return a request's whole body; raise BodyTooLarge as soon as it passes `limit` bytes.

    The body is read until it ends, however it arrives: in pieces over the network, or chunked
    without a Content-Length (one `read` returns only what has arrived so far). No more than
    `limit` + 1 bytes are ever held.
    """
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge(f"Content-Length {request.content_length} is over {limit}")
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(limit + 1 - size):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"the body is over {limit} bytes")
    return b"".join(chunks)
