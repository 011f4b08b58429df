"""Hostile input at volume: does anything go unhandled, answer 500, hang, or stop the bot answering?

    python -m benchmarks fuzz [--updates 100000] [--requests 10000] [--quick] [--seed 1]

The bot runs in a child process exactly as `python -m bot run` starts it (TELEGRAM_BOT_TOKEN and
TELEGRAM_API_BASE_URL point it at the local Bot API server this process runs, tryout/local_bot_api),
on SQLite and the bundled knowledge base, with the web console and the departments' callback
endpoint on free ports. Then:

- `--updates` generated updates through the real python-telegram-bot Application: texts with
  emoji, NUL, 4,096 and 60,000 characters, HTML and Markdown, stickers, files, photos, voice,
  locations, contacts, edited messages, forged and malformed callback queries, inline queries,
  commands from residents that belong to staff, a stranger's group, unknown kinds of update and
  updates the library cannot read;
- `--requests` odd HTTP requests, on raw sockets, to the console and the callback endpoint: bad
  methods, huge, truncated and non-UTF-8 bodies, NUL in paths and queries, forged and stale
  signatures, signed bodies that are not what the schema wants, chunked and malformed chunked
  bodies, bodies sent slowly, odd headers;
- all along, a canary resident asks "你好" every two seconds and waits for the answer.

Reported: errors the Application's error handler logged, errors aiohttp logged, tracebacks and
ERROR lines in the bot's log, responses 500, responses that never came (hung), and how many
canary questions were answered. Not a test: a measurement, recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import platform
import random
import re
import socket
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tryout.local_bot_api import LocalBotApi, SimChat, SimUser

REPO_ROOT = Path(__file__).resolve().parent.parent
DEPARTMENT = "ecology-environment"
SECRET = "fuzz-department-secret"
CANARY_TEXT = "你好"
HUNG_AFTER = 20.0
PACE = 200

TEXTS = [
    "社保卡丢了怎么办",
    "你好 👋🏽👩‍👩‍👧‍👦🇨🇳",
    "a\x00b\x00c",
    "\x00",
    "<b>粗体</b><script>alert(1)</script><a href='javascript:x'>x</a>",
    "*bold* _it_ [link](http://x) `code` ```pre``` ~~s~~ ||spoiler||",
    "&lt;&amp;&gt;&#0;&#x0;",
    "\u202e\u200b\u200d\ufeff右到左",
    "投诉" * 2048,
    "🙂" * 4096,
    "路灯坏了 TS-2026-000001 TS-9999-999999",
    " \t\n ",
    "/start deep-link-\x00-payload",
    "SELECT * FROM tickets; DROP TABLE residents; --",
    "%s %d {0} {name} ${x} {{7*7}}",
]
COMMANDS = [
    "/assign TS-2026-000001 urban-management",
    "/reject TS-2026-000001 不行",
    "/learn 1 item",
    "/status TS-2026-000001",
    "/status " + "9" * 500,
    "/complain",
    "/language xx",
    "/start " + "A" * 64,
    "/help@someone_else_bot",
    "/unknown_command",
]
CALLBACK_DATA = ["", "x", "\x00", "a" * 64, "b" * 300, "🙂" * 40, "t:ack:1", "e:1:ok", "k:1", "🙋"]


class FuzzBotApi(LocalBotApi):
    """The local server, noting when the bot answers the canary."""

    def __init__(self) -> None:
        super().__init__(token="515151:FUZZ-TOKEN")
        # Chats whose next answer someone waits for (the canary, the pacer).
        self.waiting: dict[int, asyncio.Future[None]] = {}

    async def ask(self, user: SimUser, chat: SimChat, patience: float) -> float | None:
        """Send CANARY_TEXT and return the seconds until the bot answers (None: no answer)."""
        waiting: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting[chat.id] = waiting
        started = time.perf_counter()
        self.send_text(user, chat, CANARY_TEXT)
        try:
            await asyncio.wait_for(waiting, patience)
        except TimeoutError:
            return None
        finally:
            self.waiting.pop(chat.id, None)
        return time.perf_counter() - started

    def call_finished(
        self, method: str, params: dict[str, Any], status: int, description: str | None
    ) -> None:
        super().call_finished(method, params, status, description)
        if method.lower() != "sendmessage" or status != 200:
            return
        try:
            chat_id = int(params.get("chat_id", 0))
        except (TypeError, ValueError):
            return
        waiting = self.waiting.get(chat_id)
        if waiting is not None and not waiting.done():
            waiting.set_result(None)


@dataclass
class Tally:
    """What the run saw."""

    updates: Counter[str] = field(default_factory=Counter)
    requests: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    hung: list[str] = field(default_factory=list)
    canary_asked: int = 0
    canary_answered: int = 0
    canary_slowest: float = 0.0
    pacer_unanswered: int = 0


# -- updates ------------------------------------------------------------------------------------


class UpdateMaker:
    """Pushes one generated update at a time into the local server's queue."""

    def __init__(self, api: FuzzBotApi, rng: random.Random, residents: int) -> None:
        self.api, self.rng = api, rng
        self.people = [
            (user, api.create_private_chat(user))
            for user in (
                api.create_user(f"居民{n}", user_id=900_000 + n) for n in range(residents)
            )
        ]
        for _, chat in self.people:
            chat.started = True  # a resident who writes to the bot has started the chat
        stranger = api.create_user("陌生人")
        self.strangers_group = api.create_group("陌生群", {stranger: "creator"})
        self.stranger = stranger
        self.sent: list[Any] = []
        self.message_ids = iter(range(10_000_000, 100_000_000))
        kinds: list[tuple[str, int, Callable[[], None]]] = [
            ("text", 30, self.text),
            ("command", 8, self.command),
            ("sticker", 5, self.sticker),
            ("photo", 5, self.photo),
            ("document", 4, self.document),
            ("voice", 2, self.voice),
            ("location", 4, self.location),
            ("contact", 4, self.contact),
            ("edited", 6, self.edited),
            ("forged callback", 8, self.forged_callback),
            ("malformed callback", 4, self.malformed_callback),
            ("inline query", 4, self.inline_query),
            ("huge raw text", 2, self.huge_text),
            ("stranger's group", 4, self.stranger_group),
            ("unknown kind", 4, self.unknown_kind),
            ("unreadable", 2, self.unreadable),
        ]
        self.kinds = kinds
        self.weights = [weight for _, weight, _ in kinds]

    def one(self) -> str:
        name, _, make = self.rng.choices(self.kinds, self.weights)[0]
        make()
        return name

    def person(self) -> tuple[SimUser, SimChat]:
        return self.rng.choice(self.people)

    def _raw_message(self, user: SimUser, chat: SimChat, **content: Any) -> dict[str, Any]:
        return {
            "message_id": next(self.message_ids),
            "date": int(time.time()),
            "chat": {"id": chat.id, "type": "private", "first_name": user.first_name},
            "from": user.to_api(),
            **content,
        }

    def text(self) -> None:
        user, chat = self.person()
        text = self.rng.choice(TEXTS)
        if "\x00" in text or not text.strip():
            # Telegram's own clients never send these; a forged update may.
            self.api.push_update("message", self._raw_message(user, chat, text=text))
            return
        self.sent.append(self.api.send_text(user, chat, text[:4096]))
        if len(self.sent) > 2000:
            del self.sent[:1000]

    def command(self) -> None:
        user, chat = self.person()
        text = self.rng.choice(COMMANDS)
        length = len(text.split()[0])
        entity = [{"type": "bot_command", "offset": 0, "length": length}]
        self.api.push_update("message", self._raw_message(user, chat, text=text, entities=entity))

    def sticker(self) -> None:
        user, chat = self.person()
        self.api.send_sticker(user, chat, self.rng.choice(["👍", "🤬", "", "\x00"]))

    def photo(self) -> None:
        user, chat = self.person()
        caption = self.rng.choice([None, "<i>照片</i>", "垃圾" * 300])
        self.api.send_photo(user, chat, caption=caption)

    def document(self) -> None:
        user, chat = self.person()
        name = self.rng.choice(["a.txt", "../../etc/passwd", "x\x00.exe", "文件.pdf", "a" * 300])
        self.api.send_document(user, chat, os.urandom(64), file_name=name)

    def voice(self) -> None:
        user, chat = self.person()
        self.api.send_voice(user, chat)

    def location(self) -> None:
        user, chat = self.person()
        latitude, longitude = self.rng.choice(
            [(31.23, 121.47), (90.0, 180.0), (-90.0, -180.0), (0.0, 0.0), (89.9999, -179.9999)]
        )
        self.api.send_location(user, chat, latitude, longitude)

    def contact(self) -> None:
        user, chat = self.person()
        phone = self.rng.choice(["+8613800000000", "", "<b>1</b>", "1" * 200, "☎"])
        own = self.rng.random() < 0.5
        self.api.push_update(
            "message",
            self._raw_message(
                user,
                chat,
                contact={"phone_number": phone, "first_name": "某人"}
                | ({"user_id": user.id} if own else {}),
            ),
        )

    def edited(self) -> None:
        if not self.sent:
            self.text()
            return
        message = self.rng.choice(self.sent)
        if "text" in message.data:
            self.api.edit_text(message, self.rng.choice(TEXTS).strip()[:4096] or "改")

    def forged_callback(self) -> None:
        user, chat = self.person()
        bot_message = self.api.last_bot_message(chat)
        message = (
            dict(bot_message.data)
            if bot_message is not None
            else self._raw_message(user, chat, text="旧消息")
            | {"from": self.api.bot_user.to_api()}
        )
        self.api.push_update(
            "callback_query",
            {
                "id": str(self.rng.getrandbits(60)),
                "from": user.to_api(),
                "message": message,
                "chat_instance": "1",
                "data": self.rng.choice(CALLBACK_DATA),
            },
        )

    def malformed_callback(self) -> None:
        user, chat = self.person()
        variant = self.rng.randrange(4)
        query: dict[str, Any] = {"id": str(self.rng.getrandbits(60)), "from": user.to_api()}
        if variant == 0:
            query |= {"chat_instance": "1", "data": "x"}  # no message at all
        elif variant == 1:
            query |= {"chat_instance": "1", "inline_message_id": "AAAA", "data": "t:ack:1"}
        elif variant == 2:
            query |= {"chat_instance": "1", "game_short_name": "game"}
        else:
            query |= {
                "chat_instance": "1",
                "message": {
                    "message_id": 1,
                    "date": 0,
                    "chat": {"id": chat.id, "type": "private"},
                },
            }  # an inaccessible message
        self.api.push_update("callback_query", query)

    def inline_query(self) -> None:
        user, _ = self.person()
        self.api.push_update(
            "inline_query",
            {
                "id": str(self.rng.getrandbits(60)),
                "from": user.to_api(),
                "query": self.rng.choice(TEXTS)[:256],
                "offset": "",
            },
        )

    def huge_text(self) -> None:
        user, chat = self.person()
        text = self.rng.choice(["投诉", "a", "🙂", "<"]) * 60_000
        self.api.push_update("message", self._raw_message(user, chat, text=text))

    def stranger_group(self) -> None:
        text = self.rng.choice(TEXTS + COMMANDS).strip() or "嗨"
        self.api.send_text(self.stranger, self.strangers_group, text[:4096])

    def unknown_kind(self) -> None:
        kind = self.rng.choice(
            ["business_message_v99", "poll", "chat_boost", "purchased_paid_media", "x"]
        )
        self.api.push_raw_update({kind: {"id": "1", "whatever": [1, {"a": None}]}})

    def unreadable(self) -> None:
        user, chat = self.person()
        variant = self.rng.randrange(3)
        if variant == 0:
            self.api.push_raw_update({"message": {"message_id": "x", "chat": "nope"}})
        elif variant == 1:
            self.api.push_raw_update({"message": self._raw_message(user, chat, text=["list"])})
        else:
            self.api.push_raw_update({"callback_query": {"id": 5, "from": None}})


async def feed_updates(api: FuzzBotApi, count: int, seed: int, tally: Tally) -> None:
    """Push `count` generated updates, PACE at a time, each lot followed by a question of the
    pacer's that must be answered before the next lot goes.

    python-telegram-bot fetches updates as fast as the server gives them and queues them inside
    the bot without limit, so without pacing the run would measure a queue growing for ever
    rather than the bot under steady hostile load.
    """
    maker = UpdateMaker(api, random.Random(seed), residents=400)
    pacer = api.create_user("节拍", user_id=899_998)
    pacer_chat = api.create_private_chat(pacer)
    for number in range(count):
        tally.updates[maker.one()] += 1
        paced = number % PACE == PACE - 1
        if paced and await api.ask(pacer, pacer_chat, 120) is None:
            tally.pacer_unanswered += 1
    await api.wait_for(lambda: not api.pending_updates, 600)


async def canary(api: FuzzBotApi, stop: asyncio.Event, tally: Tally) -> None:
    """Ask the bot a question every two seconds and wait for its answer."""
    user = api.create_user("金丝雀", user_id=899_999)
    chat = api.create_private_chat(user)
    while not stop.is_set():
        tally.canary_asked += 1
        took = await api.ask(user, chat, 30)
        if took is not None:
            tally.canary_answered += 1
            tally.canary_slowest = max(tally.canary_slowest, took)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 2)


# -- HTTP ---------------------------------------------------------------------------------------


def _signed(body: bytes, *, timestamp: int | None = None, secret: str = SECRET) -> list[str]:
    moment = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{moment}.".encode() + body, hashlib.sha256).hexdigest()
    return [f"X-Timestamp: {moment}", f"X-Signature: sha256={digest}"]


def _request(
    method: str,
    path: str,
    headers: Sequence[str] = (),
    body: bytes = b"",
    *,
    length: int | None = None,
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close", *headers]
    if length is None:
        length = len(body)
    if length >= 0:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape") + body


@dataclass
class Probe:
    """One odd request: the bytes to send, in pieces (with pauses), then half-close."""

    name: str
    port: str  # "console" or "callback"
    pieces: list[bytes]
    pause: float = 0.0
    # Say "no more" after the pieces: for a body shorter than announced, so the server sees it
    # end (otherwise it would rightly wait for the rest).
    half_close: bool = False


class RequestMaker:
    """Generates odd requests for the console and the callback endpoint."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.callback_path = f"/api/departments/{DEPARTMENT}/callback"
        self.makers: list[Callable[[], Probe]] = [
            self.bad_method,
            self.nul,
            self.huge_body,
            self.truncated,
            self.non_utf8,
            self.forged_signature,
            self.signed_garbage,
            self.chunked,
            self.slow,
            self.odd_headers,
            self.console_paths,
        ]

    def one(self) -> Probe:
        return self.rng.choice(self.makers)()

    def _port(self) -> str:
        return self.rng.choice(["console", "callback"])

    def bad_method(self) -> Probe:
        method = self.rng.choice(
            ["BREW", "DELETE", "PUT", "TRACE", "PATCH", "get", "M\x01", "OPTIONS"]
        )
        port = self._port()
        path = (
            self.callback_path if port == "callback" else self.rng.choice(["/", "/login", "/log"])
        )
        return Probe("bad method", port, [_request(method, path)])

    def nul(self) -> Probe:
        port = self._port()
        base = self.callback_path if port == "callback" else self.rng.choice(["/tickets/", "/log"])
        path = self.rng.choice(
            [f"{base}%00", f"{base}?q=%00", f"{base}?q=a\x00b", f"{base}\x00x", "/lang/%00"]
        )
        form = b"username=a%00&password=b&csrf_token=%00"
        return Probe("NUL in path or query", port, [_request("POST", path, [], form)])

    def huge_body(self) -> Probe:
        port = self._port()
        size = self.rng.choice([70_000, 1_000_000, 3_000_000])
        path = self.callback_path if port == "callback" else "/login"
        body = b"a=" + b"x" * size
        headers = ["Content-Type: application/x-www-form-urlencoded"]
        if port == "callback":
            headers = _signed(body)
        return Probe("huge body", port, [_request("POST", path, headers, body)])

    def truncated(self) -> Probe:
        port = self._port()
        path = self.callback_path if port == "callback" else "/login"
        head = _request("POST", path, ["Content-Type: application/json"], b"", length=5000)
        return Probe("truncated body", port, [head + b'{"nonce": "abc", "tic'], half_close=True)

    def non_utf8(self) -> Probe:
        port = self._port()
        body = self.rng.choice([b"\xff\xfe\xfd", b'{"nonce": "\xc3\x28"}', "名".encode("gb18030")])
        if port == "callback":
            return Probe(
                "non-UTF-8 body", port, [_request("POST", self.callback_path, _signed(body), body)]
            )
        headers = [
            self.rng.choice(
                [
                    "Content-Type: application/x-www-form-urlencoded",
                    "Content-Type: application/x-www-form-urlencoded; charset=gbk",
                    "Content-Type: multipart/form-data; boundary=xx",
                ]
            )
        ]
        return Probe(
            "non-UTF-8 body", port, [_request("POST", "/login", headers, b"username=" + body)]
        )

    def forged_signature(self) -> Probe:
        body = json.dumps(
            {"nonce": os.urandom(8).hex(), "ticket": "TS-2026-000001", "action": "acknowledge"}
        ).encode()
        variant = self.rng.randrange(5)
        if variant == 0:
            headers = _signed(body, secret="wrong")
        elif variant == 1:
            headers = _signed(body, timestamp=int(time.time()) - 100_000)
        elif variant == 2:
            headers = ["X-Timestamp: 99999999999999999999", "X-Signature: sha256=00"]
        elif variant == 3:
            headers = _signed(body + b" ")
        else:
            headers = ["X-Timestamp: ١٢٣", "X-Signature: sha256=\u00e9"]
        return Probe(
            "forged signature", "callback", [_request("POST", self.callback_path, headers, body)]
        )

    def signed_garbage(self) -> Probe:
        depth = self.rng.choice([10, 2000, 30_000])
        body = self.rng.choice(
            [
                b"[" * depth + b"]" * depth,
                b'{"a":' * min(depth, 10_000) + b"1" + b"}" * min(depth, 10_000),
                b"null",
                b"[]",
                b'{"nonce": "", "ticket": "", "action": "reply", "text": "'
                + b"x" * 60_000
                + b'"}',
                json.dumps(
                    {
                        "nonce": os.urandom(6).hex(),
                        "ticket": "TS-2026-000001",
                        "action": "reply",
                        "text": "a\u0000b",
                    }
                ).encode(),
                json.dumps(
                    {
                        "nonce": os.urandom(6).hex(),
                        "ticket": "TS-9999-999999",
                        "action": "extend",
                        "days": 1e308,
                    }
                ).encode(),
                b"NaN",
                b'{"nonce": 1e999999}',
            ]
        )
        return Probe(
            "signed odd JSON",
            "callback",
            [_request("POST", self.callback_path, _signed(body), body)],
        )

    def chunked(self) -> Probe:
        port = self._port()
        path = self.callback_path if port == "callback" else "/login"
        body = b'{"nonce": "c", "ticket": "TS-2026-000001", "action": "acknowledge"}'
        variant = self.rng.randrange(4)
        headers = ["Transfer-Encoding: chunked"]
        if port == "callback":
            headers += _signed(body)
        if variant == 0:
            chunks = (
                b"".join(
                    b"%x\r\n%s\r\n" % (len(body[i : i + 7]), body[i : i + 7])
                    for i in range(0, len(body), 7)
                )
                + b"0\r\n\r\n"
            )
        elif variant == 1:
            chunks = b"zz\r\nabc\r\n0\r\n\r\n"  # not a chunk size
        elif variant == 2:
            chunks = b"ffffffffffffffff\r\nabc"  # a chunk far longer than sent
        else:
            headers.append("Content-Length: 5")  # both: a smuggling attempt
            chunks = b"5\r\nhello\r\n0\r\n\r\n"
        head = _request("POST", path, headers, b"", length=-1)
        return Probe("chunked body", port, [head + chunks], half_close=variant == 2)

    def slow(self) -> Probe:
        port = self._port()
        body = (
            b"username=slow&password=slow&csrf_token=x" if port == "console" else b'{"nonce": "s"}'
        )
        path = "/login" if port == "console" else self.callback_path
        headers = (
            ["Content-Type: application/x-www-form-urlencoded"]
            if port == "console"
            else _signed(body)
        )
        data = _request("POST", path, headers, body)
        size = max(1, len(data) // 8)
        return Probe(
            "slow body", port, [data[i : i + size] for i in range(0, len(data), size)], 0.25
        )

    def odd_headers(self) -> Probe:
        port = self._port()
        path = self.callback_path if port == "callback" else "/"
        variant = self.rng.randrange(5)
        if variant == 0:
            headers = ["X-Big: " + "a" * 100_000]
        elif variant == 1:
            headers = [f"X-H{n}: v" for n in range(500)]
        elif variant == 2:
            headers = ["Cookie: console_session=\udcff\udcfe; console_lang=\x00"]
        elif variant == 3:
            headers = ["Bad Header Name: x", "Content-Length: -1"]
        else:
            return Probe("odd headers", port, [b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"])
        return Probe("odd headers", port, [_request("GET", path, headers)])

    def console_paths(self) -> Probe:
        path = self.rng.choice(
            [
                "/tickets/" + "A" * 5000,
                "/tickets/%E4%B8%AD%FF",
                "/tickets/TS-2026-000001/proof.json",
                "/static/../../etc/passwd",
                "/static/%2e%2e/%2e%2e/config.toml",
                "/log.csv?q=" + "%" * 50,
                "/lang/" + "😀" * 10,
                "/login?next=//evil.example/",
                "/figures?month=9999-99",
                "//",
            ]
        )
        return Probe("odd console path", "console", [_request("GET", path)])


async def send_probe(probe: Probe, ports: dict[str, int], tally: Tally) -> None:
    """Send one probe and read the answer's status line; note 500s and silence."""
    tally.requests[probe.name] += 1
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", ports[probe.port])
    except OSError as error:
        tally.hung.append(f"{probe.name}: cannot connect ({error})")
        return
    try:
        try:
            for piece in probe.pieces:
                writer.write(piece)
                await writer.drain()
                if probe.pause:
                    await asyncio.sleep(probe.pause)
            if probe.half_close and writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, OSError):
            pass  # the server closed early (it refused a huge body): its answer is still read
        try:
            line = await asyncio.wait_for(reader.readline(), HUNG_AFTER)
        except TimeoutError:
            tally.hung.append(f"{probe.name} to {probe.port}: {probe.pieces[0][:80]!r}")
            return
        except (ConnectionError, OSError):
            line = b""
        found = re.match(rb"HTTP/1\.[01] (\d{3})", line)
        status = int(found.group(1)) if found else 0  # 0: closed without an answer
        tally.statuses[status] += 1
        if status >= 500:
            tally.server_errors.append(
                f"{status} {probe.name} to {probe.port}: {probe.pieces[0][:120]!r}"
            )
    finally:
        writer.close()
        with contextlib.suppress(TimeoutError, ConnectionError, OSError):
            await asyncio.wait_for(writer.wait_closed(), 5)


async def feed_requests(count: int, seed: int, ports: dict[str, int], tally: Tally) -> None:
    """Send `count` odd requests, 32 at a time."""
    maker = RequestMaker(random.Random(seed + 1))
    probes = iter([maker.one() for _ in range(count)])
    lock = asyncio.Lock()

    async def worker() -> None:
        while True:
            async with lock:
                probe = next(probes, None)
            if probe is None:
                return
            await send_probe(probe, ports, tally)

    await asyncio.gather(*(worker() for _ in range(32)))


# -- the run ------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _write_config(folder: Path, ports: dict[str, int]) -> Path:
    config = folder / "fuzz.toml"
    bundled = REPO_ROOT / "knowledge"
    config.write_text(
        f"""
[knowledge]
dir = {json.dumps(str(bundled))}

[matching]
semantic_model = "off"

[database]
path = {json.dumps(str(folder / "fuzz.sqlite3"))}

[telegram]
rate_limit_per_second = 0
rate_limit_group_per_minute = 0
flood_messages = 1000000
staff_hours = "00:00-23:59"

[web]
port = {ports["console"]}

[callbacks]
enabled = true
port = {ports["callback"]}

[departments.{DEPARTMENT}]
channels = ["console"]
secret_env = "FUZZ_DEPARTMENT_SECRET"
""",
        encoding="utf-8",
    )
    return config


async def _wait_for_port(port: int, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.5)
    raise RuntimeError(f"nothing listens on port {port}")


@dataclass
class LogCounts:
    """What the bot's log says went wrong."""

    handler_errors: int
    aiohttp_errors: int
    tracebacks: int
    error_lines: int
    first: list[str]
    # Requests aiohttp's parser refused with 400 (logged at INFO, bot/core/logs.py).
    malformed: int = 0


def read_log(log: Path, keep: str | None = None) -> LogCounts:
    """Count the errors in the bot's log, and keep the first few for the report."""
    text = log.read_text(encoding="utf-8", errors="replace")
    if keep:
        Path(keep).write_text(text, encoding="utf-8")
    lines = text.splitlines()
    errors = [line for line in lines if " ERROR " in line or " CRITICAL " in line]
    return LogCounts(
        handler_errors=sum("error while handling an update" in line for line in lines),
        aiohttp_errors=sum(" ERROR aiohttp" in line for line in lines),
        tracebacks=text.count("Traceback (most recent call last)"),
        error_lines=len(errors),
        first=errors[:5],
        malformed=sum("malformed request refused" in line for line in lines),
    )


async def run(args: argparse.Namespace) -> tuple[Tally, LogCounts, float]:
    """Start the bot, feed it updates and requests with the canary asking all along."""
    tally = Tally()
    with tempfile.TemporaryDirectory(prefix="fuzz-bench-") as scratch:
        folder = Path(scratch)
        ports = {"console": _free_port(), "callback": _free_port()}
        config = _write_config(folder, ports)
        log = folder / "bot.log"
        async with FuzzBotApi() as api:
            env = {
                **os.environ,
                "PYTHONPATH": str(REPO_ROOT),
                "TELEGRAM_BOT_TOKEN": api.token,
                "TELEGRAM_API_BASE_URL": api.base_url,
                "BOT_CONFIG": str(config),
                "FUZZ_DEPARTMENT_SECRET": SECRET,
            }
            env.pop("DATABASE_URL", None)
            with log.open("ab") as output:
                process = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "bot",
                    "run",
                    cwd=REPO_ROOT,
                    env=env,
                    stdout=output,
                    stderr=output,
                )
            try:
                await _wait_for_port(ports["console"])
                await _wait_for_port(ports["callback"])
                stop = asyncio.Event()
                watcher = asyncio.create_task(canary(api, stop, tally))
                started = time.perf_counter()
                jobs: list[Awaitable[None]] = [
                    feed_updates(api, args.updates, args.seed, tally),
                    feed_requests(args.requests, args.seed, ports, tally),
                ]
                await asyncio.gather(*jobs)
                elapsed = time.perf_counter() - started
                stop.set()
                await watcher
                if process.returncode is not None:
                    raise RuntimeError(f"the bot exited with {process.returncode}")
            finally:
                if process.returncode is None:
                    process.terminate()
                    try:
                        await asyncio.wait_for(process.wait(), 30)
                    except TimeoutError:
                        process.kill()
                        await process.wait()
            counts = read_log(log, args.keep_log)
    return tally, counts, elapsed


def report(tally: Tally, counts: LogCounts, elapsed: float, args: argparse.Namespace) -> str:
    """Return the results as Markdown for docs/benchmarks.md."""
    lines = [
        f"Run {time.strftime('%Y-%m-%d')} on {platform.node() or 'this machine'}: "
        f"{os.cpu_count()} cores ({platform.processor() or platform.machine()}), Python "
        f"{platform.python_version()}; SQLite, bundled knowledge base, seed {args.seed}; "
        f"{elapsed:.0f} s; load average {', '.join(f'{v:.2f}' for v in os.getloadavg())} at the end.",
        "",
        "| | count |",
        "| --- | ---: |",
        f"| updates sent | {sum(tally.updates.values())} |",
        f"| HTTP requests sent | {sum(tally.requests.values())} |",
        f"| errors logged by the Application's error handler | {counts.handler_errors} |",
        f"| errors logged by aiohttp | {counts.aiohttp_errors} |",
        f"| requests aiohttp's parser refused with 400 (logged at INFO) | {counts.malformed} |",
        f"| tracebacks / ERROR lines in the bot's log | {counts.tracebacks} / {counts.error_lines} |",
        f"| responses 5xx | {len(tally.server_errors)} |",
        f"| hung responses (nothing in {HUNG_AFTER:.0f} s) | {len(tally.hung)} |",
        f"| canary questions answered | {tally.canary_answered} of {tally.canary_asked} "
        f"(slowest {tally.canary_slowest:.1f} s) |",
        f"| pacer questions unanswered within 120 s (one after every {PACE} updates) | "
        f"{tally.pacer_unanswered} |",
        "",
        "Updates: " + ", ".join(f"{k} {v}" for k, v in sorted(tally.updates.items())) + ".",
        "",
        "Requests: "
        + ", ".join(f"{k} {v}" for k, v in sorted(tally.requests.items()))
        + "; statuses "
        + ", ".join(f"{k or 'closed'} ×{v}" for k, v in sorted(tally.statuses.items()))
        + ".",
    ]
    for title, items in (
        ("5xx", tally.server_errors),
        ("hung", tally.hung),
        ("ERROR lines", counts.first),
    ):
        if items:
            lines += ["", f"First {title}:", *(f"- `{item[:200]}`" for item in items[:5])]
    return "\n".join(lines)


def main(argv: Sequence[str]) -> int:
    """Run the benchmark; exit 1 when anything went unhandled, answered 5xx, hung or the canary
    went unanswered."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks fuzz")
    parser.add_argument("--updates", type=int, default=100_000, help="generated updates")
    parser.add_argument("--requests", type=int, default=10_000, help="odd HTTP requests")
    parser.add_argument("--quick", action="store_true", help="2,000 updates and 500 requests")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep-log", metavar="FILE", help="copy the bot's log here")
    args = parser.parse_args(list(argv))
    if args.quick:
        args.updates, args.requests = 2000, 500
    tally, counts, elapsed = asyncio.run(run(args))
    print(report(tally, counts, elapsed, args))
    clean = (
        counts.handler_errors == counts.aiohttp_errors == counts.tracebacks == 0
        and not tally.server_errors
        and not tally.hung
        and tally.canary_answered == tally.canary_asked
        and not tally.pacer_unanswered
    )
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
