"""The Bot API methods: each checks its parameters as Telegram does and changes the world.

Descriptions of errors are Telegram's own where we know them, so that a bot's error handling
(and python-telegram-bot's exception mapping) sees what it would see in production.
"""

from __future__ import annotations

import asyncio
import copy
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from tryout.local_bot_api.errors import ApiError
from tryout.local_bot_api.formatting import EntityParseError, FormattedText, format_text
from tryout.local_bot_api.markup import parse_reply_markup
from tryout.local_bot_api.media import guess_mime_type
from tryout.local_bot_api.model import (
    PRESENT_STATUSES,
    CallbackAnswer,
    ChatMessage,
    JSONDict,
    Member,
    SimChat,
    SimUser,
    StoredFile,
)
from tryout.local_bot_api.params import Params
from tryout.local_bot_api.world import MAX_TEXT_LENGTH, World

MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_ANSWER_LENGTH = 200
MAX_UPDATES_TIMEOUT = 50
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the "
    "same as a current content and reply markup of the message"
)
_COMMAND = re.compile(r"[a-z0-9_]{1,32}")


@dataclass(frozen=True)
class Described:
    """A result that Telegram sends with a description, like setWebhook's."""

    result: Any
    description: str


Method = Callable[[World, Params], Awaitable[Any]]
AnyMethod = TypeVar("AnyMethod", bound=Method)
METHODS: dict[str, Method] = {}


def bot_method(*names: str) -> Callable[[AnyMethod], AnyMethod]:
    """Register a function as the Bot API method(s) `names` (matched case-insensitively)."""

    def register(function: AnyMethod) -> AnyMethod:
        for name in names:
            METHODS[name.lower()] = function
        return function

    return register


def _bad(reason: str) -> ApiError:
    return ApiError.bad_request(reason)


# ---------------------------------------------------------------------------------------------
# Shared checks


def _chat(world: World, params: Params, name: str = "chat_id") -> SimChat:
    raw = params.text(name)
    if raw is None or not raw.strip():
        raise _bad(f"{name} is empty")
    raw = raw.strip()
    if not raw.startswith("@"):
        try:
            int(raw)
        except ValueError:
            raise _bad("chat not found") from None
    chat = world.find_chat(raw)
    if chat is None:
        raise _bad("chat not found")
    return chat


def _check_can_post(world: World, chat: SimChat) -> None:
    if chat.type == "private":
        user = chat.user
        if user is not None and user.blocked_bot:
            raise ApiError.forbidden("bot was blocked by the user")
        if not chat.started:
            raise ApiError.forbidden("bot can't initiate conversation with a user")
        return
    status = chat.status_of(world.bot_user.id)
    kind = "supergroup chat" if chat.type == "supergroup" else "group chat"
    if status == "kicked":
        raise ApiError.forbidden(f"bot was kicked from the {kind}")
    if status not in PRESENT_STATUSES:
        raise ApiError.forbidden(f"bot is not a member of the {kind}")
    if status == "restricted":
        raise _bad("not enough rights to send text messages to the chat")


def _message_id(params: Params, name: str = "message_id") -> int:
    message_id = params.integer(name)
    if message_id is None:
        raise _bad("message identifier is not specified")
    return message_id


def _user_id(params: Params) -> int:
    user_id = params.integer("user_id")
    if user_id is None:
        raise _bad("invalid user_id specified")
    return user_id


def _formatted(
    world: World, params: Params, field: str, mode_field: str, entities_field: str
) -> FormattedText:
    text = params.text(field) or ""
    entities = params.structured(entities_field)
    try:
        return format_text(
            text,
            params.text(mode_field),
            entities,
            strict_ampersand=world.strict_html_entities,
        )
    except EntityParseError as error:
        raise _bad(f"can't parse entities: {error}") from None
    except ValueError:
        raise _bad("unsupported parse_mode") from None


def _message_text(world: World, params: Params) -> FormattedText:
    formatted = _formatted(world, params, "text", "parse_mode", "entities")
    if not formatted.text:
        raise _bad("message text is empty")
    if len(formatted.text) > MAX_TEXT_LENGTH:
        raise _bad("message is too long")
    return formatted


def _caption(world: World, params: Params) -> JSONDict:
    if not params.has("caption"):
        return {}
    formatted = _formatted(world, params, "caption", "parse_mode", "caption_entities")
    if len(formatted.text) > MAX_CAPTION_LENGTH:
        raise _bad("message caption is too long")
    if not formatted.text:
        return {}
    content: JSONDict = {"caption": formatted.text}
    if formatted.entities:
        content["caption_entities"] = formatted.entities_api()
    return content


def _reply_target(world: World, params: Params, chat: SimChat) -> ChatMessage | None:
    raw = params.structured("reply_parameters", "can't parse reply parameters JSON object")
    allow_missing = params.flag("allow_sending_without_reply")
    message_id = params.integer("reply_to_message_id")
    target_chat = chat
    if raw is not None:
        if not isinstance(raw, dict) or not isinstance(raw.get("message_id"), int):
            raise _bad("can't parse reply parameters JSON object")
        message_id = raw["message_id"]
        allow_missing = bool(raw.get("allow_sending_without_reply", allow_missing))
        if raw.get("chat_id") is not None:
            found = world.find_chat(raw["chat_id"])
            if found is None:
                raise _bad("chat not found")
            target_chat = found
    if message_id is None:
        return None
    target = world.find_message(target_chat, message_id)
    if target is None and not allow_missing:
        raise _bad("message to be replied not found")
    return target


def _markup(params: Params, *, inline_only: bool = False) -> JSONDict | None:
    raw = params.structured("reply_markup", "can't parse reply keyboard markup JSON object")
    return parse_reply_markup(raw, inline_only=inline_only)


def _options(params: Params) -> JSONDict:
    options: JSONDict = {}
    for flag in ("disable_notification", "protect_content"):
        if params.flag(flag):
            options[flag] = True
    preview = params.structured("link_preview_options")
    if isinstance(preview, dict):
        options["link_preview_options"] = preview
    elif params.flag("disable_web_page_preview"):
        options["link_preview_options"] = {"is_disabled": True}
    return options


def _send(
    world: World, chat: SimChat, params: Params, content: JSONDict, *, reply_markup: bool = True
) -> JSONDict:
    """Post a bot message with the common send options and return its JSON."""
    _check_can_post(world, chat)
    target = _reply_target(world, params, chat)
    markup = _markup(params) if reply_markup else None
    options = _options(params)
    if "text" in content and "link_preview_options" in options:
        content = content | {"link_preview_options": options["link_preview_options"]}
    if markup and "inline_keyboard" in markup:
        content = content | {"reply_markup": markup}
    message = world.new_message(
        chat, world.bot_user, content, reply_to=target, markup=markup, options=options
    )
    if markup and "keyboard" in markup:
        chat.reply_keyboard = markup
    elif markup and markup.get("remove_keyboard"):
        chat.reply_keyboard = None
    # A message ends the "typing…" status, as it does in Telegram clients.
    chat.chat_action = None
    return copy.deepcopy(message.data)


def _input_file(world: World, params: Params, name: str, folder: str, mime: str) -> StoredFile:
    upload = params.upload(name)
    if upload is not None:
        mime_type = upload.content_type or guess_mime_type(upload.filename, mime)
        if mime_type == "application/octet-stream":
            mime_type = guess_mime_type(upload.filename, mime)
        return world.store_file(upload.data, folder, mime_type, file_name=upload.filename)
    value = params.text(name)
    if not value:
        raise _bad(f"there is no {name} in the request")
    if value.startswith(("http://", "https://")):
        # Telegram would download the URL; we never leave 127.0.0.1, so keep only the URL.
        return world.store_file(None, folder, mime, url=value)
    stored = world.files.get(value)
    if stored is None:
        raise _bad("wrong file identifier/HTTP URL specified")
    return stored


# ---------------------------------------------------------------------------------------------
# Bot and updates


@bot_method("getMe")
async def get_me(world: World, params: Params) -> JSONDict:
    """Return the bot's User with its capabilities."""
    return world.bot_user.to_api() | {
        "can_join_groups": True,
        "can_read_all_group_messages": not world.privacy_mode,
        "supports_inline_queries": False,
        "can_connect_to_business": False,
        "has_main_web_app": False,
    }


@bot_method("logOut", "close")
async def log_out(world: World, params: Params) -> bool:
    """Accept logOut and close."""
    return True


@bot_method("getUpdates")
async def get_updates(world: World, params: Params) -> list[JSONDict]:
    """Long-poll for updates: answer as soon as one is there, or after `timeout` seconds."""
    if world.webhook is not None:
        raise ApiError(
            409,
            "Conflict: can't use getUpdates method while webhook is active; "
            "use deleteWebhook to delete the webhook first",
        )
    offset = params.integer("offset") or 0
    limit = min(max(params.integer("limit") or 100, 1), 100)
    timeout = min(max(params.integer("timeout") or 0, 0), MAX_UPDATES_TIMEOUT)
    allowed = params.structured("allowed_updates")
    if isinstance(allowed, list):
        world.allowed_updates = frozenset(str(kind) for kind in allowed) if allowed else None
    world.confirm_updates(offset)
    # A newer getUpdates ends an older one, as Telegram does when two bot instances poll.
    world.poll_generation += 1
    generation = world.poll_generation
    world.changed()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if world.poll_generation != generation:
            raise ApiError(
                409,
                "Conflict: terminated by other getUpdates request; "
                "make sure that only one bot instance is running",
            )
        updates = world.take_updates(limit)
        if updates or world.closing or loop.time() >= deadline:
            break
        await world.notifier.wait(deadline - loop.time())
    if updates:
        world.note_delivery(updates[-1]["update_id"])
    return updates


@bot_method("setWebhook")
async def set_webhook(world: World, params: Params) -> Described:
    """Remember a webhook (updates then stay queued; getUpdates answers 409)."""
    url = params.text("url") or ""
    if not url:
        return await delete_webhook(world, params)
    if not url.startswith("https://"):
        raise _bad("bad webhook: An HTTPS URL must be provided for webhook")
    if params.flag("drop_pending_updates"):
        world.pending_updates.clear()
    allowed = params.structured("allowed_updates")
    if isinstance(allowed, list):
        world.allowed_updates = frozenset(str(kind) for kind in allowed) if allowed else None
    world.webhook = {
        "url": url,
        "max_connections": params.integer("max_connections") or 40,
        "secret_token": params.text("secret_token"),
    }
    return Described(True, "Webhook was set")


@bot_method("deleteWebhook")
async def delete_webhook(world: World, params: Params) -> Described:
    """Forget the webhook; optionally drop the queued updates."""
    if params.flag("drop_pending_updates"):
        world.pending_updates.clear()
    existed = world.webhook is not None
    world.webhook = None
    return Described(True, "Webhook was deleted" if existed else "Webhook is already deleted")


@bot_method("getWebhookInfo")
async def get_webhook_info(world: World, params: Params) -> JSONDict:
    """Describe the webhook, if any, and the queue."""
    info: JSONDict = {
        "url": world.webhook["url"] if world.webhook else "",
        "has_custom_certificate": False,
        "pending_update_count": len(world.pending_updates),
    }
    if world.webhook:
        info["max_connections"] = world.webhook["max_connections"]
        if world.allowed_updates is not None:
            info["allowed_updates"] = sorted(world.allowed_updates)
    return info


# ---------------------------------------------------------------------------------------------
# Sending


@bot_method("sendMessage")
async def send_message(world: World, params: Params) -> JSONDict:
    """Send a text message."""
    chat = _chat(world, params)
    formatted = _message_text(world, params)
    content: JSONDict = {"text": formatted.text}
    if formatted.entities:
        content["entities"] = formatted.entities_api()
    return _send(world, chat, params, content)


@bot_method("sendPhoto")
async def send_photo(world: World, params: Params) -> JSONDict:
    """Send a photo (uploaded, by file_id or by URL)."""
    chat = _chat(world, params)
    caption = _caption(world, params)
    stored = _input_file(world, params, "photo", "photos", "image/jpeg")
    content: JSONDict = {"photo": world.photo_sizes(stored)} | caption
    if params.flag("has_spoiler"):
        content["has_media_spoiler"] = True
    return _send(world, chat, params, content)


@bot_method("sendDocument")
async def send_document(world: World, params: Params) -> JSONDict:
    """Send a file."""
    chat = _chat(world, params)
    caption = _caption(world, params)
    stored = _input_file(world, params, "document", "documents", "application/octet-stream")
    document = world.file_json(stored)
    if stored.file_name:
        document["file_name"] = stored.file_name
    if stored.mime_type:
        document["mime_type"] = stored.mime_type
    return _send(world, chat, params, {"document": document} | caption)


@bot_method("sendVoice")
async def send_voice(world: World, params: Params) -> JSONDict:
    """Send a voice message."""
    chat = _chat(world, params)
    caption = _caption(world, params)
    stored = _input_file(world, params, "voice", "voice", "audio/ogg")
    voice = world.file_json(stored) | {
        "duration": params.integer("duration") or 1,
        "mime_type": "audio/ogg",
    }
    return _send(world, chat, params, {"voice": voice} | caption)


@bot_method("sendSticker")
async def send_sticker(world: World, params: Params) -> JSONDict:
    """Send a sticker."""
    chat = _chat(world, params)
    stored = _input_file(world, params, "sticker", "stickers", "image/webp")
    sticker = world.file_json(stored) | {
        "type": "regular",
        "width": 512,
        "height": 512,
        "is_animated": False,
        "is_video": False,
    }
    if params.text("emoji"):
        sticker["emoji"] = params.text("emoji")
    return _send(world, chat, params, {"sticker": sticker})


@bot_method("sendLocation")
async def send_location(world: World, params: Params) -> JSONDict:
    """Send a point on the map."""
    chat = _chat(world, params)
    latitude, longitude = params.number("latitude"), params.number("longitude")
    if latitude is None or longitude is None:
        raise _bad("wrong latitude or longitude specified")
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise _bad("LOCATION_INVALID")
    location: JSONDict = {"latitude": latitude, "longitude": longitude}
    accuracy = params.number("horizontal_accuracy")
    if accuracy is not None:
        location["horizontal_accuracy"] = accuracy
    return _send(world, chat, params, {"location": location})


@bot_method("sendContact")
async def send_contact(world: World, params: Params) -> JSONDict:
    """Send a phone contact."""
    chat = _chat(world, params)
    phone, first_name = params.text("phone_number"), params.text("first_name")
    if not phone or not first_name:
        raise _bad("phone number and first name must be non-empty")
    contact: JSONDict = {"phone_number": phone, "first_name": first_name}
    if params.text("last_name"):
        contact["last_name"] = params.text("last_name")
    return _send(world, chat, params, {"contact": contact})


@bot_method("sendChatAction")
async def send_chat_action(world: World, params: Params) -> bool:
    """Show "typing…" and the like for a few seconds."""
    chat = _chat(world, params)
    action = params.text("action")
    if action not in CHAT_ACTIONS:
        raise _bad("wrong parameter action in request")
    _check_can_post(world, chat)
    chat.chat_action = action
    chat.chat_action_at = time.time()
    chat.version = world.bump()
    world.changed()
    return True


_COPIED_KEYS = (
    "text",
    "entities",
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


def _source(world: World, params: Params) -> ChatMessage:
    source_chat = _chat(world, params, "from_chat_id")
    source = world.find_message(source_chat, _message_id(params))
    if source is None:
        raise _bad("message to copy not found")
    if not any(key in source.data for key in _COPIED_KEYS):
        raise _bad("message can't be copied")
    if source.options.get("protect_content"):
        raise _bad("message has protected content and can't be forwarded")
    return source


@bot_method("forwardMessage")
async def forward_message(world: World, params: Params) -> JSONDict:
    """Forward a message, keeping who wrote it."""
    chat = _chat(world, params)
    source = _source(world, params)
    content = {key: copy.deepcopy(source.data[key]) for key in _COPIED_KEYS if key in source.data}
    content["forward_origin"] = {
        "type": "user",
        "sender_user": source.sender.to_api(),
        "date": source.data["date"],
    }
    content["forward_from"] = source.sender.to_api()
    content["forward_date"] = source.data["date"]
    _check_can_post(world, chat)
    message = world.new_message(chat, world.bot_user, content, options=_options(params))
    return copy.deepcopy(message.data)


@bot_method("copyMessage")
async def copy_message(world: World, params: Params) -> JSONDict:
    """Copy a message's content as a new message of the bot."""
    chat = _chat(world, params)
    source = _source(world, params)
    content = {key: copy.deepcopy(source.data[key]) for key in _COPIED_KEYS if key in source.data}
    if params.has("caption") and "text" not in content:
        content.pop("caption", None)
        content.pop("caption_entities", None)
        content.update(_caption(world, params))
    data = _send(world, chat, params, content)
    return {"message_id": data["message_id"]}


# ---------------------------------------------------------------------------------------------
# Editing and deleting


def _editable(world: World, params: Params) -> ChatMessage:
    if params.has("inline_message_id"):
        raise _bad("MESSAGE_ID_INVALID")
    chat = _chat(world, params)
    message = world.find_message(chat, _message_id(params))
    if message is None:
        raise _bad("message to edit not found")
    if not message.from_bot:
        raise _bad("message can't be edited")
    return message


def _apply_edit(
    world: World, message: ChatMessage, changes: JSONDict, removed: list[str]
) -> JSONDict:
    current = {key: message.data.get(key) for key in [*changes, *removed]}
    proposed = dict.fromkeys(removed) | changes
    if current == proposed:
        raise _bad(NOT_MODIFIED)
    message.history.append(copy.deepcopy(message.data))
    for key in removed:
        message.data.pop(key, None)
    message.data.update(changes)
    message.data["edit_date"] = int(time.time())
    if "reply_markup" in changes or "reply_markup" in removed:
        message.markup = changes.get("reply_markup")
    world.touch(message)
    return copy.deepcopy(message.data)


def _markup_change(params: Params) -> tuple[JSONDict, list[str]]:
    # Editing without reply_markup removes the inline keyboard, as in Telegram.
    markup = _markup(params, inline_only=True)
    return ({"reply_markup": markup}, []) if markup else ({}, ["reply_markup"])


@bot_method("editMessageText")
async def edit_message_text(world: World, params: Params) -> JSONDict:
    """Change the text (and keyboard) of one of the bot's messages."""
    message = _editable(world, params)
    if "text" not in message.data:
        raise _bad("there is no text in the message to edit")
    formatted = _message_text(world, params)
    changes: JSONDict = {"text": formatted.text}
    removed: list[str] = []
    if formatted.entities:
        changes["entities"] = formatted.entities_api()
    else:
        removed.append("entities")
    markup_changes, markup_removed = _markup_change(params)
    changes.update(markup_changes)
    removed.extend(markup_removed)
    preview = _options(params).get("link_preview_options")
    if preview is not None:
        changes["link_preview_options"] = preview
    return _apply_edit(world, message, changes, removed)


@bot_method("editMessageCaption")
async def edit_message_caption(world: World, params: Params) -> JSONDict:
    """Change the caption (and keyboard) of one of the bot's media messages."""
    message = _editable(world, params)
    if "text" in message.data:
        raise _bad("there is no caption in the message to edit")
    caption = _caption(world, params)
    removed = [key for key in ("caption", "caption_entities") if key not in caption]
    markup_changes, markup_removed = _markup_change(params)
    return _apply_edit(world, message, caption | markup_changes, removed + markup_removed)


@bot_method("editMessageReplyMarkup")
async def edit_message_reply_markup(world: World, params: Params) -> JSONDict:
    """Change or remove the inline keyboard of one of the bot's messages."""
    message = _editable(world, params)
    changes, removed = _markup_change(params)
    return _apply_edit(world, message, changes, removed)


def _deletable(world: World, chat: SimChat, message: ChatMessage) -> bool:
    if message.from_bot or chat.type == "private":
        return True
    return chat.status_of(world.bot_user.id) in ("creator", "administrator")


@bot_method("deleteMessage")
async def delete_message(world: World, params: Params) -> bool:
    """Delete a message."""
    chat = _chat(world, params)
    message = world.find_message(chat, _message_id(params))
    if message is None:
        raise _bad("message to delete not found")
    if not _deletable(world, chat, message):
        raise _bad("message can't be deleted")
    message.deleted = True
    world.touch(message)
    return True


@bot_method("deleteMessages")
async def delete_messages(world: World, params: Params) -> bool:
    """Delete several messages; the ones that are gone already are skipped."""
    chat = _chat(world, params)
    ids = params.structured("message_ids")
    if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
        raise _bad("message identifiers are not specified")
    for message_id in ids:
        message = world.find_message(chat, int(message_id))
        if message is not None and _deletable(world, chat, message):
            message.deleted = True
            world.touch(message)
    return True


@bot_method("answerCallbackQuery")
async def answer_callback_query(world: World, params: Params) -> bool:
    """Answer a button press, once."""
    query_id = params.text("callback_query_id") or ""
    if query_id not in world.open_queries:
        raise _bad("query is too old and response timeout expired or query ID is invalid")
    text = params.text("text")
    if text is not None and len(text) > MAX_CALLBACK_ANSWER_LENGTH:
        raise _bad("MESSAGE_TOO_LONG")
    url = params.text("url")
    if url and not url.startswith(("https://t.me/", "tg://")):
        raise _bad("URL_INVALID")
    del world.open_queries[query_id]
    world.callback_answers[query_id] = CallbackAnswer(
        query_id, text or None, params.flag("show_alert"), url, params.integer("cache_time") or 0
    )
    world.bump()
    world.changed()
    return True


# ---------------------------------------------------------------------------------------------
# Chats and members


@bot_method("getChat")
async def get_chat(world: World, params: Params) -> JSONDict:
    """Describe a chat."""
    return _chat(world, params).to_full_api()


@bot_method("getChatMember")
async def get_chat_member(world: World, params: Params) -> JSONDict:
    """Return a user's membership; anyone not in the member list has "left"."""
    chat = _chat(world, params)
    user_id = _user_id(params)
    member = chat.members.get(user_id)
    if member is not None:
        return member.to_api()
    user = world.users.get(user_id) or SimUser(user_id, f"User {user_id}")
    return Member(user, "left").to_api()


@bot_method("getChatAdministrators")
async def get_chat_administrators(world: World, params: Params) -> list[JSONDict]:
    """List a group's owner and administrators."""
    chat = _chat(world, params)
    if not chat.is_group:
        raise _bad("there are no administrators in the private chat")
    return [
        member.to_api()
        for member in chat.members.values()
        if member.status in ("creator", "administrator")
    ]


@bot_method("getChatMemberCount", "getChatMembersCount")
async def get_chat_member_count(world: World, params: Params) -> int:
    """Count the members who are in the chat."""
    chat = _chat(world, params)
    return sum(1 for member in chat.members.values() if member.status in PRESENT_STATUSES)


@bot_method("leaveChat")
async def leave_chat(world: World, params: Params) -> bool:
    """Make the bot leave a group."""
    chat = _chat(world, params)
    if not chat.is_group:
        raise _bad("chat member status can't be changed in private chats")
    if chat.status_of(world.bot_user.id) not in PRESENT_STATUSES:
        raise ApiError.forbidden("bot is not a member of the group chat")
    world.remove_member(chat, world.bot_user, announce=False)
    return True


# ---------------------------------------------------------------------------------------------
# Commands, menu button, profile


def _commands(params: Params) -> list[JSONDict]:
    raw = params.structured("commands", "can't parse commands JSON object")
    if not isinstance(raw, list) or len(raw) > 100:
        raise _bad("commands must be an Array of at most 100 BotCommand")
    commands: list[JSONDict] = []
    for item in raw:
        if not isinstance(item, dict):
            raise _bad("can't parse BotCommand")
        command, description = item.get("command"), item.get("description")
        if not isinstance(command, str) or not _COMMAND.fullmatch(command):
            raise _bad("BOT_COMMAND_INVALID")
        if not isinstance(description, str) or not 1 <= len(description.strip()) <= 256:
            raise _bad("BOT_COMMAND_DESCRIPTION_INVALID")
        commands.append({"command": command, "description": description})
    return commands


def _commands_key(world: World, params: Params) -> tuple[str, str]:
    scope = params.structured("scope", "can't parse BotCommandScope JSON object")
    return world.commands_key(scope, params.text("language_code"))


@bot_method("setMyCommands")
async def set_my_commands(world: World, params: Params) -> bool:
    """Set the command list of a scope and language."""
    commands = _commands(params)
    key = _commands_key(world, params)
    if commands:
        world.commands[key] = commands
    else:
        world.commands.pop(key, None)
    world.changed()
    return True


@bot_method("getMyCommands")
async def get_my_commands(world: World, params: Params) -> list[JSONDict]:
    """Return the command list of a scope and language."""
    return copy.deepcopy(world.commands.get(_commands_key(world, params), []))


@bot_method("deleteMyCommands")
async def delete_my_commands(world: World, params: Params) -> bool:
    """Delete the command list of a scope and language."""
    world.commands.pop(_commands_key(world, params), None)
    world.changed()
    return True


@bot_method("setChatMenuButton")
async def set_chat_menu_button(world: World, params: Params) -> bool:
    """Set the menu button of one private chat, or the default."""
    button = params.structured("menu_button", "can't parse MenuButton JSON object")
    if button is not None and not (
        isinstance(button, dict) and button.get("type") in ("commands", "web_app", "default")
    ):
        raise _bad("can't parse MenuButton JSON object")
    if params.has("chat_id"):
        chat = _chat(world, params)
        if chat.type != "private":
            raise _bad("menu button can be set only in private chats")
        chat.menu_button = button
    else:
        world.default_menu_button = button
    return True


@bot_method("getChatMenuButton")
async def get_chat_menu_button(world: World, params: Params) -> JSONDict:
    """Return the menu button of a private chat, or the default."""
    button = _chat(world, params).menu_button if params.has("chat_id") else None
    return copy.deepcopy(button or world.default_menu_button or {"type": "default"})


def _profile_setter(field: str, limit: int) -> Method:
    async def setter(world: World, params: Params) -> bool:
        value = params.text(field) or ""
        if len(value) > limit:
            raise _bad(f"{field} is too long")
        world.bot_profile[(field, params.text("language_code") or "")] = value
        return True

    return setter


def _profile_getter(field: str) -> Method:
    async def getter(world: World, params: Params) -> JSONDict:
        language = params.text("language_code") or ""
        value = world.bot_profile.get((field, language), world.bot_profile.get((field, ""), ""))
        if field == "name" and not value:
            value = world.bot_user.first_name
        return {field: value}

    return getter


for _field, _limit in (("name", 64), ("description", 512), ("short_description", 120)):
    _camel = "".join(part.title() for part in _field.split("_"))
    bot_method(f"setMy{_camel}")(_profile_setter(_field, _limit))
    bot_method(f"getMy{_camel}")(_profile_getter(_field))


# ---------------------------------------------------------------------------------------------
# Files


@bot_method("getFile")
async def get_file(world: World, params: Params) -> JSONDict:
    """Return a file's path for downloading."""
    stored = world.files.get(params.text("file_id") or "")
    if stored is None:
        raise _bad("invalid file_id")
    if stored.size > MAX_DOWNLOAD_BYTES:
        raise _bad("file is too big")
    data = world.file_json(stored)
    if stored.data is not None:
        data["file_path"] = stored.file_path
    return data
