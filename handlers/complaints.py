"""Filing a complaint, report, suggestion, help request or disclosure application, step by step.

    /complain or [📝 投诉·举报·建议] (cmp:start)
      TYPE ──▶ CATEGORY ──▶ DESCRIBE ──▶ (SIMILAR: "already reported? add your voice") ──▶ ATTACH
      (photos, location, address) ──▶ CONTACT (anonymous / share / keep private; a disclosure
      application needs the applicant) ──▶ NAME ──▶ PHONE ──▶ REVIEW ──▶ submit: stored first,
      then the resident is told the ticket number and the reply deadline.

A message that describes a problem ("我家楼下的路灯坏了") can start the form too: its "file it"
button (cmp:q:<question>, offered by handlers/questions.py) fills in the type
(bot.answering.intents.ticket_type_for), the category (bot.tickets.routing.guess_category) and
the description from the question's text, and lands on the step after the description, or on
the category or the description step when either cannot be taken from the text.

Every step has "back" and "cancel"; /cancel works too. The half-filled form lives in user_data
and the conversation is persistent (the database persistence), so a restart of the bot in the
middle of a form loses nothing. The form's buttons are the Complaint* kinds of
bot/telegram/callback_data.py. What residents see is described in docs/tickets.md.
"""

from __future__ import annotations

import contextlib
import functools
import math
import secrets
import time
import warnings
from collections.abc import Callable, Coroutine
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.ext import (
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    TypeHandler,
    filters,
)
from telegram.warnings import PTBUserWarning

from bot.answering.intents import ticket_type_for
from bot.core.config import TICKET_TYPES
from bot.core.i18n import Html, add_strings, t
from bot.core.phones import InvalidPhone, normalise_phone, shared_contact_phone
from bot.core.text import normalize
from bot.telegram.callback_data import (
    ComplaintCategory,
    ComplaintCategoryPage,
    ComplaintContact,
    ComplaintFromQuestion,
    ComplaintStep,
    ComplaintType,
    ComplaintVoice,
    button,
    prefix_of,
)
from bot.telegram.context import BotApplication, BotContext
from bot.telegram.editing import edit_pressed_message
from bot.tickets.desk import (
    ANONYMOUS_TYPES,
    InvalidTicketInput,
    PhotoRef,
    TicketDraft,
    TicketError,
    clean_text,
)
from bot.tickets.messages import type_name
from bot.tickets.routing import complaint_category_name, guess_category
from handlers.browse import pager

CONVERSATION = "complaint_form"
DRAFT = "complaint"
FORM_KEY = "key"
# In the draft: the question whose text the form was started from (its description is kept).
FROM_QUESTION = "from_question"

TYPE, CATEGORY, DESCRIBE, SIMILAR, ATTACH, CONTACT, NAME, PHONE, REVIEW = range(9)
BACK = {CATEGORY: TYPE, DESCRIBE: CATEGORY, SIMILAR: DESCRIBE, ATTACH: DESCRIBE,
        CONTACT: ATTACH, NAME: CONTACT, PHONE: NAME, REVIEW: CONTACT}  # fmt: skip
CATEGORIES_PER_PAGE = 10
FormStep = Callable[[Update, BotContext], Coroutine[Any, Any, int]]

add_strings(
    "complaints",
    {
        "cmp_choose_type": {
            "zh": "<b>请选择事项类型</b>\n"
            "• 投诉：对政府部门或公共服务不满意\n"
            "• 举报：反映违法违规行为，可以匿名\n"
            "• 建议：对工作提出意见建议\n"
            "• 求助：遇到困难需要帮助\n"
            "• 政府信息公开申请：申请公开政府信息（需实名，法定 20 个工作日内答复）",
            "en": "<b>What would you like to file?</b>\n"
            "• Complaint: you are unhappy with a public service or office\n"
            "• Report: something unlawful; you may stay anonymous\n"
            "• Suggestion: an idea to do things better\n"
            "• Help request: you need help with a difficulty\n"
            "• Information disclosure application: ask for government information (with "
            "your name; answered within 20 working days by law)",
        },
        "cmp_button_complaint": {"zh": "📢 投诉", "en": "📢 Complaint"},
        "cmp_button_report": {"zh": "🚨 举报", "en": "🚨 Report"},
        "cmp_button_suggestion": {"zh": "💡 建议", "en": "💡 Suggestion"},
        "cmp_button_help": {"zh": "🆘 求助", "en": "🆘 Help request"},
        "cmp_button_disclosure": {"zh": "📂 政府信息公开申请", "en": "📂 Disclosure application"},
        "cmp_choose_category": {
            "zh": "<b>{type}</b>：请选择类别（第 {page}/{pages} 页）",
            "en": "<b>{type}</b>: choose a category (page {page} of {pages})",
        },
        "cmp_describe": {
            "zh": "请用文字描述具体情况（{low}–{high} 字）：发生了什么、在哪里、从什么时候开始。\n"
            "照片和位置可以在下一步添加。",
            "en": "Describe what happened in words ({low}–{high} characters): what, where, "
            "and since when. You can add photos and the place in the next step.",
        },
        "cmp_describe_disclosure": {
            "zh": "请写明申请公开的政府信息（名称、文号，或便于查找的描述）和用途（{low}–{high} 字）。",
            "en": "Describe the government information you ask for (title, document number, or "
            "a description that lets it be found) and what it is for ({low}–{high} characters).",
        },
        "cmp_too_short": {
            "zh": "描述太短了，请至少写 {low} 个字，让承办部门看得明白。",
            "en": "That is too short: please write at least {low} characters so the "
            "department understands.",
        },
        "cmp_too_long": {
            "zh": "描述太长了（{length} 字），最多 {high} 字，请精简后重新发送。",
            "en": "That is too long ({length} characters); at most {high}. Please shorten it "
            "and send it again.",
        },
        "cmp_text_please": {
            "zh": "请先用文字描述情况；照片和位置在下一步添加。",
            "en": "Please describe it in words first; photos and the place come next.",
        },
        "cmp_similar": {
            "zh": "已经有居民反映过类似的问题：\n{items}\n\n如果是同一件事，点“附议”即可，不用重复提交；"
            "不是的话，请继续提交。",
            "en": "Other residents have reported something similar:\n{items}\n\nIf it is the "
            "same thing, add your voice instead of filing again; if not, go on filing.",
        },
        "cmp_similar_item": {
            "zh": "• <b>{number}</b>（{date}，{supporters} 人附议）：{excerpt}",
            "en": "• <b>{number}</b> ({date}, {supporters} supporters): {excerpt}",
        },
        "cmp_button_voice": {"zh": "👍 附议", "en": "👍 Add my voice to"},
        "cmp_button_own": {"zh": "📝 不是同一件事，继续提交", "en": "📝 Not the same: go on"},
        "cmp_voice_added": {
            "zh": "✅ 已为 <b>{number}</b> 附议，目前共 {count} 人。进展可以用 /status 查看。",
            "en": "✅ You added your voice to <b>{number}</b> ({count} in all). Follow it "
            "with /status.",
        },
        "cmp_voice_refused": {
            "zh": "这件事已不能附议（可能已办结，或您已附议过）。请继续提交您自己的。",
            "en": "You cannot add your voice to that one (it may be closed, or you already "
            "did). Please go on filing your own.",
        },
        "cmp_attach": {
            "zh": "可以补充<b>照片</b>（最多 {high} 张）和<b>地点</b>：\n• 发送照片\n"
            "• 发送位置（📎 → 位置）\n• 或直接输入地址\n完成后点“下一步”；没有也可以直接点“下一步”。",
            "en": "You can add <b>photos</b> (at most {high}) and the <b>place</b>:\n"
            "• send photos\n• share a location (📎 → Location)\n• or type the address\n"
            "Press “Next” when done, or right away if you have none.",
        },
        "cmp_photo_added": {
            "zh": "📷 已收到照片 {count}/{high}。",
            "en": "📷 Photo {count} of {high} received.",
        },
        "cmp_photo_limit": {
            "zh": "最多 {high} 张照片，这张没有添加。",
            "en": "At most {high} photos; this one was not added.",
        },
        "cmp_location_added": {"zh": "📍 已记录位置。", "en": "📍 Location noted."},
        "cmp_place_added": {"zh": "📍 已记录地点：{place}", "en": "📍 Place noted: {place}"},
        "cmp_place_too_long": {
            "zh": "地址太长了，最多 {high} 字。",
            "en": "That address is too long; at most {high} characters.",
        },
        "cmp_contact_report": {
            "zh": "<b>举报可以匿名。</b>\n• 匿名：承办部门看不到您的任何身份信息；处理进展仍会在这里通知您。\n"
            "• 实名：您的姓名和电话会提供给承办部门，便于核实和反馈。\n"
            "无论哪种，您的 Telegram 账号都不会提供给任何部门。",
            "en": "<b>A report may be anonymous.</b>\n• Anonymous: the department sees nothing "
            "about who you are; you still get the progress here.\n• With your name: your "
            "name and phone go to the department, to check facts and call you back.\n"
            "Either way, your Telegram account is never given to any department.",
        },
        "cmp_contact_general": {
            "zh": "<b>承办部门可以看到您的姓名和电话吗？</b>\n• 提供：部门可以联系您核实情况。\n"
            "• 不提供：部门只看到您反映的内容；答复仍会发到这里。\n"
            "您的 Telegram 账号不会提供给任何部门。",
            "en": "<b>May the department see your name and phone?</b>\n• Yes: the department "
            "can contact you to check facts.\n• No: the department sees only what you "
            "wrote; the answer still comes here.\nYour Telegram account is never given to any "
            "department.",
        },
        "cmp_contact_disclosure": {
            "zh": "依申请公开需要申请人的姓名和联系方式（《政府信息公开条例》第二十九条），"
            "这些信息会提供给承办机关。",
            "en": "A disclosure application needs the applicant's name and contact (article "
            "29 of the Regulations on Government Information Disclosure); they go to the "
            "office handling it.",
        },
        "cmp_button_anonymous": {"zh": "🕶 匿名举报", "en": "🕶 Anonymous"},
        "cmp_button_named": {"zh": "👤 实名举报", "en": "👤 With my name"},
        "cmp_button_share": {"zh": "👤 提供姓名和电话", "en": "👤 Share name and phone"},
        "cmp_button_private": {"zh": "🙈 不提供", "en": "🙈 Do not share"},
        "cmp_ask_name": {
            "zh": "请输入您的姓名（或单位名称）：",
            "en": "Your name (or your organisation's):",
        },
        "cmp_ask_phone": {
            "zh": "请输入联系电话（手机号、带区号的固定电话，或以 + 开头的国际号码）：",
            "en": "Your phone number (mobile, landline with its area code, or international "
            "starting with +):",
        },
        "cmp_bad_phone": {
            "zh": "没能识别这个电话号码。请输入：\n• 手机号，如 13800000000\n"
            "• 带区号的固定电话，如 010-12345678\n"
            "• 国际号码，以 + 和国家代码开头，如 +44 20 7946 0958",
            "en": "That phone number was not recognised. Please type:\n"
            "• a mobile number, e.g. 13800000000\n"
            "• a landline with its area code, e.g. 010-12345678\n"
            "• an international number starting with + and the country code, "
            "e.g. +44 20 7946 0958",
        },
        "cmp_name_bad": {
            "zh": "请输入 1–{high} 个字的姓名。",
            "en": "Please type a name of 1 to {high} characters.",
        },
        "cmp_review": {
            "zh": "<b>请确认您的{type}</b>\n类别：{category}\n内容：\n<blockquote>{description}</blockquote>\n"
            "照片：{photos} 张\n地点：{place}\n身份：{identity}\n\n提交后会立即生成工单号，并告诉您答复期限。",
            "en": "<b>Please check your {type}</b>\nCategory: {category}\nText:\n"
            "<blockquote>{description}</blockquote>\nPhotos: {photos}\nPlace: {place}\n"
            "Identity: {identity}\n\nOn submitting you get the ticket number and the reply "
            "deadline at once.",
        },
        "cmp_identity_anonymous": {
            "zh": "匿名（承办部门看不到您的身份）",
            "en": "anonymous (the department does not see who you are)",
        },
        "cmp_identity_shared": {
            "zh": "提供给承办部门：{name}，{phone}",
            "en": "shared with the department: {name}, {phone}",
        },
        "cmp_identity_private": {
            "zh": "不提供给承办部门",
            "en": "not shared with the department",
        },
        "cmp_place_none": {"zh": "未提供", "en": "none"},
        "cmp_place_map": {"zh": "已发送位置", "en": "location shared"},
        "cmp_filed": {
            "zh": "✅ <b>已受理</b>，工单号 <b>{number}</b>\n{routing}\n答复期限：{date}（{days} 个工作日）。\n"
            "处理进展会在这里通知您，也可以随时发送 /status 查看。",
            "en": "✅ <b>Received</b>: ticket <b>{number}</b>\n{routing}\nReply due by {date} "
            "({days} working days).\nYou will be told here as it progresses; /status shows it "
            "any time.",
        },
        "cmp_routed": {"zh": "已转交{department}办理。", "en": "It is with {department}."},
        "cmp_triage": {
            "zh": "工作人员正在确定承办部门，确定后会通知您。",
            "en": "Staff are choosing the department and will tell you which.",
        },
        "cmp_failed": {
            "zh": "抱歉，没能提交：{reason}。请修改后再试。",
            "en": "Sorry, this could not be filed: {reason}. Please change it and try again.",
        },
        "cmp_expired": {
            "zh": "您的表单很久没有继续，已自动取消，没有提交任何内容。需要时请发送 /complain 重新开始。",
            "en": "Your form was left unfinished for a long time and has been cancelled; "
            "nothing was sent. Send /complain to start again.",
        },
        "cmp_cancelled": {
            "zh": "已取消，没有提交任何内容。需要时可以随时发送 /complain 重新开始。",
            "en": "Cancelled; nothing was sent. Send /complain to start again any time.",
        },
        "cmp_use_buttons": {
            "zh": "请点上面的按钮继续，或点“取消”。",
            "en": "Please use the buttons above, or press “Cancel”.",
        },
        "cmp_button_file_as": {"zh": "📝 登记为{type}", "en": "📝 File it as a {type}"},
        "cmp_from_question": {
            "zh": "📝 好的，按<b>{type}</b>为您登记。",
            "en": "📝 Filing it as a <b>{type}</b>.",
        },
        "cmp_prefilled": {
            "zh": "已根据您的消息填好（要修改请点“⬅️ 上一步”）：",
            "en": "Filled in from your message (press “⬅️ Back” to change it):",
        },
        "cmp_prefilled_category": {"zh": "类别：{category}", "en": "Category: {category}"},
        "cmp_prefilled_description": {
            "zh": "内容：\n<blockquote>{description}</blockquote>",
            "en": "Text:\n<blockquote>{description}</blockquote>",
        },
        "cmp_button_back": {"zh": "⬅️ 上一步", "en": "⬅️ Back"},
        "cmp_button_cancel": {"zh": "✖️ 取消", "en": "✖️ Cancel"},
        "cmp_button_next": {"zh": "➡️ 下一步", "en": "➡️ Next"},
        "cmp_button_submit": {"zh": "✅ 确认提交", "en": "✅ Submit"},
    },
)

# Why a draft was refused (InvalidTicketInput.code), as the resident reads it.
add_strings(
    "complaints_reasons",
    {
        "cmp_reason_empty": {"zh": "内容为空", "en": "the text is empty"},
        "cmp_reason_too_long": {"zh": "内容太长", "en": "the text is too long"},
        "cmp_reason_too_short": {"zh": "描述太短", "en": "the description is too short"},
        "cmp_reason_photos": {"zh": "照片太多", "en": "too many photos"},
        "cmp_reason_category": {"zh": "类别已不存在", "en": "the category no longer exists"},
        "cmp_reason_applicant": {
            "zh": "缺少申请人姓名或电话",
            "en": "the applicant's name or phone is missing",
        },
        "cmp_reason_phone": {"zh": "联系电话无法识别", "en": "the phone number is not valid"},
        "cmp_reason_other": {"zh": "内容不完整", "en": "something is missing"},
    },
)


def _new_draft(**fields: Any) -> dict[str, Any]:
    """Return a new form; its key is saved with it from its first step, so that submitting
    it twice (a button handled again after a crash) files one ticket."""
    return {"photos": [], FORM_KEY: secrets.token_hex(16)} | fields


def _draft(context: BotContext) -> dict[str, Any]:
    data = context.user_data if context.user_data is not None else {}
    draft = data.get(DRAFT)
    if not isinstance(draft, dict):
        draft = _new_draft()
        data[DRAFT] = draft
    return draft


def _touch(context: BotContext) -> dict[str, Any]:
    """Return the draft, noting that the resident is working on it now."""
    draft = _draft(context)
    draft["touched"] = time.time()
    return draft


def _stale(context: BotContext) -> bool:
    touched = _draft(context).get("touched")
    limit = context.services.settings.tickets.form_timeout_minutes * 60
    return isinstance(touched, int | float) and time.time() - touched > limit


def fresh(handler: FormStep) -> FormStep:
    """End a form that was left alone too long instead of taking a late message into it.

    PTB's conversation timeout does this while the bot runs; this also covers a restart, after
    which the timeout is gone but the persisted conversation is not.
    """

    @functools.wraps(handler)
    async def checked(update: Update, context: BotContext) -> int:
        if _stale(context):
            return await expired(update, context)
        return await handler(update, context)

    return checked


async def expired(update: Update, context: BotContext) -> int:
    """Tell the resident their unfinished form was dropped."""
    if context.user_data is not None:
        context.user_data.pop(DRAFT, None)
    message = update.effective_message
    if message is not None:
        await message.reply_text(t("cmp_expired", context.language))
    return ConversationHandler.END


def _nav(language: str, *, back: bool = True) -> list[InlineKeyboardButton]:
    row = [button(t("cmp_button_cancel", language), ComplaintStep("cancel"))]
    if back:
        row.insert(0, button(t("cmp_button_back", language), ComplaintStep("back")))
    return row


async def _answer(update: Update) -> None:
    if update.callback_query is not None:
        await update.callback_query.answer()


def _message(update: Update) -> Message:
    message = update.effective_message
    assert message is not None
    return message


# -- the prompts of each state ---------------------------------------------------------------------


async def ask_type(update: Update, context: BotContext) -> int:
    language = context.language
    _touch(context)["step"] = TYPE
    buttons = [
        [button(t(f"cmp_button_{kind}", language), ComplaintType(kind))] for kind in TICKET_TYPES
    ]
    buttons.append(_nav(language, back=False))
    await _message(update).reply_text(
        t("cmp_choose_type", language), reply_markup=InlineKeyboardMarkup(buttons)
    )
    return TYPE


async def ask_category(
    update: Update, context: BotContext, page: int = 0, *, edit: bool = False
) -> int:
    """Show a page of categories: a new message, or (`edit`, paging) the pressed one changed."""
    language = context.language
    _touch(context)["step"] = CATEGORY
    draft = _draft(context)
    desk = context.services.tickets
    categories = [c for c in desk.categories() if ComplaintCategory(c).fits()]
    pages = max(1, math.ceil(len(categories) / CATEGORIES_PER_PAGE))
    page = min(max(page, 0), pages - 1)
    shown = categories[page * CATEGORIES_PER_PAGE : (page + 1) * CATEGORIES_PER_PAGE]
    kb = context.services.knowledge.kb
    buttons = [
        [
            button(
                complaint_category_name(kb, category, language)[:60],
                ComplaintCategory(category),
            )
        ]
        for category in shown
    ]
    pages_row = pager(ComplaintCategoryPage, page, pages, language)
    if pages_row:
        buttons.append(pages_row)
    buttons.append(_nav(language))
    text = t(
        "cmp_choose_category",
        language,
        type=type_name(draft.get("type", ""), language),
        page=page + 1,
        pages=pages,
    )
    markup = InlineKeyboardMarkup(buttons)
    query = update.callback_query
    if edit and query is not None:
        # Paging changes the list in place, so the chat does not fill up with pages. A message
        # that cannot be edited (a forged press) is answered as an expired button.
        if await edit_pressed_message(query, language, text, reply_markup=markup):
            await query.answer()
        return CATEGORY
    await _message(update).reply_text(text, reply_markup=markup)
    return CATEGORY


async def ask_description(update: Update, context: BotContext) -> int:
    language = context.language
    _touch(context)["step"] = DESCRIBE
    limits = context.services.settings.tickets
    key = (
        "cmp_describe_disclosure"
        if _draft(context).get("type") == "disclosure"
        else "cmp_describe"
    )
    await _message(update).reply_text(
        t(key, language, low=limits.min_description_chars, high=limits.max_description_chars),
        reply_markup=InlineKeyboardMarkup([_nav(language)]),
    )
    return DESCRIBE


async def ask_attachments(update: Update, context: BotContext) -> int:
    language = context.language
    _touch(context)["step"] = ATTACH
    await _message(update).reply_text(
        t("cmp_attach", language, high=context.services.settings.tickets.max_photos),
        reply_markup=InlineKeyboardMarkup(
            [
                [button(t("cmp_button_next", language), ComplaintStep("next"))],
                _nav(language),
            ]
        ),
    )
    return ATTACH


async def ask_contact(update: Update, context: BotContext) -> int:
    language = context.language
    _touch(context)["step"] = CONTACT
    draft = _draft(context)
    kind = draft.get("type")
    if kind == "disclosure":
        draft["contact"] = "share"
        await _message(update).reply_text(t("cmp_contact_disclosure", language))
        return await ask_name(update, context)
    if kind in ANONYMOUS_TYPES:
        text = t("cmp_contact_report", language)
        choices = [("cmp_button_anonymous", "anon"), ("cmp_button_named", "share")]
    else:
        text = t("cmp_contact_general", language)
        choices = [("cmp_button_share", "share"), ("cmp_button_private", "private")]
    buttons = [[button(t(key, language), ComplaintContact(mode))] for key, mode in choices]
    buttons.append(_nav(language))
    await _message(update).reply_text(text, reply_markup=InlineKeyboardMarkup(buttons))
    return CONTACT


async def ask_name(update: Update, context: BotContext) -> int:
    language = context.language
    _touch(context)["step"] = NAME
    await _message(update).reply_text(
        t("cmp_ask_name", language), reply_markup=InlineKeyboardMarkup([_nav(language)])
    )
    return NAME


async def ask_phone(update: Update, context: BotContext) -> int:
    language = context.language
    _touch(context)["step"] = PHONE
    await _message(update).reply_text(
        t("cmp_ask_phone", language), reply_markup=InlineKeyboardMarkup([_nav(language)])
    )
    return PHONE


async def ask_review(update: Update, context: BotContext) -> int:
    language = context.language
    _touch(context)["step"] = REVIEW
    draft = _draft(context)
    mode = draft.get("contact")
    if mode == "anon":
        identity = t("cmp_identity_anonymous", language)
    elif mode == "share":
        identity = t(
            "cmp_identity_shared",
            language,
            name=draft.get("name", ""),
            phone=draft.get("phone", ""),
        )
    else:
        identity = t("cmp_identity_private", language)
    if draft.get("place"):
        place: str | Html = draft["place"]
    elif draft.get("latitude") is not None:
        place = t("cmp_place_map", language)
    else:
        place = t("cmp_place_none", language)
    kb = context.services.knowledge.kb
    await _message(update).reply_text(
        t(
            "cmp_review",
            language,
            type=type_name(draft.get("type", ""), language),
            category=complaint_category_name(kb, draft.get("category", ""), language),
            description=draft.get("description", ""),
            photos=len(draft.get("photos", [])),
            place=place,
            identity=identity,
        ),
        reply_markup=InlineKeyboardMarkup(
            [
                [button(t("cmp_button_submit", language), ComplaintStep("submit"))],
                _nav(language),
            ]
        ),
    )
    return REVIEW


PROMPTS = {
    TYPE: ask_type,
    CATEGORY: ask_category,
    DESCRIBE: ask_description,
    ATTACH: ask_attachments,
    CONTACT: ask_contact,
    NAME: ask_name,
    PHONE: ask_phone,
    REVIEW: ask_review,
}


# -- what the resident does ------------------------------------------------------------------------


async def start_form(update: Update, context: BotContext) -> int:
    """Start a new form (a form in progress is replaced)."""
    await _answer(update)
    if context.user_data is not None:
        context.user_data[DRAFT] = _new_draft()
    return await ask_type(update, context)


def _unchanged(context: BotContext) -> int | None:
    """Return the state after a press that changes nothing: a form in progress stays on its
    step (None), and no form is begun (END, so that no timeout of a form is set either)."""
    data = context.user_data
    if data is not None and isinstance(data.get(DRAFT), dict):
        return None
    return ConversationHandler.END


def ticket_type_of(text: str) -> str:
    """Return the ticket type a resident's message about a problem suggests."""
    suggested = ticket_type_for(normalize(text))
    return suggested if suggested in TICKET_TYPES else "report"


def file_question_button(question_id: int, text: str, language: str) -> InlineKeyboardButton:
    """Return the button that files a question's text as a ticket of the type it suggests."""
    name = type_name(ticket_type_of(text), language)
    return button(t("cmp_button_file_as", language, type=name), ComplaintFromQuestion(question_id))


async def start_from_question(update: Update, context: BotContext) -> int | None:
    """Start a new form from the resident's own message: type, category and description filled
    in from its text where they can be. A button naming someone else's question, or none,
    changes nothing (a form in progress stays where it was)."""
    query = update.callback_query
    assert query is not None
    language = context.language
    pressed = ComplaintFromQuestion.decode(query.data)
    resident = context.resident
    if pressed is None or resident is None:
        await query.answer(t("stale_button", language), show_alert=True)
        return _unchanged(context)
    services = context.services
    question = await services.questions.owned(pressed.question_id, resident.id)
    if question is None:
        await query.answer(t("not_your_button", language), show_alert=True)
        return _unchanged(context)
    await query.answer()
    ticket_type = ticket_type_of(question.text)
    category = guess_category(services.knowledge.kb, question.text)
    if category not in services.tickets.categories():
        category = None
    draft: dict[str, Any] = _new_draft(type=ticket_type, **{FROM_QUESTION: question.id})
    if context.user_data is not None:
        context.user_data[DRAFT] = draft
    try:
        description: str | None = services.tickets.clean_description(question.text)
    except InvalidTicketInput:
        description = None  # too short (or too long) for a ticket: the resident writes it
    lines = [t("cmp_from_question", language, type=type_name(ticket_type, language))]
    if category is not None or description is not None:
        lines.append(t("cmp_prefilled", language))
    if category is not None:
        draft["category"] = category
        name = complaint_category_name(services.knowledge.kb, category, language)
        lines.append(t("cmp_prefilled_category", language, category=name))
    if description is not None:
        draft["description"] = description
        lines.append(t("cmp_prefilled_description", language, description=description))
    await _message(update).reply_text(Html("\n".join(lines)))
    if category is None:
        return await ask_category(update, context)
    if description is None:
        return await ask_description(update, context)
    return await after_description(update, context, description)


async def chose_type(update: Update, context: BotContext) -> int:
    query = update.callback_query
    assert query is not None
    chosen = ComplaintType.decode(query.data)
    if chosen is None or chosen.ticket_type not in TICKET_TYPES:
        await query.answer(t("stale_button", context.language))
        return TYPE
    await query.answer()
    draft = _draft(context)
    if chosen.ticket_type != draft.get("type"):
        # Another type asks for its own description (a disclosure application's is different).
        draft.pop(FROM_QUESTION, None)
    draft["type"] = chosen.ticket_type
    return await ask_category(update, context)


async def turned_category_page(update: Update, context: BotContext) -> int:
    query = update.callback_query
    assert query is not None
    turned = ComplaintCategoryPage.decode(query.data)
    return await ask_category(update, context, turned.page if turned is not None else 0, edit=True)


async def chose_category(update: Update, context: BotContext) -> int:
    query = update.callback_query
    assert query is not None
    chosen = ComplaintCategory.decode(query.data)
    if chosen is None or chosen.category not in context.services.tickets.categories():
        await query.answer(t("stale_button", context.language))
        return await ask_category(update, context)
    await query.answer()
    draft = _draft(context)
    draft["category"] = chosen.category
    description = draft.get("description")
    if draft.get(FROM_QUESTION) is not None and isinstance(description, str) and description:
        # Started from a message whose words made the description already.
        return await after_description(update, context, description)
    return await ask_description(update, context)


@fresh
async def described(update: Update, context: BotContext) -> int:
    """Take the description, then offer similar open tickets or go on to attachments."""
    message = _message(update)
    language = context.language
    limits = context.services.settings.tickets
    try:
        # The desk's own check, the one filing applies again at the end.
        text = context.services.tickets.clean_description(message.text)
    except InvalidTicketInput as error:
        if error.code == "too_long":
            await message.reply_text(
                t(
                    "cmp_too_long",
                    language,
                    length=len(message.text or ""),
                    high=limits.max_description_chars,
                )
            )
        else:
            await message.reply_text(
                t("cmp_too_short", language, low=limits.min_description_chars)
            )
        return DESCRIBE
    return await after_description(update, context, text)


async def after_description(update: Update, context: BotContext, text: str) -> int:
    """Keep the description, then offer similar open tickets or go on to attachments."""
    message = _message(update)
    language = context.language
    draft = _draft(context)
    draft["description"] = text
    resident = context.resident
    similar = await context.services.tickets.similar_open_tickets(
        draft.get("type", ""),
        draft.get("category", ""),
        text,
        exclude_resident_id=resident.id if resident else None,
    )
    if not similar:
        return await ask_attachments(update, context)
    zone = context.services.tickets.policy.zone
    lines = [
        t(
            "cmp_similar_item",
            language,
            number=s.number,
            date=s.created_at.astimezone(zone).strftime("%Y-%m-%d"),
            supporters=s.supporters,
            excerpt=s.excerpt,
        )
        for s in similar
    ]
    voice = t("cmp_button_voice", language)
    buttons = [[button(f"{voice} {s.number}", ComplaintVoice(s.number))] for s in similar]
    buttons.append([button(t("cmp_button_own", language), ComplaintStep("own"))])
    buttons.append(_nav(language))
    _touch(context)["step"] = SIMILAR
    await message.reply_text(
        t("cmp_similar", language, items=Html("\n".join(lines))),
        reply_markup=InlineKeyboardMarkup(buttons),
    )
    return SIMILAR


async def added_voice(update: Update, context: BotContext) -> int:
    """Support an existing ticket instead of filing a new one."""
    query = update.callback_query
    assert query is not None
    language = context.language
    resident = context.resident
    voice = ComplaintVoice.decode(query.data)
    if resident is None:
        await query.answer(t("stale_button", language))
        return SIMILAR
    ticket = None
    if voice is not None:
        with contextlib.suppress(TicketError):
            ticket = await context.services.tickets.add_voice(voice.number, resident.id)
    if ticket is None:
        await query.answer()
        await _message(update).reply_text(t("cmp_voice_refused", language))
        return await ask_attachments(update, context)
    await query.answer()
    if context.user_data is not None:
        context.user_data.pop(DRAFT, None)
    await _message(update).reply_text(
        t("cmp_voice_added", language, number=ticket.number, count=ticket.supporters)
    )
    return ConversationHandler.END


async def file_own(update: Update, context: BotContext) -> int:
    await _answer(update)
    return await ask_attachments(update, context)


@fresh
async def added_photo(update: Update, context: BotContext) -> int:
    message = _message(update)
    language = context.language
    limit = context.services.settings.tickets.max_photos
    draft = _draft(context)
    photos: list[list[str]] = draft.setdefault("photos", [])
    if len(photos) >= limit or not message.photo:
        await message.reply_text(t("cmp_photo_limit", language, high=limit))
        return ATTACH
    largest = message.photo[-1]
    photos.append([largest.file_id, largest.file_unique_id])
    await message.reply_text(t("cmp_photo_added", language, count=len(photos), high=limit))
    return ATTACH


@fresh
async def added_location(update: Update, context: BotContext) -> int:
    message = _message(update)
    location = message.location
    if location is None:
        return ATTACH
    draft = _draft(context)
    draft["latitude"] = location.latitude
    draft["longitude"] = location.longitude
    await message.reply_text(t("cmp_location_added", context.language))
    return ATTACH


@fresh
async def added_place(update: Update, context: BotContext) -> int:
    message = _message(update)
    language = context.language
    limit = context.services.settings.tickets.max_contact_chars * 2
    try:
        place = clean_text(message.text, limit=limit, what="place")
    except InvalidTicketInput:
        await message.reply_text(t("cmp_place_too_long", language, high=limit))
        return ATTACH
    _draft(context)["place"] = place
    await message.reply_text(t("cmp_place_added", language, place=place))
    return ATTACH


async def attachments_done(update: Update, context: BotContext) -> int:
    await _answer(update)
    return await ask_contact(update, context)


async def chose_contact(update: Update, context: BotContext) -> int:
    query = update.callback_query
    assert query is not None
    chosen = ComplaintContact.decode(query.data)
    mode = chosen.mode if chosen is not None else None
    draft = _draft(context)
    allowed = ("anon", "share") if draft.get("type") in ANONYMOUS_TYPES else ("share", "private")
    if mode not in allowed:
        await query.answer(t("stale_button", context.language))
        return CONTACT
    await query.answer()
    draft["contact"] = mode
    if mode == "share":
        return await ask_name(update, context)
    draft.pop("name", None)
    draft.pop("phone", None)
    return await ask_review(update, context)


@fresh
async def named(update: Update, context: BotContext) -> int:
    message = _message(update)
    limit = context.services.settings.tickets.max_contact_chars
    try:
        name = clean_text(message.text, limit=limit, what="name")
    except InvalidTicketInput:
        await message.reply_text(t("cmp_name_bad", context.language, high=limit))
        return NAME
    _draft(context)["name"] = name
    return await ask_phone(update, context)


@fresh
async def phoned(update: Update, context: BotContext) -> int:
    """Take the phone number: checked against the numbering plans and kept as E.164."""
    message = _message(update)
    try:
        if message.contact is not None:
            # Telegram's "share my phone number": only the resident's own number is accepted.
            user = update.effective_user
            if user is None or message.contact.user_id != user.id:
                raise InvalidPhone("someone else's contact")
            phone = shared_contact_phone(message.contact.phone_number)
        else:
            phone = normalise_phone(message.text)
    except InvalidPhone:
        await message.reply_text(t("cmp_bad_phone", context.language))
        return PHONE
    _draft(context)["phone"] = phone
    return await ask_review(update, context)


async def submit(update: Update, context: BotContext) -> int:
    """File the ticket: stored first; only then is the resident told its number and deadline."""
    query = update.callback_query
    assert query is not None
    language = context.language
    draft = _draft(context)
    resident = context.resident
    desk = context.services.tickets
    mode = draft.get("contact")
    try:
        ticket_draft = TicketDraft(
            type=draft.get("type", ""),
            category=draft.get("category", ""),
            description=draft.get("description", ""),
            resident_id=resident.id if resident else None,
            language=language,
            photos=tuple(PhotoRef(p[0], p[1]) for p in draft.get("photos", []) if len(p) == 2),
            location_text=draft.get("place"),
            latitude=draft.get("latitude"),
            longitude=draft.get("longitude"),
            contact_name=draft.get("name") if mode == "share" else None,
            contact_phone=draft.get("phone") if mode == "share" else None,
            share_identity=mode == "share",
            anonymous=mode == "anon",
            form_key=draft.get(FORM_KEY),
        )
        filed = await desk.file(ticket_draft)
    except InvalidTicketInput as error:
        await query.answer()
        key = f"cmp_reason_{error.code}"
        reason = t(key if key in _REASONS else "cmp_reason_other", language)
        await _message(update).reply_text(t("cmp_failed", language, reason=reason))
        return REVIEW
    await query.answer()
    if context.user_data is not None:
        context.user_data.pop(DRAFT, None)
    if filed.department_id:
        routing = t(
            "cmp_routed",
            language,
            department=desk.department_name(filed.department_id, language) or "",
        )
    else:
        routing = t("cmp_triage", language)
    days = desk.policy.days_for(ticket_draft.type, ticket_draft.category).reply
    await _message(update).reply_text(
        t(
            "cmp_filed",
            language,
            number=filed.number,
            routing=routing,
            date=filed.reply_date.isoformat(),
            days=days,
        )
    )
    return ConversationHandler.END


_REASONS = {
    "cmp_reason_empty",
    "cmp_reason_too_long",
    "cmp_reason_too_short",
    "cmp_reason_photos",
    "cmp_reason_category",
    "cmp_reason_applicant",
    "cmp_reason_phone",
}


async def went_back(update: Update, context: BotContext) -> int:
    """Show the previous step again (the state is read from the conversation)."""
    await _answer(update)
    step = _draft(context).get("step")
    previous = BACK.get(step if isinstance(step, int) else TYPE, TYPE)
    return await PROMPTS[previous](update, context)


async def cancel(update: Update, context: BotContext) -> int:
    """Drop the form; nothing was sent."""
    await _answer(update)
    if context.user_data is not None:
        context.user_data.pop(DRAFT, None)
    await _message(update).reply_text(t("cmp_cancelled", context.language))
    return ConversationHandler.END


async def use_the_buttons(update: Update, context: BotContext) -> None:
    """Say that this step wants a button, not a message."""
    await _message(update).reply_text(t("cmp_use_buttons", context.language))


async def text_please(update: Update, context: BotContext) -> int:
    await _message(update).reply_text(t("cmp_text_please", context.language))
    return DESCRIBE


def build_form(timeout_minutes: int = 60) -> ConversationHandler[BotContext]:
    """Return the persistent conversation of the form."""
    private = filters.ChatType.PRIVATE
    text = private & filters.TEXT & ~filters.COMMAND
    anything_else = private & ~filters.COMMAND
    back = CallbackQueryHandler(went_back, pattern=ComplaintStep("back").pattern())
    # A message where a button is wanted: say so, and stay on the step.
    waiting = MessageHandler(anything_else, use_the_buttons)

    states: dict[object, list[Any]] = {
        TYPE: [CallbackQueryHandler(chose_type, pattern=ComplaintType.prefix()), waiting],
        CATEGORY: [
            CallbackQueryHandler(chose_category, pattern=ComplaintCategory.prefix()),
            CallbackQueryHandler(turned_category_page, pattern=ComplaintCategoryPage.matches),
            back,
            waiting,
        ],
        DESCRIBE: [
            MessageHandler(text, described),
            back,
            MessageHandler(anything_else, text_please),
        ],
        SIMILAR: [
            CallbackQueryHandler(added_voice, pattern=ComplaintVoice.prefix()),
            CallbackQueryHandler(file_own, pattern=ComplaintStep("own").pattern()),
            back,
            waiting,
        ],
        ATTACH: [
            MessageHandler(private & filters.PHOTO, added_photo),
            MessageHandler(private & filters.LOCATION, added_location),
            MessageHandler(text, added_place),
            CallbackQueryHandler(attachments_done, pattern=ComplaintStep("next").pattern()),
            back,
            waiting,
        ],
        CONTACT: [
            CallbackQueryHandler(chose_contact, pattern=ComplaintContact.prefix()),
            back,
            waiting,
        ],
        NAME: [MessageHandler(text, named), back, waiting],
        PHONE: [MessageHandler(text | (private & filters.CONTACT), phoned), back, waiting],
        REVIEW: [
            CallbackQueryHandler(submit, pattern=ComplaintStep("submit").pattern()),
            back,
            waiting,
        ],
        ConversationHandler.TIMEOUT: [TypeHandler(Update, expired)],
    }
    with warnings.catch_warnings():
        # The form mixes messages and buttons on purpose; PTB warns that button presses are then
        # tracked per chat rather than per message, which is exactly what a form wants.
        warnings.filterwarnings("ignore", category=PTBUserWarning, message=".*per_message.*")
        return ConversationHandler(
            entry_points=[
                CommandHandler("complain", start_form, filters=private),
                CallbackQueryHandler(start_form, pattern=ComplaintStep("start").pattern()),
                CallbackQueryHandler(start_from_question, pattern=ComplaintFromQuestion.prefix()),
            ],
            states=states,
            fallbacks=[
                CommandHandler("cancel", cancel, filters=private),
                CallbackQueryHandler(cancel, pattern=ComplaintStep("cancel").pattern()),
            ],
            name=CONVERSATION,
            persistent=True,
            allow_reentry=True,
            conversation_timeout=timeout_minutes * 60,
        )


async def stale_button(update: Update, context: BotContext) -> None:
    """Answer a button of a form that is over (submitted, cancelled, or from before)."""
    query = update.callback_query
    assert query is not None
    await query.answer(t("stale_button", context.language), show_alert=True)


def register(application: BotApplication) -> None:
    """Register the complaint form, and a polite answer for buttons of finished forms."""
    services = application.bot_data.services
    timeout = services.settings.tickets.form_timeout_minutes if services else 60
    application.add_handler(build_form(timeout))
    application.add_handler(
        CallbackQueryHandler(
            stale_button,
            pattern=prefix_of(ComplaintStep, ComplaintType, ComplaintCategory, ComplaintVoice),
        )
    )
