"""What the resident wants, before which item fits: a question, a problem to report, small talk,
or something a city government does not deal with.

- A **report** ("我家楼下的路灯坏了", "工地半夜施工太吵") describes a problem in the resident's
  surroundings: the chat offers to file it as a ticket instead of handing a "question" to staff.
  A complaint about conduct, a suggestion, and a request for help for someone in difficulty
  ("我家老人走丢了") are offered as tickets of their own type.
- **Small talk** ("还在吗", "谢谢") gets a friendly word.
- **Out of scope** (football, weather, recipes) gets a polite word and a button to reach a
  person; staff are not handed what they cannot answer.

Reports are recognised by the words residents use for problems (`REPORT_CUES`), never on their
own: a question the knowledge base answers confidently ("社保卡坏了怎么办") stays a question.
Out of scope needs two things: no card for the question (a choice or a hand-off is declined,
however sure its best item looks), and a meaning closer to everyday topics
(`OFF_TOPIC_EXAMPLES`) than to anything in the knowledge base (`Matcher._off_topic`); a question
asking what document or procedure something takes is never out of scope
(`asks_what_is_needed`). docs/matching.md describes them.
"""

from __future__ import annotations

import re
from typing import Literal

Intent = Literal["question", "report", "small_talk", "out_of_scope"]

# Words residents use for a problem around them that someone should come and fix or stop.
# Deliberately not: 丢了/坏了 alone on a card or a document (补办 is a service, not a report).
_REPORT_ZH = (
    "路灯 不亮 灯不亮 灯坏了 井盖 下水道 堵了 堵住 堵塞 积水 漏水 渗水 爆管 水管爆 冒水 "
    "停水 停电 没水 没电 断水 断电 噪音 噪声 扰民 太吵 好吵 很吵 吵死 吵得 施工 半夜 夜间施工 "
    "装修声 广场舞 垃圾 乱扔 乱倒 乱堆 乱放 堆放 乱贴 小广告 乱停 乱停车 占道 占用 摆摊 违建 "
    "违章搭建 私搭乱建 违章建筑 破损 坍塌 塌了 裂了 裂缝 坑洼 大坑 倒了 歪了 树倒 臭味 异味 "
    "很臭 好臭 恶臭 污水 排污 黑烟 冒烟 油烟 污染 偷排 流浪狗 流浪猫 野狗 咬人 老鼠 蟑螂 蚊子 "
    "拖欠工资 欠薪 不发工资 讨薪 黑车 乱收费 被骗 诈骗 没人管 不管 投诉 举报 反映 曝光 "
    "红绿灯坏 信号灯坏 电梯坏 电梯故障 困在电梯 漏电 电线 燃气泄漏 煤气味 消防通道 "
    "物业不管 物业不作为 坏了 坏掉 损坏 故障 "
    # How an office or a service treated the resident (a complaint about conduct)
    "效率太低 效率低 效率很低 办事慢 办得太慢 推来推去 踢皮球 推诿 刁难 态度差 态度很差 "
    "态度恶劣 态度不好 电话没人接 没人接电话 打不通 不接电话 "
    # Transport, landlords and traders
    "拒载 绕路 宰客 开车太猛 开得太猛 乱开 飙车 黑中介 不退押金 押金不退 缺斤少两 "
    # Online services that fail ("网上办事系统老是登不上")
    "登不上 登录不了 登不进去 登录不上 打不开 进不去 闪退 崩了 "
    # Animals and neighbours
    "狗叫 天天叫 整夜叫 乱叫 遛狗不牵绳 不牵绳 狗屎"
).split()
# A person in difficulty asking for help (求助): someone missing, someone stranded, a household
# with nothing to live on. A help request, not a report: the offer says to call 110 or 120
# first when someone is in danger. Not 帮帮忙 or "help me" alone, which open ordinary questions,
# nor 没人照顾, which residents' questions about care services use ("家里老人没人照顾，想送到
# 政府办的地方去住").
_HELP_ZH = (
    "求助 求救 救命 救救 走失 走丢 丢了孩子 孩子丢了 老人丢了 找不到家 找不到回家 迷路了 "
    "被困 困住了 无家可归 流落街头 露宿街头 睡大街 没饭吃 揭不开锅 吃不上饭 断粮"
).split()
_HELP_EN = (
    r"went missing|gone missing|is missing|got lost|lost (?:my|our) way|can'?t find (?:my|our) "
    r"way home|trapped|stranded|homeless|nowhere to (?:live|sleep|stay)|nothing to eat|no food|"
    r"need urgent help|please help us|help us please"
)
# Not after 防 / 防止 (防走失手环, 怎么防止老人走丢): the resident asks how to prevent it.
_HELP = re.compile(
    "(?<!防)(?<!防止)(?:"
    + "|".join(sorted(map(re.escape, _HELP_ZH), key=len, reverse=True))
    + rf")|\b(?:{_HELP_EN})\b"
)
# Trips made in vain, told with a count ("办个证跑了五趟还没办好").
_REPORT_ZH_COUNTED = r"跑了(?:[一二两三四五六七八九十几好多\d]+)(?:趟|回)"
_REPORT_EN = (
    r"broken|not working|doesn'?t work|out of order|noise|noisy|loud|too loud|leak(?:ing|s)?|"
    r"garbage|trash|rubbish|litter(?:ing)?|pothole|street ?light|blocked|flood(?:ed|ing)?|"
    r"smell(?:s|y)?|stink(?:s|y)?|illegal(?:ly)?|dump(?:ed|ing)?|complain(?:t)?|"
    r"construction at night|stray dogs?|unpaid wages?|scam(?:med)?|pollution|polluting|"
    r"bark(?:s|ing)?|refus(?:ed|es|e) to (?:take|pick up|serve)|overcharg(?:e|ed|es|ing)|rude|"
    r"took (?:a|the) long way|waited (?:for )?(?:hours|ages|\w+ hours)"
)
# A suggestion: what the resident would like the city to do ("建议在小区门口加个红绿灯", "希望政府
# 多建几个停车场"). Only at the start of the message, or addressed to the government: "建议"
# inside a question ("专家建议多久体检一次") is not the resident's own.
_SUGGESTION_ZH = (
    r"^(?:我|我们)?(?:有个|有一个|想提个|想提一个|提个|提一个|给个|说个)?(?:小)?建议"
    r"|^(?:我|我们)?(?:希望|建议|恳请|呼吁)(?:政府|市里|市政府|区里|区政府|有关部门|相关部门|领导)"
)
_SUGGESTION_EN = (
    r"^(?:i (?:would )?suggest|i'd suggest|my suggestion|i propose|a suggestion|suggestion)\b"
    r"|\b(?:it would be (?:great|nice|good|better) if|the (?:city|government) should)\b"
)
_SUGGESTION = re.compile(f"{_SUGGESTION_ZH}|{_SUGGESTION_EN}")
REPORT_CUES = tuple(_REPORT_ZH)
_REPORT_ZH_PATTERN = re.compile(
    "|".join(sorted(map(re.escape, _REPORT_ZH), key=len, reverse=True)) + "|" + _REPORT_ZH_COUNTED
)
_REPORT_EN_PATTERN = re.compile(rf"\b(?:{_REPORT_EN})\b")
# Words that make a report a complaint about how someone behaved (投诉), not a problem to fix.
_COMPLAINT_ZH = re.compile(
    "投诉|态度|不作为|刁难|推诿|推来推去|踢皮球|效率|办事慢|办得太慢|乱收费|吃拿卡要|不理|骂人|"
    "被骗|诈骗|拒载|宰客|绕路|黑中介|押金"
)
_COMPLAINT_EN = re.compile(
    r"\b(?:complain(?:t)?|rude|attitude|overcharg(?:e|ed|es|ing)|scam(?:med)?|"
    r"refus(?:ed|es|e) to (?:take|pick up|serve)|took (?:a|the) long way|waited)\b"
)

# Everyday topics a city's public-service bot does not deal with, in Chinese and English. Their
# embeddings are compared with a question's; none of them is a resident's real question.
OFF_TOPIC_EXAMPLES = (
    "今天天气怎么样",
    "明天会下雨吗",
    "这周末气温多少度",
    "昨晚的足球比赛谁赢了",
    "世界杯什么时候开始",
    "NBA总决赛比分",
    "推荐一部好看的电影",
    "最近有什么好看的电视剧",
    "周杰伦的演唱会门票",
    "红烧肉怎么做好吃",
    "附近有什么好吃的餐厅",
    "这只股票明天会涨吗",
    "比特币还能买吗",
    "黄金价格多少钱一克",
    "手机屏幕碎了去哪修",
    "电脑开不了机怎么办",
    "微信密码忘了",
    "快递一直没到",
    "网购退货运费谁出",
    "怎么减肥最快",
    "感冒了吃什么药",
    "猫咪不吃东西怎么回事",
    "给我讲个笑话",
    "陪我聊聊天",
    "你喜欢什么颜色",
    "帮我写一首诗",
    "一加一等于几",
    "地球到月亮有多远",
    "英语单词怎么背得快",
    "高考数学题怎么解",
    "去日本旅游有什么好玩的",
    "哪个牌子的洗衣机好",
    "游戏账号被封了",
    "怎么追女朋友",
    "星座运势",
    "What's the weather like tomorrow?",
    "Who won the football match last night?",
    "Recommend me a good movie",
    "How do I cook fried rice?",
    "Will this stock go up?",
    "Tell me a joke",
    "My phone screen is broken, where can I fix it?",
    "What is the capital of France?",
    "How do I lose weight fast?",
    "Best restaurants near me",
    "Which laptop should I buy?",
    "Translate this sentence into French",
)

# How much nearer in meaning to everyday topics than to the knowledge base a question must be.
OFF_TOPIC_MARGIN = 0.05


# A question that asks which document, certificate, material or procedure something takes
# ("去日本玩需要什么证件", "在家做豆腐卖要办啥证") is a question of public services, whatever its
# setting; everyday topics do not ask it. Not 手续费, a fee ("高铁票退票手续费多少").
_ASKS_WHAT_IS_NEEDED = re.compile(
    r"证件|证明|材料|手续(?!费)|办什么|办啥|啥证|什么证|要办|\bdocuments?\b"
)


def asks_what_is_needed(normalized: str) -> bool:
    """Whether a (normalised) question asks what document or procedure something takes: never
    declined as out of scope, however near its setting is to everyday topics."""
    return bool(_ASKS_WHAT_IS_NEEDED.search(normalized))


def report_cues(normalized: str) -> list[str]:
    """The problem words of a (normalised) message, in order."""
    found = [m.group() for m in _REPORT_ZH_PATTERN.finditer(normalized)]
    found += [m.group() for m in _REPORT_EN_PATTERN.finditer(normalized)]
    found += [m.group() for m in _SUGGESTION.finditer(normalized)]
    found += [m.group() for m in _HELP.finditer(normalized)]
    return found


# A resident who says they want to complain or report means to file it, whatever card fits.
_WISH_ZH = re.compile(
    "(?:想|要|我要|准备|打算|需要)(?:投诉|举报|反映|提(?:个|一个|点)?(?:建议|意见))"
)
_WISH_EN = re.compile(
    r"\b(?:want|wanna|would like|'d like|need|going) to "
    r"(?:complain|report|file a complaint|make a suggestion|suggest)\b"
)


def wants_to_file(normalized: str) -> bool:
    """Whether a (normalised) message says the resident wants to complain or report."""
    return bool(_WISH_ZH.search(normalized) or _WISH_EN.search(normalized))


# A resident asking after their own tickets ("我上次提的工单怎么样了", "我要查工单"): what the
# menu's "my tickets" shows, not a question for the knowledge base or for staff. Someone's own
# earlier ticket is meant only with a word that makes it theirs (我的, 上次, 我反映的 …);
# "投诉后多久有答复" asks about the process and stays a question.
_WHEN = r"(?:我|我的|我上次|上次|我之前|之前|我上周|上周|我前几天|前几天|我昨天|昨天)"
_SUBJECT = (
    rf"(?:{_WHEN}(?:提的|提交的|反映的|投诉的|举报的)?(?:工单|投诉|举报|诉求|建议|意见)"
    rf"|{_WHEN}(?:提|提交|反映|投诉|举报)的(?:问题|事情?|工单|意见|建议|诉求))"
)
_AFTER = (
    r"(?:怎么样了?|咋样了?|进度|结果|有结果|有回复|有答复|回复了|答复了|处理了?|处理得|办得|"
    r"到哪(?:一步)?了?|没消息|没动静|没人处理|没人管|还没|办好了|有人管|"
    r"(?:被)?采纳了?|有没有(?:被)?采纳|采纳没)"
)
_OWN_TICKETS_ZH = re.compile(
    rf"(?:我要|我想|帮我|请|麻烦)?(?:怎么|如何|在哪里?|去哪里?)?"
    rf"(?:查|查询|查看|看看|看一下|查一下|查下)(?:一下)?(?:我的)?"
    rf"(?:工单|投诉|举报)(?:进度|状态|情况|结果)?"
    rf"|我的(?:工单|投诉|举报)(?:进度|状态|情况|结果)?"
    rf"|(?:工单)(?:进度|状态|查询)"
    rf"|{_SUBJECT}[^，。？！,.?!]{{0,10}}{_AFTER}[^，。？！,.?!]{{0,6}}"
)
_OWN_TICKETS_EN = re.compile(
    r"(?:check |see |show me |what about |what happened to |where is |any news (?:on|about) )?"
    r"(?:the )?(?:status of )?my (?:tickets?|complaints?|reports?)(?: status| progress)?"
    r"|(?:ticket|complaint) status"
)
_END = re.compile(r"[吗呢啊吧呀了的么嘛\s,.!?，。！？、~]+$")


# A ticket number as the bot gives it (TS-2026-000123), alone or with a few words around it
# ("查一下工单TS-2026-000123", "ts-2026-000123 怎么样了").
_TICKET_NUMBER = re.compile(r"(?<![a-z0-9])ts[-\s]?(\d{4})[-\s]?(\d{6})(?![0-9])")


def ticket_number_in(normalized: str) -> str | None:
    """The ticket number a short (normalised) message asks about, written as the bot writes it."""
    found = list(_TICKET_NUMBER.finditer(normalized))
    if len(found) != 1 or len(normalized) > 40:
        return None
    year, serial = found[0].groups()
    return f"TS-{year}-{serial}"


def asks_about_own_tickets(normalized: str) -> bool:
    """Whether a (normalised) message only asks after the resident's own tickets."""
    text = _END.sub("", normalized.strip())
    if not text or len(text) > 40:
        return False
    return bool(
        _OWN_TICKETS_ZH.fullmatch(text.replace(" ", "")) or _OWN_TICKETS_EN.fullmatch(text)
    )


def ticket_type_for(normalized: str) -> str:
    """The ticket type a report's words suggest: a complaint about conduct, a request for help
    for someone in difficulty, a suggestion, else a report."""
    if _COMPLAINT_ZH.search(normalized) or _COMPLAINT_EN.search(normalized):
        return "complaint"
    if _HELP.search(normalized):
        return "help"
    if _SUGGESTION.search(normalized) and not (
        _REPORT_ZH_PATTERN.search(normalized) or _REPORT_EN_PATTERN.search(normalized)
    ):
        return "suggestion"
    return "report"
