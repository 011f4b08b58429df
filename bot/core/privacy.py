"""Least exposure of residents' personal data: masked phones and keyed pseudonyms.

An anonymous report is stored without the resident's id. It carries instead

- a pseudonym, HMAC-SHA256 of the resident's Telegram user id under a key derived from the
  secret in BOT_PRIVACY_SECRET, so the resident (whose user id the bot sees on every message)
  finds their own reports again, and
- a sealed address: the user id encrypted under another derived key (a fresh 16-byte nonce,
  HMAC-SHA256 as the key stream, encrypt-then-MAC with a third key), so notices about the
  report still reach the resident's chat.

The secret lives in the environment only, never in the database: the database alone cannot tell
who filed an anonymous report. Whoever holds both can, as the bot must, to answer the resident.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

from bot.core.config import PRIVACY_SECRET_ENV, privacy_secret

_SEAL_PREFIX = "s1."
_NONCE = 16
_TAG = 16
_PHONE_DIGITS = re.compile(r"\d")


class PseudonymUnavailable(Exception):
    """BOT_PRIVACY_SECRET is not set (or shorter than 32 characters)."""

    def __init__(self) -> None:
        super().__init__(
            f"{PRIVACY_SECRET_ENV} is not set (at least 32 characters): anonymous reports "
            "cannot be pseudonymised"
        )


def _key(secret: bytes, purpose: bytes) -> bytes:
    return hmac.new(secret, purpose, hashlib.sha256).digest()


class Pseudonyms:
    """Keyed pseudonyms and sealed addresses for anonymous reports."""

    def __init__(self, secret: bytes) -> None:
        self._pseudonym_key = _key(secret, b"resident-pseudonym")
        self._stream_key = _key(secret, b"seal-stream")
        self._tag_key = _key(secret, b"seal-tag")

    @classmethod
    def from_environment(cls) -> Pseudonyms | None:
        """Return pseudonyms under BOT_PRIVACY_SECRET, or None when it is not set."""
        secret = privacy_secret()
        return None if secret is None else cls(secret)

    def pseudonym(self, telegram_user_id: int) -> str:
        """Return the resident's pseudonym: 64 hex digits, the same for every report of theirs."""
        message = b"tg:" + str(int(telegram_user_id)).encode()
        return hmac.new(self._pseudonym_key, message, hashlib.sha256).hexdigest()

    def seal(self, telegram_user_id: int) -> str:
        """Return the user id encrypted and authenticated (different each time)."""
        nonce = secrets.token_bytes(_NONCE)
        plain = int(telegram_user_id).to_bytes(8, "big", signed=True)
        stream = hmac.new(self._stream_key, nonce, hashlib.sha256).digest()[:8]
        cipher = bytes(a ^ b for a, b in zip(plain, stream, strict=True))
        tag = hmac.new(self._tag_key, nonce + cipher, hashlib.sha256).digest()[:_TAG]
        return _SEAL_PREFIX + base64.urlsafe_b64encode(nonce + cipher + tag).decode()

    def unseal(self, sealed: str) -> int | None:
        """Return the user id of a sealed address, or None when it is not one of ours."""
        if not sealed.startswith(_SEAL_PREFIX):
            return None
        try:
            raw = base64.urlsafe_b64decode(sealed[len(_SEAL_PREFIX) :].encode())
        except ValueError:
            return None
        if len(raw) != _NONCE + 8 + _TAG:
            return None
        nonce, cipher, tag = raw[:_NONCE], raw[_NONCE : _NONCE + 8], raw[_NONCE + 8 :]
        expected = hmac.new(self._tag_key, nonce + cipher, hashlib.sha256).digest()[:_TAG]
        if not hmac.compare_digest(tag, expected):
            return None
        stream = hmac.new(self._stream_key, nonce, hashlib.sha256).digest()[:8]
        plain = bytes(a ^ b for a, b in zip(cipher, stream, strict=True))
        return int.from_bytes(plain, "big", signed=True)


def mask_phone(phone: str | None) -> str | None:
    """Return a phone number with all but its first three and last four digits hidden.

    Works on any stored format (138 1234 5678, +8613812345678, 0571-8888-1234): digits in the
    middle become `*`, other characters are dropped from the hidden part. Short numbers keep
    only their last two digits.
    """
    if not phone:
        return phone
    digits = "".join(_PHONE_DIGITS.findall(phone))
    if not digits:
        return "*" * min(len(phone), 8)
    plus = "+" if phone.lstrip().startswith("+") else ""
    if plus and digits.startswith("86") and len(digits) >= 12:
        # E.164 of a mainland number (mobile 13 digits, landline 12-13 with its area code).
        digits = digits[2:]
        plus = "+86 "
    if len(digits) >= 9:
        return f"{plus}{digits[:3]}{'*' * (len(digits) - 7)}{digits[-4:]}"
    if len(digits) > 2:
        return f"{plus}{'*' * (len(digits) - 2)}{digits[-2:]}"
    return "*" * len(digits)
