"""Reply markup (inline keyboards, reply keyboards, keyboard removal) checked as Telegram does."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from tryout.local_bot_api.errors import ApiError

JSONDict = dict[str, Any]

MAX_CALLBACK_DATA_BYTES = 64
MAX_BUTTONS = 100
MAX_BUTTON_TEXT = 1024

# The fields of InlineKeyboardButton besides `text`; a button must use one of them.
_INLINE_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
_KEYBOARD_OPTIONS = (
    "is_persistent",
    "resize_keyboard",
    "one_time_keyboard",
    "input_field_placeholder",
    "selective",
)


def _bad(description: str) -> ApiError:
    return ApiError.bad_request(description)


def check_button_url(url: object) -> str:
    """Return a button URL Telegram would accept, or raise BUTTON_URL_INVALID."""
    if not isinstance(url, str) or not url.strip():
        raise _bad("BUTTON_URL_INVALID")
    parts = urlsplit(url.strip())
    if parts.scheme in ("http", "https") and parts.hostname:
        return url.strip()
    if parts.scheme in ("tg", "ton") and (parts.netloc or parts.path):
        return url.strip()
    raise _bad("BUTTON_URL_INVALID")


def _inline_button(raw: object) -> JSONDict:
    if not isinstance(raw, Mapping):
        raise _bad("can't parse inline keyboard button: InlineKeyboardButton must be an Object")
    text = raw.get("text")
    if not isinstance(text, str):
        raise _bad('can\'t parse inline keyboard button: Field "text" must be of type String')
    if not text.strip() or len(text) > MAX_BUTTON_TEXT:
        raise _bad("BUTTON_TEXT_INVALID")
    actions = [name for name in _INLINE_ACTIONS if name in raw]
    if not actions:
        raise _bad(
            "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
        )
    button: JSONDict = {"text": text}
    for name in actions:
        value = raw[name]
        if name == "callback_data":
            if not isinstance(value, str):
                raise _bad(
                    "can't parse inline keyboard button: "
                    'Field "callback_data" must be of type String'
                )
            if not 1 <= len(value.encode("utf-8")) <= MAX_CALLBACK_DATA_BYTES:
                raise _bad("BUTTON_DATA_INVALID")
        elif name == "url":
            value = check_button_url(value)
        button[name] = value
    return button


def _keyboard_button(raw: object) -> JSONDict:
    if isinstance(raw, str):
        raw = {"text": raw}
    if not isinstance(raw, Mapping):
        raise _bad("can't parse keyboard button: KeyboardButton must be a String or an Object")
    text = raw.get("text")
    if not isinstance(text, str):
        raise _bad('can\'t parse keyboard button: Field "text" must be of type String')
    if not text.strip():
        raise _bad("BUTTON_TEXT_INVALID")
    return dict(raw)


def _rows(raw: object, field: str, kind: str) -> list[list[Any]]:
    if not isinstance(raw, list) or not all(isinstance(row, list) for row in raw):
        raise _bad(f'field "{field}" of the {kind} should be an Array of Arrays')
    rows: list[list[Any]] = raw
    if sum(len(row) for row in rows) > MAX_BUTTONS:
        raise _bad("REPLY_MARKUP_TOO_LONG")
    return rows


def parse_reply_markup(raw: object, *, inline_only: bool = False) -> JSONDict | None:
    """Validate a reply_markup value and return it normalised; None when absent."""
    if raw is None or raw == "":
        return None
    if not isinstance(raw, Mapping):
        raise _bad("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in raw:
        rows = _rows(raw["inline_keyboard"], "inline_keyboard", "InlineKeyboardMarkup")
        return {"inline_keyboard": [[_inline_button(button) for button in row] for row in rows]}
    if inline_only:
        raise _bad("inline keyboard expected")
    if "keyboard" in raw:
        rows = _rows(raw["keyboard"], "keyboard", "ReplyKeyboardMarkup")
        markup: JSONDict = {
            "keyboard": [[_keyboard_button(button) for button in row] for row in rows]
        }
        if not any(markup["keyboard"]):
            raise _bad("REPLY_MARKUP_INVALID")
        for option in _KEYBOARD_OPTIONS:
            if option in raw:
                markup[option] = raw[option]
        return markup
    if raw.get("remove_keyboard") is True:
        return {"remove_keyboard": True, **({"selective": True} if raw.get("selective") else {})}
    if raw.get("force_reply") is True:
        markup = {"force_reply": True}
        for option in ("input_field_placeholder", "selective"):
            if option in raw:
                markup[option] = raw[option]
        return markup
    raise _bad("can't parse reply keyboard markup JSON object")
