"""Tests that read like transcripts: one user in one chat, sending and pressing, seeing replies.

    chat = api.private_chat(resident)
    replies = await chat.send("社保卡怎么补办")
    assert "补办" in replies[0].text
    replies = await chat.press("查看材料")

Each action waits until the bot fetched the update, made at least `expect` output calls
(sends, edits, deletions, callback answers) and then stayed quiet for a moment.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from tryout.local_bot_api.model import ApiCall, CallbackAnswer, ChatMessage, SimChat, SimUser
from tryout.local_bot_api.world import World


class BotCallRefused(AssertionError):
    """The bot made calls that Telegram would have refused while handling a user's action."""


class Replies(list[ChatMessage]):
    """The bot's new messages in the chat after one action, and what else the bot did."""

    def __init__(
        self,
        messages: Iterable[ChatMessage],
        *,
        edited: list[ChatMessage],
        elsewhere: list[ChatMessage],
        answer: CallbackAnswer | None,
        refused: list[ApiCall],
    ) -> None:
        super().__init__(messages)
        self.edited = edited
        self.elsewhere = elsewhere
        self.answer = answer
        self.refused = refused

    @property
    def texts(self) -> list[str]:
        """Return the texts (or captions) of the new messages."""
        return [message.text for message in self]

    @property
    def text(self) -> str:
        """Return all new texts joined by blank lines, for `in` assertions."""
        return "\n\n".join(self.texts)


class ChatTranscript:
    """One user talking to the bot in one chat."""

    def __init__(
        self,
        world: World,
        chat: SimChat,
        user: SimUser,
        *,
        timeout: float = 5.0,
        settle: float = 0.1,
        raise_on_refused: bool = True,
    ) -> None:
        self.world = world
        self.chat = chat
        self.user = user
        self.timeout = timeout
        self.settle = settle
        self.raise_on_refused = raise_on_refused

    def as_user(self, user: SimUser) -> ChatTranscript:
        """Return the same chat with another member speaking."""
        return ChatTranscript(
            self.world,
            self.chat,
            user,
            timeout=self.timeout,
            settle=self.settle,
            raise_on_refused=self.raise_on_refused,
        )

    @property
    def messages(self) -> list[ChatMessage]:
        """Return every message in the chat, oldest first."""
        return self.world.messages(self.chat)

    @property
    def bot_messages(self) -> list[ChatMessage]:
        """Return the bot's messages in the chat, oldest first."""
        return self.world.bot_messages(self.chat)

    @property
    def last_bot_message(self) -> ChatMessage | None:
        """Return the bot's latest message in the chat."""
        return self.world.last_bot_message(self.chat)

    async def send(
        self, text: str, *, reply_to: ChatMessage | int | None = None, expect: int = 1
    ) -> Replies:
        """Send a text and return the bot's replies in this chat."""
        return await self._act(
            lambda: self.world.send_text(self.user, self.chat, text, reply_to=reply_to), expect
        )

    async def reply(self, message: ChatMessage, text: str, *, expect: int = 1) -> Replies:
        """Answer a message with Telegram's "reply" and return the bot's replies."""
        return await self.send(text, reply_to=message, expect=expect)

    async def send_photo(
        self, data: bytes | None = None, *, caption: str | None = None, expect: int = 1
    ) -> Replies:
        """Send a photo (a generated PNG unless given)."""
        return await self._act(
            lambda: self.world.send_photo(self.user, self.chat, data, caption=caption), expect
        )

    async def send_document(
        self,
        data: bytes,
        *,
        file_name: str = "document.txt",
        mime_type: str = "text/plain",
        caption: str | None = None,
        reply_to: ChatMessage | int | None = None,
        expect: int = 1,
    ) -> Replies:
        """Send a file (as a reply to `reply_to`, if given)."""
        return await self._act(
            lambda: self.world.send_document(
                self.user,
                self.chat,
                data,
                file_name=file_name,
                mime_type=mime_type,
                caption=caption,
                reply_to=reply_to,
            ),
            expect,
        )

    async def send_sticker(self, emoji: str = "👍", *, expect: int = 1) -> Replies:
        """Send a sticker."""
        return await self._act(
            lambda: self.world.send_sticker(self.user, self.chat, emoji), expect
        )

    async def send_voice(self, *, duration: int = 2, expect: int = 1) -> Replies:
        """Send a voice message."""
        return await self._act(
            lambda: self.world.send_voice(self.user, self.chat, duration=duration), expect
        )

    async def send_location(
        self, latitude: float, longitude: float, *, expect: int = 1
    ) -> Replies:
        """Share a location."""
        return await self._act(
            lambda: self.world.send_location(self.user, self.chat, latitude, longitude), expect
        )

    async def send_contact(self, phone_number: str, *, expect: int = 1) -> Replies:
        """Share the user's own phone number."""
        return await self._act(
            lambda: self.world.send_contact(self.user, self.chat, phone_number), expect
        )

    async def edit(self, message: ChatMessage, new_text: str, *, expect: int = 1) -> Replies:
        """Edit one of the user's text messages."""
        return await self._act(lambda: self.world.edit_text(message, new_text), expect)

    async def press(
        self, button_text: str, *, message: ChatMessage | None = None, expect: int = 1
    ) -> Replies:
        """Press the inline button with this visible text on the latest bot message showing it."""
        target = message or self._message_with_button(button_text)
        button = target.find_button(button_text)
        if button is None or "callback_data" not in button:
            raise ValueError(f"{target!r} has no callback button {button_text!r}")
        query_ids: list[str] = []

        def press() -> None:
            query_ids.append(
                self.world.push_callback_query(self.user, target, button["callback_data"])
            )

        replies = await self._act(press, expect)
        replies.answer = self.world.callback_answers.get(query_ids[0])
        return replies

    def _message_with_button(self, button_text: str) -> ChatMessage:
        for message in reversed(self.bot_messages):
            if message.find_button(button_text) is not None:
                return message
        shown = [message.buttons for message in self.bot_messages if message.buttons]
        raise ValueError(f"no bot message in chat {self.chat.id} shows {button_text!r}: {shown}")

    async def _act(self, action: Callable[[], ChatMessage | None], expect: int) -> Replies:
        world = self.world
        cursor = world.sequence
        result = action()
        if isinstance(result, ChatMessage):
            update_id = result.update_id
            if update_id is None and expect:
                raise AssertionError(
                    f"the bot cannot see {result!r} (privacy mode: only commands, replies to "
                    "the bot and @mentions reach it in groups); pass expect=0"
                )
        else:
            update_id = world.last_update_id
        await world.wait_for_reply(
            update_id, cursor, outputs=expect, settle=self.settle, timeout=self.timeout
        )
        refused = [call for call in world.failed_calls if call.sequence > cursor]
        if refused and self.raise_on_refused:
            listed = "\n  ".join(str(call) for call in refused)
            raise BotCallRefused(f"Telegram would have refused the bot's calls:\n  {listed}")
        mine = world.bot_messages(self.chat)
        return Replies(
            [message for message in mine if message.sequence > cursor],
            edited=[m for m in mine if m.sequence <= cursor < m.version and m.edited],
            elsewhere=[
                message
                for chat in world.chats.values()
                if chat is not self.chat
                for message in world.bot_messages(chat)
                if message.sequence > cursor
            ],
            answer=None,
            refused=refused,
        )
