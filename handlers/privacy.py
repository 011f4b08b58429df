"""Residents' personal data: the notice at first contact, /privacy, /mydata and /forget.

    first contact      the short notice, once, before the resident's first message is handled
    /privacy           the notice again
    /mydata            everything held about the resident, as a JSON file (rate-limited)
    /forget            what will be erased and what kept → 🗑 erase (pv:forget) / cancel (pv:keep)

The work is `bot.tickets.privacy.PrivacyDesk`; what residents see is in docs/telegram.md and
README "Personal data".
"""

from __future__ import annotations

import logging

from telegram import InlineKeyboardMarkup, InputFile, Message, Update
from telegram.constants import ChatType
from telegram.ext import CallbackQueryHandler, CommandHandler, TypeHandler, filters

from bot.core.config import Settings
from bot.core.i18n import Html, add_strings, t
from bot.telegram.callback_data import PrivacyButton, button
from bot.telegram.context import BotApplication, BotContext
from bot.telegram.editing import edit_pressed_message
from bot.tickets.privacy import ExportTooSoon, ForgetReport

log = logging.getLogger(__name__)

# Right after handlers/guards.py loads the resident (group -10), before every other handler.
GROUP_NOTICE = -5

add_strings(
    "privacy",
    {
        "privacy_notice": {
            "zh": "🔒 <b>个人信息保护告知</b>\n"
            "为办理您的咨询和诉求，{city}政务服务机器人保存：您的 Telegram 账号和昵称、您提出的"
            "问题，以及您提交的工单（含您自愿提供的姓名、电话、照片、位置）和办理记录。\n"
            "<b>用途</b>：答复问题，转交承办部门办理，回访，统计（统计数据不含个人身份）。\n"
            "<b>保存期限</b>：问题内容保存 {question_days} 天；工单办结 {ticket_days} 天后删除"
            "其中的个人信息（政府信息公开申请 {disclosure_days} 天），工单内容和统计数据保留。\n"
            "<b>谁能看到</b>：本市工作人员和管理人员；承办部门只有在您同意时才能看到您的姓名"
            "和电话；匿名举报不与您的身份关联存储。\n"
            "发送 /mydata 获取您的数据副本，/forget 删除您的个人信息，/privacy 再次查看本告知。"
            "{link}",
            "en": "🔒 <b>How we handle your personal data</b>\n"
            "To answer your questions and handle your requests, the {city} public-service bot "
            "keeps your Telegram account and name, your questions, and the tickets you file "
            "(with the name, phone, photos and place you choose to give) and how they were "
            "handled.\n"
            "<b>Why</b>: to answer you, pass tickets to the department in charge, follow up, "
            "and count (figures hold no identities).\n"
            "<b>How long</b>: questions {question_days} days; personal data in a ticket "
            "{ticket_days} days after it is closed (disclosure applications "
            "{disclosure_days} days); the ticket's text and the figures stay.\n"
            "<b>Who sees it</b>: the city's staff and managers; a department sees your name "
            "and phone only if you agree; anonymous reports are not stored with your identity.\n"
            "Send /mydata for a copy of your data, /forget to erase it, /privacy to read this "
            "again.{link}",
        },
        "privacy_link": {
            "zh": '\n完整的隐私政策：<a href="{url}">{url}</a>',
            "en": '\nThe full privacy policy: <a href="{url}">{url}</a>',
        },
        "mydata_caption": {
            "zh": "📄 这是我们保存的您的全部数据（{tickets} 件工单，{questions} 个问题），"
            "UTF-8 编码的 JSON 文件。",
            "en": "📄 Everything we hold about you ({tickets} tickets, {questions} questions), "
            "as a JSON file in UTF-8.",
        },
        "mydata_too_soon": {
            "zh": "您刚刚获取过数据副本，请 {minutes} 分钟后再试。",
            "en": "You took a copy of your data a short while ago; please try again in "
            "{minutes} minutes.",
        },
        "mydata_unknown": {
            "zh": "我们没有保存关于您的数据。",
            "en": "We hold no data about you.",
        },
        "forget_prompt": {
            "zh": "🗑 <b>删除我的个人信息</b>\n"
            "将删除：您提出的问题内容，已办结工单中的姓名、电话、照片、位置和您的 Telegram "
            "账号；没有需要继续跟进的工单时，连同您的账号记录一起删除。\n"
            "将保留：仍在办理中的工单（办结后按期删除），保存期内的政府信息公开申请（法定要求），"
            "以及不含身份的统计数据。\n确定删除吗？此操作不能撤销。",
            "en": "🗑 <b>Erase my personal data</b>\n"
            "Erased: the texts of your questions; names, phones, photos, places and your "
            "Telegram account in closed tickets; and, when no ticket of yours is still being "
            "handled, the record of your account itself.\n"
            "Kept: tickets still being handled (erased on schedule once closed), disclosure "
            "applications within their legal retention period, and figures without "
            "identities.\nErase now? This cannot be undone.",
        },
        "forget_yes": {"zh": "🗑 确认删除", "en": "🗑 Erase"},
        "forget_no": {"zh": "取消", "en": "Cancel"},
        "forget_cancelled": {
            "zh": "已取消，您的数据没有改动。",
            "en": "Cancelled; your data is unchanged.",
        },
        "forget_done": {
            "zh": "✅ 已删除：{questions} 个问题的内容，{tickets} 件已办结工单中的个人信息。",
            "en": "✅ Erased: the texts of {questions} questions and the personal data in "
            "{tickets} closed tickets.",
        },
        "forget_account": {
            "zh": "您的账号记录也已删除；如再发消息，我们将把您当作新用户。",
            "en": "The record of your account is erased too; if you write again, you will be "
            "a new user to us.",
        },
        "forget_kept_open": {
            "zh": "仍在办理中，暂时保留（办结后按期删除）：{numbers}",
            "en": "Still being handled, kept for now (erased on schedule once closed): {numbers}",
        },
        "forget_kept_disclosure": {
            "zh": "政府信息公开申请，依法在保存期内保留：{numbers}",
            "en": "Disclosure applications, kept by law for their retention period: {numbers}",
        },
        "forget_kept_figures": {
            "zh": "不含身份的统计数据（如工单数量、满意率）保留。",
            "en": "Figures without identities (such as ticket counts and satisfaction rates) "
            "are kept.",
        },
    },
)


def notice_url(settings: Settings) -> str:
    """Return the address of the full privacy text ([privacy] notice_url, else the console's)."""
    if settings.privacy.notice_url:
        return settings.privacy.notice_url
    base = settings.web.base_url.rstrip("/")
    return f"{base}/privacy" if base.startswith(("http://", "https://")) else ""


def privacy_notice(settings: Settings, language: str) -> Html:
    """Return the short privacy notice in a language."""
    privacy = settings.privacy
    url = notice_url(settings)
    return t(
        "privacy_notice",
        language,
        city=settings.city_en if language == "en" else settings.city,
        question_days=privacy.question_days,
        ticket_days=privacy.closed_ticket_days,
        disclosure_days=privacy.disclosure_days,
        link=t("privacy_link", language, url=url) if url else Html(""),
    )


async def notice_at_first_contact(update: Update, context: BotContext) -> None:
    """Show the notice once, before a new resident's first message or press is handled."""
    resident = context.resident
    chat = update.effective_chat
    if (
        resident is None
        or resident.privacy_noticed
        or chat is None
        or chat.type != ChatType.PRIVATE
        or update.edited_message is not None
    ):
        return
    settings = context.services.settings
    message = update.message
    asked = message is not None and (message.text or "").split("@")[0].strip() == "/privacy"
    if not settings.privacy.first_contact_notice:
        return
    if not asked:
        await context.bot.send_message(chat.id, privacy_notice(settings, context.language))
    # (/privacy as the first message shows the notice itself.)
    await context.services.residents.mark_noticed(resident.telegram_user_id)


async def show_notice(update: Update, context: BotContext) -> None:
    """/privacy: the notice again."""
    message = update.effective_message
    assert message is not None
    await message.reply_text(privacy_notice(context.services.settings, context.language))


async def send_my_data(update: Update, context: BotContext) -> None:
    """/mydata: a JSON file of everything held about the resident."""
    message = update.effective_message
    assert message is not None
    language = context.language
    if context.resident is None:
        return
    export = await context.services.privacy.export(context.resident.telegram_user_id)
    if export is None:
        await message.reply_text(t("mydata_unknown", language))
    elif isinstance(export, ExportTooSoon):
        await message.reply_text(t("mydata_too_soon", language, minutes=export.minutes))
    else:
        await message.reply_document(
            InputFile(export.content, filename=export.filename),
            caption=t(
                "mydata_caption", language, tickets=export.tickets, questions=export.questions
            ),
        )


async def ask_to_forget(update: Update, context: BotContext) -> None:
    """/forget: say what would be erased and kept, and ask to confirm."""
    message = update.effective_message
    assert message is not None
    language = context.language
    await message.reply_text(
        t("forget_prompt", language),
        reply_markup=InlineKeyboardMarkup(
            [
                [
                    button(t("forget_yes", language), PrivacyButton("forget")),
                    button(t("forget_no", language), PrivacyButton("keep")),
                ]
            ]
        ),
    )


def forget_summary(report: ForgetReport, language: str) -> Html:
    """Return what /forget erased and kept, with why."""
    lines = [t("forget_done", language, questions=report.questions, tickets=report.tickets_erased)]
    if report.account_forgotten:
        lines.append(t("forget_account", language))
    if report.open_tickets:
        lines.append(t("forget_kept_open", language, numbers="、".join(report.open_tickets)))
    if report.retained_disclosures:
        numbers = "、".join(report.retained_disclosures)
        lines.append(t("forget_kept_disclosure", language, numbers=numbers))
    lines.append(t("forget_kept_figures", language))
    return Html("\n".join(lines))


async def confirm_forget(update: Update, context: BotContext) -> None:
    """pv:forget erases (the presser's own data only); pv:keep leaves everything as it is."""
    query = update.callback_query
    assert query is not None
    language = context.language
    pressed = PrivacyButton.decode(query.data)
    if pressed is None or context.resident is None:
        await query.answer(t("stale_button", language))
        return
    assert isinstance(query.message, Message)
    if pressed.action == "keep":
        if await edit_pressed_message(query, language, t("forget_cancelled", language)):
            await query.answer()
        return
    # The button goes first, so a second press finds nothing to press.
    if not await edit_pressed_message(query, language, t("forget_prompt", language)):
        return
    telegram_user_id = context.resident.telegram_user_id
    report = await context.services.privacy.forget(telegram_user_id)
    context.services.residents.forget(telegram_user_id)
    if context.user_data is not None:
        context.user_data.clear()
    if context.chat_data is not None:
        context.chat_data.clear()
    await query.answer()
    await query.message.reply_text(forget_summary(report, language))


def register(application: BotApplication) -> None:
    """Register the first-contact notice, /privacy, /mydata, /forget (private chats only)."""
    private = filters.ChatType.PRIVATE
    application.add_handler(TypeHandler(Update, notice_at_first_contact), group=GROUP_NOTICE)
    application.add_handler(CommandHandler("privacy", show_notice, filters=private))
    application.add_handler(CommandHandler("mydata", send_my_data, filters=private))
    application.add_handler(CommandHandler("forget", ask_to_forget, filters=private))
    application.add_handler(CallbackQueryHandler(confirm_forget, pattern=PrivacyButton.prefix()))
