"""Recognise questions about another city's affairs, which this city's knowledge base cannot answer.

"北京市的公积金怎么提取" matches our housing-fund item word for word, yet our answer would send the
resident to the wrong office in the wrong city. A place named as where the matter is (not where the
resident travels to) marks the question for a person, unless the question itself ties that place
to this city (transfers, moving here, coming back, out-of-area medical care).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Provinces, regions and cities whose bare name is unambiguous; any other prefecture-level city
# is recognised only with 市 or 省 after it, since many names are also ordinary words (安康, 中山).
_BARE_NAMES = (
    "北京 上海 天津 重庆 广州 深圳 杭州 南京 武汉 成都 西安 苏州 郑州 长沙 沈阳 "
    "青岛 大连 厦门 宁波 济南 哈尔滨 长春 合肥 福州 南昌 昆明 贵阳 南宁 海口 "
    "三亚 兰州 银川 西宁 乌鲁木齐 拉萨 呼和浩特 石家庄 太原 东莞 佛山 无锡 温州 "
    "珠海 常州 徐州 烟台 泉州 惠州 绍兴 嘉兴 金华 台州 南通 扬州 潍坊 洛阳 襄阳 "
    "宜昌 桂林 柳州 汕头 湛江 江门 保定 唐山 邯郸 廊坊 秦皇岛 包头 鄂尔多斯 大庆 "
    "吉林 鞍山 抚顺 广东 浙江 江苏 山东 河南 河北 湖南 湖北 四川 云南 贵州 广西 "
    "福建 江西 安徽 山西 陕西 甘肃 青海 辽宁 黑龙江 内蒙古 新疆 西藏 宁夏 海南"
).split()
_SUFFIXED_NAMES = (
    "芜湖 蚌埠 淮南 马鞍山 淮北 铜陵 安庆 黄山 滁州 阜阳 宿州 六安 亳州 池州 "
    "宣城 莆田 三明 漳州 南平 龙岩 宁德 韶关 汕尾 河源 梅州 阳江 清远 中山 潮州 "
    "揭阳 云浮 茂名 肇庆 北海 防城港 钦州 贵港 玉林 百色 贺州 河池 来宾 崇左 "
    "梧州 遵义 安顺 毕节 铜仁 六盘水 儋州 三沙 承德 张家口 沧州 衡水 邢台 开封 "
    "平顶山 安阳 鹤壁 新乡 焦作 濮阳 许昌 漯河 三门峡 南阳 商丘 信阳 周口 驻马店 "
    "齐齐哈尔 鸡西 鹤岗 双鸭山 伊春 佳木斯 七台河 牡丹江 黑河 绥化 黄石 十堰 鄂州 "
    "荆门 孝感 荆州 黄冈 咸宁 随州 株洲 湘潭 衡阳 邵阳 岳阳 常德 张家界 益阳 "
    "郴州 永州 怀化 娄底 四平 辽源 通化 白山 松原 白城 连云港 淮安 盐城 镇江 "
    "泰州 宿迁 景德镇 萍乡 九江 新余 鹰潭 赣州 吉安 宜春 抚州 上饶 本溪 丹东 "
    "锦州 营口 阜新 辽阳 盘锦 铁岭 朝阳 葫芦岛 乌海 赤峰 通辽 呼伦贝尔 巴彦淖尔 "
    "乌兰察布 石嘴山 吴忠 固原 中卫 海东 淄博 枣庄 东营 济宁 泰安 威海 日照 临沂 "
    "德州 聊城 滨州 菏泽 大同 阳泉 长治 晋城 朔州 晋中 运城 忻州 临汾 吕梁 铜川 "
    "宝鸡 咸阳 渭南 延安 汉中 榆林 安康 商洛 自贡 攀枝花 泸州 德阳 绵阳 广元 "
    "遂宁 内江 乐山 南充 眉山 宜宾 广安 达州 雅安 巴中 资阳 克拉玛依 吐鲁番 哈密 "
    "日喀则 昌都 林芝 山南 那曲 曲靖 玉溪 保山 昭通 丽江 普洱 临沧 湖州 舟山 "
    "衢州 丽水 嘉峪关 金昌 白银 天水 武威 张掖 平凉 酒泉 庆阳 定西 陇南"
).split()
# Where the place is a destination, the matter is still the resident's own: "去上海出差，身份证丢了".
_DESTINATION_BEFORE = "去到来回往赴飞从离"
# Pinyin names of the larger cities, for English questions ("a residence permit in Shanghai").
_ENGLISH_NAMES = (
    "beijing shanghai tianjin chongqing guangzhou "
    "shenzhen hangzhou nanjing wuhan chengdu "
    "xi'an xian suzhou zhengzhou changsha "
    "shenyang qingdao dalian xiamen ningbo jinan "
    "harbin changchun hefei fuzhou nanchang "
    "kunming guiyang nanning haikou sanya lanzhou "
    "urumqi lhasa shijiazhuang taiyuan dongguan "
    "foshan wuxi wenzhou zhuhai guangdong "
    "zhejiang jiangsu shandong henan hebei hunan "
    "hubei sichuan yunnan guizhou guangxi fujian "
    "jiangxi anhui shanxi shaanxi gansu liaoning "
    "heilongjiang xinjiang tibet"
).split()
ENGLISH_PLACE_NAMES = frozenset(_ENGLISH_NAMES)
# Words in a question that tie another place to this city: the matter is the resident's own here.
CROSS_REGION_MARKERS = (
    "异地",
    "外地",
    "外省",
    "跨省",
    "省外",
    "市外",
    "转移",
    "转入",
    "转出",
    "转回",
    "转到",
    "转过来",
    "转来",
    "迁到",
    "迁来",
    "迁入",
    "迁出",
    "迁过来",
    "回来",
    "回到",
    "回本地",
    "这边",
    "这里",
    "本地",
    "我们这",
    "来这",
    "随迁",
    "投靠",
    "接续",
    "搬到",
    "搬来",
    "here",
    "transfer",
    "move",
    "moved",
    "moving",
    "back",
    "locally",
    "this city",
)


def names_pattern(
    names: Iterable[str], guarded: Iterable[tuple[str, str]] = ()
) -> re.Pattern[str]:
    """One pattern for many names: the names, longest first, then the guarded ones (a name and
    the pattern to use for it, with its lookarounds), behind a lookahead on their first
    characters. The lookahead lets through only the positions where some name begins: without
    it the regex engine tries every alternative at every character, a tenth of a millisecond
    for a resident's story with 350-odd names. It consumes nothing, so the matches are the
    same."""
    ordered = sorted(dict.fromkeys(names), key=len, reverse=True)
    guarded = tuple(guarded)
    starts = "".join(sorted({name[0] for name in ordered} | {name[0] for name, _ in guarded}))
    alternatives = [re.escape(name) for name in ordered] + [pattern for _, pattern in guarded]
    return re.compile(f"(?=[{re.escape(starts)}])(?:{'|'.join(alternatives)})")


def _pattern(home_names: Iterable[str]) -> re.Pattern[str]:
    home = {h for h in home_names if h}
    suffixed = sorted((n for n in _SUFFIXED_NAMES if n not in home), key=len, reverse=True)
    english = sorted((n for n in _ENGLISH_NAMES if n not in home), key=len, reverse=True)
    return names_pattern(
        (n for n in _BARE_NAMES if n not in home),
        [(n, f"{n}(?=[市省])") for n in suffixed] + [(n, rf"\b{re.escape(n)}\b") for n in english],
    )


class PlaceDetector:
    """Finds a place other than this city named as where a question's matter is."""

    def __init__(self, home_names: Iterable[str]) -> None:
        self.home_names = tuple(h for h in home_names if h)
        self._pattern = _pattern(self.home_names)

    def other_place(self, normalized: str) -> str | None:
        """Return the other place the question is about, or None."""
        if any(home in normalized for home in self.home_names):
            return None
        if any(marker in normalized for marker in CROSS_REGION_MARKERS):
            return None
        for match in self._pattern.finditer(normalized):
            before = normalized[max(0, match.start() - 2) : match.start()]
            if any(c in _DESTINATION_BEFORE for c in before):
                continue
            return match.group()
        return None
