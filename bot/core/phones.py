"""Residents' contact numbers: checked with libphonenumber's metadata and stored as E.164.

Accepted: a mainland mobile number (13800000000, 138-0000-0000), a landline with its area code
(010-12345678, (0755) 8888 8888), and any international number written with its country code
(+44 20 7946 0958, 0044 …). Refused: anything the numbering plan does not know, e.g. "12345", a
landline without its area code, or text. The numbering metadata ships inside the phonenumbers
wheel; nothing is looked up at run time.
"""

from __future__ import annotations

import unicodedata

import phonenumbers

# Numbers written without a country code are read as mainland numbers.
DEFAULT_REGION = "CN"
# Longer input is no phone number (E.164 has at most 15 digits; allow spaces and separators).
MAX_INPUT_CHARS = 40


class InvalidPhone(ValueError):
    """The text is not a phone number that can be called."""


def normalise_phone(text: str | None, *, region: str = DEFAULT_REGION) -> str:
    """Return the number in E.164 form (+8613800000000), or raise InvalidPhone."""
    raw = unicodedata.normalize("NFKC", text or "").strip()
    if not raw or len(raw) > MAX_INPUT_CHARS or "\x00" in raw:
        raise InvalidPhone("no phone number")
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as error:
        raise InvalidPhone(str(error)) from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone(f"{raw!r} is no valid number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def shared_contact_phone(phone_number: str) -> str:
    """Return a number from Telegram's "share my phone number", which may lack the "+"."""
    digits = phone_number.strip()
    return normalise_phone(digits if digits.startswith("+") else f"+{digits}")


def classify_phone(text: str | None, *, region: str = DEFAULT_REGION) -> str:
    """Return how far a published contact number checks out: "valid" (a number of the
    numbering plan, or a service short number such as 12345), or "unknown" (a number of the
    right shape the plan does not know, such as a made-up area code); raise InvalidPhone for
    what cannot be a phone number at all (letters, too few or too many digits)."""
    raw = unicodedata.normalize("NFKC", text or "").strip()
    if not raw or len(raw) > MAX_INPUT_CHARS or "\x00" in raw:
        raise InvalidPhone("no phone number")
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as error:
        raise InvalidPhone(str(error)) from None
    if phonenumbers.is_valid_number(number) or phonenumbers.is_valid_short_number(number):
        return "valid"
    if phonenumbers.is_possible_number(number):
        return "unknown"
    raise InvalidPhone(f"{raw!r} is no phone number")
