"""The state behind the local Bot API: users, chats, messages, files, the update queue.

`World` is what tests drive: they create users and chats, make users write, press buttons and
join groups, and read back what the bot sent. Everything runs on one event loop, so state is
changed without locks; waiters are woken through one notifier after every change.
"""

# The waits take `timeout=` on purpose: when one runs out, the error says what the bot did and
# did not do, which a bare asyncio.timeout around the call cannot.
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import time
from collections.abc import Callable, Iterable, Mapping

from tryout.local_bot_api.formatting import detect_entities
from tryout.local_bot_api.media import extension_for, image_size, sample_png
from tryout.local_bot_api.model import (
    PRESENT_STATUSES,
    ApiCall,
    CallbackAnswer,
    ChatMessage,
    JSONDict,
    Member,
    SimChat,
    SimUser,
    StoredFile,
    member_status,
)

MAX_TEXT_LENGTH = 4096
# What getUpdates delivers when the bot never said: everything but these three.
DEFAULT_EXCLUDED_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
# Calls that change what users see; waiting for "the bot's reply" counts these.
OUTPUT_METHODS = frozenset(
    {
        "sendmessage",
        "sendphoto",
        "senddocument",
        "sendlocation",
        "sendvoice",
        "sendsticker",
        "sendcontact",
        "forwardmessage",
        "copymessage",
        "editmessagetext",
        "editmessagecaption",
        "editmessagereplymarkup",
        "deletemessage",
        "deletemessages",
        "answercallbackquery",
    }
)
_CONTENT_KEYS = (
    "text",
    "entities",
    "link_preview_options",
    "photo",
    "document",
    "sticker",
    "voice",
    "audio",
    "video",
    "location",
    "contact",
    "caption",
    "caption_entities",
)


class Notifier:
    """Wakes every waiter after a change; a waiter re-checks its condition."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        """Wake all current waiters."""
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout: float) -> None:
        """Wait for the next change, at most `timeout` seconds."""
        event = self._event
        try:
            async with asyncio.timeout(max(timeout, 0.0)):
                await event.wait()
        except TimeoutError:
            pass


class World:
    """Users, chats and messages of a simulated Telegram, seen from one bot."""

    def __init__(
        self,
        *,
        token: str,
        bot_username: str,
        bot_first_name: str,
        privacy_mode: bool,
        strict_html_entities: bool,
    ) -> None:
        bot_id = token.split(":", 1)[0]
        if not bot_id.isdigit() or ":" not in token:
            raise ValueError(f"a bot token looks like 123456:ABC-DEF, not {token!r}")
        self.token = token
        self.bot_user = SimUser(int(bot_id), bot_first_name, username=bot_username, is_bot=True)
        self.privacy_mode = privacy_mode
        self.strict_html_entities = strict_html_entities
        self.users: dict[int, SimUser] = {self.bot_user.id: self.bot_user}
        self.chats: dict[int, SimChat] = {}
        self.files: dict[str, StoredFile] = {}
        self.calls: list[ApiCall] = []
        self.callback_answers: dict[str, CallbackAnswer] = {}
        self.open_queries: dict[str, ChatMessage] = {}
        self.commands: dict[tuple[str, str], list[JSONDict]] = {}
        self.default_menu_button: JSONDict | None = None
        self.bot_profile: dict[tuple[str, str], str] = {}
        self.webhook: JSONDict | None = None
        self.allowed_updates: frozenset[str] | None = None
        self.pending_updates: list[JSONDict] = []
        self.delivered_update_id = 0
        self.poll_generation = 0
        self.closing = False
        self.notifier = Notifier()
        self._sequence = 0
        self._next_update_id = 1
        self._in_flight = 0
        self._last_call_end = 0.0
        self._user_ids = itertools.count(100_001)
        self._group_ids = itertools.count(1)
        self._file_numbers = itertools.count(1)
        self._query_numbers = itertools.count(1)

    # -----------------------------------------------------------------------------------------
    # Bookkeeping

    @property
    def sequence(self) -> int:
        """Return a cursor: every message, edit, call and answer after now has a larger one."""
        return self._sequence

    def bump(self) -> int:
        """Advance the cursor and return the new value."""
        self._sequence += 1
        return self._sequence

    def changed(self) -> None:
        """Wake everything that waits for the world to change."""
        self.notifier.notify()

    def call_started(self) -> None:
        """Note that the bot's call is being handled (for "the bot is idle" waits)."""
        self._in_flight += 1
        self.changed()

    def note_delivery(self, update_id: int) -> None:
        """Note that the bot fetched updates up to `update_id`; it counts as the bot being busy."""
        self.delivered_update_id = max(self.delivered_update_id, update_id)
        # So that "quiet for `settle` seconds" also covers a handler that has not called yet.
        self._last_call_end = time.monotonic()
        self.changed()

    def call_finished(
        self, method: str, params: JSONDict, status: int, description: str | None
    ) -> None:
        """Record a finished call of the bot."""
        self._in_flight -= 1
        self._last_call_end = time.monotonic()
        self.calls.append(ApiCall(method, params, status == 200, status, description, self.bump()))
        self.changed()

    @property
    def failed_calls(self) -> list[ApiCall]:
        """Return the calls Telegram would have refused."""
        return [call for call in self.calls if not call.ok]

    def calls_to(self, method: str) -> list[ApiCall]:
        """Return the calls of one method (case-insensitive, like Telegram)."""
        return [call for call in self.calls if call.method.lower() == method.lower()]

    # -----------------------------------------------------------------------------------------
    # Users and chats

    def create_user(
        self,
        first_name: str,
        *,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "zh-hans",
        user_id: int | None = None,
    ) -> SimUser:
        """Create a Telegram user."""
        user_id = user_id if user_id is not None else next(self._user_ids)
        if user_id in self.users:
            raise ValueError(f"user {user_id} exists already")
        user = SimUser(user_id, first_name, last_name, username, language_code)
        self.users[user_id] = user
        return user

    def create_private_chat(self, user: SimUser) -> SimChat:
        """Return the private chat between `user` and the bot, creating it once."""
        chat = self.chats.get(user.id)
        if chat is None:
            chat = SimChat(user.id, "private", user=user)
            chat.members[user.id] = Member(user, "member")
            chat.members[self.bot_user.id] = Member(self.bot_user, "member")
            self.chats[chat.id] = chat
        return chat

    def create_group(
        self,
        title: str,
        members: Mapping[SimUser, str] | Iterable[SimUser] = (),
        *,
        supergroup: bool = True,
        bot_status: str = "member",
        chat_id: int | None = None,
        username: str | None = None,
    ) -> SimChat:
        """Create a group (a supergroup unless told) with members and the bot in it."""
        if chat_id is None:
            number = next(self._group_ids)
            chat_id = -1_001_000_000_000 - number if supergroup else -1_000 - number
        if chat_id in self.chats:
            raise ValueError(f"chat {chat_id} exists already")
        chat = SimChat(chat_id, "supergroup" if supergroup else "group", title, username)
        statuses = members if isinstance(members, Mapping) else dict.fromkeys(members, "member")
        for user, status in statuses.items():
            self._known(user)
            chat.members[user.id] = Member(user, member_status(status))
        chat.members[self.bot_user.id] = Member(self.bot_user, member_status(bot_status))
        self.chats[chat_id] = chat
        return chat

    def _known(self, user: SimUser) -> None:
        if self.users.get(user.id) is not user:
            raise ValueError(f"user {user.id} was not created by this LocalBotApi")

    def find_chat(self, chat_id: int | str) -> SimChat | None:
        """Return the chat with this id or @username."""
        if isinstance(chat_id, str) and chat_id.startswith("@"):
            name = chat_id[1:].lower()
            for chat in self.chats.values():
                username = chat.username or (chat.user.username if chat.user else None)
                if username and username.lower() == name:
                    return chat
            return None
        return self.chats.get(int(chat_id))

    def add_member(
        self, chat: SimChat, user: SimUser, status: str = "member", *, announce: bool = True
    ) -> None:
        """Put a user into a group; by default users see (and the bot gets) a join message."""
        self._set_status(chat, user, member_status(status), announce=announce)

    def remove_member(self, chat: SimChat, user: SimUser, *, announce: bool = True) -> None:
        """Make a user leave a group."""
        self._set_status(chat, user, "left", announce=announce)

    def set_member_status(self, chat: SimChat, user: SimUser, status: str) -> None:
        """Change a member's status quietly (only a chat_member update)."""
        self._set_status(chat, user, member_status(status), announce=False)

    def _set_status(self, chat: SimChat, user: SimUser, status: str, *, announce: bool) -> None:
        if not chat.is_group:
            raise ValueError("members can only change in groups")
        self._known(user)
        old = chat.members.get(user.id) or Member(user, "left")
        new = Member(user, member_status(status))
        if status == "left":
            chat.members.pop(user.id, None)
        else:
            chat.members[user.id] = new
        chat.version = self.bump()
        change = {
            "chat": chat.to_api(),
            "from": user.to_api(),
            "date": int(time.time()),
            "old_chat_member": old.to_api(),
            "new_chat_member": new.to_api(),
        }
        self.push_update("my_chat_member" if user.is_bot else "chat_member", change)
        joined = status in PRESENT_STATUSES and old.status not in PRESENT_STATUSES
        left = status not in PRESENT_STATUSES and old.status in PRESENT_STATUSES
        if announce and joined:
            self._service_message(
                chat, user, {"new_chat_members": [user.to_api()], "new_chat_member": user.to_api()}
            )
        elif announce and left:
            self._service_message(
                chat,
                user,
                {"left_chat_member": user.to_api(), "left_chat_participant": user.to_api()},
            )
        self.changed()

    def _service_message(self, chat: SimChat, user: SimUser, content: JSONDict) -> None:
        message = self.new_message(chat, user, content)
        self._deliver_message(message)

    def block_bot(self, user: SimUser, blocked: bool = True) -> None:
        """Make a user block (or unblock) the bot: sending to them then fails with 403."""
        user.blocked_bot = blocked

    # -----------------------------------------------------------------------------------------
    # Messages

    def new_message(
        self,
        chat: SimChat,
        sender: SimUser,
        content: JSONDict,
        *,
        reply_to: ChatMessage | None = None,
        markup: JSONDict | None = None,
        options: JSONDict | None = None,
    ) -> ChatMessage:
        """Store a new message in a chat and return it."""
        data: JSONDict = {
            "message_id": chat.next_message_id,
            "from": sender.to_api(),
            "chat": chat.to_api(),
            "date": int(time.time()),
        }
        chat.next_message_id += 1
        if reply_to is not None:
            data["reply_to_message"] = self.snapshot(reply_to)
        data.update(content)
        sequence = self.bump()
        message = ChatMessage(
            chat,
            data["message_id"],
            sender,
            data,
            sequence=sequence,
            version=sequence,
            markup=markup,
            options=options or {},
        )
        chat.messages.append(message)
        chat.version = sequence
        self.changed()
        return message

    @staticmethod
    def snapshot(message: ChatMessage) -> JSONDict:
        """Return a message's JSON as it appears nested in another (one level deep)."""
        data = copy.deepcopy(message.data)
        data.pop("reply_to_message", None)
        return data

    def find_message(self, chat: SimChat, message_id: int) -> ChatMessage | None:
        """Return a message that was not deleted."""
        for message in reversed(chat.messages):
            if message.message_id == message_id:
                return None if message.deleted else message
        return None

    def touch(self, message: ChatMessage) -> None:
        """Mark a message as changed, for pollers and waiters."""
        message.version = self.bump()
        message.chat.version = message.version
        self.changed()

    def messages(self, chat: SimChat) -> list[ChatMessage]:
        """Return the chat's messages that were not deleted, oldest first."""
        return [message for message in chat.messages if not message.deleted]

    def bot_messages(self, chat: SimChat) -> list[ChatMessage]:
        """Return the bot's messages in a chat that were not deleted, oldest first."""
        return [message for message in self.messages(chat) if message.from_bot]

    def last_bot_message(self, chat: SimChat) -> ChatMessage | None:
        """Return the bot's latest message in a chat."""
        found = self.bot_messages(chat)
        return found[-1] if found else None

    def _reply_target(
        self, chat: SimChat, reply_to: ChatMessage | int | None
    ) -> ChatMessage | None:
        if reply_to is None:
            return None
        message_id = reply_to.message_id if isinstance(reply_to, ChatMessage) else reply_to
        target = self.find_message(chat, message_id)
        if target is None:
            raise ValueError(f"message {message_id} is not in chat {chat.id}")
        return target

    def _check_sender(self, user: SimUser, chat: SimChat) -> None:
        self._known(user)
        if chat.type == "private" and chat.user is not user:
            raise ValueError(f"{user.first_name} cannot write in {chat.user}'s private chat")
        if chat.is_group and chat.status_of(user.id) not in PRESENT_STATUSES:
            raise ValueError(f"{user.first_name} is not a member of {chat.title!r}")
        if chat.is_group and chat.status_of(user.id) == "restricted":
            raise ValueError(f"{user.first_name} is restricted in {chat.title!r}")

    def _bot_sees(self, message: ChatMessage) -> bool:
        chat = message.chat
        if chat.type == "private":
            return True
        bot_status = chat.status_of(self.bot_user.id)
        if bot_status not in PRESENT_STATUSES:
            return False
        if not self.privacy_mode or bot_status in ("creator", "administrator"):
            return True
        # Privacy mode: commands, replies to the bot, mentions and service messages only.
        data = message.data
        replied = data.get("reply_to_message")
        if replied and replied.get("from", {}).get("id") == self.bot_user.id:
            return True
        if not any(key in data for key in _CONTENT_KEYS):
            return True  # a service message: joins, leaves, title changes
        text = message.text
        mention = f"@{self.bot_user.username}".lower() if self.bot_user.username else None
        for entity in message.entities:
            start = entity["offset"]
            piece = text.encode("utf-16-le")[2 * start : 2 * (start + entity["length"])]
            word = piece.decode("utf-16-le").lower()
            if entity["type"] == "bot_command" and (
                "@" not in word or word.endswith(mention or "")
            ):
                return True
            if entity["type"] == "mention" and word == mention:
                return True
        return False

    def _deliver_message(self, message: ChatMessage, kind: str = "message") -> None:
        if self._bot_sees(message):
            message.update_id = self.push_update(kind, copy.deepcopy(message.data))

    def _user_message(
        self, user: SimUser, chat: SimChat, content: JSONDict, reply_to: ChatMessage | int | None
    ) -> ChatMessage:
        self._check_sender(user, chat)
        target = self._reply_target(chat, reply_to)
        user.blocked_bot = False
        if chat.type == "private":
            chat.started = True
        message = self.new_message(chat, user, content, reply_to=target)
        self._deliver_message(message)
        return message

    def send_text(
        self, user: SimUser, chat: SimChat, text: str, *, reply_to: ChatMessage | int | None = None
    ) -> ChatMessage:
        """Make a user send a text message; commands get their bot_command entity."""
        if not text.strip():
            raise ValueError("Telegram clients do not send empty messages")
        if len(text) > MAX_TEXT_LENGTH:
            raise ValueError(f"Telegram clients split texts longer than {MAX_TEXT_LENGTH}")
        content: JSONDict = {"text": text}
        entities = detect_entities(text)
        if entities:
            content["entities"] = entities
        return self._user_message(user, chat, content, reply_to)

    def send_sticker(
        self,
        user: SimUser,
        chat: SimChat,
        emoji: str = "👍",
        *,
        reply_to: ChatMessage | int | None = None,
    ) -> ChatMessage:
        """Make a user send a sticker."""
        stored = self.store_file(b"RIFF\x00\x00\x00\x00WEBPVP8 ", "stickers", "image/webp")
        sticker = self.file_json(stored) | {
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
        }
        return self._user_message(user, chat, {"sticker": sticker}, reply_to)

    def send_photo(
        self,
        user: SimUser,
        chat: SimChat,
        data: bytes | None = None,
        *,
        caption: str | None = None,
        reply_to: ChatMessage | int | None = None,
    ) -> ChatMessage:
        """Make a user send a photo (a generated PNG unless `data` is given)."""
        photo = data if data is not None else sample_png()
        mime_type = "image/png" if photo.startswith(b"\x89PNG") else "image/jpeg"
        stored = self.store_file(photo, "photos", mime_type)
        content: JSONDict = {"photo": self.photo_sizes(stored)}
        if caption:
            content.update(self._caption(caption))
        return self._user_message(user, chat, content, reply_to)

    def send_document(
        self,
        user: SimUser,
        chat: SimChat,
        data: bytes,
        *,
        file_name: str = "document.txt",
        mime_type: str = "text/plain",
        caption: str | None = None,
        reply_to: ChatMessage | int | None = None,
    ) -> ChatMessage:
        """Make a user send a file."""
        stored = self.store_file(data, "documents", mime_type, file_name=file_name)
        document = self.file_json(stored) | {"file_name": file_name, "mime_type": mime_type}
        content: JSONDict = {"document": document}
        if caption:
            content.update(self._caption(caption))
        return self._user_message(user, chat, content, reply_to)

    def send_voice(
        self,
        user: SimUser,
        chat: SimChat,
        data: bytes = b"OggS\x00fake-voice",
        *,
        duration: int = 2,
        reply_to: ChatMessage | int | None = None,
    ) -> ChatMessage:
        """Make a user send a voice message."""
        stored = self.store_file(data, "voice", "audio/ogg")
        voice = self.file_json(stored) | {"duration": duration, "mime_type": "audio/ogg"}
        return self._user_message(user, chat, {"voice": voice}, reply_to)

    def send_location(
        self,
        user: SimUser,
        chat: SimChat,
        latitude: float,
        longitude: float,
        *,
        reply_to: ChatMessage | int | None = None,
    ) -> ChatMessage:
        """Make a user share a location."""
        location = {"latitude": float(latitude), "longitude": float(longitude)}
        return self._user_message(user, chat, {"location": location}, reply_to)

    def send_contact(
        self,
        user: SimUser,
        chat: SimChat,
        phone_number: str,
        *,
        first_name: str | None = None,
        last_name: str | None = None,
        own: bool = True,
        reply_to: ChatMessage | int | None = None,
    ) -> ChatMessage:
        """Make a user share a contact; by default their own, as a "share my number" button does."""
        contact: JSONDict = {
            "phone_number": phone_number,
            "first_name": first_name or user.first_name,
        }
        if last_name or (own and user.last_name):
            contact["last_name"] = last_name or user.last_name
        if own:
            contact["user_id"] = user.id
        return self._user_message(user, chat, {"contact": contact}, reply_to)

    def edit_text(self, message: ChatMessage, new_text: str) -> ChatMessage:
        """Make the author of a text message edit it (the bot gets an edited_message)."""
        if message.from_bot:
            raise ValueError("use the Bot API to edit the bot's messages")
        if "text" not in message.data:
            raise ValueError("only text messages can be edited this way")
        if not new_text.strip() or len(new_text) > MAX_TEXT_LENGTH:
            raise ValueError("the new text must have 1..4096 characters")
        message.history.append(copy.deepcopy(message.data))
        message.data["text"] = new_text
        message.data.pop("entities", None)
        entities = detect_entities(new_text)
        if entities:
            message.data["entities"] = entities
        message.data["edit_date"] = int(time.time())
        self.touch(message)
        self._deliver_message(message, "edited_message")
        return message

    @staticmethod
    def _caption(caption: str) -> JSONDict:
        content: JSONDict = {"caption": caption}
        entities = detect_entities(caption)
        if entities:
            content["caption_entities"] = entities
        return content

    # -----------------------------------------------------------------------------------------
    # Callback queries

    def push_callback_query(self, user: SimUser, message: ChatMessage, callback_data: str) -> str:
        """Make a user press the inline button carrying `callback_data`; return the query id."""
        self._known(user)
        if not message.from_bot or message.deleted:
            raise ValueError("only buttons on the bot's current messages can be pressed")
        if not message.has_callback_data(callback_data):
            raise ValueError(
                f"no button with callback_data {callback_data!r} on {message!r}; "
                f"buttons: {message.buttons}"
            )
        chat = message.chat
        if chat.type == "private" and chat.user is not user:
            raise ValueError("only the chat's user can press buttons in a private chat")
        if chat.is_group and chat.status_of(user.id) not in PRESENT_STATUSES:
            raise ValueError(f"{user.first_name} is not a member of {chat.title!r}")
        query_id = str(4_000_000_000_000_000_000 + next(self._query_numbers))
        self.open_queries[query_id] = message
        self.push_update(
            "callback_query",
            {
                "id": query_id,
                "from": user.to_api(),
                "message": copy.deepcopy(message.data),
                "chat_instance": str(abs(chat.id) * 1_000_003 % 2**62),
                "data": callback_data,
            },
        )
        return query_id

    async def press_button(
        self, user: SimUser, message: ChatMessage, callback_data: str, *, timeout: float = 5.0
    ) -> CallbackAnswer | None:
        """Press an inline button and return the bot's answer (None if it did not answer)."""
        query_id = self.push_callback_query(user, message, callback_data)
        await self.wait_for(lambda: query_id in self.callback_answers, timeout)
        return self.callback_answers.get(query_id)

    # -----------------------------------------------------------------------------------------
    # Files

    def store_file(
        self,
        data: bytes | None,
        folder: str,
        mime_type: str | None,
        *,
        file_name: str | None = None,
        url: str | None = None,
    ) -> StoredFile:
        """Keep a file and give it Telegram-like identifiers."""
        number = next(self._file_numbers)
        extension = extension_for(mime_type, "bin")
        if file_name and "." in file_name:
            extension = file_name.rsplit(".", 1)[1]
        stored = StoredFile(
            file_id=f"LocalFile{number:06d}-{folder}",
            file_unique_id=f"LocalU{number:06d}",
            file_path=f"{folder}/file_{number}.{extension}",
            data=data,
            mime_type=mime_type,
            file_name=file_name,
            url=url,
        )
        self.files[stored.file_id] = stored
        return stored

    def file_by_path(self, file_path: str) -> StoredFile | None:
        """Return the file with a getFile path."""
        for stored in self.files.values():
            if stored.file_path == file_path:
                return stored
        return None

    def file_bytes(self, file_id: str) -> bytes:
        """Return the content of a file users or the bot sent."""
        stored = self.files.get(file_id)
        if stored is None or stored.data is None:
            raise KeyError(file_id)
        return stored.data

    @staticmethod
    def file_json(stored: StoredFile) -> JSONDict:
        """Return the identifiers and size every Bot API file object carries."""
        data: JSONDict = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id}
        if stored.data is not None:
            data["file_size"] = stored.size
        return data

    def photo_sizes(self, stored: StoredFile) -> list[JSONDict]:
        """Return the PhotoSize array of a photo (one size: the original)."""
        width, height = image_size(stored.data or b"") or (800, 600)
        return [self.file_json(stored) | {"width": width, "height": height}]

    # -----------------------------------------------------------------------------------------
    # Updates

    def push_update(self, kind: str, payload: JSONDict) -> int:
        """Queue an update for getUpdates; return its update_id."""
        update_id = self._next_update_id
        self._next_update_id += 1
        self.pending_updates.append({"update_id": update_id, kind: payload})
        self.changed()
        return update_id

    def push_raw_update(self, fields: JSONDict) -> int:
        """Queue an update exactly as given, besides its update_id, and return the id.

        For tests of a bot facing what Telegram might send but the bot's library cannot read
        (a field of the wrong type, a missing one): nothing is checked or filled in.
        """
        update_id = self._next_update_id
        self._next_update_id += 1
        self.pending_updates.append({"update_id": update_id, **copy.deepcopy(fields)})
        self.changed()
        return update_id

    def update_allowed(self, update: JSONDict) -> bool:
        """Tell whether the bot's allowed_updates let this update through."""
        kind = next((key for key in update if key != "update_id"), "")
        if self.allowed_updates is None:
            return kind not in DEFAULT_EXCLUDED_UPDATES
        return kind in self.allowed_updates

    def confirm_updates(self, offset: int) -> None:
        """Forget updates below `offset`, as getUpdates does (negative: keep the last -offset)."""
        if offset > 0:
            self.pending_updates = [u for u in self.pending_updates if u["update_id"] >= offset]
        elif offset < 0:
            self.pending_updates = self.pending_updates[offset:]

    def take_updates(self, limit: int) -> list[JSONDict]:
        """Return up to `limit` pending updates the bot accepts, dropping the ones it does not."""
        self.pending_updates = [u for u in self.pending_updates if self.update_allowed(u)]
        return [copy.deepcopy(update) for update in self.pending_updates[:limit]]

    @property
    def last_update_id(self) -> int:
        """Return the id of the latest update queued (0 if none)."""
        return self._next_update_id - 1

    # -----------------------------------------------------------------------------------------
    # Waiting

    async def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait until `predicate()` holds; return False if `timeout` seconds pass first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0 or self.closing:
                return predicate()
            await self.notifier.wait(remaining)
        return True

    async def wait_until_delivered(self, update_id: int, *, timeout: float = 5.0) -> None:
        """Wait until the bot fetched the update; raise TimeoutError if it never polls."""
        if not await self.wait_for(lambda: self.delivered_update_id >= update_id, timeout):
            raise TimeoutError(
                f"the bot did not fetch update {update_id} within {timeout} s; "
                "is its Application polling this server?"
            )

    def outputs_since(self, cursor: int) -> list[ApiCall]:
        """Return the bot's output calls (sends, edits, deletions, answers) after a cursor."""
        return [
            call
            for call in self.calls
            if call.sequence > cursor and call.method.lower() in OUTPUT_METHODS
        ]

    async def wait_until_quiet(self, *, settle: float = 0.1, timeout: float = 5.0) -> None:
        """Wait until no call of the bot is running and none has started for `settle` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            quiet_for = time.monotonic() - self._last_call_end
            if self._in_flight == 0 and quiet_for >= settle:
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"the bot was still busy after {timeout} s")
            await self.notifier.wait(min(remaining, max(settle - quiet_for, 0.005)))

    async def wait_for_reply(
        self,
        update_id: int | None,
        cursor: int,
        *,
        outputs: int = 1,
        settle: float = 0.1,
        timeout: float = 5.0,
    ) -> None:
        """Wait until the bot fetched an update, made `outputs` output calls, then went quiet."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if update_id is not None:
            await self.wait_until_delivered(update_id, timeout=timeout)
        done = await self.wait_for(
            lambda: len(self.outputs_since(cursor)) >= outputs, deadline - loop.time()
        )
        if not done:
            made = self.outputs_since(cursor)
            failed = [str(call) for call in self.failed_calls if call.sequence > cursor]
            raise TimeoutError(
                f"the bot made {len(made)} of {outputs} expected output calls within {timeout} s"
                + (f"; refused calls: {failed}" if failed else "")
            )
        await self.wait_until_quiet(settle=settle, timeout=max(deadline - loop.time(), settle))

    async def wait_until_idle(self, *, settle: float = 0.1, timeout: float = 5.0) -> None:
        """Wait until the bot fetched every queued update and went quiet."""
        await self.wait_until_delivered(self.last_update_id, timeout=timeout)
        await self.wait_until_quiet(settle=settle, timeout=timeout)

    async def wait_for_bot_messages(
        self, chat: SimChat, count: int = 1, *, after: int | None = None, timeout: float = 5.0
    ) -> list[ChatMessage]:
        """Wait until the bot sent `count` messages in `chat` after a cursor and return them.

        Without `after`, counting starts after the latest message a user sent in the chat.
        """
        if after is None:
            users = [message for message in chat.messages if not message.from_bot]
            after = users[-1].sequence if users else 0
        cursor = after

        def new() -> list[ChatMessage]:
            return [m for m in self.bot_messages(chat) if m.sequence > cursor]

        if not await self.wait_for(lambda: len(new()) >= count, timeout):
            failed = [str(call) for call in self.failed_calls if call.sequence > cursor]
            raise TimeoutError(
                f"the bot sent {len(new())} of {count} messages to chat {chat.id} "
                f"within {timeout} s" + (f"; refused calls: {failed}" if failed else "")
            )
        return new()

    # -----------------------------------------------------------------------------------------
    # Commands

    @staticmethod
    def commands_key(scope: object, language_code: str | None) -> tuple[str, str]:
        """Return the key of a command list: its scope and language."""
        scope = scope if isinstance(scope, dict) and scope else {"type": "default"}
        return json.dumps(scope, sort_keys=True), language_code or ""

    def my_commands(
        self, scope: JSONDict | None = None, language_code: str = ""
    ) -> list[tuple[str, str]]:
        """Return the commands the bot set for a scope and language, as (command, description)."""
        stored = self.commands.get(self.commands_key(scope, language_code), [])
        return [(command["command"], command["description"]) for command in stored]
