"""HMAC-SHA256 signatures between the bot and a department's system, in both directions.

The signed message is the timestamp, a dot, and the raw body bytes:

    X-Timestamp: 1795689000
    X-Signature: sha256=<hex of HMAC-SHA256(secret, b"1795689000." + body)>

Signing the timestamp with the body means a captured request cannot be sent again later with a
fresh timestamp; the receiver also refuses timestamps outside a window, and (for callbacks to the
bot) a nonce it has already seen. The secret is per department, from the environment variable
named by [departments.<id>] secret_env. Only bytes and headers here: reading an HTTP request is
the web side's business (`bot.api.signatures.verified_body`).
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Signature"
TIMESTAMP_HEADER = "X-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
EVENT_HEADER = "X-Ticket-Event"
_PREFIX = "sha256="


class SignatureError(Exception):
    """A request's signature or timestamp is missing, malformed, stale or wrong."""


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """Return the X-Signature header value for a body sent at `timestamp` (Unix seconds)."""
    digest = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return _PREFIX + digest


def signed_headers(secret: bytes, timestamp: int, body: bytes) -> dict[str, str]:
    """Return the timestamp and signature headers for a body."""
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: sign(secret, timestamp, body)}


def verify(
    secret: bytes,
    *,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: float,
    tolerance_seconds: float,
) -> int:
    """Check a request's signature and timestamp; return the timestamp or raise SignatureError."""
    if not timestamp or not signature:
        raise SignatureError("missing X-Timestamp or X-Signature header")
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        raise SignatureError("X-Timestamp is not Unix seconds")
    moment = int(timestamp)
    if abs(now - moment) > tolerance_seconds:
        raise SignatureError("X-Timestamp is outside the accepted window")
    expected = sign(secret, moment, body)
    # Constant-time comparison: the time taken says nothing about how much of a guess was right.
    if not hmac.compare_digest(expected.encode(), signature.strip().encode("utf-8", "replace")):
        raise SignatureError("the signature does not match")
    return moment
