"""Departments answer tickets in their own Telegram chats; staff route tickets from theirs.

A department with the `telegram` channel gets each ticket as a card with buttons
(DepartmentAction in bot/telegram/callback_data.py, by the ticket's public number):

    [✅ 签收]  acknowledge at once
    [💬 答复]  [↩️ 退单]  [❓ 请居民补充]  [⏳ 延期 (disclosure only)]
               └─ the bot asks for the text with a message carrying a tag 〔TS-2026-000123·reply〕;
                  the officer answers by replying to that message, and the text goes through
                  bot.tickets.desk (a disclosure reply first asks how it was answered:
                  DisclosureOutcome)

Only members of the chat configured for the ticket's current department may act: the chat must
be that department's, and Telegram must confirm the person is a member of it. Buttons of a
ticket that has moved on are answered with what happened instead.

In the staff chat, staff route triage tickets: the buttons under a triage alert
(StaffAssign), `/assign TS-2026-000123 department-id` and `/reject TS-2026-000123 reason`.
How departments and staff work with tickets is described in docs/tickets.md.
"""

from __future__ import annotations

import contextlib
import re

from telegram import (
    ForceReply,
    InlineKeyboardMarkup,
    Message,
    Update,
    User,
)
from telegram.error import TelegramError
from telegram.ext import CallbackQueryHandler, CommandHandler, MessageHandler, filters

from bot.core.i18n import add_strings, t
from bot.core.models import Ticket
from bot.telegram.callback_data import (
    DepartmentAction,
    DisclosureOutcome,
    StaffAssign,
    button,
    prefix_of,
)
from bot.telegram.context import BotApplication, BotContext
from bot.telegram.ticket_keyboards import department_buttons
from bot.tickets.desk import (
    DISCLOSURE_OUTCOMES,
    MAX_OFFICER_TEXT,
    Actor,
    AlreadyRouted,
    InvalidTicketInput,
    TicketError,
    TicketNotFound,
)
from bot.tickets.documents import DocumentFile, DocumentRefused, allowed_extensions, check_file
from bot.tickets.messages import input_problem
from handlers.staff import is_staff

# Telegram lets a bot fetch files of up to 20 MB (getFile).
TELEGRAM_DOWNLOAD_LIMIT = 20 * 1024 * 1024

_TAG = re.compile(r"〔(TS-\d{4}-\d{6,9})·(reply|back|ask|ext)(?:·([a-z_]+))?〕")
_NUMBER = re.compile(r"^TS-\d{4}-\d{6,9}$")
_DAYS_AND_REASON = re.compile(r"^\s*(\d{1,2})\s*(?:天|个工作日|days?)?[\s,，:：]*(.*)$", re.S)

add_strings(
    "departments",
    {
        "dpt_prompt_reply": {
            "zh": "💬 请<b>回复本条消息</b>，写下对 {number} 的答复（会发送给居民）。",
            "en": "💬 <b>Reply to this message</b> with the answer to {number} (it goes to the "
            "resident).",
        },
        "dpt_prompt_back": {
            "zh": "↩️ 请<b>回复本条消息</b>，写明 {number} 不属于本部门职责的理由（居民和工作人员都会看到）。",
            "en": "↩️ <b>Reply to this message</b> with why {number} is not your department's "
            "(the resident and staff see it).",
        },
        "dpt_prompt_ask": {
            "zh": "❓ 请<b>回复本条消息</b>，写下需要居民补充的内容（{number}）。",
            "en": "❓ <b>Reply to this message</b> with what the resident should add ({number}).",
        },
        "dpt_prompt_ext": {
            "zh": "⏳ 请<b>回复本条消息</b>：延长的工作日数（1–20）和理由，例如“15 需要征求第三方意见”"
            "（{number}，只能延期一次，理由会告诉申请人）。",
            "en": "⏳ <b>Reply to this message</b> with the working days (1-20) and the reason, "
            "e.g. “15 third parties must be consulted” ({number}; once only; the applicant "
            "sees the reason).",
        },
        "dpt_prompt_reply_disclosed": {
            "zh": "💬 {number}：予以公开。请<b>回复本条消息</b>，写下给申请人的答复；公开的信息可以作为"
            "<b>文件</b>回复（{types}，不超过 {megabytes} MB），答复写在文件说明里。",
            "en": "💬 {number}: disclosed. <b>Reply to this message</b> with the answer to the "
            "applicant; the information may be replied as a <b>file</b> ({types}, at most "
            "{megabytes} MB) with the answer as its caption.",
        },
        "dpt_prompt_reply_reasoned": {
            "zh": "💬 {number}：{outcome}。请<b>回复本条消息</b>，写明理由及依据（必填，会告诉申请人，"
            "并附上复议、诉讼途径）；部分公开的信息可以作为<b>文件</b>回复，理由写在文件说明里。",
            "en": "💬 {number}: {outcome}. <b>Reply to this message</b> with the reason and its "
            "legal basis (required; the applicant is told it, with the remedies); information "
            "partly disclosed may be replied as a <b>file</b> with the reason as its caption.",
        },
        "dpt_bad_reason": {
            "zh": "除予以公开外，答复必须写明理由（reason），请重新回复。",
            "en": "Any answer but full disclosure needs its reason; please reply again.",
        },
        "dpt_bad_document": {
            "zh": "文件未接受：{problem}。可接受 {types}，不超过 {megabytes} MB；也可以在网页后台上传。",
            "en": "The file was not accepted: {problem}. Accepted: {types}, at most {megabytes} "
            "MB; it can also be uploaded in the web console.",
        },
        "dpt_document_size": {"zh": "文件过大", "en": "the file is too large"},
        "dpt_document_type": {
            "zh": "文件类型不在可接受之列，或内容与扩展名不符",
            "en": "the type is not accepted, or the content is not what the name says",
        },
        "dpt_document_empty": {"zh": "文件为空", "en": "the file is empty"},
        "dpt_document_only_disclosure": {
            "zh": "只有政府信息公开申请的答复可以附文件，请用文字回复。",
            "en": "Only an answer to a disclosure application carries a file; reply with text.",
        },
        "dpt_choose_outcome": {
            "zh": "📂 {number} 是依申请公开，请先选择答复类型：",
            "en": "📂 {number} is a disclosure application; first choose how it is answered:",
        },
        "dpt_outcome_disclosed": {"zh": "予以公开", "en": "Disclosed"},
        "dpt_outcome_partly_disclosed": {"zh": "部分公开", "en": "Partly disclosed"},
        "dpt_outcome_withheld": {"zh": "不予公开", "en": "Withheld"},
        "dpt_outcome_not_held": {"zh": "无法提供", "en": "Not held"},
        "dpt_outcome_not_processed": {"zh": "不予处理", "en": "Not processed"},
        "dpt_outcome_other": {"zh": "其他处理", "en": "Other"},
        "dpt_done_ack": {
            "zh": "✅ {name} 已签收 {number}。",
            "en": "✅ {name} acknowledged {number}.",
        },
        "dpt_done_reply": {
            "zh": "✅ 已答复 {number}，已通知居民。",
            "en": "✅ {number} answered; the resident is told.",
        },
        "dpt_done_back": {
            "zh": "↩️ 已退回 {number}，工作人员将重新分派。",
            "en": "↩️ {number} handed back; staff will reassign it.",
        },
        "dpt_done_ask": {
            "zh": "❓ 已请居民补充 {number}，补充的内容会发到这里。",
            "en": "❓ The resident was asked; their answer about {number} will come here.",
        },
        "dpt_done_ext": {
            "zh": "⏳ {number} 的答复期限已延长至 {date}。",
            "en": "⏳ The reply deadline of {number} is now {date}.",
        },
        "dpt_bad_days": {
            "zh": "请写成“天数 理由”，例如“15 需要征求第三方意见”，天数为 1–20。",
            "en": "Write “days reason”, e.g. “15 third parties must be consulted”; 1 to 20 days.",
        },
        "dpt_not_member": {
            "zh": "只有本部门工作群的成员可以处理工单。",
            "en": "Only members of this department's chat can handle tickets.",
        },
        "dpt_not_ours": {
            "zh": "{number} 现在不在本部门（可能已改派或退回）。",
            "en": "{number} is not with this department now (moved or handed back).",
        },
        "dpt_not_now": {
            "zh": "{number} 当前状态为“{status}”，不能这样操作。",
            "en": "{number} is “{status}” now; that cannot be done.",
        },
        "dpt_bad_text": {
            "zh": "内容为空或太长（最多 {limit} 字），请重新回复。",
            "en": "The text is empty or too long (at most {limit} characters); please reply again.",
        },
        "dpt_reply_again": {
            "zh": "\n请再次回复那条提示消息。",
            "en": "\nPlease reply to the prompt again.",
        },
        "dpt_unknown": {"zh": "没有找到这个工单。", "en": "There is no such ticket."},
        "stf_already_routed": {
            "zh": "{number} 已经转交给{department}，这个按钮不再有效。",
            "en": "{number} has already gone to {department}; this button no longer applies.",
        },
        "stf_no_longer_triage": {
            "zh": "{number} 已不在待分派队列中，这个按钮不再有效。",
            "en": "{number} is no longer waiting for a department; this button no longer applies.",
        },
        "stf_assigned": {
            "zh": "📨 {name} 已将 {number} 分派给{department}。",
            "en": "📨 {name} assigned {number} to {department}.",
        },
        "stf_rejected": {
            "zh": "⛔ {name} 已对 {number} 作不予受理处理。",
            "en": "⛔ {name} refused {number}.",
        },
        "stf_assign_usage": {
            "zh": "用法：/assign 工单号 部门ID，例如 /assign TS-2026-000123 urban-management\n部门ID：{ids}",
            "en": "Usage: /assign TICKET DEPARTMENT-ID, e.g. /assign TS-2026-000123 "
            "urban-management\nDepartment ids: {ids}",
        },
        "stf_reject_usage": {
            "zh": "用法：/reject 工单号 理由（理由会告诉居民）",
            "en": "Usage: /reject TICKET REASON (the resident sees the reason)",
        },
        "stf_failed": {"zh": "没有成功：{reason}", "en": "That did not work: {reason}"},
    },
)


def department_chats(context: BotContext) -> dict[int, set[str]]:
    """Return the departments of each configured Telegram chat."""
    chats: dict[int, set[str]] = {}
    for department_id, config in context.services.settings.departments.items():
        if "telegram" in config.channels and config.telegram_chat_id is not None:
            chats.setdefault(config.telegram_chat_id, set()).add(department_id)
    return chats


async def _is_member(context: BotContext, chat_id: int, user: User | None) -> bool:
    """Tell whether a person (never a bot) is a member of a department's chat."""
    if user is None or user.is_bot:
        return False
    return await context.bot_data.members.is_member(context.bot, chat_id, user.id)


def served_group(context: BotContext, chat_id: int) -> bool:
    """Tell the group guard that departments' chats and the supervisor's are served here."""
    telegram = context.services.settings.telegram
    return chat_id in department_chats(context) or chat_id == telegram.supervisor_chat_id


def _language(context: BotContext) -> str:
    return context.services.settings.telegram.staff_language


async def _ticket_of_chat(
    context: BotContext, chat_id: int, number: str
) -> tuple[Ticket | None, str | None]:
    """Return the ticket and the problem ("unknown", "not_ours") for a department chat."""
    try:
        ticket = await context.services.tickets.get(number)
    except TicketNotFound:
        return None, "unknown"
    if ticket.department_id not in department_chats(context).get(chat_id, set()):
        return ticket, "not_ours"
    return ticket, None


def _problem_text(problem: str, number: str, language: str) -> str:
    if problem == "unknown":
        return t("dpt_unknown", language)
    return t("dpt_not_ours", language, number=number)


def _error_text(error: TicketError, ticket: Ticket, context: BotContext) -> str:
    language = _language(context)
    if error.code == "not_permitted":
        return t("dpt_not_ours", language, number=ticket.number)
    if isinstance(error, InvalidTicketInput):
        # Name the text that was refused and its limit ("答复内容不能为空…（1–3000 字）").
        problem = input_problem(error.code, error.field, error.limit, language)
        if problem is not None:
            return problem + t("dpt_reply_again", language)
    if error.code in ("empty", "too_long"):
        return t("dpt_bad_text", language, limit=MAX_OFFICER_TEXT)
    if error.code == "days":
        return t("dpt_bad_days", language)
    if error.code == "reason":
        return t("dpt_bad_reason", language)
    status = t(f"tkt_status_{ticket.status}", language)
    return t("dpt_not_now", language, number=ticket.number, status=status)


async def card_button(update: Update, context: BotContext) -> None:
    """Handle a department card's button."""
    query = update.callback_query
    assert query is not None
    assert query.data is not None
    language = _language(context)
    message = query.message
    card = DepartmentAction.decode(query.data) or DisclosureOutcome.decode(query.data)
    if message is None or card is None:
        await query.answer(t("stale_button", language), show_alert=True)
        return
    number = card.number
    chat_id = message.chat.id
    if chat_id not in department_chats(context) or not await _is_member(
        context, chat_id, query.from_user
    ):
        await query.answer(t("dpt_not_member", language), show_alert=True)
        return
    ticket, problem = await _ticket_of_chat(context, chat_id, number)
    if ticket is None or problem:
        await query.answer(_problem_text(problem or "unknown", number, language), show_alert=True)
        return
    user = query.from_user
    actor = Actor.department(ticket.department_id or "", str(user.id), user.full_name)
    if isinstance(card, DisclosureOutcome):
        if card.outcome not in DISCLOSURE_OUTCOMES:
            await query.answer(t("stale_button", language), show_alert=True)
            return
        await query.answer()
        await _prompt(context, chat_id, number, "reply", card.outcome)
        return
    action = card.action
    if action == "ack":
        try:
            ticket = await context.services.tickets.acknowledge(number, actor)
        except TicketError as error:
            await query.answer(_error_text(error, ticket, context), show_alert=True)
            return
        await query.answer()
        # The card may be old or deleted; the acknowledgement stands either way.
        with contextlib.suppress(TelegramError):
            await query.edit_message_reply_markup(
                department_buttons(number, ticket.type, ticket.status, language)
            )
        await context.bot.send_message(
            chat_id, t("dpt_done_ack", language, name=user.full_name, number=number)
        )
        return
    if action == "reply" and ticket.type == "disclosure":
        await query.answer()
        buttons = [
            [button(t(f"dpt_outcome_{code}", language), DisclosureOutcome(number, code))]
            for code in DISCLOSURE_OUTCOMES
        ]
        await context.bot.send_message(
            chat_id,
            t("dpt_choose_outcome", language, number=number),
            reply_markup=InlineKeyboardMarkup(buttons),
        )
        return
    await query.answer()
    await _prompt(context, chat_id, number, action)


async def _prompt(
    context: BotContext, chat_id: int, number: str, action: str, outcome: str = ""
) -> None:
    language = _language(context)
    tag = f"〔{number}·{action}" + (f"·{outcome}" if outcome else "") + "〕"
    if outcome:
        limits = _document_limits(context)
        if outcome == "disclosed":
            text = t("dpt_prompt_reply_disclosed", language, number=number, **limits)
        else:
            name = t(f"dpt_outcome_{outcome}", language)
            text = t("dpt_prompt_reply_reasoned", language, number=number, outcome=name)
    else:
        text = t(f"dpt_prompt_{action}", language, number=number)
    await context.bot.send_message(chat_id, text + "\n" + tag, reply_markup=ForceReply())


def _document_limits(context: BotContext) -> dict[str, object]:
    limit = min(context.services.settings.disclosure.max_document_bytes, TELEGRAM_DOWNLOAD_LIMIT)
    return {"types": allowed_extensions(), "megabytes": round(limit / 1024 / 1024, 1)}


async def _document_of(message: Message, context: BotContext) -> DocumentFile | None:
    """Return the file an officer replied with, fetched and checked (None without a file)."""
    sent = message.document
    if sent is None:
        return None
    limit = min(context.services.settings.disclosure.max_document_bytes, TELEGRAM_DOWNLOAD_LIMIT)
    if sent.file_size is not None and sent.file_size > limit:
        raise DocumentRefused(f"{sent.file_size} bytes", code="size")
    telegram_file = await sent.get_file()
    content = bytes(await telegram_file.download_as_bytearray())
    return check_file(
        sent.file_name or "", content, max_bytes=limit, telegram_file_id=sent.file_id
    )


async def officer_replied(update: Update, context: BotContext) -> None:
    """Take an officer's reply to one of the bot's prompts."""
    message = update.effective_message
    if message is None or message.reply_to_message is None:
        return
    prompt = message.reply_to_message
    if prompt.from_user is None or prompt.from_user.id != context.bot.id:
        return
    found = _TAG.search(prompt.text or "")
    if found is None:
        return
    number, action, outcome = found.group(1), found.group(2), found.group(3)
    language = _language(context)
    chat_id = message.chat.id
    if not await _is_member(context, chat_id, message.from_user):
        await message.reply_text(t("dpt_not_member", language))
        return
    ticket, problem = await _ticket_of_chat(context, chat_id, number)
    if ticket is None or problem:
        await message.reply_text(_problem_text(problem or "unknown", number, language))
        return
    user = message.from_user
    assert user is not None
    actor = Actor.department(ticket.department_id or "", str(user.id), user.full_name)
    desk = context.services.tickets
    text = message.text or message.caption or ""
    if message.document is not None and not (action == "reply" and outcome):
        await message.reply_text(t("dpt_document_only_disclosure", language))
        return
    if action == "reply" and outcome and outcome != "disclosed" and not text.strip():
        # The reply is the reason here: a file without a caption says nothing of why.
        await message.reply_text(t("dpt_bad_reason", language))
        return
    try:
        document = await _document_of(message, context)
    except DocumentRefused as refused:
        await message.reply_text(
            t(
                "dpt_bad_document",
                language,
                problem=t(f"dpt_document_{refused.code}", language),
                **_document_limits(context),
            )
        )
        return
    try:
        if action == "reply":
            # A disclosure answer other than full disclosure is its reason (条例第三十六条).
            reason = text if outcome and outcome != "disclosed" else None
            await desk.reply(
                number, actor, text, outcome=outcome, reason=reason, document=document
            )
            done = t("dpt_done_reply", language, number=number)
        elif action == "back":
            await desk.hand_back(number, actor, text)
            done = t("dpt_done_back", language, number=number)
        elif action == "ask":
            await desk.ask_resident(number, actor, text)
            done = t("dpt_done_ask", language, number=number)
        else:
            parsed = _DAYS_AND_REASON.match(text)
            if parsed is None or not parsed.group(2).strip():
                await message.reply_text(t("dpt_bad_days", language))
                return
            extended = await desk.extend(number, actor, int(parsed.group(1)), parsed.group(2))
            date = (
                desk.policy.local_date(extended.reply_deadline).isoformat()
                if extended.reply_deadline
                else ""
            )
            done = t("dpt_done_ext", language, number=number, date=date)
    except TicketError as error:
        await message.reply_text(_error_text(error, ticket, context))
        return
    await message.reply_text(done)


# -- staff routing -------------------------------------------------------------------------


async def staff_assign_button(update: Update, context: BotContext) -> None:
    """Assign a triage ticket to the department on the pressed button."""
    query = update.callback_query
    assert query is not None
    assert query.data is not None
    language = _language(context)
    chosen = StaffAssign.decode(query.data)
    chat = update.effective_chat
    if (
        chat is None
        or chat.id != context.services.settings.telegram.staff_chat_id
        or not await is_staff(context, query.from_user)
    ):
        await query.answer(t("staff_only", language), show_alert=True)
        return
    if chosen is None:
        await query.answer(t("stale_button", language), show_alert=True)
        return
    desk = context.services.tickets
    user = query.from_user
    try:
        ticket = await desk.reassign(
            chosen.ticket_id,
            Actor.staff(str(user.id), user.full_name),
            chosen.department_id,
            from_triage=True,
        )
    except AlreadyRouted as done:
        # Pressed twice, or after someone else routed it: say what happened, change nothing.
        holder = (
            desk.department_name(done.department_id, language) or done.department_id
            if done.department_id
            else None
        )
        if holder is not None:
            text = t("stf_already_routed", language, number=done.number, department=holder)
        else:
            text = t("stf_no_longer_triage", language, number=done.number)
        await query.answer(str(text), show_alert=True)
        with contextlib.suppress(TelegramError):
            await query.edit_message_reply_markup(reply_markup=None)
        return
    except TicketError as error:
        await query.answer()
        message = update.effective_message
        if message is not None:
            await message.reply_text(t("stf_failed", language, reason=str(error)))
        return
    await query.answer()
    with contextlib.suppress(TelegramError):
        # The alert's department buttons are spent: the ticket has its department.
        await query.edit_message_reply_markup(reply_markup=None)
    message = update.effective_message
    if message is not None:
        name = desk.department_name(chosen.department_id, language) or chosen.department_id
        await message.reply_text(
            t("stf_assigned", language, name=user.full_name, number=ticket.number, department=name)
        )


async def _assign(
    update: Update, context: BotContext, ref: int | str, department_id: str, user: User
) -> None:
    language = _language(context)
    message = update.effective_message
    assert message is not None
    desk = context.services.tickets
    try:
        ticket = await desk.reassign(ref, Actor.staff(str(user.id), user.full_name), department_id)
    except TicketError as error:
        await message.reply_text(t("stf_failed", language, reason=str(error)))
        return
    name = desk.department_name(department_id, language) or department_id
    await message.reply_text(
        t("stf_assigned", language, name=user.full_name, number=ticket.number, department=name)
    )


async def staff_assign_command(update: Update, context: BotContext) -> None:
    """/assign TS-2026-000123 department-id"""
    message = update.effective_message
    assert message is not None
    language = _language(context)
    if not await is_staff(context, message.from_user, message):
        await message.reply_text(t("staff_only", language))
        return
    arguments = context.args or []
    departments = context.services.knowledge.kb.departments
    if (
        len(arguments) != 2
        or not _NUMBER.match(arguments[0].upper())
        or arguments[1] not in departments
    ):
        await message.reply_text(
            t("stf_assign_usage", language, ids=" ".join(sorted(departments)))
        )
        return
    assert message.from_user is not None
    await _assign(update, context, arguments[0].upper(), arguments[1], message.from_user)


async def staff_reject_command(update: Update, context: BotContext) -> None:
    """/reject TS-2026-000123 reason"""
    message = update.effective_message
    assert message is not None
    language = _language(context)
    if not await is_staff(context, message.from_user, message):
        await message.reply_text(t("staff_only", language))
        return
    arguments = context.args or []
    if len(arguments) < 2 or not _NUMBER.match(arguments[0].upper()):
        await message.reply_text(t("stf_reject_usage", language))
        return
    user = message.from_user
    assert user is not None
    reason = (message.text or "").split(None, 2)[2]
    try:
        ticket = await context.services.tickets.reject(
            arguments[0].upper(), Actor.staff(str(user.id), user.full_name), reason
        )
    except TicketError as error:
        await message.reply_text(t("stf_failed", language, reason=str(error)))
        return
    await message.reply_text(
        t("stf_rejected", language, name=user.full_name, number=ticket.number)
    )


def register(application: BotApplication) -> None:
    """Register the department chats' buttons and replies, and staff routing commands."""
    if served_group not in application.bot_data.served_groups:
        application.bot_data.served_groups.append(served_group)
    services = application.bot_data.services
    settings = services.settings if services else None
    chat_ids = sorted(
        {
            config.telegram_chat_id
            for config in (settings.departments.values() if settings else [])
            if config.telegram_chat_id is not None
        }
    )
    application.add_handler(
        CallbackQueryHandler(card_button, pattern=prefix_of(DepartmentAction, DisclosureOutcome))
    )
    if chat_ids:
        application.add_handler(
            MessageHandler(
                filters.Chat(chat_ids)
                & filters.REPLY
                & (filters.TEXT | filters.Document.ALL)
                & ~filters.COMMAND,
                officer_replied,
            )
        )
    application.add_handler(
        CallbackQueryHandler(staff_assign_button, pattern=StaffAssign.prefix())
    )
    staff_chat_id = settings.telegram.staff_chat_id if settings else None
    if staff_chat_id is not None:
        staff_chat = filters.Chat(staff_chat_id)
        application.add_handler(CommandHandler("assign", staff_assign_command, filters=staff_chat))
        application.add_handler(CommandHandler("reject", staff_reject_command, filters=staff_chat))
