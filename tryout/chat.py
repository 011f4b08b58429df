"""The try-out: a chat page where a person plays a resident or staff, with no Telegram token.

The page (chat_page/) polls the JSON endpoints under /_tryout/ and renders the bot's
messages from their plain text and entities with DOM calls, never as HTML. The endpoints act
only for the people and chats of the try-out world, and refuse cross-site requests.
"""

from __future__ import annotations

import base64
import binascii
import time
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from aiohttp import web

from tryout.local_bot_api.model import ChatMessage, JSONDict, SimChat, SimUser
from tryout.local_bot_api.world import MAX_TEXT_LENGTH

if TYPE_CHECKING:
    from tryout.local_bot_api.server import LocalBotApi

MAX_TRYOUT_UPLOAD = 10 * 1024 * 1024
MAX_LONG_POLL = 25.0
TYPING_SECONDS = 5.0
DEFAULT_LOCATION = (30.2741, 120.1551)
_ASSETS = {
    "index.html": "text/html",
    "tryout.js": "text/javascript",
    "tryout.css": "text/css",
}
_INLINE_IMAGES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class TryoutView:
    """A chat the person can open, and who they may speak as there."""

    key: str
    label: str
    chat: SimChat
    speakers: tuple[SimUser, ...]


@dataclass(frozen=True)
class TryoutWorld:
    """The try-out's people: a resident, staff members and their group with the bot."""

    resident: SimUser
    resident_chat: SimChat
    staff: tuple[SimUser, ...]
    staff_group: SimChat
    views: tuple[TryoutView, ...]

    def view(self, chat_id: int) -> TryoutView | None:
        """Return the view of a chat."""
        return next((view for view in self.views if view.chat.id == chat_id), None)


def create_tryout_world(
    api: LocalBotApi,
    *,
    resident_name: str = "市民小李",
    resident_language: str = "zh-hans",
    staff_names: tuple[str, ...] = ("王科长", "张专员"),
    staff_group_title: str = "工作人员群 Staff",
    staff_group_id: int | None = None,
) -> TryoutWorld:
    """Create the resident, the staff and the staff group (with the bot as an administrator)."""
    resident = api.create_user(resident_name, language_code=resident_language)
    resident_chat = api.create_private_chat(resident)
    staff = tuple(api.create_user(name, language_code="zh-hans") for name in staff_names)
    members = {
        person: ("creator" if index == 0 else "member") for index, person in enumerate(staff)
    }
    group = api.create_group(
        staff_group_title, members, bot_status="administrator", chat_id=staff_group_id
    )
    views = [
        TryoutView("resident", "市民 Resident", resident_chat, (resident,)),
        TryoutView("staff-group", "工作人员群 Staff group", group, staff),
    ]
    for person in staff:
        chat = api.create_private_chat(person)
        views.append(
            TryoutView(f"staff-{person.id}", f"{person.first_name} 私聊 DM", chat, (person,))
        )
    return TryoutWorld(resident, resident_chat, staff, group, tuple(views))


def setup_routes(app: web.Application, api: LocalBotApi) -> None:
    """Add the page and its JSON endpoints to the server."""
    handlers = _Handlers(api)
    app.router.add_get("/", handlers.page)
    app.router.add_get("/tryout", handlers.page)
    app.router.add_get("/_tryout/assets/{name}", handlers.asset)
    app.router.add_get("/_tryout/world", handlers.world)
    app.router.add_get("/_tryout/messages", handlers.messages)
    app.router.add_post("/_tryout/send", handlers.send)
    app.router.add_post("/_tryout/press", handlers.press)
    app.router.add_get("/_tryout/files/{file_id}", handlers.file)


def _user_view(user: SimUser) -> JSONDict:
    return {"id": user.id, "name": user.full_name, "is_bot": user.is_bot}


def message_view(message: ChatMessage) -> JSONDict:
    """Return what the page needs to draw one message."""
    if message.deleted:
        return {"id": message.message_id, "version": message.version, "deleted": True}
    data = message.data
    view: JSONDict = {
        "id": message.message_id,
        "version": message.version,
        "deleted": False,
        "from": _user_view(message.sender),
        "date": data["date"],
        "edited": message.edited,
        "kind": message.kind,
        "text": message.text,
        "entities": message.entities,
        "buttons": [
            [
                {key: button[key] for key in ("text", "callback_data", "url") if key in button}
                for button in row
            ]
            for row in message.inline_keyboard
        ],
    }
    replied = data.get("reply_to_message")
    if replied:
        view["reply_to"] = {
            "id": replied["message_id"],
            "from": replied.get("from", {}).get("first_name", ""),
            "text": str(replied.get("text", replied.get("caption", "")))[:120],
        }
    if "forward_origin" in data:
        view["forwarded_from"] = data["forward_origin"]["sender_user"]["first_name"]
    if "photo" in data:
        view["photo"] = f"/_tryout/files/{data['photo'][-1]['file_id']}"
    if "document" in data:
        document = data["document"]
        view["document"] = {
            "name": document.get("file_name", "file"),
            "url": f"/_tryout/files/{document['file_id']}",
        }
    if "sticker" in data:
        view["sticker"] = data["sticker"].get("emoji", "🖼")
    if "location" in data:
        view["location"] = data["location"]
    if "contact" in data:
        view["contact"] = data["contact"]
    if "voice" in data:
        view["voice"] = {"duration": data["voice"].get("duration", 0)}
    for key in ("new_chat_members", "left_chat_member"):
        if key in data:
            view["service"] = key
    return view


class _Refused(Exception):
    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


def _fail(reason: str, status: int = 400) -> web.Response:
    return web.json_response(
        {"ok": False, "error": reason}, status=status, headers=_SECURITY_HEADERS
    )


def _ok(body: JSONDict) -> web.Response:
    return web.json_response({"ok": True, **body}, headers=_SECURITY_HEADERS)


class _Handlers:
    def __init__(self, api: LocalBotApi) -> None:
        self.api = api
        self._assets: dict[str, bytes] = {}

    def _asset_bytes(self, name: str) -> bytes:
        if name not in self._assets:
            folder = resources.files("tryout") / "chat_page"
            self._assets[name] = (folder / name).read_bytes()
        return self._assets[name]

    async def page(self, request: web.Request) -> web.Response:
        return web.Response(
            body=self._asset_bytes("index.html"),
            content_type="text/html",
            charset="utf-8",
            headers=_SECURITY_HEADERS,
        )

    async def asset(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in _ASSETS or name == "index.html":
            return _fail("not found", 404)
        return web.Response(
            body=self._asset_bytes(name),
            content_type=_ASSETS[name],
            charset="utf-8",
            headers=_SECURITY_HEADERS,
        )

    async def world(self, request: web.Request) -> web.Response:
        tryout = self.api.tryout
        bot = self.api.bot_user
        return _ok(
            {
                "bot": {"id": bot.id, "name": bot.first_name, "username": bot.username},
                "time_zone": self.api.time_zone,
                "views": [
                    {
                        "key": view.key,
                        "label": view.label,
                        "chat_id": view.chat.id,
                        "group": view.chat.is_group,
                        "title": view.chat.title or view.speakers[0].full_name,
                        "speakers": [_user_view(user) for user in view.speakers],
                    }
                    for view in tryout.views
                ],
            }
        )

    def _view(self, raw_chat_id: object) -> SimChat:
        try:
            chat_id = int(str(raw_chat_id))
        except ValueError:
            raise _Refused("chat_id must be a number") from None
        view = self.api.tryout.view(chat_id)
        if view is None:
            raise _Refused("this chat is not part of the try-out", 404)
        return view.chat

    def _speaker(self, chat: SimChat, raw_user_id: object) -> SimUser:
        view = self.api.tryout.view(chat.id)
        assert view is not None
        for user in view.speakers:
            if str(user.id) == str(raw_user_id):
                return user
        raise _Refused("you cannot speak as this user in this chat", 403)

    async def _body(self, request: web.Request) -> JSONDict:
        # A page on another site can post forms to 127.0.0.1, but not JSON without CORS.
        origin = request.headers.get("Origin")
        if origin is not None and origin != f"{request.scheme}://{request.host}":
            raise _Refused("cross-site request refused", 403)
        if request.content_type != "application/json":
            raise _Refused("send JSON (Content-Type: application/json)", 415)
        try:
            body = await request.json()
        except ValueError:
            raise _Refused("the body is not JSON") from None
        if not isinstance(body, dict):
            raise _Refused("the body must be a JSON object")
        return body

    def _chat_state(self, chat: SimChat) -> JSONDict:
        typing_left = TYPING_SECONDS - (time.time() - chat.chat_action_at)
        keyboard = chat.reply_keyboard
        view = self.api.tryout.view(chat.id)
        language = (view.speakers[0].language_code if view else None) or ""
        # Like Telegram clients: the exact language, then its two-letter code, then the default.
        commands = (
            self.api.my_commands(language_code=language)
            or self.api.my_commands(language_code=language[:2])
            or self.api.my_commands()
        )
        return {
            "version": chat.version,
            "typing": round(typing_left, 1) if chat.chat_action and typing_left > 0 else 0,
            "keyboard": [[button["text"] for button in row] for row in keyboard["keyboard"]]
            if keyboard
            else None,
            "placeholder": keyboard.get("input_field_placeholder") if keyboard else None,
            "commands": [{"command": c, "description": d} for c, d in commands],
        }

    async def messages(self, request: web.Request) -> web.Response:
        try:
            chat = self._view(request.query.get("chat_id"))
            since = int(request.query.get("since", "0"))
            wait = min(max(float(request.query.get("wait", "0")), 0.0), MAX_LONG_POLL)
        except _Refused as refused:
            return _fail(refused.reason, refused.status)
        except ValueError:
            return _fail("since and wait must be numbers")
        await self.api.wait_for(lambda: chat.version > since, wait)
        changed = [message_view(m) for m in chat.messages if m.version > since]
        return _ok({"messages": changed, **self._chat_state(chat)})

    async def send(self, request: web.Request) -> web.Response:
        try:
            body = await self._body(request)
            chat = self._view(body.get("chat_id"))
            user = self._speaker(chat, body.get("user_id"))
            message = self._send(chat, user, body)
        except _Refused as refused:
            return _fail(refused.reason, refused.status)
        except ValueError as error:
            return _fail(str(error))
        return _ok({"message": message_view(message)})

    def _send(self, chat: SimChat, user: SimUser, body: JSONDict) -> ChatMessage:
        api = self.api
        reply_to = body.get("reply_to")
        if reply_to is not None and (
            not isinstance(reply_to, int) or api.find_message(chat, reply_to) is None
        ):
            raise _Refused("the message to reply to is gone")
        kind = body.get("kind", "text")
        if kind == "text":
            text = body.get("text")
            if not isinstance(text, str) or not text.strip():
                raise _Refused("type a message first")
            if len(text) > MAX_TEXT_LENGTH:
                raise _Refused(f"at most {MAX_TEXT_LENGTH} characters")
            keyboard = chat.reply_keyboard
            message = api.send_text(user, chat, text, reply_to=reply_to)
            if keyboard and keyboard.get("one_time_keyboard"):
                # A one-time keyboard hides once used, as Telegram clients do.
                chat.reply_keyboard = None
            return message
        if kind == "photo":
            upload = _upload(body.get("file"), required=False)
            return api.send_photo(
                user,
                chat,
                upload[2] if upload else None,
                caption=_caption(body),
                reply_to=reply_to,
            )
        if kind == "document":
            upload = _upload(body.get("file"), required=True)
            assert upload is not None
            name, mime, data = upload
            return api.send_document(
                user,
                chat,
                data,
                file_name=name,
                mime_type=mime,
                caption=_caption(body),
                reply_to=reply_to,
            )
        if kind == "sticker":
            emoji = body.get("emoji") if isinstance(body.get("emoji"), str) else "👍"
            return api.send_sticker(user, chat, emoji or "👍", reply_to=reply_to)
        if kind == "location":
            latitude = body.get("latitude", DEFAULT_LOCATION[0])
            longitude = body.get("longitude", DEFAULT_LOCATION[1])
            if not isinstance(latitude, int | float) or not isinstance(longitude, int | float):
                raise _Refused("latitude and longitude must be numbers")
            return api.send_location(user, chat, latitude, longitude, reply_to=reply_to)
        if kind == "contact":
            phone = body.get("phone_number") or "+86 138 0000 0000"
            return api.send_contact(user, chat, str(phone), reply_to=reply_to)
        if kind == "voice":
            return api.send_voice(user, chat, reply_to=reply_to)
        raise _Refused(f"unknown kind {kind!r}")

    async def press(self, request: web.Request) -> web.Response:
        try:
            body = await self._body(request)
            chat = self._view(body.get("chat_id"))
            user = self._speaker(chat, body.get("user_id"))
            message_id, data = body.get("message_id"), body.get("callback_data")
            if not isinstance(message_id, int) or not isinstance(data, str):
                raise _Refused("message_id and callback_data are needed")
            message = self.api.find_message(chat, message_id)
            if message is None:
                raise _Refused("the message is gone")
            query_id = self.api.push_callback_query(user, message, data)
        except _Refused as refused:
            return _fail(refused.reason, refused.status)
        except ValueError as error:
            return _fail(str(error))
        await self.api.wait_for(lambda: query_id in self.api.callback_answers, 3.0)
        answer = self.api.callback_answers.get(query_id)
        answer_view: dict[str, Any] | None = None
        if answer is not None:
            answer_view = {"text": answer.text, "show_alert": answer.show_alert, "url": answer.url}
        return _ok({"answer": answer_view})

    async def file(self, request: web.Request) -> web.Response:
        stored = self.api.files.get(request.match_info["file_id"])
        if stored is None or stored.data is None:
            return _fail("no such file", 404)
        headers = dict(_SECURITY_HEADERS)
        if stored.mime_type in _INLINE_IMAGES:
            content_type = stored.mime_type or "image/png"
        else:
            # Anything else is downloaded, never rendered on our origin.
            content_type = "application/octet-stream"
            name = (stored.file_name or stored.file_path.rsplit("/", 1)[-1]).replace('"', "")
            headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(name, safe='')}"
        return web.Response(body=stored.data, content_type=content_type, headers=headers)


def _caption(body: JSONDict) -> str | None:
    caption = body.get("caption")
    return caption if isinstance(caption, str) and caption.strip() else None


def _upload(raw: object, *, required: bool) -> tuple[str, str, bytes] | None:
    if raw is None and not required:
        return None
    if not isinstance(raw, dict):
        raise _Refused("choose a file first")
    name, mime, encoded = raw.get("name"), raw.get("type"), raw.get("data")
    if not isinstance(name, str) or not isinstance(encoded, str):
        raise _Refused("a file needs a name and base64 data")
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise _Refused("the file data is not base64") from None
    if len(data) > MAX_TRYOUT_UPLOAD:
        raise _Refused("files for the try-out are limited to 10 MB")
    mime_type = mime if isinstance(mime, str) and mime else "application/octet-stream"
    return name[:200] or "file", mime_type, data
