"""Which department a ticket goes to, from its category and its text, on the bundled departments;
and the category catalogue in both languages."""

from __future__ import annotations

import pytest

from bot.answering.knowledge_base import KnowledgeBaseError, load_knowledge_base
from bot.answering.store import LoadedKnowledge
from bot.tickets.routing import (
    complaint_categories,
    complaint_category_name,
    guess_category,
    route_ticket,
)
from tests.fixtures_knowledge import KnowledgeFolder


def test_the_category_alone_routes_a_ticket(bundled: LoadedKnowledge) -> None:
    decision = route_ticket(bundled.kb, "住房公积金", "我的申请已经提交两个月了还没有结果。")
    assert (decision.department_id, decision.reason) == ("housing-fund", "category")
    assert decision.confidence == 0.6


def test_keywords_in_the_text_confirm_the_category(bundled: LoadedKnowledge) -> None:
    decision = route_ticket(bundled.kb, "市容环境", "楼下餐馆油烟太大，晚上还有施工噪音。")
    assert decision.department_id == "urban-management"
    assert decision.reason == "category_and_keywords"
    assert set(decision.keywords) == {"油烟", "施工噪音"}
    assert decision.confidence > 0.8


def test_text_that_points_elsewhere_sends_the_ticket_to_staff_triage(
    bundled: LoadedKnowledge,
) -> None:
    decision = route_ticket(
        bundled.kb, "生态环境", "小区物业不管，电梯坏了一个月，维修资金也不用。"
    )
    assert decision.department_id is None
    assert decision.reason == "low_confidence"
    assert decision.scores["housing-construction"] > 0


def test_a_generic_category_relies_on_the_text(bundled: LoadedKnowledge) -> None:
    clear = route_ticket(bundled.kb, "其他", "我家楼下的工厂排污，河道发黑有臭味。")
    assert (clear.department_id, clear.reason) == ("ecology-environment", "keywords")
    vague = route_ticket(bundled.kb, "其他", "有件事想反映一下。")
    assert (vague.department_id, vague.reason) == (None, "no_signal")


@pytest.mark.parametrize(
    ("text", "category"),
    [
        # Street lights are urban management's (路灯), whose first category is 市容环境.
        ("我家楼下的路灯坏了", "市容环境"),
        # Two of urban management's keywords; its category that names them.
        ("小区门口有人占道摆摊", "占道与违建"),
        # 工地 is housing and construction's; 工程建设 shares the text's 工.
        ("工地半夜施工太吵", "工程建设"),
        ("消防通道被电动车堵死了", "治安与消防"),
        # The service centre's generic 其他 is never a guess, whatever the text shares with it.
        ("窗口排队太久，他们也不管", "政务服务"),
        # Complaints about how an office works, and everyday problems residents report.
        ("你们这个办事效率太低了", "政务服务"),
        ("网上办事系统老是登不上", "政务服务"),
        ("马路上有个大坑", "市容环境"),
        ("楼上漏水到我家了", "住房与物业"),
        ("我被黑中介骗了押金", "住房与物业"),
        # A keyword right before 门口, 旁边 … is where the problem is, not what it is: 小区门口
        # is not the housing bureau's, the rubbish is urban management's.
        ("小区门口的垃圾没人清", "市容环境"),
        # A category's own keywords (complaint_category_keywords) pick it among the
        # department's, where no category name shares a character with the text.
        ("建议在小区门口加个红绿灯", "道路交通秩序"),
        ("医院门口乱停车", "道路交通秩序"),
        ("公司拖欠工资三个月了", "劳动权益"),
        ("养老院的护工打老人", "养老服务"),
        # Two of food safety's keywords against one of consumer rights'.
        ("超市卖过期食品", "食品药品安全"),
    ],
)
def test_a_category_is_guessed_from_the_departments_keywords(
    bundled: LoadedKnowledge, text: str, category: str
) -> None:
    assert guess_category(bundled.kb, text) == category
    assert category in complaint_categories(bundled.kb)


@pytest.mark.parametrize(
    ("text", "department"),
    [
        ("我家楼下的路灯坏了", "urban-management"),
        ("公司拖欠工资三个月了", "human-resources"),
        ("河边的工厂偷偷排污", "ecology-environment"),
        # 小区 (housing) before 门口 is only where: 红绿灯 and 乱停车 are the traffic police's.
        ("建议在小区门口加个红绿灯", "traffic-police"),
        ("医院门口乱停车", "traffic-police"),
    ],
)
def test_a_guessed_category_routes_the_ticket_to_the_department_of_its_keywords(
    bundled: LoadedKnowledge, text: str, department: str
) -> None:
    category = guess_category(bundled.kb, text)
    assert category is not None
    assert route_ticket(bundled.kb, category, text).department_id == department


def test_a_citys_category_keywords_choose_the_category_and_count_for_the_department(
    knowledge_folder: KnowledgeFolder,
) -> None:
    knowledge_folder.item("id-card-renewal")
    knowledge_folder.write(
        "departments.toml",
        '[[departments]]\nid = "public-security"\nname = "示例市公安局"\n'
        'complaint_categories = ["治安"]\ncomplaint_keywords = ["小偷"]\n'
        '[[departments]]\nid = "traffic-police"\nname = "交警支队"\n'
        'complaint_categories = ["驾驶证", "秩序"]\n'
        'complaint_category_keywords = ["秩序: 斑马线 红绿灯"]\n',
    )
    kb = load_knowledge_base(knowledge_folder.root)
    text = "学校门前的斑马线都磨没了"

    # The traffic police list no keyword of their own: the category's are theirs, and it is
    # the category guessed, not the first listed.
    assert guess_category(kb, text) == "秩序"
    decision = route_ticket(kb, "秩序", text)
    assert (decision.department_id, decision.reason, decision.keywords) == (
        "traffic-police",
        "category_and_keywords",
        ("斑马线",),
    )
    assert guess_category(kb, "有小偷") == "治安"


@pytest.mark.parametrize(
    "text",
    [
        "有件事想反映一下。",
        "今天天气怎么样",
        # 小区 (housing and construction) and 垃圾 (urban management): one each, no guess.
        "小区里的垃圾",
        "the street light is broken",
        "",
    ],
)
def test_no_hit_or_a_tie_is_no_guess(bundled: LoadedKnowledge, text: str) -> None:
    assert guess_category(bundled.kb, text) is None


def test_the_catalogue_lists_every_departments_categories_once_in_order(
    bundled: LoadedKnowledge,
) -> None:
    categories = complaint_categories(bundled.kb)
    assert categories[:3] == ["户籍与身份证", "治安与消防", "出入境"]
    assert len(categories) == len(set(categories))
    assert complaint_category_name(bundled.kb, "市容环境", "en") == (
        "City appearance and sanitation"
    )
    assert complaint_category_name(bundled.kb, "市容环境", "zh") == "市容环境"
    assert all(complaint_category_name(bundled.kb, c, "en").isascii() for c in categories)


def test_english_category_names_must_match_the_chinese_ones(
    knowledge_folder: KnowledgeFolder,
) -> None:
    knowledge_folder.departments(
        {
            "id": "public-security",
            "name": "示例市公安局",
            "complaint_categories": ["治安", "消防"],
            "complaint_categories_en": ["Public order"],
        }
    )
    knowledge_folder.item("id-card-renewal")
    with pytest.raises(KnowledgeBaseError, match="complaint_categories_en"):
        load_knowledge_base(knowledge_folder.root)
