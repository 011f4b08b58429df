"""What the bot says, in Simplified Chinese and English: one catalog, one function `t`.

Each area adds its own strings with `add_strings(area, {...})` when its module is imported, so
no two developers edit the same dict. Strings are Telegram HTML: the catalog's own markup is kept,
and every parameter is escaped, because parameters carry text from residents, staff and the
knowledge base; only `Html` values (output of `t` or of a renderer) go in as they are. Button labels are plain text (Telegram does not parse them) and take no
parameters.
"""

from __future__ import annotations

import html
import string
from collections.abc import Mapping

LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"

_CATALOG: dict[str, dict[str, str]] = {}
_AREA_OF: dict[str, str] = {}


class CatalogError(Exception):
    """A string is missing a language, clashes with another area's key, or its languages disagree."""


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def add_strings(area: str, strings: Mapping[str, Mapping[str, str]]) -> None:
    """Add an area's strings: {key: {"zh": ..., "en": ...}}; both languages, same parameters."""
    for key, texts in strings.items():
        if set(texts) != set(LANGUAGES):
            raise CatalogError(f"{area}: '{key}' needs exactly the languages {LANGUAGES}")
        if _fields(texts["zh"]) != _fields(texts["en"]):
            raise CatalogError(f"{area}: '{key}' has different parameters in zh and en")
        owner = _AREA_OF.get(key)
        if owner is not None and owner != area:
            raise CatalogError(f"{area}: '{key}' is already defined by {owner}")
        _CATALOG[key] = dict(texts)
        _AREA_OF[key] = area


def language_or_default(language: str | None) -> str:
    """Return a supported language code for any input (unknown codes mean Chinese)."""
    return language if language in LANGUAGES else DEFAULT_LANGUAGE


class Html(str):
    """Text that is already Telegram HTML (built by `t` or a renderer); `t` inserts it as is."""

    __slots__ = ()


def _escaped(value: object) -> str:
    return value if isinstance(value, Html) else html.escape(str(value))


def t(key: str, language: str | None, /, **params: object) -> Html:
    """Return the string `key` in `language`, with every parameter HTML-escaped."""
    texts = _CATALOG[key]
    template = texts[language_or_default(language)]
    if not params:
        return Html(template)
    return Html(template.format(**{name: _escaped(value) for name, value in params.items()}))


add_strings(
    "conversation",
    {
        # -- main menu and help ----------------------------------------------------------------
        "welcome": {
            "zh": "您好{name}！我是{city}政务服务助手。\n"
            "您可以直接用自己的话提问，例如“身份证丢了怎么补办”，也可以用下面的菜单。"
            "我答不了的问题，会转给工作人员答复您。",
            "en": "Hello{name}! I am the public-service assistant of {city}.\n"
            "Ask me in your own words, e.g. “How do I replace a lost ID card?”, or use the menu "
            "below. What I cannot answer, I pass to a member of staff who will answer you here.",
        },
        "menu_title": {
            "zh": "请选择您要办理的事项，或者直接输入您的问题：",
            "en": "Choose what you need, or just type your question:",
        },
        "menu_ask": {"zh": "💬 我要提问", "en": "💬 Ask a question"},
        "menu_browse": {"zh": "📚 办事指南", "en": "📚 Public services"},
        "menu_disclosure": {"zh": "📂 政府信息公开", "en": "📂 Information disclosure"},
        "menu_complaint": {"zh": "📝 投诉·举报·建议", "en": "📝 Complaints and reports"},
        "menu_tickets": {"zh": "🔎 我的工单", "en": "🔎 My tickets"},
        "menu_person": {"zh": "🙋 转人工", "en": "🙋 Talk to a person"},
        "menu_language": {"zh": "🌐 Language / 语言", "en": "🌐 语言 / Language"},
        "menu_back": {"zh": "🏠 主菜单", "en": "🏠 Main menu"},
        "ask_prompt": {
            "zh": "请直接输入您的问题，用自己的话说就行，例如：\n• 社保卡丢了怎么办\n• 开餐馆要办什么证",
            "en": "Type your question in your own words, for example:\n"
            "• I lost my social security card\n• What licence do I need to open a restaurant",
        },
        "help": {
            "zh": "<b>怎么用</b>\n"
            "• 直接输入问题，我会给出办事指南：要带的材料、流程、时限、费用、地点和电话。\n"
            "• 我不确定时，会请您在几个事项里选一个。\n"
            "• 我答不了的，会转给工作人员，答复会发到这里。\n\n"
            "<b>命令</b>\n"
            "/start 主菜单\n/language 切换语言\n/complain 投诉、举报、建议\n"
            "/status 查看我的工单\n/privacy 个人信息保护告知\n/mydata 获取我的数据\n"
            "/forget 删除我的个人信息\n/help 本说明",
            "en": "<b>How to use me</b>\n"
            "• Type a question; I answer with the service guide: what to bring, the steps, "
            "time limit, fee, where to go and whom to call.\n"
            "• When I am not sure, I ask you to pick from a few items.\n"
            "• What I cannot answer goes to a member of staff, whose answer comes back here.\n\n"
            "<b>Commands</b>\n"
            "/start main menu\n/language switch language\n/complain complaints and reports\n"
            "/status my tickets\n/privacy how we handle your data\n/mydata a copy of my data\n"
            "/forget erase my personal data\n/help this help",
        },
        "language_prompt": {
            "zh": "请选择语言 / Please choose a language:",
            "en": "Please choose a language / 请选择语言:",
        },
        "language_set": {
            "zh": "好的，之后我用简体中文和您交流。",
            "en": "Done: I will talk to you in English from now on.",
        },
        # -- browsing --------------------------------------------------------------------------
        "browse_categories": {
            "zh": "<b>办事指南</b>：请选择类别（共 {count} 类）",
            "en": "<b>Public services</b>: choose a category ({count} in all)",
        },
        "disclosure_categories": {
            "zh": "<b>政府信息公开</b>：请选择类别（共 {count} 类）",
            "en": "<b>Information disclosure</b>: choose a category ({count} in all)",
        },
        "category_items": {
            "zh": "<b>{category}</b>：请选择事项（第 {page}/{pages} 页）",
            "en": "<b>{category}</b>: choose an item (page {page} of {pages})",
        },
        "page_previous": {"zh": "⬅️ 上一页", "en": "⬅️ Previous"},
        "page_next": {"zh": "下一页 ➡️", "en": "Next ➡️"},
        "back_to_categories": {"zh": "↩️ 返回类别", "en": "↩️ Categories"},
        "nothing_here": {
            "zh": "这个类别暂时没有内容。",
            "en": "There is nothing in this category yet.",
        },
        "stale_button": {
            "zh": "这个按钮已经失效了，请重新打开菜单。",
            "en": "This button has expired; please open the menu again.",
        },
        "not_your_button": {
            "zh": "这个按钮不属于您的对话。",
            "en": "This button does not belong to your conversation.",
        },
        # -- answers and feedback --------------------------------------------------------------
        "answer_helpful": {"zh": "👍 有帮助", "en": "👍 Helpful"},
        "answer_not_helpful": {"zh": "👎 没帮助", "en": "👎 Not helpful"},
        "answer_person": {"zh": "🙋 转人工", "en": "🙋 Talk to a person"},
        "related_heading": {"zh": "相关事项：", "en": "Related:"},
        "related_button": {"zh": "🔗 {title}", "en": "🔗 {title}"},
        "thanks_helpful": {
            "zh": "谢谢您的反馈！还有其他问题可以继续问我。",
            "en": "Thank you for the feedback! Ask me anything else.",
        },
        "sorry_not_helpful": {
            "zh": "抱歉没能帮到您。您可以换个说法再问一次，或者转给工作人员解答。",
            "en": "Sorry that did not help. You can ask again in other words, or pass the "
            "question to a member of staff.",
        },
        "feedback_already": {
            "zh": "已经收到您的反馈了，谢谢。",
            "en": "We already have your feedback, thank you.",
        },
        "suggest_intro": {
            "zh": "我不太确定您问的是哪一项，请选择：",
            "en": "I am not sure which of these you mean; please choose:",
        },
        "suggest_likely": {
            "zh": "您问的很可能是第一项；如果不是，请选择其他项：",
            "en": "You most likely mean the first of these; if not, please choose another:",
        },
        "suggest_one": {
            "zh": "您问的是不是这一项？请点选查看；如果不是，可以转人工：",
            "en": "Is this what you mean? Tap it to see the answer, or ask a person:",
        },
        "suggest_none": {"zh": "都不是，转人工", "en": "None of these: ask a person"},
        "small_talk": {
            "zh": "您好，很高兴为您服务！有什么政务问题可以直接问我，或者用下面的菜单。",
            "en": "Hello, happy to help! Ask me about any public service, or use the menu below.",
        },
        "venting": {
            "zh": "抱歉没能帮上您。您可以换个说法再问一次，或者点“🙋 转人工”，请工作人员来答复。",
            "en": "Sorry I could not help. You can ask again in other words, or press "
            "“🙋 Talk to a person” to have a member of staff answer.",
        },
        "empty_question": {
            "zh": "我没看懂这条消息。请用文字描述您的问题，或者用下面的菜单。",
            "en": "I could not make out a question there. Please describe it in words, or use "
            "the menu below.",
        },
        "question_too_long": {
            "zh": "您的问题有点长，我只看了前 {limit} 个字。",
            "en": "Your question is long; I read only the first {limit} characters.",
        },
        # -- escalation ------------------------------------------------------------------------
        "escalated_in_hours": {
            "zh": "这个问题我暂时答不了，已经转给工作人员，通常会在 {hours} 小时内在这里答复您。",
            "en": "I cannot answer this one myself, so I have passed it to a member of staff. "
            "They usually answer here within {hours} hour(s).",
        },
        "escalated_after_hours": {
            "zh": "这个问题我暂时答不了，已经转给工作人员。现在是非工作时间"
            "（工作日 {hours}），工作人员会在 {when} 上班后尽快在这里答复您。",
            "en": "I cannot answer this one myself, so I have passed it to a member of staff. "
            "It is outside office hours (working days {hours}); they will answer here soon "
            "after they start on {when}.",
        },
        "escalated_other_place": {
            "zh": "您的问题似乎涉及{place}的事务，我只掌握{city}的办事信息。",
            "en": "Your question seems to be about {place}; I only know {city}'s services.",
        },
        "escalation_already_open": {
            "zh": "这个问题已经在工作人员那里了，请耐心等候答复。",
            "en": "This question is already with a member of staff; their answer will come here.",
        },
        "person_prompt": {
            "zh": "请把您的问题写下来发给我，我会转给工作人员，答复会发到这里。",
            "en": "Please write your question and send it; I will pass it to a member of staff "
            "and their answer will come here.",
        },
        "staff_answer_to_resident": {
            "zh": "👩‍💼 <b>工作人员答复</b>\n您的问题：<i>{question}</i>\n\n{answer}",
            "en": "👩‍💼 <b>Answer from a member of staff</b>\nYou asked: <i>{question}</i>\n\n"
            "{answer}",
        },
        "published_answer_to_resident": {
            "zh": "🔔 您之前问的“{question}”现在有答复了：",
            "en": "🔔 What you asked earlier, “{question}”, has an answer now:",
        },
        # -- guards and fallbacks ----------------------------------------------------------------
        "flood": {
            "zh": "您发消息有点快，请稍等 {seconds} 秒再发，我会一条一条认真处理。",
            "en": "You are sending messages quickly; please wait {seconds} seconds and try again. "
            "I handle them one by one.",
        },
        "private_only": {
            "zh": "您好！为了保护您的隐私，请私聊我提问：点我的头像，再点“发消息”。",
            "en": "Hello! To protect your privacy, please talk to me in a private chat: tap my "
            "name, then “Send message”.",
        },
        "edited_message": {
            "zh": "我看到您修改了消息。我只处理新消息，如需要，请把修改后的内容重新发送一次。",
            "en": "I see you edited a message. I only read new messages, so please send the "
            "corrected text again if needed.",
        },
        "fallback_sticker": {
            "zh": "收到您的表情了 😊 有什么问题可以直接用文字问我。",
            "en": "Nice sticker 😊 Type your question in words and I will help.",
        },
        "fallback_photo": {
            "zh": "收到图片了。我看不懂图片里的内容，请用文字描述您的问题。"
            "如果是要投诉或反映问题，请用 /complain，在那里可以附上照片。",
            "en": "I received the picture, but I cannot read pictures. Please describe your "
            "question in words. To report a problem with photos, use /complain.",
        },
        "fallback_voice": {
            "zh": "暂时听不了语音，请用文字输入您的问题。",
            "en": "I cannot listen to voice messages yet; please type your question.",
        },
        "fallback_document": {
            "zh": "收到文件了。我这里不能处理文件，请用文字描述您的问题；"
            "需要提交材料时，请按办事指南到窗口或网上办理。",
            "en": "I received the file, but I cannot handle files here. Please describe your "
            "question in words; documents for an application go to the service centre or "
            "its website, as the guide says.",
        },
        "fallback_location": {
            "zh": "收到位置了。如果要反映某个地点的问题，请用 /complain，在那里可以附上位置。",
            "en": "I received the location. To report a problem at a place, use /complain, "
            "where you can attach it.",
        },
        "fallback_contact": {
            "zh": "收到联系人了。我这里不需要联系方式；提交投诉时我会另外询问。",
            "en": "I received the contact. I do not need contact details here; the complaint "
            "form asks for them when needed.",
        },
        "fallback_other": {
            "zh": "这种消息我处理不了，请用文字输入您的问题，或者用下面的菜单。",
            "en": "I cannot handle this kind of message. Please type your question, or use "
            "the menu below.",
        },
        "error": {
            "zh": "抱歉，系统刚才出了点问题，没能处理您的消息。请稍后再试一次；"
            "问题已记录，工作人员会处理。",
            "en": "Sorry, something went wrong on our side and your message was not handled. "
            "Please try again in a moment; the problem has been logged.",
        },
        # -- staff group -----------------------------------------------------------------------
        "staff_escalation": {
            "zh": "🆕 <b>居民提问 #{number}</b>（{language}，{cause}）\n<blockquote>{question}</blockquote>\n"
            "{candidates}\n↩️ 直接<b>回复本条消息</b>即可答复居民。",
            "en": "🆕 <b>Resident question #{number}</b> ({language}, {cause})\n"
            "<blockquote>{question}</blockquote>\n{candidates}\n"
            "↩️ <b>Reply to this message</b> to answer the resident.",
        },
        "staff_repost_prefix": {
            "zh": "⏰ <b>{minutes} 分钟仍未答复</b>（第 {count} 次提醒）\n",
            "en": "⏰ <b>Unanswered for {minutes} minutes</b> (reminder {count})\n",
        },
        "staff_reposted_below": {
            "zh": "⏰ 已在下方重新发出，请回复新的那条。",
            "en": "⏰ Posted again below; please reply to the new post.",
        },
        "staff_candidates": {
            "zh": "机器人的候选（{reason}）：\n{lines}",
            "en": "The bot's candidates ({reason}):\n{lines}",
        },
        "staff_no_candidates": {
            "zh": "机器人没有找到候选事项（{reason}）。",
            "en": "The bot found no candidate item ({reason}).",
        },
        "staff_cause_escalate": {"zh": "机器人答不了", "en": "the bot could not answer"},
        "staff_cause_person": {"zh": "居民要求转人工", "en": "the resident asked for a person"},
        "staff_cause_not_helpful": {
            "zh": "居民认为答复没帮助",
            "en": "the resident found the answer unhelpful",
        },
        "staff_language_zh": {"zh": "中文", "en": "Chinese"},
        "staff_language_en": {"zh": "英文", "en": "English"},
        "staff_answered": {
            "zh": "✅ <b>已由 {name} 答复</b>（{when}，{via}）\n<blockquote>{answer}</blockquote>",
            "en": "✅ <b>Answered by {name}</b> ({when}, {via})\n<blockquote>{answer}</blockquote>",
        },
        "staff_answer_sent": {
            "zh": "✅ 答复已发送给居民。",
            "en": "✅ The answer was sent to the resident.",
        },
        "staff_answer_undeliverable": {
            "zh": "⚠️ 答复已记录，但没能发给居民（对方可能已停用机器人）。",
            "en": "⚠️ The answer is recorded, but could not reach the resident (they may have "
            "blocked the bot).",
        },
        "staff_already_answered": {
            "zh": "ℹ️ 这个问题已经由 {name} 答复过了，您的回复没有发给居民。",
            "en": "ℹ️ {name} already answered this question; your reply was not sent to the "
            "resident.",
        },
        "staff_answer_empty": {
            "zh": "请用文字回复，答复内容不能为空。",
            "en": "Please reply with text; the answer cannot be empty.",
        },
        "staff_answer_too_long": {
            "zh": "答复太长了（最多 {limit} 字），请缩短后再回复。",
            "en": "The answer is too long (at most {limit} characters); please shorten it.",
        },
        "staff_only": {
            "zh": "只有工作人员群的成员可以这样做。",
            "en": "Only members of the staff group can do this.",
        },
        "staff_learn_button": {"zh": "📚 记为某事项的新问法", "en": "📚 Learn this phrasing"},
        "staff_learn_choose": {
            "zh": "把“{question}”记为哪个事项的新问法？也可以回复本条消息：/learn 事项ID",
            "en": "Which item should learn “{question}”? You can also reply to this message "
            "with /learn ITEM-ID",
        },
        "staff_learn_cancel": {"zh": "取消", "en": "Cancel"},
        "staff_learned": {
            "zh": "📚 {name} 已把这个问法加入事项“{title}”（{item}），知识库已重新加载。",
            "en": "📚 {name} added this phrasing to “{title}” ({item}); the knowledge base "
            "was reloaded.",
        },
        "staff_learn_duplicate": {
            "zh": "事项“{title}”已经有这个问法了。",
            "en": "“{title}” already has this phrasing.",
        },
        "staff_learn_failed": {
            "zh": "⚠️ 没能写入知识库：{problem}。知识库保持原样。",
            "en": "⚠️ Could not write to the knowledge base: {problem}. It is unchanged.",
        },
        "staff_learn_unknown_item": {
            "zh": "没有找到事项 {item}。",
            "en": "There is no item {item}.",
        },
        "staff_learn_not_answered": {
            "zh": "请先答复这个问题，再记录问法。",
            "en": "Answer the question first, then teach the phrasing.",
        },
        "staff_learn_usage": {
            "zh": "用法：回复一条居民提问，发送 /learn 事项ID",
            "en": "Usage: reply to a resident's question with /learn ITEM-ID",
        },
        "staff_via_telegram": {"zh": "Telegram", "en": "Telegram"},
        "staff_via_console": {"zh": "网页后台", "en": "web console"},
        "staff_group_ready": {
            "zh": "👋 我是{city}政务服务助手。居民的问题如果我答不了，会发到这个群；"
            "直接回复那条消息，答复就会发给居民。",
            "en": "👋 I am {city}'s public-service assistant. Questions I cannot answer come "
            "to this group; reply to such a message and your answer goes to the resident.",
        },
    },
)
