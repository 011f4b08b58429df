"""Logging of every `python -m bot` command, set up here and only here (bot/cli.py calls it).

Two formats: "text", one readable line a record, and "json", one JSON object a line with
`time` (UTC, ISO 8601), `level`, `logger`, `role` (bot, web, worker or the command's name),
`update_id` and `ticket` where known, `message` and, for an error, `exception`. The format is
chosen by `--log-format`, else BOT_LOG_FORMAT, else [logging] format of the config.

The Telegram update or the ticket being worked on is put on the log records by `log_context`
(a context variable, so each update's task carries its own).

No resident's name, phone or text is logged at INFO or above: log calls name ids, ticket
numbers, counts and kinds, never what a person wrote (tests/test_log_privacy.py runs a
conversation and checks).

No secret reaches a log: httpx and httpcore, which log every request URL (and Bot API URLs carry
the bot's token, `…/bot<id>:<secret>/getMe`), are kept at WARNING, and every handler of the root
logger redacts tokens from every record, as defence in depth: any `bot<digits>:<secret>` in a
message or a traceback, and the configured token itself wherever it appears.

Requests that are not HTTP at all, or not well-formed HTTP (a NUL in the path, a header with
both Content-Length and Transfer-Encoding, a bad chunk), are answered 400 by aiohttp's parser,
which logs each at ERROR with a traceback of its own code: anyone on the network could fill the
log with them. They are logged at INFO in one line instead (`QuietMalformedRequests`).
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import logging
import os
import re
import sys
from collections.abc import Iterable, Iterator
from typing import Literal, TextIO

REDACTED = "[REDACTED]"
# A Bot API token in a URL or anywhere else: bot<bot id>:<secret>.
TOKEN_PATTERN = re.compile(r"(bot\d+):[A-Za-z0-9_-]+")
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Loggers that would write secrets or noise at INFO.
QUIET_LOGGERS = ("httpx", "httpcore", "apscheduler", "alembic.runtime.plugins")
LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")

# What is being worked on in this task: the Telegram update, the ticket.
_UPDATE_ID: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "bot_log_update_id", default=None
)
_TICKET: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "bot_log_ticket", default=None
)
_role = "bot"


def set_update(update_id: int | None) -> None:
    """Name the Telegram update this task handles on every record it logs from now on."""
    _UPDATE_ID.set(update_id)


@contextlib.contextmanager
def log_context(*, update_id: int | None = None, ticket: str | None = None) -> Iterator[None]:
    """Name the update and/or ticket (its number, e.g. TS-2026-000123) on records in the block."""
    update_token = _UPDATE_ID.set(update_id) if update_id is not None else None
    ticket_token = _TICKET.set(ticket) if ticket is not None else None
    try:
        yield
    finally:
        if ticket_token is not None:
            _TICKET.reset(ticket_token)
        if update_token is not None:
            _UPDATE_ID.reset(update_token)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, role, update_id, ticket, message."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "role": getattr(record, "role", None) or _role,
        }
        update_id = getattr(record, "update_id", None) or _UPDATE_ID.get()
        if update_id is not None:
            entry["update_id"] = update_id
        ticket = getattr(record, "ticket", None) or _TICKET.get()
        if ticket is not None:
            entry["ticket"] = ticket
        entry["message"] = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False, default=str)


def chosen_format(flag: str | None, configured: str = "text") -> LogFormat:
    """Return the log format: the command-line flag, else BOT_LOG_FORMAT, else the config's."""
    for value in (flag, os.environ.get("BOT_LOG_FORMAT", "").strip().lower(), configured):
        if value == "text":
            return "text"
        if value == "json":
            return "json"
    return "text"


class RedactSecrets(logging.Filter):
    """Replace tokens in a record's message and traceback; never drops a record."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def redact(self, text: str) -> str:
        text = TOKEN_PATTERN.sub(rf"\1:{REDACTED}", text)
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to the handler to report
            return True
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


class QuietMalformedRequests(logging.Filter):
    """Turn aiohttp's "Error handling request" for a request its parser refused into one INFO line.

    Only the parser's refusals (aiohttp.http_exceptions, answered 400 before any handler ran);
    an exception in a handler stays an ERROR with its traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is None or type(error).__module__ != "aiohttp.http_exceptions":
            return True
        summary = str(error).splitlines()[0] if str(error) else ""
        record.msg = (
            f"{record.getMessage()}: malformed request refused ({type(error).__name__}: {summary})"
        )
        record.args = None
        record.exc_info = None
        record.exc_text = None
        record.levelno, record.levelname = logging.INFO, "INFO"
        return True


# aiohttp's server logger, whose parser refusals are quieted.
AIOHTTP_SERVER_LOGGER = "aiohttp.server"


def configured_secrets() -> list[str]:
    """Return the secrets of the environment that must never be logged."""
    return [os.environ.get("TELEGRAM_BOT_TOKEN", "").strip()]


def setup_logging(
    *,
    verbose: bool = False,
    stream: TextIO | None = None,
    log_format: LogFormat = "text",
    role: str | None = None,
) -> RedactSecrets:
    """Log to `stream` (standard error) at INFO (DEBUG if verbose), with secrets redacted.

    `log_format` is "text" or "json"; `role` names the process on JSON records.

    Safe to call again: the handler of a previous call is replaced, and the filter is added to
    every handler of the root logger (also those others installed).
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_bot_handler", False):
            root.removeHandler(handler)
    global _role
    if role is not None:
        _role = role
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(FORMAT))
    handler._bot_handler = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    server = logging.getLogger(AIOHTTP_SERVER_LOGGER)
    if not any(isinstance(f, QuietMalformedRequests) for f in server.filters):
        server.addFilter(QuietMalformedRequests())
    redact = RedactSecrets(configured_secrets())
    for each in root.handlers:
        for old in [f for f in each.filters if isinstance(f, RedactSecrets)]:
            each.removeFilter(old)
        each.addFilter(redact)
    return redact
