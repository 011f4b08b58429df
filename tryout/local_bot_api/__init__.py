"""A local Telegram Bot API server for tests and the token-free try-out.

python-telegram-bot's real `Application` talks to `LocalBotApi` over HTTP on 127.0.0.1; tests
create users and chats, make them write and press buttons, and read what the bot sent.
"""

from tryout.chat import TryoutView, TryoutWorld
from tryout.local_bot_api.errors import ApiError
from tryout.local_bot_api.formatting import Entity, EntityParseError, FormattedText, format_text
from tryout.local_bot_api.media import sample_png
from tryout.local_bot_api.model import (
    ApiCall,
    CallbackAnswer,
    ChatMessage,
    Member,
    SimChat,
    SimUser,
    StoredFile,
)
from tryout.local_bot_api.ptb import application_builder, local_request, running_application
from tryout.local_bot_api.server import DEFAULT_TOKEN, LocalBotApi
from tryout.local_bot_api.transcript import BotCallRefused, ChatTranscript, Replies

__all__ = [
    "DEFAULT_TOKEN",
    "ApiCall",
    "ApiError",
    "BotCallRefused",
    "CallbackAnswer",
    "ChatMessage",
    "ChatTranscript",
    "Entity",
    "EntityParseError",
    "FormattedText",
    "LocalBotApi",
    "Member",
    "Replies",
    "SimChat",
    "SimUser",
    "StoredFile",
    "TryoutView",
    "TryoutWorld",
    "application_builder",
    "format_text",
    "local_request",
    "running_application",
    "sample_png",
]
