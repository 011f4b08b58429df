"""Loading the knowledge base: every problem named by file and field, and reloads that keep serving.

Each test writes a knowledge base the way staff do (one TOML file per item) and reads what
`python -m bot kb check` would tell them.
"""

from __future__ import annotations

import asyncio
import gc
import shutil
import sys
import threading
import time
import weakref
from pathlib import Path
from typing import Any

import pytest

from bot.answering import yielding
from bot.answering.knowledge_base import KnowledgeBaseError, load_knowledge_base
from bot.answering.matching import MatchingThresholds
from bot.answering.store import RELOAD_SWITCH_INTERVAL, KnowledgeStore
from tests.fixtures_knowledge import (
    BUNDLED_KNOWLEDGE,
    TAIPEI_FAQ,
    KnowledgeFolder,
    best_id,
    toml_table,
)

REQUIRED_FIELDS = (
    "id",
    "kind",
    "title",
    "category",
    "department",
    "questions",
    "keywords",
    "answer",
)


def problems_of(folder: KnowledgeFolder) -> list[str]:
    """Load a knowledge base that must fail; return its problems as staff read them."""
    with pytest.raises(KnowledgeBaseError) as caught:
        load_knowledge_base(folder.root)
    problems = [str(problem) for problem in caught.value.problems]
    # The exception's own message lists every problem too (that is what `kb check` prints).
    for problem in problems:
        assert problem in str(caught.value)
    return problems


# -- what loads ---------------------------------------------------------------------------------


def test_knowledge_base_with_only_required_fields_loads(knowledge_folder: KnowledgeFolder) -> None:
    knowledge_folder.item("id-card-renewal")
    knowledge_folder.item("disclosure-guide", folder="disclosures", title="政府信息公开指南")

    kb = load_knowledge_base(knowledge_folder.root)

    assert sorted(kb.items) == ["disclosure-guide", "id-card-renewal"]
    guide = kb.items["id-card-renewal"]
    assert guide.kind == "guide"
    assert guide.source == "guides/id-card-renewal.toml"
    assert guide.questions == ("身份证快过期了怎么换",)
    assert guide.get_text("fee") == ""
    assert guide.get_list("materials") == ()
    assert kb.items["disclosure-guide"].kind == "disclosure"
    assert kb.department_of(guide).name == "示例市公安局"
    assert kb.synonyms == ()
    assert kb.warnings == ()


def test_unknown_fields_load_with_a_warning_naming_file_and_field(
    knowledge_folder: KnowledgeFolder,
) -> None:
    knowledge_folder.item("id-card-renewal", meterials=["原居民身份证"])
    knowledge_folder.departments(
        {"id": "public-security", "name": "示例市公安局", "fax": "012-81110111"}
    )
    knowledge_folder.write("synonyms.toml", 'grups = [["户口", "户籍"]]\n')

    kb = load_knowledge_base(knowledge_folder.root)

    warnings = [str(w) for w in kb.warnings]
    assert (
        "guides/id-card-renewal.toml: field 'meterials': unknown field (misspelt?); it is ignored"
        in warnings
    )
    assert any(w.startswith("departments.toml (department #1): field 'fax':") for w in warnings)
    assert any(w.startswith("synonyms.toml: field 'grups': unknown field") for w in warnings)
    assert kb.items["id-card-renewal"].get_list("materials") == ()


def test_related_item_that_does_not_exist_is_a_warning(knowledge_folder: KnowledgeFolder) -> None:
    knowledge_folder.item("id-card-renewal", related=["id-card-replacment"])

    kb = load_knowledge_base(knowledge_folder.root)

    assert [str(w) for w in kb.warnings] == [
        "guides/id-card-renewal.toml: field 'related': unknown item 'id-card-replacment'; "
        "it is not shown"
    ]


def test_bundled_knowledge_base_loads_without_warnings() -> None:
    kb = load_knowledge_base(BUNDLED_KNOWLEDGE)

    assert kb.warnings == ()
    assert kb.items
    assert kb.departments
    assert kb.synonyms
    for item in kb.items.values():
        folder = "guides" if item.kind == "guide" else "disclosures"
        assert item.source == f"{folder}/{item.id}.toml"
        assert item.department in kb.departments
        assert item.questions


def test_real_taipei_faq_in_traditional_chinese_loads() -> None:
    kb = load_knowledge_base(TAIPEI_FAQ)

    # The size of the published data set (benchmarks/data/taipei-faq/README.md).
    assert len(kb.items) == 1877
    assert kb.warnings == ()
    assert {item.kind for item in kb.items.values()} == {"guide"}
    # Its text is kept as written: traditional characters, long answers, empty keyword lists.
    assert any("臺北市" in item.title for item in kb.items.values())
    assert all(department.name.startswith("臺北") for department in kb.departments.values())
    assert any(not item.keywords for item in kb.items.values())
    assert max(len(item.answer) for item in kb.items.values()) > 1000


# -- what does not load, and how staff are told -------------------------------------------------


def test_loader_names_file_of_bad_toml(knowledge_folder: KnowledgeFolder) -> None:
    knowledge_folder.write(
        "guides/id-card-renewal.toml", 'id = "id-card-renewal"\ntitle = 居民身份证\n'
    )

    [problem] = problems_of(knowledge_folder)

    assert problem.startswith("guides/id-card-renewal.toml: bad TOML: ")
    assert "line 2" in problem


def test_loader_names_file_that_is_not_utf8(knowledge_folder: KnowledgeFolder) -> None:
    path = knowledge_folder.item("id-card-renewal")
    path.write_bytes(path.read_text(encoding="utf-8").encode("gb18030"))

    assert problems_of(knowledge_folder) == [
        "guides/id-card-renewal.toml: bad TOML: the file is not UTF-8 text"
    ]


@pytest.mark.parametrize("field", REQUIRED_FIELDS)
def test_loader_names_file_and_field_that_is_missing(
    knowledge_folder: KnowledgeFolder, field: str
) -> None:
    left_out: dict[str, Any] = {field: None}
    knowledge_folder.item("id-card-renewal", **left_out)

    assert f"guides/id-card-renewal.toml: field '{field}': missing field" in problems_of(
        knowledge_folder
    )


def test_loader_names_file_and_field_of_unknown_department(
    knowledge_folder: KnowledgeFolder,
) -> None:
    knowledge_folder.item("id-card-renewal", department="police")

    assert problems_of(knowledge_folder) == [
        "guides/id-card-renewal.toml: field 'department': unknown department 'police' "
        "(not in departments.toml)"
    ]


def test_loader_names_both_files_of_a_duplicate_id(knowledge_folder: KnowledgeFolder) -> None:
    knowledge_folder.item("id-card-renewal")
    knowledge_folder.item("id-card-renewal", folder="disclosures")

    assert problems_of(knowledge_folder) == [
        "disclosures/id-card-renewal.toml: field 'id': duplicate id 'id-card-renewal', "
        "also in guides/id-card-renewal.toml"
    ]


def test_a_copied_item_file_is_named_a_duplicate_not_only_a_misnaming(
    knowledge_folder: KnowledgeFolder,
) -> None:
    knowledge_folder.item("id-card-renewal")
    knowledge_folder.item("id-card-renewal", file_stem="id-card-renewal-copy")

    assert problems_of(knowledge_folder) == [
        "guides/id-card-renewal-copy.toml: field 'id': duplicate id 'id-card-renewal', also in "
        "guides/id-card-renewal.toml; 'id-card-renewal' does not match the file name "
        "'id-card-renewal-copy'"
    ]


def test_loader_names_file_and_field_of_id_not_matching_file_name(
    knowledge_folder: KnowledgeFolder,
) -> None:
    knowledge_folder.item("id-card-renewal", file_stem="id-card")

    assert problems_of(knowledge_folder) == [
        "guides/id-card.toml: field 'id': 'id-card-renewal' does not match the file name 'id-card'"
    ]


@pytest.mark.parametrize(
    "item_id", ["ID-Card", "id_card", "id card", "-id-card", "id--card", "身份证换领"]
)
def test_loader_names_file_and_field_of_id_that_is_not_kebab_case(
    knowledge_folder: KnowledgeFolder, item_id: str
) -> None:
    knowledge_folder.item(item_id)

    assert problems_of(knowledge_folder) == [
        f"guides/{item_id}.toml: field 'id': '{item_id}' is not kebab-case ASCII (a-z, 0-9, -)"
    ]


@pytest.mark.parametrize("questions", [[], ["", "   "]])
def test_loader_names_file_and_field_of_empty_questions(
    knowledge_folder: KnowledgeFolder, questions: list[str]
) -> None:
    knowledge_folder.item("id-card-renewal", questions=questions)

    assert problems_of(knowledge_folder) == [
        "guides/id-card-renewal.toml: field 'questions': must hold at least one question"
    ]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("title", 5, "must be text, not int"),
        ("title", "   ", "must not be empty"),
        ("answer", ["有效期满前三个月内可以申请换领。"], "must be text, not list"),
        ("questions", "身份证快过期了怎么换", "must be an array of text"),
        ("keywords", ["身份证", 2], "must be an array of text"),
        ("materials", "原居民身份证", "must be an array of text"),
        ("fee", 20, "must be text, not int"),
        ("title_en", True, "must be text, not bool"),
        ("updated", 20261001, "must be a date such as 2026-10-01"),
        ("kind", "faq", "'faq' is not 'guide' or 'disclosure'"),
        ("kind", "disclosure", "'disclosure' item in the folder for 'guide' items"),
        ("disclosure", "secret", "'secret' is not one of proactive, on_request, exempt"),
    ],
)
def test_loader_names_file_and_field_of_wrong_type_or_value(
    knowledge_folder: KnowledgeFolder, field: str, value: object, message: str
) -> None:
    wrong: dict[str, Any] = {field: value}
    knowledge_folder.item("id-card-renewal", **wrong)

    assert problems_of(knowledge_folder) == [
        f"guides/id-card-renewal.toml: field '{field}': {message}"
    ]


def test_loader_reports_every_problem_in_one_pass(knowledge_folder: KnowledgeFolder) -> None:
    knowledge_folder.item("id-card-renewal", department="police", keywords=None)
    knowledge_folder.item("marriage-registration", title=None)

    problems = problems_of(knowledge_folder)

    assert problems == [
        "guides/id-card-renewal.toml: field 'department': unknown department 'police' "
        "(not in departments.toml)",
        "guides/id-card-renewal.toml: field 'keywords': missing field",
        "guides/marriage-registration.toml: field 'title': missing field",
    ]


def test_loader_names_missing_departments_file(knowledge_folder: KnowledgeFolder) -> None:
    knowledge_folder.item("id-card-renewal")
    (knowledge_folder.root / "departments.toml").unlink()

    assert problems_of(knowledge_folder) == ["departments.toml: missing file"]


@pytest.mark.parametrize(
    ("departments", "problem"),
    [
        ("departments = []\n", "departments.toml: field 'departments': must be a non-empty array"),
        (
            '[[department]]\nid = "public-security"\nname = "示例市公安局"\n',
            "departments.toml: field 'departments':",
        ),
        (
            '[[departments]]\nid = "public-security"\nname = "示例市公安局"\n'
            '[[departments]]\nid = "civil-affairs"\n',
            "departments.toml (department #2): field 'name': missing field",
        ),
        (
            '[[departments]]\nid = "public-security"\nname = "示例市公安局"\n'
            '[[departments]]\nid = "public-security"\nname = "示例市公安局户政科"\n',
            "departments.toml (department #2): field 'id': duplicate department id 'public-security'",
        ),
        (
            '[[departments]]\nid = "public-security"\nname = "示例市公安局"\nphone = 110\n',
            "departments.toml (department #1): field 'phone': must be text, not int",
        ),
        ("[[departments]\n", "departments.toml: bad TOML:"),
        (
            '[[departments]]\nid = "traffic-police"\nname = "交警支队"\n'
            'complaint_categories = ["道路交通秩序"]\n'
            'complaint_category_keywords = ["红绿灯 信号灯"]\n',
            "departments.toml (department #1): field 'complaint_category_keywords': each line is "
            "a category, a colon and its keywords ('红绿灯 信号灯')",
        ),
        (
            '[[departments]]\nid = "traffic-police"\nname = "交警支队"\n'
            'complaint_categories = ["道路交通秩序"]\n'
            'complaint_category_keywords = ["交通秩序: 红绿灯"]\n',
            "departments.toml (department #1): field 'complaint_category_keywords': '交通秩序' "
            "is not one of complaint_categories",
        ),
        (
            '[[departments]]\nid = "traffic-police"\nname = "交警支队"\n'
            'complaint_categories = ["道路交通秩序"]\n'
            'complaint_category_keywords = ["道路交通秩序："]\n',
            "departments.toml (department #1): field 'complaint_category_keywords': each line is "
            "a category, a colon and its keywords ('道路交通秩序：')",
        ),
    ],
)
def test_loader_names_file_and_field_of_bad_departments(
    knowledge_folder: KnowledgeFolder, departments: str, problem: str
) -> None:
    knowledge_folder.item("id-card-renewal")
    knowledge_folder.write("departments.toml", departments)

    assert any(p.startswith(problem) for p in problems_of(knowledge_folder))


@pytest.mark.parametrize(
    ("synonyms", "problem"),
    [
        (
            'groups = "户口 户籍"\n',
            "synonyms.toml: field 'groups': must be an array of arrays of words",
        ),
        (
            'groups = [["户口", "户籍"], ["身份证", 2]]\n',
            "synonyms.toml: field 'groups[2]': must be an array of words",
        ),
        (
            'groups = [["户口", "户籍"], "身份证"]\n',
            "synonyms.toml: field 'groups[2]': must be an array of words",
        ),
        ('groups = [["户口", "户籍"]\n', "synonyms.toml: bad TOML:"),
    ],
)
def test_loader_names_file_and_field_of_bad_synonyms(
    knowledge_folder: KnowledgeFolder, synonyms: str, problem: str
) -> None:
    knowledge_folder.item("id-card-renewal")
    knowledge_folder.write("synonyms.toml", synonyms)

    [reported] = problems_of(knowledge_folder)
    assert reported.startswith(problem)


def test_a_departments_category_keywords_are_read_line_by_line(
    knowledge_folder: KnowledgeFolder,
) -> None:
    knowledge_folder.item("id-card-renewal")
    knowledge_folder.write(
        "departments.toml",
        '[[departments]]\nid = "public-security"\nname = "示例市公安局"\n'
        '[[departments]]\nid = "traffic-police"\nname = "交警支队"\n'
        'complaint_categories = ["交通与驾驶证", "道路交通秩序"]\n'
        'complaint_keywords = ["交警", "红绿灯"]\n'
        # Colons and separators as editors type them; a category written twice.
        'complaint_category_keywords = ["道路交通秩序： 红绿灯、信号灯,斑马线", '
        '"交通与驾驶证:驾照  车管所", "道路交通秩序: 违停 红绿灯"]\n',
    )

    police = load_knowledge_base(knowledge_folder.root).departments["traffic-police"]

    assert police.category_keywords == (
        ("道路交通秩序", ("红绿灯", "信号灯", "斑马线", "违停")),
        ("交通与驾驶证", ("驾照", "车管所")),
    )
    # The categories' keywords point to the department as its own do, each once.
    assert police.routing_keywords == (
        "交警",
        "红绿灯",
        "信号灯",
        "斑马线",
        "违停",
        "驾照",
        "车管所",
    )


def test_loader_says_when_there_are_no_items(knowledge_folder: KnowledgeFolder) -> None:
    [problem] = problems_of(knowledge_folder)

    assert "no items" in problem
    assert str(knowledge_folder.root) in problem


def test_loader_says_when_the_folder_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(KnowledgeBaseError) as caught:
        load_knowledge_base(tmp_path / "knowlege")

    assert [str(p) for p in caught.value.problems] == [f"{tmp_path / 'knowlege'}: not a folder"]


# -- reloading a running bot's knowledge --------------------------------------------------------

MARRIAGE: dict[str, Any] = {
    "title": "结婚登记",
    "category": "婚姻登记",
    "department": "civil-affairs",
    "questions": ["结婚登记需要带什么材料"],
    "keywords": ["结婚", "结婚证"],
    "answer": "双方带身份证和户口簿到婚姻登记处办理。",
}

DOG_REGISTRATION: dict[str, Any] = {
    "id": "dog-registration",
    "kind": "guide",
    "title": "养犬登记",
    "category": "治安与消防",
    "department": "public-security",
    "questions": ["养狗要办狗证吗", "狗证在哪里办"],
    "keywords": ["养犬", "狗证"],
    "answer": "在城区养犬须在取得犬只后三十日内到派出所办理养犬登记。",
}


def _store(folder: KnowledgeFolder) -> KnowledgeStore:
    return KnowledgeStore(folder.root, MatchingThresholds())


async def test_reload_swaps_in_a_valid_change(knowledge_folder: KnowledgeFolder) -> None:
    knowledge_folder.item("id-card-renewal")
    store = _store(knowledge_folder)
    before = store.current
    assert store.matcher.match("结婚登记需要带什么材料").decision != "answer"

    knowledge_folder.item("marriage-registration", **MARRIAGE)
    fresh = await store.reload()

    assert store.current is fresh is not before
    assert sorted(store.kb.items) == ["id-card-renewal", "marriage-registration"]
    result = store.matcher.match("结婚登记需要带什么材料")
    assert result.decision == "answer"
    assert best_id(result) == "marriage-registration"


async def test_invalid_reload_raises_and_keeps_the_old_knowledge_serving(
    knowledge_folder: KnowledgeFolder,
) -> None:
    knowledge_folder.item("id-card-renewal")
    store = _store(knowledge_folder)
    before = store.current

    knowledge_folder.item(
        "marriage-registration", **(MARRIAGE | {"department": "marriage-office"})
    )
    with pytest.raises(
        KnowledgeBaseError, match=r"marriage-registration\.toml: field 'department'"
    ):
        await store.reload()

    assert store.current is before
    assert store.kb is before.kb
    assert store.matcher is before.matcher
    result = store.matcher.match("身份证快过期了怎么换")
    assert result.decision == "answer"
    assert best_id(result) == "id-card-renewal"


async def test_questions_asked_during_a_reload_are_answered(tmp_path: Path) -> None:
    # The bundled knowledge base takes long enough to index for questions to arrive meanwhile.
    root = tmp_path / "knowledge"
    shutil.copytree(BUNDLED_KNOWLEDGE, root)
    store = KnowledgeStore(root, MatchingThresholds())
    question = store.kb.items["id-card-renewal"].questions[0]
    (root / "guides" / "dog-registration.toml").write_text(
        toml_table(DOG_REGISTRATION), encoding="utf-8"
    )

    usual_interval = sys.getswitchinterval()
    reload = asyncio.create_task(store.reload())
    await asyncio.sleep(0)
    answered_during_reload = []
    switch_intervals = []
    while not reload.done():
        switch_intervals.append(sys.getswitchinterval())
        answered_during_reload.append(store.matcher.match(question))
        await asyncio.sleep(0)
    await reload

    assert answered_during_reload
    # The build handed the interpreter lock over quickly while it ran, and the usual interval
    # is back once it is done (bot/answering/store.py).
    assert switch_intervals
    assert max(switch_intervals) <= RELOAD_SWITCH_INTERVAL
    assert sys.getswitchinterval() == usual_interval
    for result in answered_during_reload:
        assert result.decision == "answer"
        assert best_id(result) == "id-card-renewal"
    result = store.matcher.match("养狗要办狗证吗")
    assert best_id(result) == "dog-registration"


def test_an_index_build_waits_at_its_checkpoints_while_a_question_is_matched(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Only the end of the question lets the build go on (not its longest wait).
    monkeypatch.setattr(yielding, "LONGEST_WAIT", 60.0)
    waits = yielding.waits()
    yielding.checkpoint()  # no question being matched: no wait
    assert yielding.waits() == waits

    steps: list[str] = []

    def build_step() -> None:
        yielding.checkpoint()
        steps.append("build step")

    with yielding.answering():
        builder = threading.Thread(target=build_step)
        builder.start()
        while yielding.waits() == waits:  # until the builder is at its checkpoint
            time.sleep(0.001)
        steps.append("question answered")
    builder.join()

    assert steps == ["question answered", "build step"]


async def test_a_reload_frees_the_index_it_replaced_and_freezes_the_new_one(
    knowledge_folder: KnowledgeFolder,
) -> None:
    knowledge_folder.item("id-card-renewal")
    store = _store(knowledge_folder)
    replaced = weakref.ref(store.matcher)
    frozen = gc.get_freeze_count()
    collecting = gc.isenabled()
    gc.disable()  # what frees the old index is reference counting, not a collection
    try:
        knowledge_folder.item("marriage-registration", **MARRIAGE)
        await store.reload()
        assert replaced() is None
    finally:
        if collecting:
            gc.enable()
    # What the build made is out of the collector's walks (bot/answering/store.py).
    assert gc.get_freeze_count() > frozen
    assert gc.isenabled() == collecting
    assert best_id(store.matcher.match("结婚登记需要带什么材料")) == "marriage-registration"


async def test_reloads_at_the_same_time_both_finish(knowledge_folder: KnowledgeFolder) -> None:
    knowledge_folder.item("id-card-renewal")
    store = _store(knowledge_folder)
    knowledge_folder.item("marriage-registration", **MARRIAGE)

    first, second = await asyncio.gather(store.reload(), store.reload())

    assert store.current is second
    assert sorted(first.kb.items) == sorted(second.kb.items) == sorted(store.kb.items)
