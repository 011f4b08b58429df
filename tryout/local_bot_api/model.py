"""The simulated Telegram world: users, chats, their members and messages, files, calls."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from tryout.local_bot_api.formatting import entities_to_html

JSONDict = dict[str, Any]
ChatType = Literal["private", "group", "supergroup", "channel"]
MemberStatus = Literal["creator", "administrator", "member", "restricted", "left", "kicked"]

_STATUS_NAMES: dict[str, MemberStatus] = {
    "creator": "creator",
    "owner": "creator",
    "administrator": "administrator",
    "admin": "administrator",
    "member": "member",
    "restricted": "restricted",
    "left": "left",
    "kicked": "kicked",
    "banned": "kicked",
}
PRESENT_STATUSES = frozenset({"creator", "administrator", "member", "restricted"})


def member_status(status: str) -> MemberStatus:
    """Return the Bot API spelling of a member status ("owner" and "banned" are accepted)."""
    try:
        return _STATUS_NAMES[status]
    except KeyError:
        raise ValueError(
            f"unknown member status {status!r}; use one of {sorted(_STATUS_NAMES)}"
        ) from None


@dataclass(eq=False)
class SimUser:
    """A Telegram user (or the bot itself)."""

    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None
    is_bot: bool = False
    blocked_bot: bool = False

    @property
    def full_name(self) -> str:
        """Return the first and last name, as Telegram clients show them."""
        return f"{self.first_name} {self.last_name}" if self.last_name else self.first_name

    def to_api(self) -> JSONDict:
        """Return the Bot API User object."""
        data: JSONDict = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        if self.last_name:
            data["last_name"] = self.last_name
        if self.username:
            data["username"] = self.username
        if self.language_code and not self.is_bot:
            data["language_code"] = self.language_code
        return data


@dataclass(eq=False)
class Member:
    """A user's membership of a chat."""

    user: SimUser
    status: MemberStatus
    custom_title: str | None = None

    def to_api(self) -> JSONDict:
        """Return the Bot API ChatMember object for this status."""
        data: JSONDict = {"status": self.status, "user": self.user.to_api()}
        if self.status == "creator":
            data["is_anonymous"] = False
        elif self.status == "administrator":
            data.update(
                can_be_edited=False,
                is_anonymous=False,
                can_manage_chat=True,
                can_delete_messages=True,
                can_manage_video_chats=True,
                can_restrict_members=True,
                can_promote_members=False,
                can_change_info=True,
                can_invite_users=True,
                can_post_stories=False,
                can_edit_stories=False,
                can_delete_stories=False,
                can_pin_messages=True,
                can_manage_topics=False,
            )
        elif self.status == "restricted":
            data.update(
                is_member=True,
                can_send_messages=False,
                can_send_audios=False,
                can_send_documents=False,
                can_send_photos=False,
                can_send_videos=False,
                can_send_video_notes=False,
                can_send_voice_notes=False,
                can_send_polls=False,
                can_send_other_messages=False,
                can_add_web_page_previews=False,
                can_change_info=False,
                can_invite_users=False,
                can_pin_messages=False,
                can_manage_topics=False,
                can_edit_tag=False,
                until_date=0,
            )
        elif self.status == "kicked":
            data["until_date"] = 0
        if self.custom_title and self.status in ("creator", "administrator"):
            data["custom_title"] = self.custom_title
        return data


@dataclass(eq=False)
class SimChat:
    """A chat: a private chat with one user, or a group with members."""

    id: int
    type: ChatType
    title: str | None = None
    username: str | None = None
    user: SimUser | None = None
    members: dict[int, Member] = field(default_factory=dict)
    messages: list[ChatMessage] = field(default_factory=list)
    next_message_id: int = 1
    version: int = 0
    # Bots cannot write first: a private chat opens when its user writes to the bot.
    started: bool = False
    reply_keyboard: JSONDict | None = None
    chat_action: str | None = None
    chat_action_at: float = 0.0
    menu_button: JSONDict | None = None

    @property
    def is_group(self) -> bool:
        """Tell whether this is a group or supergroup."""
        return self.type in ("group", "supergroup")

    def to_api(self) -> JSONDict:
        """Return the Bot API Chat object as it appears inside messages."""
        data: JSONDict = {"id": self.id, "type": self.type}
        if self.type == "private" and self.user is not None:
            data["first_name"] = self.user.first_name
            if self.user.last_name:
                data["last_name"] = self.user.last_name
            if self.user.username:
                data["username"] = self.user.username
        else:
            data["title"] = self.title or ""
            if self.username:
                data["username"] = self.username
        if self.type == "group":
            data["all_members_are_administrators"] = False
        return data

    def to_full_api(self) -> JSONDict:
        """Return the Bot API ChatFullInfo object that getChat answers with."""
        data = self.to_api()
        data.pop("all_members_are_administrators", None)
        data.update(
            accent_color_id=0,
            max_reaction_count=11,
            accepted_gift_types={
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        )
        if self.is_group:
            data["permissions"] = {
                "can_send_messages": True,
                "can_send_photos": True,
                "can_send_documents": True,
                "can_send_other_messages": True,
            }
        return data

    def status_of(self, user_id: int) -> MemberStatus:
        """Return a user's status here; anyone not in the member list has left."""
        member = self.members.get(user_id)
        return member.status if member else "left"


@dataclass(eq=False)
class ChatMessage:
    """A message in a chat, sent by a user or the bot; live: edits and deletion update it."""

    chat: SimChat
    message_id: int
    sender: SimUser
    data: JSONDict
    sequence: int
    version: int
    # The markup as the bot sent it; Telegram echoes only inline keyboards in `data`.
    markup: JSONDict | None = None
    options: JSONDict = field(default_factory=dict)
    history: list[JSONDict] = field(default_factory=list)
    deleted: bool = False
    # The update that brought a user's message to the bot; None if the bot could not see it.
    update_id: int | None = None

    @property
    def from_bot(self) -> bool:
        """Tell whether the bot sent this message."""
        return self.sender.is_bot

    @property
    def kind(self) -> str:
        """Return what the message holds: text, photo, document, sticker, voice, location, …"""
        for kind in (
            "text",
            "photo",
            "document",
            "sticker",
            "voice",
            "audio",
            "video",
            "location",
            "contact",
        ):
            if kind in self.data:
                return kind
        return "service"

    @property
    def text(self) -> str:
        """Return the plain text, or the caption of a media message, or ""."""
        return str(self.data.get("text", self.data.get("caption", "")))

    @property
    def entities(self) -> list[JSONDict]:
        """Return the entities of the text or caption."""
        entities: list[JSONDict] = self.data.get("entities") or self.data.get(
            "caption_entities", []
        )
        return list(entities)

    @property
    def html(self) -> str:
        """Return the text as Telegram HTML, rebuilt from the entities."""
        return entities_to_html(self.text, self.entities)

    @property
    def inline_keyboard(self) -> list[list[JSONDict]]:
        """Return the inline keyboard's rows of buttons (empty if there is none)."""
        markup = self.data.get("reply_markup") or {}
        return list(markup.get("inline_keyboard", []))

    @property
    def buttons(self) -> list[list[tuple[str, str | None]]]:
        """Return the inline keyboard as rows of (text, callback_data); URL buttons have None."""
        return [
            [(button["text"], button.get("callback_data")) for button in row]
            for row in self.inline_keyboard
        ]

    @property
    def button_urls(self) -> dict[str, str]:
        """Return the URL buttons of the inline keyboard, text to URL."""
        return {
            button["text"]: button["url"]
            for row in self.inline_keyboard
            for button in row
            if "url" in button
        }

    @property
    def keyboard(self) -> list[list[str]] | None:
        """Return the reply keyboard this message set, as rows of button texts."""
        if not self.markup or "keyboard" not in self.markup:
            return None
        return [[button["text"] for button in row] for row in self.markup["keyboard"]]

    @property
    def removes_keyboard(self) -> bool:
        """Tell whether this message removed the reply keyboard."""
        return bool(self.markup and self.markup.get("remove_keyboard"))

    @property
    def reply_to_message_id(self) -> int | None:
        """Return the id of the message this one replies to."""
        replied = self.data.get("reply_to_message")
        return int(replied["message_id"]) if replied else None

    @property
    def edited(self) -> bool:
        """Tell whether the message was edited."""
        return bool(self.history)

    def find_button(self, text: str) -> JSONDict | None:
        """Return the inline button whose visible text is `text`."""
        for row in self.inline_keyboard:
            for button in row:
                if button["text"] == text:
                    return button
        return None

    def has_callback_data(self, data: str) -> bool:
        """Tell whether one of the inline buttons carries `data`."""
        return any(
            button.get("callback_data") == data for row in self.inline_keyboard for button in row
        )

    def __repr__(self) -> str:
        who = "bot" if self.from_bot else self.sender.first_name
        flags = "".join([" edited" if self.edited else "", " deleted" if self.deleted else ""])
        return f"<ChatMessage {self.chat.id}/{self.message_id} {who}{flags}: {self.text!r}>"


@dataclass(eq=False)
class StoredFile:
    """A file users or the bot sent, kept so that getFile and downloads work."""

    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes | None
    mime_type: str | None = None
    file_name: str | None = None
    url: str | None = None

    @property
    def size(self) -> int:
        """Return the size in bytes (0 for a file known only by URL)."""
        return len(self.data) if self.data is not None else 0


@dataclass(frozen=True)
class CallbackAnswer:
    """How the bot answered a callback query."""

    query_id: str
    text: str | None
    show_alert: bool
    url: str | None
    cache_time: int


@dataclass(frozen=True)
class ApiCall:
    """One call the bot made, and whether Telegram would have accepted it."""

    method: str
    params: JSONDict
    ok: bool
    status: int
    description: str | None
    sequence: int

    def __str__(self) -> str:
        outcome = "ok" if self.ok else f"{self.status} {self.description}"
        return f"{self.method}({self.params}) -> {outcome}"
