"""Notices shown after an action ("answer sent"), carried across the redirect as a fixed code.

Only codes from this table are ever shown, so a crafted link cannot put words on a page.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from bot.tickets.desk import OFFICER_TEXT_LIMITS
from bot.tickets.messages import input_problem

# code: (kind, Chinese, English); kind "ok" or "error" picks the colour.
NOTICES: dict[str, tuple[str, str, str]] = {
    "delivered": ("ok", "答复已发送给群众。", "The answer was sent to the resident."),
    "queued": (
        "error",
        "答复已保存，暂时未能送达群众，系统会自动重试。",
        "The answer was saved but could not be sent just now; it will be sent again "
        "automatically.",
    ),
    "undeliverable": (
        "error",
        "答复已保存，但未能送达群众（对方可能已屏蔽机器人）。",
        "The answer was saved but could not be delivered (the resident may have blocked the bot).",
    ),
    "already_answered": (
        "error",
        "该问题已由其他工作人员答复，以下为已有答复。",
        "Someone else answered this question first; their answer is shown below.",
    ),
    "learn_learned": (
        "ok",
        "已将该问法加入知识库，机器人今后可直接回答。",
        "The phrasing was added to the knowledge base; the bot will answer it from now on.",
    ),
    "learn_duplicate": (
        "ok",
        "知识库中已有该问法，已标记为已学习。",
        "The knowledge base already had this phrasing; marked as learned.",
    ),
    "learn_unknown_item": ("error", "没有这个知识条目。", "There is no such knowledge item."),
    "learn_invalid": (
        "error",
        "未能写入知识库，请检查知识库文件。",
        "The knowledge base could not be updated; check its files.",
    ),
    "already_learned": ("error", "该问题已学习过。", "This question was already learned."),
    "acknowledged": ("ok", "已签收。", "Acknowledged."),
    "replied": ("ok", "答复已发送，群众将收到通知。", "Reply sent; the resident is notified."),
    "returned": (
        "ok",
        "已退回，工单进入人工分派队列。",
        "Handed back; the ticket waits in triage.",
    ),
    "info_requested": (
        "ok",
        "已向群众发出补充材料的请求。",
        "The resident was asked for more information.",
    ),
    "extended": ("ok", "答复期限已延长。", "The reply deadline was extended."),
    "reassigned": ("ok", "已分派给所选部门。", "Assigned to the chosen department."),
    "rejected": ("ok", "已不予受理，群众将看到理由。", "Rejected; the resident sees the reason."),
    "not_allowed": (
        "error",
        "工单当前状态不允许此操作（可能已被他人处理），请查看最新状态。",
        "The ticket's state does not allow this (someone may have acted on it); see its state.",
    ),
    "invalid": ("error", "填写的内容不完整或过长。", "Something is missing or too long."),
    "reason_required": (
        "error",
        "除“予以公开”外，必须填写“理由”一栏（会告诉申请人）。",
        "The “Reason” field is required for any outcome but “disclosed” (the applicant is "
        "told it).",
    ),
    "document_refused": (
        "error",
        "“公开的文件”未接受：文件为空、过大，或不是所列的类型。",
        "The “Document” file was not accepted: it is empty, too large, or not of a listed type.",
    ),
    "document_url_invalid": (
        "error",
        "“文件链接”须为 http:// 或 https:// 地址。",
        "The “Document link” must be an http:// or https:// address.",
    ),
    "user_created": ("ok", "账号已创建。", "Account created."),
    "user_updated": ("ok", "账号已更新。", "Account updated."),
    "kb_proposed": (
        "ok",
        "修改已提交，等待审核。",
        "The change was proposed; it waits for a reviewer.",
    ),
    "kb_published": (
        "ok",
        "已发布：知识库文件已更新，机器人几秒内按新内容回答。",
        "Published: the knowledge base file was updated; the bot answers with it within seconds.",
    ),
    "kb_synonyms": (
        "ok",
        "同义词已发布，机器人几秒内按新的同义词匹配。",
        "The synonyms were published; the bot matches with them within seconds.",
    ),
    "kb_sent_back": ("ok", "已退回给作者。", "Sent back to the author."),
    "kb_confirmed": ("ok", "已确认该条目内容仍然准确。", "Confirmed the item is still correct."),
    "kb_invalid": (
        "error",
        "无法恢复这个版本（条目可能已下架或版本不存在）。",
        "This version cannot be restored (the item may be retired or the version missing).",
    ),
}

# A ticket text refused for being empty or too long names the field and its limit:
# "empty_reply" → "答复内容不能为空，请填写后再提交（1–3000 字）。"
for _field, _limit in OFFICER_TEXT_LIMITS.items():
    for _problem in ("empty", "too_long"):
        NOTICES[f"{_problem}_{_field}"] = (
            "error",
            str(input_problem(_problem, _field, _limit, "zh")),
            str(input_problem(_problem, _field, _limit, "en")),
        )


def input_notice(code: str, field: str | None) -> str | None:
    """Return the notice code of a ticket text refused as empty or too long, if there is one."""
    candidate = f"{code}_{field}"
    return candidate if field and candidate in NOTICES else None


def notice(code: str, language: str) -> tuple[str, str] | None:
    """Return (kind, text) of a notice code in a language, None for an unknown code."""
    entry = NOTICES.get(code)
    if entry is None:
        return None
    kind, chinese, english = entry
    return kind, english if language == "en" else chinese


def redirect_with(
    request: web.Request, route: str, parts: Mapping[str, str], code: str
) -> web.HTTPSeeOther:
    """Return a redirect to a named route that shows a notice there."""
    url = request.app.router[route].url_for(**parts)
    return web.HTTPSeeOther(url.with_query(msg=code))
