"""Escalations in the Telegram staff group, and staff answers as residents read them.

`StaffGroupPosts` is the staff board of `bot.answering.escalations.EscalationDesk`: it posts an
escalation to the staff group, posts it again with a reminder when nobody answered (the old
post points to the new one), and edits the post to show who answered, with the "learn this
phrasing" button. `answer_messages` renders an answer's outbox row for the resident's chat.
`connect` attaches both, and a courier for the answers, to a process's desk.

What staff see and do is described in docs/telegram.md.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from telegram import Bot, InlineKeyboardMarkup
from telegram.constants import ParseMode
from telegram.error import BadRequest, TelegramError

from bot.answering.escalations import EscalationDesk, EscalationView
from bot.core.config import Settings
from bot.core.i18n import Html, t
from bot.core.models import utcnow
from bot.telegram.callback_data import LearnButton, button
from bot.telegram.message_split import pack_lines, text_lines
from bot.tickets.delivery import DeliveryWorker

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)

# How much of the resident's question is quoted above a staff answer.
QUOTE_CHARS = 300


def standalone_bot(settings: Settings, token: str | None = None) -> Bot:
    """Return a Bot for a process without the Telegram application (e.g. the web console).

    Call `await bot.initialize()` before use and `await bot.shutdown()` at the end.
    """
    return Bot(token or settings.telegram_token, base_url=settings.telegram_api_base_url)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def learn_markup(view: EscalationView, language: str) -> InlineKeyboardMarkup | None:
    """Return the staff button that teaches the knowledge base this question, once answered."""
    if view.status != "answered" or view.learned_item_id:
        return None
    return InlineKeyboardMarkup(
        [[button(t("staff_learn_button", language), LearnButton("offer", view.id))]]
    )


class StaffGroupPosts:
    """Shows escalations in the staff group ([telegram] staff_chat_id) with a bot."""

    def __init__(self, desk: EscalationDesk, bot: Bot) -> None:
        self.desk = desk
        self.bot = bot

    async def post(self, view: EscalationView) -> bool:
        """Post an open escalation, or post it again with a reminder; True if it was posted."""
        desk = self.desk
        chat_id = desk.staff_chat_id
        if chat_id is None:
            return False
        text = desk.render_post(view)
        reposting = view.staff_message_id is not None and view.staff_chat_id == chat_id
        if reposting:
            minutes = int((utcnow() - (view.posted_at or view.created_at)).total_seconds() // 60)
            prefix = t(
                "staff_repost_prefix",
                desk.staff_language,
                minutes=minutes,
                count=view.repost_count + 1,
            )
            text = Html(prefix + text)
        try:
            message = await self.bot.send_message(chat_id, text, parse_mode=ParseMode.HTML)
        except TelegramError as error:
            log.error(
                "escalation %d could not be posted to staff chat %d: %s", view.id, chat_id, error
            )
            return False
        if reposting and view.staff_message_id is not None:
            try:
                await self.bot.edit_message_text(
                    Html(
                        desk.render_post(view)
                        + "\n\n"
                        + t("staff_reposted_below", desk.staff_language)
                    ),
                    chat_id=chat_id,
                    message_id=view.staff_message_id,
                    parse_mode=ParseMode.HTML,
                )
            except TelegramError as error:
                log.info("old post of escalation %d not edited: %s", view.id, error)
        await desk.note_posted(view.id, chat_id, message.message_id, reposted=reposting)
        return True

    async def refresh(self, view: EscalationView) -> None:
        """Show the escalation's current state on its staff post (answered by whom, learned)."""
        if view.staff_chat_id is None or view.staff_message_id is None:
            return
        try:
            await self.bot.edit_message_text(
                self.desk.render_post(view),
                chat_id=view.staff_chat_id,
                message_id=view.staff_message_id,
                parse_mode=ParseMode.HTML,
                reply_markup=learn_markup(view, self.desk.staff_language),
            )
        except BadRequest as error:
            # "message is not modified" and posts deleted by staff are harmless.
            log.info("staff post of escalation %d not edited: %s", view.id, error)
        except TelegramError as error:
            log.warning("staff post of escalation %d not edited: %s", view.id, error)


def answer_messages(payload: Mapping[str, Any]) -> list[str]:
    """Render a staff answer's outbox row (bot.tickets.outbox.escalation_answer_message) as the
    resident reads it: their question quoted, then the answer, in as many messages as needed."""
    language = str(payload.get("language") or "zh")
    header = t(
        "staff_answer_to_resident",
        language,
        question=_clip(str(payload.get("question", "")), QUOTE_CHARS),
        answer="",
    )
    return pack_lines([header.rstrip(), "", *text_lines(str(payload.get("answer", "")))])


def published_answer_messages(payload: Mapping[str, Any]) -> list[str]:
    """Render a published answer's outbox row (bot.tickets.outbox.published_answer_message):
    the resident's question quoted, then the item's answer card."""
    language = str(payload.get("language") or "zh")
    header = t(
        "published_answer_to_resident",
        language,
        question=_clip(str(payload.get("question", "")), QUOTE_CHARS),
    )
    card = str(payload.get("card_html", ""))
    return pack_lines([header, "", *card.split("\n")])


def connect(services: Services, bot: Bot) -> None:
    """Post escalations to the staff group with `bot`, and make the first delivery of every
    staff answer at once with it (the outbox retries what fails)."""
    # bot.workers delivers answers with `answer_messages`, so it is imported here, not above.
    from bot.workers import TelegramChannel

    desk = services.escalations
    tickets = services.tickets
    courier = DeliveryWorker(
        tickets, {"resident": TelegramChannel(tickets, bot)}, name="escalation-answers"
    )
    desk.attach(board=StaffGroupPosts(desk, bot), courier=courier)
