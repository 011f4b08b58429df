"""What ticket messages say in Telegram: department cards, residents' notices, staff and supervisor
alerts, and the timeline as a resident reads it, in Simplified Chinese and English.

The delivery worker renders outbox payloads with these functions; the handlers render the same
things for /status. The buttons under these messages are Telegram's business and are added in
bot/telegram/ticket_keyboards.py. Every text from residents, officers and staff goes through
`t`, which escapes it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from typing import Any

from bot.core.i18n import Html, add_strings, t
from bot.core.vocabulary import DisclosureOutcome, EventKind, TicketType
from bot.tickets.desk import TimelineEntry

# Department name in a language, by id (None for no or an unknown department).
DepartmentNames = Callable[[str | None, str], str | None]

add_strings(
    "tickets",
    {
        # -- names ------------------------------------------------------------------------------
        "tkt_type_complaint": {"zh": "投诉", "en": "complaint"},
        "tkt_type_report": {"zh": "举报", "en": "report"},
        "tkt_type_suggestion": {"zh": "建议", "en": "suggestion"},
        "tkt_type_help": {"zh": "求助", "en": "help request"},
        "tkt_type_disclosure": {
            "zh": "政府信息公开申请",
            "en": "information disclosure application",
        },
        "tkt_status_received": {"zh": "已受理，正在分派", "en": "received, being routed"},
        "tkt_status_assigned": {"zh": "已转承办部门", "en": "with the department"},
        "tkt_status_acknowledged": {
            "zh": "承办部门已签收",
            "en": "acknowledged by the department",
        },
        "tkt_status_replied": {"zh": "已答复，待评价", "en": "answered, awaiting your rating"},
        "tkt_status_closed": {"zh": "已办结", "en": "closed"},
        "tkt_status_returned": {"zh": "退回，正在重新分派", "en": "handed back, being reassigned"},
        "tkt_status_rejected": {"zh": "不予受理", "en": "not accepted"},
        "tkt_staff": {"zh": "工作人员", "en": "staff"},
        "tkt_no_department": {
            "zh": "工作人员（正在确定承办部门）",
            "en": "staff (choosing the department)",
        },
        "tkt_which_ack": {"zh": "签收", "en": "acknowledgement"},
        "tkt_which_reply": {"zh": "答复", "en": "reply"},
        # -- the resident's timeline --------------------------------------------------------
        "tkt_ev_received": {"zh": "提交成功", "en": "Filed"},
        "tkt_ev_deadline_set": {"zh": "答复期限定为 {date}", "en": "Reply due by {date}"},
        "tkt_ev_deadline_ack": {
            "zh": "承办部门签收期限定为 {date}",
            "en": "The department must acknowledge by {date}",
        },
        "tkt_ev_assigned": {"zh": "转交{department}办理", "en": "Passed to {department}"},
        "tkt_ev_triage": {
            "zh": "工作人员正在确定承办部门",
            "en": "Staff are choosing the department",
        },
        "tkt_ev_acknowledged": {"zh": "{department}已签收", "en": "{department} acknowledged it"},
        "tkt_ev_info_requested": {
            "zh": "{department}请您补充：{body}",
            "en": "{department} asked you: {body}",
        },
        "tkt_ev_information_added": {"zh": "您补充了信息：{body}", "en": "You added: {body}"},
        "tkt_ev_replied": {"zh": "{department}答复：{body}", "en": "{department} replied: {body}"},
        "tkt_ev_returned": {
            "zh": "{department}退回（非本部门职责）：{body}",
            "en": "{department} handed it back (not theirs): {body}",
        },
        "tkt_ev_rejected": {"zh": "不予受理：{body}", "en": "Not accepted: {body}"},
        "tkt_ev_extended": {
            "zh": "答复期限延长至 {date}：{body}",
            "en": "Reply deadline extended to {date}: {body}",
        },
        "tkt_ev_reminder": {
            "zh": "已提醒承办部门：{which}期限 {date} 将至",
            "en": "The department was reminded: {which} due {date}",
        },
        "tkt_ev_overdue": {
            "zh": "{which}期限 {date} 已过",
            "en": "The {which} deadline {date} passed",
        },
        "tkt_ev_escalated": {"zh": "已提请督办", "en": "Escalated to the supervisor (督办)"},
        "tkt_ev_supporter_added": {
            "zh": "又有居民附议（共 {count} 人）",
            "en": "Another resident added their voice ({count} in all)",
        },
        "tkt_ev_rated": {"zh": "您的评价：{stars}{solved}", "en": "Your rating: {stars}{solved}"},
        "tkt_ev_rating_comment": {"zh": "您的评论：{body}", "en": "Your comment: {body}"},
        "tkt_ev_reopened": {
            "zh": "问题未解决，已重新交{department}办理",
            "en": "Not solved: reopened with {department}",
        },
        "tkt_ev_closed": {"zh": "已办结", "en": "Closed"},
        "tkt_ev_closed_reason": {"zh": "已办结：{body}", "en": "Closed: {body}"},
        "tkt_ev_other": {"zh": "{kind}", "en": "{kind}"},
        "tkt_solved_yes": {"zh": "（已解决）", "en": " (solved)"},
        "tkt_solved_no": {"zh": "（未解决）", "en": " (not solved)"},
        # -- notices pushed to the resident --------------------------------------------------
        "tkt_notice_acknowledged": {
            "zh": "📬 您的{type} <b>{number}</b> 已由{department}签收，答复期限 {date}。",
            "en": "📬 {department} acknowledged your {type} <b>{number}</b>; reply due by {date}.",
        },
        "tkt_notice_assigned": {
            "zh": "📨 您的{type} <b>{number}</b> 已转交{department}办理。{note}",
            "en": "📨 Your {type} <b>{number}</b> is now with {department}. {note}",
        },
        "tkt_notice_info_requested": {
            "zh": "❓ {department}需要您补充信息（<b>{number}</b>）：\n<blockquote>{question}</blockquote>\n"
            "请点下面的按钮补充。",
            "en": "❓ {department} needs more information about <b>{number}</b>:\n"
            "<blockquote>{question}</blockquote>\nPress the button below to answer.",
        },
        "tkt_notice_replied": {
            "zh": "💬 {department}答复了您的{type} <b>{number}</b>：\n<blockquote>{reply}</blockquote>\n"
            "您的问题解决了吗？",
            "en": "💬 {department} answered your {type} <b>{number}</b>:\n"
            "<blockquote>{reply}</blockquote>\nIs your problem solved?",
        },
        "tkt_notice_returned": {
            "zh": "🔄 <b>{number}</b>：{department}认为不属于本部门职责，已退回。原因：{reason}\n"
            "工作人员会重新分派，新的承办部门确定后会告诉您。",
            "en": "🔄 <b>{number}</b>: {department} says it is not theirs and handed it back. "
            "Reason: {reason}\nStaff will pass it to the right department and tell you which.",
        },
        "tkt_notice_rejected": {
            "zh": "⛔ <b>{number}</b> 不予受理。原因：{reason}",
            "en": "⛔ <b>{number}</b> was not accepted. Reason: {reason}",
        },
        "tkt_notice_extended": {
            "zh": "⏳ <b>{number}</b> 的答复期限延长 {days} 个工作日，至 {date}。原因：{reason}",
            "en": "⏳ The reply deadline of <b>{number}</b> is extended by {days} working days, "
            "to {date}. Reason: {reason}",
        },
        "tkt_notice_escalated": {
            "zh": "⏰ <b>{number}</b> 已超过答复期限（{date}），已提请督办部门督办，我们会继续跟进。",
            "en": "⏰ <b>{number}</b> is past its reply deadline ({date}). It has been escalated "
            "to the supervisor (督办); we keep following it.",
        },
        "tkt_notice_closed_timeout": {
            "zh": "✅ <b>{number}</b> 已办结（{days} 天内未收到您的评价）。",
            "en": "✅ <b>{number}</b> is closed (no rating within {days} days).",
        },
        "tkt_notice_closed_staff": {
            "zh": "✅ <b>{number}</b> 已办结：{reason}",
            "en": "✅ <b>{number}</b> is closed: {reason}",
        },
        "tkt_notice_reopened": {
            "zh": "🔁 <b>{number}</b> 已重新交{department}办理。",
            "en": "🔁 <b>{number}</b> was reopened with {department}.",
        },
        # -- the closing of a disclosure application (条例第三十六条) ---------------------------
        "tkt_outcome_disclosed": {"zh": "予以公开", "en": "disclosed"},
        "tkt_outcome_partly_disclosed": {"zh": "部分公开", "en": "partly disclosed"},
        "tkt_outcome_withheld": {"zh": "不予公开", "en": "withheld (not disclosed)"},
        "tkt_outcome_not_held": {
            "zh": "无法提供（本机关不掌握该信息、该信息不存在或需另行制作）",
            "en": "cannot be provided (this body does not hold it, it does not exist, or it "
            "would have to be newly made)",
        },
        "tkt_outcome_not_processed": {"zh": "不予处理", "en": "not processed"},
        "tkt_outcome_other": {"zh": "其他处理", "en": "other handling"},
        "tkt_disclosure_answered": {
            "zh": "📂 {department}对您的政府信息公开申请 <b>{number}</b> 作出答复。\n"
            "答复结果：<b>{outcome}</b>\n<blockquote>{reply}</blockquote>",
            "en": "📂 {department} has decided on your information disclosure application "
            "<b>{number}</b>.\nOutcome: <b>{outcome}</b>\n<blockquote>{reply}</blockquote>",
        },
        "tkt_disclosure_reason": {"zh": "理由：{reason}", "en": "Reason: {reason}"},
        "tkt_disclosure_file": {
            "zh": "📎 公开的信息见随后发送的文件《{name}》。",
            "en": "📎 The information disclosed is in the file “{name}” sent next.",
        },
        "tkt_disclosure_link": {
            "zh": "📎 公开的信息：{url}",
            "en": "📎 The information disclosed: {url}",
        },
        "tkt_disclosure_remedies": {
            "zh": "⚖️ 如对本答复不服，您可以自收到本答复之日起 {days} 日内向{review_body}申请行政复议，"
            "或者自收到本答复之日起 {months} 个月内向{court}提起行政诉讼。",
            "en": "⚖️ If you disagree with this decision, you may apply for administrative "
            "review (行政复议) to {review_body} within {days} days of receiving it, or bring an "
            "administrative lawsuit (行政诉讼) before {court} within {months} months of "
            "receiving it.",
        },
        "tkt_disclosure_rate": {
            "zh": "请为本次服务打分（1 星最差，5 星最好）。评分只针对服务，不影响您申请行政复议或提起行政诉讼的权利。",
            "en": "Please rate the service (1 star worst, 5 best). The rating is about the "
            "service only and does not affect your right to review or to sue.",
        },
        "tkt_disclosure_file_caption": {
            "zh": "📎 {number} 答复所附文件",
            "en": "📎 The file of the answer to {number}",
        },
        "tkt_ev_replied_disclosure": {
            "zh": "{department}答复（{outcome}）：{body}",
            "en": "{department} decided ({outcome}): {body}",
        },
        "tkt_ev_rated_service": {
            "zh": "您的服务评价：{stars}",
            "en": "Your service rating: {stars}",
        },
        "tkt_dept_rating_service": {
            "zh": "申请人服务评价：{stars}",
            "en": "Service rating: {stars}",
        },
        "tkt_button_view": {"zh": "🔎 查看详情", "en": "🔎 Details"},
        "tkt_button_remedies": {"zh": "⚖️ 不服答复怎么办", "en": "⚖️ If you disagree"},
        "tkt_button_add_information": {"zh": "📝 补充信息", "en": "📝 Add information"},
        "tkt_button_solved": {"zh": "✅ 已解决", "en": "✅ Solved"},
        "tkt_button_not_solved": {"zh": "❌ 未解决", "en": "❌ Not solved"},
        # -- the department's chat -------------------------------------------------------------
        "tkt_dept_new": {
            "zh": "🆕 <b>新{type}</b> {number}\n类别：{category}\n提交时间：{created}\n"
            "签收期限：{ack}　答复期限：{reply}\n\n<blockquote>{description}</blockquote>\n{details}",
            "en": "🆕 <b>New {type}</b> {number}\nCategory: {category}\nFiled: {created}\n"
            "Acknowledge by {ack}, reply by {reply}\n\n<blockquote>{description}</blockquote>\n"
            "{details}",
        },
        "tkt_dept_reopened": {
            "zh": "🔁 <b>居民表示问题未解决，重新交办</b> {number}\n评分：{stars}　{comment}\n"
            "新的答复期限：{reply}\n\n<blockquote>{description}</blockquote>\n{details}",
            "en": "🔁 <b>Reopened: the resident says it is not solved</b> {number}\n"
            "Rating: {stars} {comment}\nNew reply deadline: {reply}\n\n"
            "<blockquote>{description}</blockquote>\n{details}",
        },
        "tkt_dept_information": {
            "zh": "📎 <b>居民补充信息</b> {number}\n<blockquote>{body}</blockquote>{photos}",
            "en": "📎 <b>The resident added information</b> {number}\n"
            "<blockquote>{body}</blockquote>{photos}",
        },
        "tkt_dept_reminder": {
            "zh": "⏰ <b>提醒</b>：{number} 的{which}期限 {date} 将至，请及时处理。",
            "en": "⏰ <b>Reminder</b>: the {which} deadline of {number} is {date}.",
        },
        "tkt_dept_escalated": {
            "zh": "🚨 <b>督办</b>：{number} 已超过{which}期限（{date}），请立即处理。",
            "en": "🚨 <b>Escalated (督办)</b>: {number} is past its {which} deadline ({date}).",
        },
        "tkt_dept_closed": {
            "zh": "✅ {number} 已办结。{rating}",
            "en": "✅ {number} is closed. {rating}",
        },
        "tkt_dept_rating": {"zh": "居民评价：{stars}{solved}", "en": "Rating: {stars}{solved}"},
        "tkt_dept_rejected": {
            "zh": "⛔ {number} 已由工作人员作不予受理处理：{reason}",
            "en": "⛔ Staff did not accept {number}: {reason}",
        },
        "tkt_dept_withdrawn": {
            "zh": "↪️ {number} 已由工作人员改派其他部门，贵单位无需再处理。",
            "en": "↪️ Staff passed {number} to another department; nothing more to do here.",
        },
        "tkt_dept_photos": {
            "zh": "\n📷 照片 {count} 张（见上方）",
            "en": "\n📷 {count} photo(s) above",
        },
        "tkt_dept_location": {"zh": "📍 地点：{place}\n", "en": "📍 Place: {place}\n"},
        "tkt_dept_map": {
            "zh": "📍 位置：{latitude}, {longitude}\n",
            "en": "📍 Location: {latitude}, {longitude}\n",
        },
        "tkt_dept_identity": {
            "zh": "👤 联系人：{name}　{phone}（居民同意提供）\n",
            "en": "👤 Contact: {name} {phone} (shared with the resident's consent)\n",
        },
        "tkt_dept_no_identity": {
            "zh": "👤 居民未同意提供身份和联系方式；需要时请用“请居民补充”。\n",
            "en": "👤 The resident did not agree to share who they are; use “Ask the resident”.\n",
        },
        "tkt_dept_anonymous": {"zh": "👤 匿名举报\n", "en": "👤 Anonymous report\n"},
        "tkt_dept_supporters": {
            "zh": "👥 附议居民：{count} 人\n",
            "en": "👥 Supported by {count} residents\n",
        },
        "tkt_dept_ack": {"zh": "✅ 签收", "en": "✅ Acknowledge"},
        "tkt_dept_reply": {"zh": "💬 答复", "en": "💬 Reply"},
        "tkt_dept_hand_back": {"zh": "↩️ 退单", "en": "↩️ Not ours (hand back)"},
        "tkt_dept_ask": {"zh": "❓ 请居民补充", "en": "❓ Ask the resident"},
        "tkt_dept_extend": {"zh": "⏳ 延期", "en": "⏳ Extend"},
        # -- the staff chat and the supervisor's ---------------------------------------------
        "tkt_staff_triage": {
            "zh": "🗂 <b>待分派</b> {number}（{type} · {category}）\n<blockquote>{description}</blockquote>\n"
            "点下方按钮分派，或发送 /assign {number} 部门ID；不予受理：/reject {number} 原因",
            "en": "🗂 <b>To route</b> {number} ({type} · {category})\n"
            "<blockquote>{description}</blockquote>\nPress a button below or send "
            "/assign {number} DEPARTMENT-ID; to refuse it: /reject {number} REASON",
        },
        "tkt_staff_returned": {
            "zh": "🔄 <b>退单</b> {number}（{type} · {category}）：{department}退回。\n原因：{reason}\n"
            "请发送 /assign {number} 部门ID 重新分派。",
            "en": "🔄 <b>Handed back</b> {number} ({type} · {category}) by {department}.\n"
            "Reason: {reason}\nSend /assign {number} DEPARTMENT-ID to reassign it.",
        },
        "tkt_staff_delivery_failed": {
            "zh": "⚠️ <b>投递失败</b> {number} → {department}（{channel}），已尝试 {attempts} 次，"
            "已停止重试：{error}",
            "en": "⚠️ <b>Delivery failed</b> {number} → {department} ({channel}) after {attempts} "
            "tries; no more tries: {error}",
        },
        "tkt_supervisor_escalated": {
            "zh": "🚨 <b>督办</b> {number}（{type} · {category}）\n承办：{department}\n"
            "{which}期限 {date} 已过，尚未办理。",
            "en": "🚨 <b>Overdue</b> {number} ({type} · {category})\nHeld by: {department}\n"
            "The {which} deadline {date} passed without action.",
        },
    },
)


def _local_date(value: object, zone: dt.tzinfo) -> str:
    if not isinstance(value, str) or not value:
        return "—"
    try:
        return dt.datetime.fromisoformat(value).astimezone(zone).strftime("%Y-%m-%d")
    except ValueError:
        return value[:10]


def _local_time(value: object, zone: dt.tzinfo) -> str:
    if not isinstance(value, str) or not value:
        return "—"
    try:
        return dt.datetime.fromisoformat(value).astimezone(zone).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return value[:16]


def type_name(ticket_type: str, language: str) -> Html:
    """Return a ticket type's name in a language (empty for a type the bot does not know)."""
    return t(f"tkt_type_{ticket_type}", language) if ticket_type in _TYPES else Html("")


_TYPES = frozenset(TicketType)


def status_name(status: str, language: str) -> Html:
    return t(f"tkt_status_{status}", language)


def stars(rating: object) -> str:
    count = rating if isinstance(rating, int) and 1 <= rating <= 5 else 0
    return "★" * count + "☆" * (5 - count)


def _which(data: Mapping[str, Any], language: str) -> Html:
    return t("tkt_which_ack" if data.get("which") == "ack" else "tkt_which_reply", language)


# -- residents ---------------------------------------------------------------------------------


def resident_notice_text(
    payload: Mapping[str, Any], language: str, zone: dt.tzinfo, names: DepartmentNames
) -> Html | None:
    """Return the notice a resident gets about an event, or None when it needs none."""
    event = payload["event"]
    kind, body, data = event["kind"], event.get("body", ""), event.get("data") or {}
    number = payload["number"]
    department = names(payload.get("department_id"), language) or t("tkt_staff", language)
    kind_of = type_name(payload.get("type", ""), language)
    deadline = _local_date(payload.get("reply_deadline"), zone)
    if kind == "acknowledged":
        text = t(
            "tkt_notice_acknowledged",
            language,
            type=kind_of,
            number=number,
            department=department,
            date=deadline,
        )
    elif kind == "assigned":
        text = t(
            "tkt_notice_assigned",
            language,
            type=kind_of,
            number=number,
            department=department,
            note=body,
        )
    elif kind == "info_requested":
        text = t(
            "tkt_notice_info_requested",
            language,
            department=department,
            number=number,
            question=body,
        )
    elif kind == "replied" and payload.get("type") == TicketType.DISCLOSURE:
        text = disclosure_notice_text(payload, language, department)
    elif kind == "replied":
        text = t(
            "tkt_notice_replied",
            language,
            department=department,
            type=kind_of,
            number=number,
            reply=body,
        )
    elif kind == "returned":
        former = names(data.get("from_department_id"), language) or t("tkt_staff", language)
        text = t("tkt_notice_returned", language, number=number, department=former, reason=body)
    elif kind == "rejected":
        text = t("tkt_notice_rejected", language, number=number, reason=body)
    elif kind == "extended":
        text = t(
            "tkt_notice_extended",
            language,
            number=number,
            days=data.get("working_days", ""),
            date=data.get("reply_date", deadline),
            reason=body,
        )
    elif kind == "escalated":
        text = t(
            "tkt_notice_escalated",
            language,
            number=number,
            date=data.get("deadline_date", deadline),
        )
    elif kind == "closed":
        if data.get("by") == "system":
            text = t(
                "tkt_notice_closed_timeout", language, number=number, days=data.get("days", "")
            )
        else:
            text = t("tkt_notice_closed_staff", language, number=number, reason=body)
    elif kind == "reopened":
        text = t("tkt_notice_reopened", language, number=number, department=department)
    else:
        return None
    return text


def outcome_name(outcome: object, language: str) -> Html:
    """Return a disclosure outcome in words (empty for an unknown one)."""
    return t(f"tkt_outcome_{outcome}", language) if outcome in _OUTCOMES else Html("")


_OUTCOMES = frozenset(DisclosureOutcome)
# Telegram's limit on a message's text; the notice's parts are cut to stay under it.
_MESSAGE_LIMIT = 4096


def remedies_text(remedies: Mapping[str, Any], language: str) -> Html:
    """Return the remedies an applicant has against a disclosure decision (as recorded with it)."""
    english = language == "en"
    return t(
        "tkt_disclosure_remedies",
        language,
        days=remedies.get("review_days", 60),
        months=remedies.get("litigation_months", 6),
        review_body=remedies.get("review_body_en" if english else "review_body", ""),
        court=remedies.get("court_en" if english else "court", ""),
    )


def disclosure_notice_text(payload: Mapping[str, Any], language: str, department: str) -> Html:
    """Return the closing of a disclosure application as the applicant reads it: the outcome in
    words, the answer, the reason, the document, the remedies, and the request for a rating of
    the service (never "is your problem solved?")."""
    event = payload["event"]
    data = event.get("data") or {}
    reason = str(data.get("reason") or "")
    document = data.get("document") if isinstance(data.get("document"), dict) else None
    parts: list[str] = []
    if reason:
        parts.append(t("tkt_disclosure_reason", language, reason=reason))
    if document and document.get("url"):
        parts.append(t("tkt_disclosure_link", language, url=document["url"]))
    elif document:
        parts.append(t("tkt_disclosure_file", language, name=document.get("name", "")))
    remedies = data.get("remedies")
    if isinstance(remedies, dict):
        parts.append(remedies_text(remedies, language))
    parts.append(t("tkt_disclosure_rate", language))
    # The parts above are bounded (reason 1,000, link 2,000, names 200 each); the answer gets
    # what is left of the message, and its whole text stays in the console.
    room = _MESSAGE_LIMIT - 300 - sum(len(_visible(p)) for p in parts)
    head = t(
        "tkt_disclosure_answered",
        language,
        department=department,
        number=payload["number"],
        outcome=outcome_name(data.get("outcome"), language),
        reply=_short(str(event.get("body", "")), max(room, 200)),
    )
    return Html("\n\n".join([head, *parts]))


def _visible(html: str) -> str:
    """Return roughly what Telegram counts of an HTML text: without tags and entities."""
    return _ENTITY.sub("x", _TAG.sub("", html))


_TAG = re.compile(r"<[^>]+>")
_ENTITY = re.compile(r"&[a-z]+;|&#\d+;")


def timeline_line(
    entry: TimelineEntry, language: str, zone: dt.tzinfo, names: DepartmentNames
) -> Html | None:
    """Return one event as the resident reads it in their ticket's timeline."""
    data = entry.data
    department = names(data.get("department_id") or data.get("actor_department_id"), language)
    department = department or t("tkt_staff", language)
    when = entry.at.astimezone(zone).strftime("%m-%d %H:%M")
    kind = entry.kind
    body = _short(entry.body)
    if kind == EventKind.DEADLINE_SET:
        if data.get("reason") == "reassigned":
            text = t("tkt_ev_deadline_ack", language, date=data.get("ack_date", ""))
        else:
            text = t("tkt_ev_deadline_set", language, date=data.get("reply_date", ""))
    elif kind == EventKind.RETURNED:
        former = names(data.get("from_department_id"), language) or t("tkt_staff", language)
        text = t("tkt_ev_returned", language, department=former, body=body)
    elif kind == EventKind.EXTENDED:
        text = t("tkt_ev_extended", language, date=data.get("reply_date", ""), body=body)
    elif kind in (EventKind.REMINDER, EventKind.OVERDUE):
        text = t(
            f"tkt_ev_{kind}",
            language,
            which=_which(data, language),
            date=data.get("deadline_date", ""),
        )
    elif kind == EventKind.SUPPORTER_ADDED:
        text = t("tkt_ev_supporter_added", language, count=data.get("supporters", ""))
    elif kind == EventKind.RATED and data.get("solved") is None:
        text = t("tkt_ev_rated_service", language, stars=stars(data.get("rating")))
    elif kind == EventKind.RATED:
        solved = t("tkt_solved_yes" if data.get("solved") else "tkt_solved_no", language)
        text = t("tkt_ev_rated", language, stars=stars(data.get("rating")), solved=solved)
    elif kind == EventKind.REPLIED and data.get("outcome"):
        outcome = outcome_name(data.get("outcome"), language)
        text = t(
            "tkt_ev_replied_disclosure",
            language,
            department=department,
            outcome=outcome,
            body=body,
        )
    elif kind == EventKind.CLOSED and body:
        text = t("tkt_ev_closed_reason", language, body=body)
    elif kind in _PLAIN_EVENTS:
        text = t(f"tkt_ev_{kind}", language, department=department, body=body)
    else:
        return None
    return Html(f"<code>{when}</code> {text}")


_PLAIN_EVENTS = frozenset(
    {
        EventKind.RECEIVED,
        EventKind.ASSIGNED,
        EventKind.TRIAGE,
        EventKind.ACKNOWLEDGED,
        EventKind.INFO_REQUESTED,
        EventKind.INFORMATION_ADDED,
        EventKind.REPLIED,
        EventKind.REJECTED,
        EventKind.ESCALATED,
        EventKind.RATING_COMMENT,
        EventKind.REOPENED,
        EventKind.CLOSED,
    }
)


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- departments --------------------------------------------------------------------------------


def _details(ticket: Mapping[str, Any], language: str) -> Html:
    parts: list[str] = []
    location = ticket.get("location") or {}
    if location.get("text"):
        parts.append(t("tkt_dept_location", language, place=location["text"]))
    if location.get("latitude") is not None:
        parts.append(
            t(
                "tkt_dept_map",
                language,
                latitude=f"{float(location['latitude']):.5f}",
                longitude=f"{float(location.get('longitude') or 0):.5f}",
            )
        )
    if ticket.get("anonymous"):
        parts.append(t("tkt_dept_anonymous", language))
    elif ticket.get("resident"):
        resident = ticket["resident"]
        parts.append(
            t(
                "tkt_dept_identity",
                language,
                name=resident.get("name") or "—",
                phone=resident.get("phone") or "—",
            )
        )
    else:
        parts.append(t("tkt_dept_no_identity", language))
    if ticket.get("supporters"):
        parts.append(t("tkt_dept_supporters", language, count=ticket["supporters"]))
    if ticket.get("photos"):
        parts.append(t("tkt_dept_photos", language, count=ticket["photos"]))
    return Html("".join(parts))


def department_text(payload: Mapping[str, Any], language: str, zone: dt.tzinfo) -> Html | None:
    """Return what a department's chat shows for an event (None: nothing to show)."""
    event, ticket = payload["event"], payload["ticket"]
    kind, body, data = event["kind"], event.get("body", ""), event.get("data") or {}
    number = ticket["number"]
    ticket_type = ticket.get("type", "")
    common = {
        "type": type_name(ticket_type, language),
        "number": number,
        "category": ticket.get("category", ""),
        "created": _local_time(ticket.get("created_at"), zone),
        "ack": _local_date(ticket.get("ack_deadline"), zone),
        "reply": _local_date(ticket.get("reply_deadline"), zone),
        "description": _short(ticket.get("description", ""), 3000),
        "details": _details(ticket, language),
    }
    if kind == "assigned":
        return t("tkt_dept_new", language, **common)
    if kind == "reopened":
        comment = body or ""
        text = t(
            "tkt_dept_reopened",
            language,
            stars=stars(data.get("rating")),
            comment=comment,
            **{
                k: v
                for k, v in common.items()
                if k in ("number", "reply", "description", "details")
            },
        )
        return text
    if kind == "information_added":
        photos = t("tkt_dept_photos", language, count=data["photos"]) if data.get("photos") else ""
        return t(
            "tkt_dept_information", language, number=number, body=body or "—", photos=Html(photos)
        )
    if kind == "reminder":
        return t(
            "tkt_dept_reminder",
            language,
            number=number,
            which=_which(data, language),
            date=data.get("deadline_date", ""),
        )
    if kind == "escalated":
        return t(
            "tkt_dept_escalated",
            language,
            number=number,
            which=_which(data, language),
            date=data.get("deadline_date", ""),
        )
    if kind == "closed":
        rating = ""
        if data.get("rating") and data.get("solved") is None:
            rating = t("tkt_dept_rating_service", language, stars=stars(data.get("rating")))
        elif data.get("rating"):
            solved = t("tkt_solved_yes" if data.get("solved") else "tkt_solved_no", language)
            rating = t("tkt_dept_rating", language, stars=stars(data.get("rating")), solved=solved)
        return t("tkt_dept_closed", language, number=number, rating=Html(rating))
    if kind == "rejected":
        return t("tkt_dept_rejected", language, number=number, reason=body)
    if kind == "withdrawn":
        return t("tkt_dept_withdrawn", language, number=number)
    return None


# -- staff and supervisor ------------------------------------------------------------------------


def staff_text(payload: Mapping[str, Any], language: str, names: DepartmentNames) -> Html | None:
    """Return the staff chat's alert for an event (triage, hand-back, failed delivery)."""
    event = payload["event"]
    kind, body, data = event["kind"], event.get("body", ""), event.get("data") or {}
    number = payload["number"]
    common = {
        "number": number,
        "type": type_name(payload.get("type", ""), language),
        "category": payload.get("category", ""),
    }
    if kind == "triage":
        description = _short(str(payload.get("description", "")), 500)
        return t("tkt_staff_triage", language, description=description, **common)
    if kind == "returned":
        former = names(data.get("from_department_id"), language) or "—"
        return t("tkt_staff_returned", language, department=former, reason=body, **common)
    if kind == "delivery_failed":
        department = names(data.get("department_id"), language) or data.get("department_id", "—")
        return t(
            "tkt_staff_delivery_failed",
            language,
            number=number,
            department=department,
            channel=data.get("channel", ""),
            attempts=data.get("attempts", ""),
            error=_short(str(data.get("error", "")), 300),
        )
    return None


def supervisor_text(
    payload: Mapping[str, Any], language: str, names: DepartmentNames
) -> Html | None:
    """Return the supervisor chat's 督办 alert for an overdue ticket."""
    event = payload["event"]
    if event["kind"] != "escalated":
        return None
    data = event.get("data") or {}
    department = names(payload.get("department_id"), language) or t("tkt_no_department", language)
    return t(
        "tkt_supervisor_escalated",
        language,
        number=payload["number"],
        type=type_name(payload.get("type", ""), language),
        category=payload.get("category", ""),
        department=department,
        which=_which(data, language),
        date=data.get("deadline_date", ""),
    )


# -- a text that was refused: which one, and how long it may be ------------------------------------

_FIELDS = {
    "reply": ("答复内容", "The reply"),
    "reason": ("理由", "The reason"),
    "question": ("要居民补充的问题", "The question to the resident"),
    "note": ("备注", "The note"),
    "comment": ("评论", "The comment"),
    "information": ("补充信息", "The information"),
    "description": ("描述", "The description"),
    "name": ("姓名", "The name"),
    "phone": ("联系电话", "The phone number"),
    "place": ("地点", "The place"),
}
INPUT_FIELDS = frozenset(_FIELDS)

add_strings(
    "ticket_inputs",
    {
        "tkt_input_empty": {
            "zh": "{field}不能为空，请填写后再提交（1–{limit} 字）。",
            "en": "{field} is empty; please write it and send it again (1 to {limit} characters).",
        },
        "tkt_input_too_long": {
            "zh": "{field}太长了，最多 {limit} 字，请精简后再提交。",
            "en": "{field} is too long: at most {limit} characters. Please shorten it and "
            "send it again.",
        },
    },
)


def field_name(field: str, language: str) -> str:
    """Return the name of a text a ticket action takes ("reply" → 答复内容), or "" if unknown."""
    names = _FIELDS.get(field)
    if names is None:
        return ""
    return names[1] if language == "en" else names[0]


def input_problem(code: str, field: str | None, limit: int | None, language: str) -> Html | None:
    """Say which text was refused and its limit ("答复内容不能为空…"); None when not a text's
    emptiness or length, or for a field without a name."""
    if code not in ("empty", "too_long") or field not in _FIELDS or not limit:
        return None
    return t(f"tkt_input_{code}", language, field=field_name(field, language), limit=limit)
