"""My tickets: /status lists the resident's own tickets (and those they support), a ticket's
details with its public timeline, adding information, and the rating after a reply (回访).

Buttons (bot/telegram/callback_data.py; the notices of bot/telegram/ticket_keyboards.py carry
the same ones):

    TicketList                        the list (the main menu's "my tickets" is its first page)
    TicketView                        one ticket
    TicketAddInformation              add information ──▶ the next text or photo
    TicketSolved                      solved? ──▶ TicketRating (stars) ──▶ optional comment
    TicketServiceRating               a disclosure answer: stars for the service ──▶ comment
    TicketRemedies                    a disclosure applicant who disagrees: review, lawsuit
    TicketFollowup                    no comment / stop adding information

Whose ticket it is is checked by bot.tickets.desk on every action: a forged id shows nothing of
another resident's ticket. Adding information and the comment are one persistent conversation,
so a restart between the button and the text loses nothing.
"""

from __future__ import annotations

import math
import time
import warnings
from typing import Any

from telegram import InlineKeyboardMarkup, Message, Update
from telegram.ext import (
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    TypeHandler,
    filters,
)
from telegram.warnings import PTBUserWarning

from bot.core.i18n import Html, add_strings, t
from bot.core.vocabulary import TicketStatus, TicketType
from bot.telegram.callback_data import (
    TicketAddInformation,
    TicketFollowup,
    TicketList,
    TicketRating,
    TicketRemedies,
    TicketServiceRating,
    TicketSolved,
    TicketView,
    button,
    prefix_of,
)
from bot.telegram.context import BotApplication, BotContext
from bot.telegram.message_split import pack_lines
from bot.telegram.ticket_keyboards import (
    add_information_button,
    remedies_button,
    service_rating_rows,
    solved_row,
)
from bot.tickets.desk import (
    MAX_REASON_TEXT,
    InvalidTicketInput,
    PhotoRef,
    TicketDetail,
    TicketError,
    TicketNotFound,
)
from bot.tickets.messages import remedies_text, stars, status_name, timeline_line, type_name
from bot.tickets.routing import complaint_category_name

CONVERSATION = "ticket_followup"
FOLLOWUP = "ticket_followup"
PER_PAGE = 6
# The latest events shown under a ticket; the console has the whole timeline.
TIMELINE_SHOWN = 15
WAIT_INFORMATION, WAIT_COMMENT = range(2)

add_strings(
    "status",
    {
        "tkt_list_title": {
            "zh": "<b>我的工单</b>（共 {count} 件，第 {page}/{pages} 页），点开查看进展：",
            "en": "<b>My tickets</b> ({count} in all, page {page} of {pages}); open one to see "
            "its progress:",
        },
        "tkt_list_empty": {
            "zh": "您还没有提交过工单。发送 /complain 可以投诉、举报、提建议、求助或申请政府信息公开。",
            "en": "You have no tickets yet. Send /complain to file a complaint, report, "
            "suggestion, help request or disclosure application.",
        },
        "tkt_list_supported": {"zh": "👍", "en": "👍"},
        "tkt_detail": {
            "zh": "<b>{number}</b>（{type} · {category}）\n状态：{status}\n承办：{holder}\n"
            "答复期限：{deadline}{notes}\n\n<blockquote>{description}</blockquote>{extras}",
            "en": "<b>{number}</b> ({type} · {category})\nStatus: {status}\nHeld by: {holder}\n"
            "Reply due by: {deadline}{notes}\n\n<blockquote>{description}</blockquote>{extras}",
        },
        "tkt_detail_supported": {
            "zh": "<b>{number}</b>（{type} · {category}）\n您附议了这件事（共 {count} 人附议）。\n"
            "状态：{status}\n承办：{holder}\n\n<blockquote>{description}</blockquote>",
            "en": "<b>{number}</b> ({type} · {category})\nYou support this ({count} supporters).\n"
            "Status: {status}\nHeld by: {holder}\n\n<blockquote>{description}</blockquote>",
        },
        "tkt_note_extended": {"zh": "（已延期：{reason}）", "en": " (extended: {reason})"},
        "tkt_note_overdue": {"zh": "（已超期，已督办）", "en": " (overdue; escalated)"},
        "tkt_note_awaiting": {
            "zh": "\n❓ 承办部门在等您补充信息。",
            "en": "\n❓ The department is waiting for information from you.",
        },
        "tkt_extra_photos": {"zh": "\n📷 照片 {count} 张", "en": "\n📷 {count} photo(s)"},
        "tkt_extra_anonymous": {
            "zh": "\n🕶 匿名：承办部门看不到您的身份",
            "en": "\n🕶 Anonymous: the department does not see who you are",
        },
        "tkt_extra_shared": {
            "zh": "\n👤 您同意承办部门看到您的姓名和电话",
            "en": "\n👤 You let the department see your name and phone",
        },
        "tkt_extra_private": {
            "zh": "\n🙈 承办部门看不到您的姓名和电话",
            "en": "\n🙈 The department does not see your name or phone",
        },
        "tkt_extra_rating": {"zh": "\n⭐ 您的评价：{stars}", "en": "\n⭐ Your rating: {stars}"},
        "tkt_progress": {"zh": "<b>进展</b>", "en": "<b>Progress</b>"},
        "tkt_button_list": {"zh": "⬅️ 我的工单", "en": "⬅️ My tickets"},
        "tkt_button_rate": {"zh": "⭐ 评价", "en": "⭐ Rate"},
        "tkt_button_skip": {"zh": "跳过", "en": "Skip"},
        "tkt_button_stop": {"zh": "取消", "en": "Cancel"},
        "tkt_not_found": {
            "zh": "没有找到这个工单。",
            "en": "There is no such ticket among yours.",
        },
        "tkt_info_prompt": {
            "zh": "请发送要补充的内容（文字，或照片加说明），会转给承办部门（{number}）。",
            "en": "Send what you want to add (text, or a photo with a caption); it goes to the "
            "department ({number}).",
        },
        "tkt_info_added": {
            "zh": "✅ 已补充到 {number}，承办部门会收到。",
            "en": "✅ Added to {number}; the department will get it.",
        },
        "tkt_info_not_open": {
            "zh": "{number} 当前状态为“{status}”，不能再补充。如有新问题，请发送 /complain。",
            "en": "{number} is “{status}” now, so nothing more can be added. For a new matter, "
            "send /complain.",
        },
        "tkt_info_bad": {
            "zh": "内容为空或太长（最多 {limit} 字），或照片太多。请重新发送，或点“取消”。",
            "en": "That is empty or too long (at most {limit} characters), or has too many "
            "photos. Send it again, or press “Cancel”.",
        },
        "tkt_info_stopped": {"zh": "好的，没有补充。", "en": "All right, nothing was added."},
        "tkt_rate_prompt": {
            "zh": "请为 {number} 的办理打分（1 星最差，5 星最好）：",
            "en": "Rate how {number} was handled (1 star worst, 5 best):",
        },
        "tkt_rated_closed": {
            "zh": "🙏 谢谢您的评价（{stars}）！{number} 已办结。\n愿意的话可以输入一句评论；不需要就点“跳过”。",
            "en": "🙏 Thank you ({stars})! {number} is closed.\nType a comment if you like, "
            "or press “Skip”.",
        },
        "tkt_rated_reopened": {
            "zh": "🔁 已重新交{department}办理 {number}，新的答复期限 {date}。\n"
            "愿意的话可以输入一句说明，告诉部门还有什么没解决；不需要就点“跳过”。",
            "en": "🔁 {number} is reopened with {department}; reply due by {date}.\nType what "
            "is still wrong if you like, or press “Skip”.",
        },
        "tkt_rate_not_now": {
            "zh": "{number} 现在不需要评价（{status}）。",
            "en": "{number} needs no rating now ({status}).",
        },
        "tkt_followup_expired": {
            "zh": "等待时间太久，已取消。如需补充信息或评论，请在 /status 里重新打开工单。",
            "en": "That waited too long and was cancelled. To add information or a comment, "
            "open the ticket again from /status.",
        },
        "tkt_remedies_intro": {
            "zh": "<b>{number}</b> 是政府信息公开申请，答复是行政机关依法作出的决定，不能像投诉那样“重新办理”。",
            "en": "<b>{number}</b> is an information disclosure application: its answer is a "
            "decision made under the Regulations, which is not reopened like a complaint.",
        },
        "tkt_remedies_more": {
            "zh": "也可以就同一事项重新提出申请，或向{review_body}反映政府信息公开工作中的问题（条例第五十一条）。",
            "en": "You may also apply again, or raise problems with the disclosure work with "
            "{review_body} (Article 51 of the Regulations).",
        },
        "tkt_comment_saved": {"zh": "✅ 已记录您的评论。", "en": "✅ Your comment is recorded."},
        "tkt_comment_skipped": {"zh": "好的。", "en": "All right."},
        "tkt_comment_bad": {
            "zh": "评论为空或太长（最多 {limit} 字），请重新输入，或点“跳过”。",
            "en": "The comment is empty or too long (at most {limit} characters); type it "
            "again, or press “Skip”.",
        },
    },
)


def _message(update: Update) -> Message:
    message = update.effective_message
    assert message is not None
    return message


async def show_list(update: Update, context: BotContext) -> None:
    """List the resident's tickets, newest first, a page at a time."""
    query = update.callback_query
    language = context.language
    resident = context.resident
    if query is not None:
        await query.answer()
    if resident is None:
        return
    listed = TicketList.decode(query.data) if query is not None else None
    page = listed.page if listed is not None and listed.page is not None else 0
    desk = context.services.tickets
    count = await desk.count_tickets_of_resident(resident.id)
    if count == 0:
        await _message(update).reply_text(t("tkt_list_empty", language))
        return
    pages = max(1, math.ceil(count / PER_PAGE))
    page = min(page, pages - 1)
    tickets = await desk.tickets_of_resident(resident.id, limit=PER_PAGE, offset=page * PER_PAGE)
    kb = context.services.knowledge.kb
    buttons = []
    for ticket in tickets:
        mark = t("tkt_list_supported", language) + " " if ticket.role == "supported" else ""
        label = (
            f"{mark}{ticket.number} · {complaint_category_name(kb, ticket.category, language)}"
            f" · {status_name(ticket.status, language)}"
        )
        buttons.append([button(label[:64], TicketView(ticket.id))])
    pager = []
    if page > 0:
        pager.append(button(t("page_previous", language), TicketList(page - 1)))
    if page < pages - 1:
        pager.append(button(t("page_next", language), TicketList(page + 1)))
    if pager:
        buttons.append(pager)
    await _message(update).reply_text(
        t("tkt_list_title", language, count=count, page=page + 1, pages=pages),
        reply_markup=InlineKeyboardMarkup(buttons),
    )


def _detail_lines(detail: TicketDetail, context: BotContext) -> list[str]:
    language = context.language
    desk = context.services.tickets
    zone = desk.policy.zone
    summary = detail.summary
    kb = context.services.knowledge.kb
    holder = desk.department_name(summary.department_id, language) or t(
        "tkt_no_department", language
    )
    common: dict[str, Any] = {
        "number": summary.number,
        "type": type_name(summary.type, language),
        "category": complaint_category_name(kb, summary.category, language),
        "status": status_name(summary.status, language),
        "holder": holder,
        "description": _cut(detail.description, 1500),
    }
    if summary.role == "supported":
        return [t("tkt_detail_supported", language, count=detail.supporters, **common)]
    notes = ""
    if detail.extended and detail.extension_reason:
        notes += t("tkt_note_extended", language, reason=_cut(detail.extension_reason, 200))
    if summary.overdue:
        notes += t("tkt_note_overdue", language)
    if summary.awaiting_resident:
        notes += t("tkt_note_awaiting", language)
    extras = ""
    if detail.photos:
        extras += t("tkt_extra_photos", language, count=detail.photos)
    if detail.anonymous:
        extras += t("tkt_extra_anonymous", language)
    elif detail.share_identity:
        extras += t("tkt_extra_shared", language)
    else:
        extras += t("tkt_extra_private", language)
    if detail.rating:
        extras += t("tkt_extra_rating", language, stars=stars(detail.rating))
    deadline = (
        summary.reply_deadline.astimezone(zone).strftime("%Y-%m-%d")
        if summary.reply_deadline
        else "—"
    )
    lines = [
        t(
            "tkt_detail",
            language,
            deadline=deadline,
            notes=Html(notes),
            extras=Html(extras),
            **common,
        ),
        "",
        t("tkt_progress", language),
    ]
    events = [
        line
        for entry in detail.timeline
        if (line := timeline_line(entry, language, zone, desk.department_name)) is not None
    ]
    lines.extend(events[-TIMELINE_SHOWN:])
    return lines


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def show_ticket(update: Update, context: BotContext) -> None:
    """Show one of the resident's tickets with its public timeline and what they can do."""
    query = update.callback_query
    assert query is not None
    language = context.language
    shown = TicketView.decode(query.data)
    resident = context.resident
    if shown is None or resident is None:
        await query.answer(t("stale_button", language), show_alert=True)
        return
    ticket_id = shown.ticket_id
    try:
        detail = await context.services.tickets.ticket_for_resident(ticket_id, resident.id)
    except TicketNotFound:
        await query.answer(t("tkt_not_found", language), show_alert=True)
        return
    await query.answer()
    await _send_detail(_message(update), context, detail)


async def show_ticket_by_number(message: Message, context: BotContext, number: str) -> None:
    """Show the ticket a resident typed the number of ("TS-2026-000123"), if it is theirs (or
    one they support); anyone else's, or none, is "not found" alike."""
    resident = context.resident
    if resident is None:
        return
    try:
        detail = await context.services.tickets.ticket_for_resident(number, resident.id)
    except TicketNotFound:
        await message.reply_text(
            t("tkt_not_found", context.language),
            reply_markup=InlineKeyboardMarkup(
                [[button(t("tkt_button_list", context.language), TicketList())]]
            ),
        )
        return
    await _send_detail(message, context, detail)


async def _send_detail(message: Message, context: BotContext, detail: TicketDetail) -> None:
    """Send a ticket's details and timeline, with what the resident can do next."""
    language = context.language
    ticket_id = detail.summary.id
    buttons = []
    if detail.can_add_information:
        buttons.append([add_information_button(ticket_id, language)])
    disclosure = detail.summary.type == TicketType.DISCLOSURE
    if detail.can_rate and disclosure:
        buttons.extend(service_rating_rows(ticket_id, language))
    elif detail.can_rate:
        buttons.append(solved_row(ticket_id, language))
    elif (
        disclosure
        and detail.summary.status == TicketStatus.CLOSED
        and detail.summary.role == "filed"
    ):
        buttons.append([remedies_button(ticket_id, language)])
    buttons.append([button(t("tkt_button_list", language), TicketList())])
    pieces = pack_lines(_detail_lines(detail, context))
    for index, piece in enumerate(pieces):
        last = index == len(pieces) - 1
        await message.reply_text(
            piece, reply_markup=InlineKeyboardMarkup(buttons) if last else None
        )


async def ask_rating(update: Update, context: BotContext) -> None:
    """After "solved?" show the 1-5 stars."""
    query = update.callback_query
    assert query is not None
    language = context.language
    asked = TicketSolved.decode(query.data)
    if asked is None or context.resident is None:
        await query.answer(t("stale_button", language), show_alert=True)
        return
    ticket_id, solved = asked.ticket_id, asked.solved
    try:
        detail = await context.services.tickets.ticket_for_resident(ticket_id, context.resident.id)
    except TicketNotFound:
        await query.answer(t("tkt_not_found", language), show_alert=True)
        return
    await query.answer()
    if detail.summary.type == TicketType.DISCLOSURE:
        # "Not solved" is the complaint's way back; an applicant who disagrees has remedies.
        await _send_remedies(update, context, detail)
        return
    if not detail.can_rate:
        await _message(update).reply_text(
            t(
                "tkt_rate_not_now",
                language,
                number=detail.summary.number,
                status=status_name(detail.summary.status, language),
            )
        )
        return
    row = [button("★" * n, TicketRating(ticket_id, solved, n)) for n in range(1, 6)]
    await _message(update).reply_text(
        t("tkt_rate_prompt", language, number=detail.summary.number),
        reply_markup=InlineKeyboardMarkup([row[:3], row[3:]]),
    )


def _remedies(detail: TicketDetail, context: BotContext) -> Html:
    """Return the remedies of a disclosure decision: as recorded with the answer, else as
    configured now."""
    language = context.language
    recorded = next(
        (
            entry.data["remedies"]
            for entry in reversed(detail.timeline)
            if entry.kind == "replied" and isinstance(entry.data.get("remedies"), dict)
        ),
        None,
    )
    configured = context.services.settings.disclosure.model_dump()
    remedies = recorded or configured
    review_body = remedies.get("review_body_en" if language == "en" else "review_body", "")
    return Html(
        "\n\n".join(
            [
                t("tkt_remedies_intro", language, number=detail.summary.number),
                remedies_text(remedies, language),
                t("tkt_remedies_more", language, review_body=review_body),
            ]
        )
    )


async def _send_remedies(update: Update, context: BotContext, detail: TicketDetail) -> None:
    language = context.language
    rows = []
    if detail.can_rate:
        rows.extend(service_rating_rows(detail.summary.id, language)[:2])
    rows.append([button(t("tkt_button_view", language), TicketView(detail.summary.id))])
    await _message(update).reply_text(
        _remedies(detail, context), reply_markup=InlineKeyboardMarkup(rows)
    )


async def show_remedies(update: Update, context: BotContext) -> None:
    """Tell a disclosure applicant what they can do if they disagree with the answer."""
    query = update.callback_query
    assert query is not None
    language = context.language
    asked = TicketRemedies.decode(query.data)
    if asked is None or context.resident is None:
        await query.answer(t("stale_button", language), show_alert=True)
        return
    try:
        detail = await context.services.tickets.ticket_for_resident(
            asked.ticket_id, context.resident.id
        )
    except TicketNotFound:
        await query.answer(t("tkt_not_found", language), show_alert=True)
        return
    if detail.summary.type != TicketType.DISCLOSURE or detail.summary.role != "filed":
        await query.answer(t("stale_button", language), show_alert=True)
        return
    await query.answer()
    await _send_remedies(update, context, detail)


def _followup(context: BotContext) -> dict[str, Any]:
    data = context.user_data if context.user_data is not None else {}
    value = data.get(FOLLOWUP)
    if not isinstance(value, dict):
        value = {}
        data[FOLLOWUP] = value
    return value


async def rated(update: Update, context: BotContext) -> int:
    """Record the stars; not solved reopens the ticket. Then offer the optional comment."""
    query = update.callback_query
    assert query is not None
    language = context.language
    rating = TicketRating.decode(query.data) or TicketServiceRating.decode(query.data)
    resident = context.resident
    if rating is None or resident is None:
        await query.answer(t("stale_button", language), show_alert=True)
        return ConversationHandler.END
    desk = context.services.tickets
    ticket_id = rating.ticket_id
    # The service of a disclosure application is rated without "solved?" (None).
    solved = rating.solved if isinstance(rating, TicketRating) else None
    try:
        ticket = await desk.rate(ticket_id, resident.id, solved=solved, rating=rating.stars)
    except TicketNotFound:
        await query.answer(t("tkt_not_found", language), show_alert=True)
        return ConversationHandler.END
    except TicketError:
        await query.answer()
        current = await desk.get(ticket_id)
        await _message(update).reply_text(
            t(
                "tkt_rate_not_now",
                language,
                number=current.number,
                status=status_name(current.status, language),
            )
        )
        return ConversationHandler.END
    await query.answer()
    _followup(context).update(ticket=ticket_id, touched=time.time())
    skip = InlineKeyboardMarkup([[button(t("tkt_button_skip", language), TicketFollowup("skip"))]])
    if ticket.status == TicketStatus.CLOSED:
        text = t("tkt_rated_closed", language, stars=stars(ticket.rating), number=ticket.number)
    else:
        deadline = (
            desk.policy.local_date(ticket.reply_deadline).isoformat()
            if ticket.reply_deadline
            else "—"
        )
        text = t(
            "tkt_rated_reopened",
            language,
            department=desk.department_name(ticket.department_id, language) or "",
            number=ticket.number,
            date=deadline,
        )
    await _message(update).reply_text(text, reply_markup=skip)
    return WAIT_COMMENT


def _waiting_too_long(context: BotContext) -> bool:
    touched = _followup(context).get("touched")
    limit = context.services.settings.tickets.form_timeout_minutes * 60
    return not isinstance(touched, int | float) or time.time() - touched > limit


async def expired(update: Update, context: BotContext) -> int:
    """Stop waiting; a message that comes much later is not taken as information or comment."""
    _followup(context).clear()
    message = update.effective_message
    if message is not None:
        await message.reply_text(t("tkt_followup_expired", context.language))
    return ConversationHandler.END


async def commented(update: Update, context: BotContext) -> int:
    """Keep the resident's comment on their rating."""
    message = _message(update)
    language = context.language
    ticket_id = _followup(context).get("ticket")
    if context.resident is None or not isinstance(ticket_id, int):
        return ConversationHandler.END
    if _waiting_too_long(context):
        return await expired(update, context)
    try:
        await context.services.tickets.comment_rating(
            ticket_id, context.resident.id, message.text or ""
        )
    except InvalidTicketInput:
        await message.reply_text(t("tkt_comment_bad", language, limit=MAX_REASON_TEXT))
        return WAIT_COMMENT
    except TicketError:
        return ConversationHandler.END
    _followup(context).clear()
    await message.reply_text(t("tkt_comment_saved", language))
    return ConversationHandler.END


async def skipped(update: Update, context: BotContext) -> int:
    if update.callback_query is not None:
        await update.callback_query.answer()
    _followup(context).clear()
    await _message(update).reply_text(t("tkt_comment_skipped", context.language))
    return ConversationHandler.END


async def ask_information(update: Update, context: BotContext) -> int:
    """Ask for the information to add to an open ticket."""
    query = update.callback_query
    assert query is not None
    language = context.language
    adding = TicketAddInformation.decode(query.data)
    if adding is None or context.resident is None:
        await query.answer(t("stale_button", language), show_alert=True)
        return ConversationHandler.END
    ticket_id = adding.ticket_id
    try:
        detail = await context.services.tickets.ticket_for_resident(ticket_id, context.resident.id)
    except TicketNotFound:
        await query.answer(t("tkt_not_found", language), show_alert=True)
        return ConversationHandler.END
    await query.answer()
    number = detail.summary.number
    if not detail.can_add_information:
        await _message(update).reply_text(
            t(
                "tkt_info_not_open",
                language,
                number=number,
                status=status_name(detail.summary.status, language),
            )
        )
        return ConversationHandler.END
    _followup(context).update(ticket=ticket_id, touched=time.time())
    stop = InlineKeyboardMarkup([[button(t("tkt_button_stop", language), TicketFollowup("stop"))]])
    await _message(update).reply_text(
        t("tkt_info_prompt", language, number=number), reply_markup=stop
    )
    return WAIT_INFORMATION


async def information_sent(update: Update, context: BotContext) -> int:
    """Add the resident's text or photo to the ticket."""
    message = _message(update)
    language = context.language
    ticket_id = _followup(context).get("ticket")
    resident = context.resident
    if resident is None or not isinstance(ticket_id, int):
        return ConversationHandler.END
    if _waiting_too_long(context):
        return await expired(update, context)
    photos: tuple[PhotoRef, ...] = ()
    if message.photo:
        largest = message.photo[-1]
        photos = (PhotoRef(largest.file_id, largest.file_unique_id),)
    text = message.text or message.caption or ""
    desk = context.services.tickets
    try:
        ticket = await desk.add_information(ticket_id, resident.id, text, photos)
    except InvalidTicketInput:
        limit = context.services.settings.tickets.max_information_chars
        await message.reply_text(t("tkt_info_bad", language, limit=limit))
        return WAIT_INFORMATION
    except TicketError:
        current = await desk.get(ticket_id)
        await message.reply_text(
            t(
                "tkt_info_not_open",
                language,
                number=current.number,
                status=status_name(current.status, language),
            )
        )
        _followup(context).clear()
        return ConversationHandler.END
    _followup(context).clear()
    await message.reply_text(t("tkt_info_added", language, number=ticket.number))
    return ConversationHandler.END


async def stopped(update: Update, context: BotContext) -> int:
    if update.callback_query is not None:
        await update.callback_query.answer()
    _followup(context).clear()
    await _message(update).reply_text(t("tkt_info_stopped", context.language))
    return ConversationHandler.END


async def stale_button(update: Update, context: BotContext) -> None:
    """Answer a button whose moment has passed (a comment already given, a form over)."""
    query = update.callback_query
    assert query is not None
    await query.answer(t("stale_button", context.language), show_alert=True)


def stop_pressed(data: object) -> bool:
    return TicketFollowup.decode(data) == TicketFollowup("stop")


def skip_pressed(data: object) -> bool:
    return TicketFollowup.decode(data) == TicketFollowup("skip")


def build_followup(timeout_minutes: int = 60) -> ConversationHandler[BotContext]:
    """Return the persistent conversation that waits for added information or a comment."""
    private = filters.ChatType.PRIVATE
    text = private & filters.TEXT & ~filters.COMMAND
    with warnings.catch_warnings():
        # Buttons start it and messages continue it, per chat on purpose (see complaints.py).
        warnings.filterwarnings("ignore", category=PTBUserWarning, message=".*per_message.*")
        return ConversationHandler(
            entry_points=[
                CallbackQueryHandler(ask_information, pattern=TicketAddInformation.matches),
                CallbackQueryHandler(rated, pattern=TicketRating.prefix()),
                CallbackQueryHandler(rated, pattern=TicketServiceRating.matches),
            ],
            states={
                WAIT_INFORMATION: [
                    MessageHandler(text | (private & filters.PHOTO), information_sent),
                    CallbackQueryHandler(stopped, pattern=stop_pressed),
                ],
                WAIT_COMMENT: [
                    MessageHandler(text, commented),
                    CallbackQueryHandler(skipped, pattern=skip_pressed),
                ],
                ConversationHandler.TIMEOUT: [TypeHandler(Update, expired)],
            },
            fallbacks=[
                CommandHandler("cancel", stopped, filters=private),
                CallbackQueryHandler(stopped, pattern=stop_pressed),
                CallbackQueryHandler(skipped, pattern=skip_pressed),
            ],
            name=CONVERSATION,
            persistent=True,
            allow_reentry=True,
            conversation_timeout=timeout_minutes * 60,
        )


def register(application: BotApplication) -> None:
    """Register /status, the ticket views, and the follow-up conversation."""
    private = filters.ChatType.PRIVATE
    services = application.bot_data.services
    timeout = services.settings.tickets.form_timeout_minutes if services else 60
    application.add_handler(build_followup(timeout))
    application.add_handler(CommandHandler("status", show_list, filters=private))
    application.add_handler(CallbackQueryHandler(show_list, pattern=TicketList.matches))
    application.add_handler(CallbackQueryHandler(show_ticket, pattern=TicketView.prefix()))
    application.add_handler(CallbackQueryHandler(ask_rating, pattern=TicketSolved.prefix()))
    application.add_handler(CallbackQueryHandler(show_remedies, pattern=TicketRemedies.prefix()))
    # Anything else of the family: a comment already given, a form over, a forged button.
    application.add_handler(
        CallbackQueryHandler(
            stale_button,
            pattern=prefix_of(TicketList, TicketView, TicketRating, TicketFollowup),
        )
    )
