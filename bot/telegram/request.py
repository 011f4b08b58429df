"""python-telegram-bot's HTTP layer on aiohttp instead of httpx.

Every resident's message costs the bot at least one Bot API call; httpx spends about a
millisecond of CPU on each, aiohttp a fraction of that. Parameters go as a JSON body, which the
Bot API accepts beside form encoding: percent-encoding an answer card of Chinese text takes
Python's `urlencode` about 0.1 ms, JSON a tenth of it. The parameters are python-telegram-bot's
own (objects such as keyboards as JSON text, as in its form-encoded requests); files go as
multipart, as python-telegram-bot sends them.

`UpdatesRequest` is the one that fetches updates. python-telegram-bot parses a getUpdates batch
in one go (`Update.de_list`): a single update it cannot read fails the whole batch, which its
Updater logs at CRITICAL with the raw data (residents' messages) and fetches again at once, for
ever, so no later update is ever served. `UpdatesRequest` reads each entry on its own first and
puts a bare `{"update_id": N}` in place of one that cannot be read: the Updater confirms it like
any other (the offset moves past it) and the guards drop the empty update. It is logged once,
with its update_id and the error's class only, never its content. An answer that is no list of
updates at all becomes a `NetworkError`, so the polling loop backs off (1 s, then ×1.5 up to
30 s) instead of spinning.
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from typing import Any

import aiohttp
from telegram import Update
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

from bot.telegram import journal

log = logging.getLogger(__name__)

JSONDict = dict[str, Any]

_JSON = {"Content-Type": "application/json"}


class AiohttpRequest(BaseRequest):
    """A `BaseRequest` whose connections come from one `aiohttp.ClientSession`."""

    __slots__ = (
        "_connect_timeout",
        "_media_write_timeout",
        "_pool_size",
        "_read_timeout",
        "_session",
        "_write_timeout",
    )

    def __init__(
        self,
        *,
        connection_pool_size: int = 64,
        read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        media_write_timeout: float | None = 20.0,
    ) -> None:
        self._pool_size = connection_pool_size
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._connect_timeout = connect_timeout
        self._media_write_timeout = media_write_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        """Open the session (again, after a shutdown)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size),
                headers={"User-Agent": self.USER_AGENT},
            )

    async def shutdown(self) -> None:
        """Close the session and its connections."""
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    def _timeout(self, value: object, default: float | None) -> float | None:
        if isinstance(value, int | float) or value is None:
            return None if value is None else float(value)
        return default

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """Send one request and return the status and the body.

        While an update is handled, a call that shows something in a chat goes through the
        update's journal (bot/telegram/journal.py): made once, even if the update is handled
        again after a kill.
        """

        async def make() -> tuple[int, bytes]:
            return await self._send(
                url, method, request_data, read_timeout, write_timeout, connect_timeout
            )

        calls = journal.current()
        endpoint = url.rsplit("/", 1)[-1]
        if calls is None or not journal.journaled(endpoint):
            return await make()
        return await calls.call(endpoint, _chat_id(request_data), make)

    async def _send(
        self,
        url: str,
        method: str,
        request_data: RequestData | None,
        read_timeout: Any,
        write_timeout: Any,
        connect_timeout: Any,
    ) -> tuple[int, bytes]:
        if self._session is None or self._session.closed:
            raise RuntimeError("this AiohttpRequest is not initialized")
        files = request_data is not None and request_data.contains_files
        write = self._timeout(
            write_timeout, self._media_write_timeout if files else self._write_timeout
        )
        read = self._timeout(read_timeout, self._read_timeout)
        # aiohttp has no separate write timeout: sending the body counts towards the total.
        total = None if read is None or write is None else read + write
        timeout = aiohttp.ClientTimeout(
            total=total,
            connect=self._timeout(connect_timeout, self._connect_timeout),
            sock_read=read,
        )
        data: Any = None
        headers = None
        if request_data is not None:
            if files:
                form = aiohttp.FormData(quote_fields=False)
                for name, value in request_data.json_parameters.items():
                    form.add_field(name, value)
                for name, (filename, content, mime_type) in request_data.multipart_data.items():
                    form.add_field(name, content, filename=filename, content_type=mime_type)
                data = form
            else:
                data = request_data.json_payload
                headers = _JSON
        try:
            async with self._session.request(
                method, url, data=data, headers=headers, timeout=timeout
            ) as response:
                status, body = response.status, await response.read()
        except TimeoutError as error:
            raise TimedOut from error
        except aiohttp.ClientError as error:
            raise NetworkError(f"aiohttp.{type(error).__name__}: {error}") from error
        if status == HTTPStatus.BAD_REQUEST and late_answer(url, body):
            # Answering a press only stops the spinner on the resident's button; Telegram refuses
            # it 15 s after the press (a backlog, a restart) or for a query it never made. The
            # handler goes on with what the press was for instead of failing on the courtesy.
            log.info("callback query answered too late; the answer is skipped")
            return HTTPStatus.OK, _ANSWERED
        return status, body


_ANSWERED = b'{"ok":true,"result":true}'


def _chat_id(request_data: RequestData | None) -> str | None:
    """The chat a call is made in, as text (an id or a channel's @name), if it names one."""
    if request_data is None:
        return None
    value = request_data.parameters.get("chat_id")
    return None if value is None else str(value)


def late_answer(url: str, body: bytes) -> bool:
    """Tell whether a Bot API answer refuses answerCallbackQuery for a query too old or unknown."""
    if url.rsplit("/", 1)[-1].lower() != "answercallbackquery":
        return False
    try:
        answer = json.loads(body)
    except ValueError:
        return False
    description = answer.get("description") if isinstance(answer, dict) else None
    return isinstance(description, str) and "query is too old" in description.lower()


def readable_updates(result: object) -> list[JSONDict]:
    """Return a getUpdates result with each entry python-telegram-bot cannot read replaced.

    An unreadable entry with an update_id becomes `{"update_id": N}` (confirmed, then ignored);
    one without an integer update_id is left out. Raises `NetworkError` if `result` is no list.
    """
    if not isinstance(result, list):
        raise NetworkError(f"getUpdates answered {type(result).__name__}, not a list of updates")
    readable: list[JSONDict] = []
    for entry in result:
        update_id = entry.get("update_id") if isinstance(entry, dict) else None
        try:
            _check_texts(entry)
            Update.de_json(entry, None)
        except Exception as error:  # anything the library cannot parse
            # The update_id and the error's class only: the text may be a resident's message.
            log.warning(
                "update %s could not be read (%s) and is skipped",
                update_id if isinstance(update_id, int) else "without an id",
                type(error).__name__,
            )
            if isinstance(update_id, int) and not isinstance(update_id, bool):
                readable.append({"update_id": update_id})
            continue
        readable.append(entry)
    return readable


# Fields the handlers read as text: python-telegram-bot takes whatever JSON gives, so a list or a
# number where Telegram sends a string would reach the matcher and fail there.
_TEXT_FIELDS = {
    "message": ("text", "caption"),
    "edited_message": ("text", "caption"),
    "channel_post": ("text", "caption"),
    "edited_channel_post": ("text", "caption"),
    "callback_query": ("data", "inline_message_id"),
    "inline_query": ("query",),
}


def _check_texts(entry: object) -> None:
    if not isinstance(entry, dict):
        return
    for kind, fields in _TEXT_FIELDS.items():
        content = entry.get(kind)
        if not isinstance(content, dict):
            continue
        for name in fields:
            if name in content and not isinstance(content[name], str):
                raise TypeError(f"{kind}.{name} is not a string")


class UpdatesRequest(AiohttpRequest):
    """The request that fetches updates: unreadable ones are skipped, not fatal (see above)."""

    __slots__ = ()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """Send one request; in a successful getUpdates answer, replace unreadable updates."""
        status, body = await super().do_request(
            url,
            method,
            request_data,
            read_timeout=read_timeout,
            write_timeout=write_timeout,
            connect_timeout=connect_timeout,
            pool_timeout=pool_timeout,
        )
        if status != HTTPStatus.OK or url.rsplit("/", 1)[-1].lower() != "getupdates":
            return status, body
        try:
            answer = json.loads(body)
        except ValueError:
            return status, body  # python-telegram-bot reports it as a TelegramError
        if not isinstance(answer, dict) or not answer.get("ok"):
            return status, body
        answer["result"] = readable_updates(answer.get("result"))
        return status, json.dumps(answer, ensure_ascii=False).encode()
