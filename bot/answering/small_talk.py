"""Recognise small talk: greetings, thanks, "are you a robot", a resident venting at the bot ("你真笨").
It needs a friendly word (venting: an apology and a way to a person), not a choice of items or staff.

A message is small talk when nothing is left of it once greetings, thanks, acknowledgements,
questions about the bot itself, openers that say a question is coming ("我想问一下", "请问",
"怎么办" on its own) and particles are taken out: an opener alone has nothing to answer, so the
resident is invited to ask rather than handed to staff or offered items at random.

A typed request for a person ("转人工", "人工客服", "talk to a person") is told apart as well: it
is answered as the menu's "talk to a person" button is, by asking for the question a person
will answer; the words "转人工" are not themselves handed to staff as a question.
"""

from __future__ import annotations

import re

_PHRASES_ZH = (
    "你好 您好 你们好 大家好 早上好 上午好 中午好 下午好 晚上好 早安 午安 晚安 嗨 "
    "哈喽 哈罗 哈啰 还在吗 还在不在 你还在吗 在么 在嘛 人呢 在吗 在不在 有人吗 有人在吗 有没有人 谢谢你们 谢谢你 谢谢您 "
    "谢谢 多谢 感谢 谢了 辛苦了 不客气 好的 好滴 好吧 知道了 明白了 了解了 了解 "
    "收到 懂了 行吧 可以了 没事了 没事 没有了 再见 拜拜 回头见 你是谁 你是机器人 "
    "你是真人 你是人工 你是ai 你是人 真人 机器人 人工智能 你叫什么名字 你叫什么 "
    "你能做什么 你会什么 你会干什么 你能干什么 测试一下 测试 试一下 随便问问 哈哈哈 "
    "我想问一下 我想问问 想问一下 想问问 我问一下 问一下 问问 请问一下 请问 我想咨询一下 "
    "我想咨询 想咨询一下 咨询一下 咨询 我有个问题 我有一个问题 有个问题 我有问题 有问题 "
    "问个问题 问你个问题 问你一个问题 能问个问题 怎么办 怎么弄 怎么搞 "
    "哈哈 呵呵 嘿嘿 嘻嘻 嗯嗯 嗯 哦哦 哦 噢 喔 嗷 啊 哇 好 行 对 是的 不是 "
    "可以 ok 喂 有人没 有人不 不用了 不用 算了 好了 行了"
).split()
# Venting at the bot: an apology and a person to talk to, not a choice of items.
_VENTING_ZH = (
    "你真笨 真笨 太笨了 好笨 笨死了 笨蛋 傻瓜 你好傻 太傻了 垃圾机器人 废物 真没用 没用 "
    "啥都不懂 什么都不懂 啥也不懂 什么也不懂 听不懂人话 听不懂 答非所问 你不行 无语 服了 "
    # the answer given was not the one wanted
    "你说的不对 说的不对 答得不对 回答得不对 回答不对 不对 不是这个 不是我要的 不是我问的 "
    "不是我想问的 还是不懂 没看懂 看不懂 没解决 没有用"
).split()
_PHRASES_EN = (
    "good morning|good afternoon|good evening|good night|thank you very much|thank you so much|"
    "thanks a lot|thanks so much|many thanks|much appreciated|appreciate it|cheers|thank you|thanks|"
    "thx|hello|hi|hey|ok|okay|bye|goodbye|see you|are you there|anyone there|is anyone there|are you a robot|are you a bot|are you human|"
    "are you a real person|are you real|who are you|what is your name|what's your name|"
    "what can you do|test|testing|yes|no|lol|haha|cool|great|nice|got it|understood|please|"
    "i have a question|i've got a question|can i ask (?:you )?(?:a question|something)|"
    "i need (?:some )?help|need (?:some )?help|(?:can|could) you help(?: me)?|help me|help|"
    "a question|question|good job|well done|awesome|perfect"
)
_VENTING_EN = (
    "you are useless|you're useless|useless bot|useless|you are stupid|you're stupid|stupid bot|"
    "stupid|dumb|not helpful|you don't understand|you do not understand|"
    "no that's wrong|no that is wrong|that's wrong|that is wrong|wrong answer|wrong|"
    "that's not it|that is not it|not what i asked|not what i meant|not what i asked for"
)
_LEFTOVER = re.compile(r"[吗呢啊吧呀了的么嘛哈呵噢哦\s]+")
_ZH = re.compile("|".join(sorted(_PHRASES_ZH + _VENTING_ZH, key=len, reverse=True)))
_EN = re.compile(rf"\b(?:{_PHRASES_EN}|{_VENTING_EN})\b")
_VENTING = re.compile(
    "|".join(sorted(_VENTING_ZH, key=len, reverse=True)) + rf"|\b(?:{_VENTING_EN})\b"
)


# Asking for a person in so many words: a verb of reaching (optional for 人工 and 客服), who.
_PERSON_ZH = re.compile(
    r"(?:我|请|麻烦|帮我|给我|能不能|可不可以|可以)?(?:要|想|需要)?(?:转接?|找|接|要|联系|换)?"
    r"(?:人工(?:服务|客服|坐席|回复|答复)?|客服|人工台)"
    r"|(?:我|请|麻烦|帮我|给我)?(?:要|想|需要)?(?:转接?|找|接|联系|换)(?:个|一个|一位)?"
    r"(?:真人(?:客服)?|工作人员|活人)(?:来?(?:回答|答复|回复|处理|聊))?"
)
_PERSON_EN = re.compile(
    r"(?:(?:can|could|may) i |i (?:want|would like|'d like|need) to |let me |please )?"
    r"(?:talk|speak|chat) (?:to|with) (?:a |an |some |the )?"
    r"(?:real |live )?(?:person|human|agent|someone|somebody|operator|staff|member of staff|people)"
    r"|(?:a |an )?(?:real |live )?(?:human|agent|operator|real person|customer service)"
    r"(?: agent| please)?"
)
_POLITE = re.compile(r"[吗呢啊吧呀了的么嘛哈噢哦\s,.!?，。！？、~]+|谢谢|please|thanks|thank you")


def asks_for_person(normalized: str) -> bool:
    """Tell whether a normalised message does nothing but ask for a person ("转人工")."""
    rest = _POLITE.sub(" ", normalized).strip()
    if not rest or len(rest) > 40:
        return False
    compact = rest.replace(" ", "")
    return bool(_PERSON_ZH.fullmatch(compact) or _PERSON_EN.fullmatch(" ".join(rest.split())))


def is_small_talk(normalized: str) -> bool:
    """Tell whether normalised text is only small talk (empty text is not)."""
    if not normalized.strip():
        return False
    rest = _EN.sub(" ", _ZH.sub(" ", normalized))
    rest = re.sub(r"[0-9]+", " ", rest) if len(normalized) <= 4 else rest
    return not _LEFTOVER.sub("", rest)


def is_venting(normalized: str) -> bool:
    """Tell whether normalised small talk vents at the bot ("你真笨，啥都不懂")."""
    return is_small_talk(normalized) and _VENTING.search(normalized) is not None
