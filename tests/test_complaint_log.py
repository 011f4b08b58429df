"""The complaint log's filters, search and keyset paging; the disclosure figures; unanswered
questions grouped; exports guarded against formulas. Both databases."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.answering.unanswered import AskedQuestion, group_questions, unanswered_questions
from bot.core.exports import BOM, csv_chunks, guard_cell, xlsx_bytes
from bot.core.models import Question, Resident, Ticket
from bot.tickets.complaint_log import UNROUTED, Cursor, LogFilters, list_tickets
from bot.tickets.disclosure_report import disclosure_report

CHINA = ZoneInfo("Asia/Shanghai")
# Thursday 26 November 2026, 10:00 in 示例市.
NOON = dt.datetime(2026, 11, 26, 10, 0, tzinfo=CHINA)


def at(days: float = 0, **delta: float) -> dt.datetime:
    return (NOON + dt.timedelta(days=days, **delta)).astimezone(dt.UTC)


class Tickets:
    """Writes tickets with exactly the fields a test cares about."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        self.count = 0

    async def add(self, **fields: Any) -> Ticket:
        self.count += 1
        values: dict[str, Any] = {
            "number": f"TS-2026-{self.count:06d}",
            "type": "complaint",
            "category": "市容环境",
            "department_id": "urban-management",
            "status": "assigned",
            "description": "幸福小区垃圾没人清理",
            "created_at": at(-self.count / 100),
        }
        values.update(fields)
        async with self.sessions() as session:
            ticket = Ticket(**values)
            session.add(ticket)
            await session.commit()
        return ticket


@pytest.fixture
def tickets(sessions: async_sessionmaker[AsyncSession]) -> Tickets:
    return Tickets(sessions)


async def numbers(
    sessions: async_sessionmaker[AsyncSession], filters: LogFilters | None = None, **paging: Any
) -> list[str]:
    async with sessions() as session:
        page = await list_tickets(session, filters or LogFilters(), zone=CHINA, **paging)
    return [t.number for t in page.tickets]


def parsed(**query: str) -> LogFilters:
    return LogFilters.parse(query, departments=["urban-management", "ecology-environment"])


async def test_each_filter_narrows_the_log(
    sessions: async_sessionmaker[AsyncSession], tickets: Tickets
) -> None:
    plain = await tickets.add()
    report = await tickets.add(
        type="report", category="治安与消防", department_id="public-security"
    )
    unrouted = await tickets.add(status="received", department_id=None, category="其他")
    replied = await tickets.add(status="replied", replied_at=at(-1), rating=5)
    unhappy = await tickets.add(status="replied", replied_at=at(-1), rating=2)
    unrated = await tickets.add(status="closed", replied_at=at(-1))
    late = await tickets.add(reply_deadline=at(-1))
    flagged = await tickets.add(status="replied", replied_at=at(-1), overdue=True)
    on_time = await tickets.add(status="replied", replied_at=at(-1), reply_deadline=at(1))
    assert await numbers(sessions, parsed(type="report")) == [report.number]
    assert await numbers(sessions, parsed(department=UNROUTED)) == [unrouted.number]
    assert await numbers(sessions, parsed(category="治安与消防")) == [report.number]
    assert await numbers(sessions, parsed(status="received")) == [unrouted.number]
    assert await numbers(sessions, parsed(rating="5")) == [replied.number]
    assert await numbers(sessions, parsed(rating="unsatisfied")) == [unhappy.number]
    assert set(await numbers(sessions, parsed(rating="unrated"))) == {
        unrated.number,
        flagged.number,
        on_time.number,
    }
    assert set(await numbers(sessions, parsed(overdue="1"))) == {late.number, flagged.number}
    everything = await numbers(sessions)
    assert plain.number in everything
    assert len(everything) == 9


async def test_unknown_filter_values_are_ignored_not_trusted(
    sessions: async_sessionmaker[AsyncSession], tickets: Tickets
) -> None:
    await tickets.add()
    filters = parsed(type="'; DROP TABLE tickets; --", status="nope", department="x", rating="9")
    assert not filters.active
    assert len(await numbers(sessions, filters)) == 1


async def test_dates_are_local_days_of_the_city(
    sessions: async_sessionmaker[AsyncSession], tickets: Tickets
) -> None:
    # 00:30 on 26 November in 示例市 is still 25 November in UTC.
    early = await tickets.add(created_at=dt.datetime(2026, 11, 26, 0, 30, tzinfo=CHINA))
    late = await tickets.add(created_at=dt.datetime(2026, 11, 25, 23, 30, tzinfo=CHINA))
    assert await numbers(sessions, parsed(**{"from": "2026-11-26", "to": "2026-11-26"})) == [
        early.number
    ]
    assert await numbers(sessions, parsed(to="2026-11-25")) == [late.number]


async def test_search_finds_two_character_chinese_words_and_english_in_any_case(
    sessions: async_sessionmaker[AsyncSession], tickets: Tickets
) -> None:
    noise = await tickets.add(description="人民路夜间施工噪音扰民，严重影响休息")
    light = await tickets.add(description="路灯坏了，晚上很黑")
    english = await tickets.add(description="Street LIGHT broken near the Park")
    assert await numbers(sessions, parsed(q="噪音")) == [noise.number]
    assert await numbers(sessions, parsed(q="夜间施工噪音")) == [noise.number]
    assert await numbers(sessions, parsed(q="路灯")) == [light.number]
    assert await numbers(sessions, parsed(q="light")) == [english.number]
    assert await numbers(sessions, parsed(q="street park")) == [english.number]
    assert await numbers(sessions, parsed(q="施工 休息")) == [noise.number]
    assert await numbers(sessions, parsed(q="施工 路灯")) == []
    assert await numbers(sessions, parsed(q="音噪")) == []
    assert await numbers(sessions, parsed(q=noise.number.lower())) == [noise.number]


async def test_search_takes_wildcards_and_quotes_literally(
    sessions: async_sessionmaker[AsyncSession], tickets: Tickets
) -> None:
    percent = await tickets.add(description="物业费涨了100%，不合理")
    await tickets.add(description="物业费涨了100元")
    quote = await tickets.add(description="他说'没办法'就挂了电话")
    assert await numbers(sessions, parsed(q="100%")) == [percent.number]
    assert await numbers(sessions, parsed(q="_")) == []
    assert await numbers(sessions, parsed(q="'没办法'")) == [quote.number]
    assert await numbers(sessions, parsed(q="\\")) == []


async def test_pages_go_forward_and_back_without_gaps_or_repeats(
    sessions: async_sessionmaker[AsyncSession], tickets: Tickets
) -> None:
    same_moment = at(-0.5)
    for number in range(120):
        # A third of them share one creation time: the id breaks the tie.
        created = same_moment if number % 3 == 0 else at(-number)
        await tickets.add(created_at=created)
    everything: list[str] = []
    pages = []
    cursor: Cursor | None = None
    async with sessions() as session:
        while True:
            page = await list_tickets(session, LogFilters(), zone=CHINA, after=cursor, limit=50)
            pages.append(page)
            everything += [t.number for t in page.tickets]
            if page.next is None:
                break
            cursor = Cursor.decode(page.next.encode())
        assert [len(p.tickets) for p in pages] == [50, 50, 20]
        assert len(set(everything)) == 120
        assert pages[0].previous is None
        back = await list_tickets(
            session, LogFilters(), zone=CHINA, before=pages[2].previous, limit=50
        )
    assert [t.number for t in back.tickets] == [t.number for t in pages[1].tickets]
    assert back.next is not None
    assert back.previous is not None


@pytest.mark.parametrize("text", ["", "abc", "1.2.3", "-1.5", "99999999999999999999.1", "1.x"])
def test_malformed_cursors_mean_from_the_start(text: str) -> None:
    assert Cursor.decode(text) is None


async def test_a_scope_keeps_an_officer_inside_their_department_whatever_the_filters(
    sessions: async_sessionmaker[AsyncSession], tickets: Tickets
) -> None:
    ours = await tickets.add()
    await tickets.add(department_id="ecology-environment", category="生态环境")
    async with sessions() as session:
        page = await list_tickets(
            session,
            parsed(department="ecology-environment"),
            zone=CHINA,
            scope=Ticket.department_id == "urban-management",
        )
        assert page.tickets == []
        page = await list_tickets(
            session, LogFilters(), zone=CHINA, scope=Ticket.department_id == "urban-management"
        )
    assert [t.number for t in page.tickets] == [ours.number]


# -- disclosure figures ---------------------------------------------------------------------------


async def test_disclosure_figures_count_a_year_as_the_annual_report_does(
    sessions: async_sessionmaker[AsyncSession], tickets: Tickets
) -> None:
    gov = "government-office"

    def disclosure(**fields: Any) -> dict[str, Any]:
        return {"type": "disclosure", "category": "政府信息公开", "department_id": gov} | fields

    year = dt.datetime(2026, 1, 1, tzinfo=CHINA)
    await tickets.add(  # received in 2025, answered in 2026 on time: carried over
        **disclosure(
            created_at=year - dt.timedelta(days=10),
            replied_at=year + dt.timedelta(days=5),
            reply_deadline=year + dt.timedelta(days=18),
            status="replied",
            outcome="disclosed",
        )
    )
    await tickets.add(  # received and answered late, after an extension
        **disclosure(
            created_at=year + dt.timedelta(days=40),
            replied_at=year + dt.timedelta(days=90),
            reply_deadline=year + dt.timedelta(days=80),
            extended=True,
            status="closed",
            outcome="partly_disclosed",
        )
    )
    await tickets.add(  # open past its deadline at the end of the year: overdue, carried forward
        **disclosure(
            created_at=dt.datetime(2026, 12, 1, tzinfo=CHINA),
            reply_deadline=dt.datetime(2026, 12, 29, tzinfo=CHINA),
        )
    )
    await tickets.add(  # answered in 2025: not this year's business
        **disclosure(
            created_at=year - dt.timedelta(days=60),
            replied_at=year - dt.timedelta(days=40),
            status="closed",
            outcome="withheld",
        )
    )
    await tickets.add(created_at=year + dt.timedelta(days=3))  # a complaint: not counted
    async with sessions() as session:
        report = await disclosure_report(
            session, 2026, CHINA, now=dt.datetime(2027, 2, 1, tzinfo=CHINA)
        )
    total = report.total
    assert (total.received, total.carried_over, total.answered) == (2, 1, 2)
    assert (total.answered_on_time, total.answered_late, total.extended) == (1, 1, 1)
    assert (total.overdue, total.carried_forward) == (1, 1)
    assert total.outcomes == {"disclosed": 1, "partly_disclosed": 1}
    assert [f.department_id for f in report.departments] == [gov]


# -- unanswered questions -------------------------------------------------------------------------


def asked(text: str, item: str | None = None) -> AskedQuestion:
    return AskedQuestion(text, text, "zh", at(), item, False)


def test_questions_asking_the_same_thing_are_grouped_most_asked_first() -> None:
    groups = group_questions(
        [
            asked("公积金怎么提取"),
            asked("公积金怎么提取"),
            asked("公积金提取怎么办理", "housing-fund-withdrawal"),
            asked("怎样提取公积金"),
            asked("流浪猫谁来管"),
            asked("小区流浪猫谁管"),
            asked("游泳馆几点开门"),
        ]
    )
    assert [(g.leader, g.count) for g in groups] == [
        ("公积金怎么提取", 4),
        ("小区流浪猫谁管", 2),
        ("游泳馆几点开门", 1),
    ]
    assert groups[0].closest_item == "housing-fund-withdrawal"
    assert groups[0].examples[0] == ("公积金怎么提取", 2)


async def test_unanswered_questions_are_the_knowledge_bases_gaps_and_unhelpful_answers(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        resident = Resident(telegram_user_id=1, chat_id=1)
        session.add(resident)
        await session.flush()
        for text, decision, reason, score, feedback, escalated in (
            ("游泳馆几点开门", "escalate", "no_match", 0.05, None, True),
            ("你好", "escalate", "small_talk", 0.0, None, False),
            ("还在吗", "decline", "small_talk", 0.0, None, False),
            # Out of scope, even once the resident asked a person.
            ("昨晚的足球赛谁赢了", "decline", "out_of_scope", 0.1, None, True),
            # A problem to report is a ticket, not a question the knowledge base lacks.
            ("我家楼下的路灯坏了", "report", "problem_words", 0.08, None, False),
            # A likely choice left without a pick may have shown what was needed ...
            ("噪音扰民打什么电话", "suggest", "unsure", 0.6, None, False),
            # ... an unlikely one (less than one in four) has not.
            ("公租房怎么排队", "suggest", "unsure", 0.18, None, False),
            ("社保卡怎么补办", "answer", "confident", 0.95, "not_helpful", False),
            ("身份证怎么换", "answer", "confident", 0.97, "helpful", False),
        ):
            session.add(
                Question(
                    resident_id=resident.id,
                    chat_id=1,
                    text=text,
                    decision=decision,
                    reason=reason,
                    score=score,
                    feedback=feedback,
                    escalated=escalated,
                    created_at=at(),
                )
            )
        await session.commit()
    async with sessions() as session:
        found = await unanswered_questions(session, at(-1))
    assert sorted(q.text for q in found) == ["公租房怎么排队", "游泳馆几点开门", "社保卡怎么补办"]
    assert [q.not_helpful for q in found if q.text == "社保卡怎么补办"] == [True]


# -- exports ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "safe"),
    [
        ('=HYPERLINK("http://evil","点我")', '\'=HYPERLINK("http://evil","点我")'),
        ("+1+2", "'+1+2"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "\t'=1"),
        ("\r=1", "\r'=1"),
        ("  =1", "  '=1"),
        ("商店欺诈;=cmd|' /C calc'!A0", "商店欺诈;'=cmd|' /C calc'!A0"),
        ("第一行\n@SUM(A1)", "第一行\n'@SUM(A1)"),
        ('a, "-1', "a, \"'-1"),
        ("垃圾=没人管", "垃圾=没人管"),
        ("电话 010-12345678", "电话 010-12345678"),
        (-5, -5),
        (3.5, 3.5),
        (None, None),
    ],
)
def test_cells_that_look_like_formulas_are_quoted(value: Any, safe: Any) -> None:
    assert guard_cell(value) == safe


async def test_a_csv_export_starts_with_a_bom_and_keeps_formulas_inert() -> None:
    async def rows() -> Any:
        yield ["TS-2026-000001", "=1+1", "多行\n文本, 带逗号"]

    data = b"".join([chunk async for chunk in csv_chunks(["编号", "内容", "备注"], rows())])
    assert data.startswith(BOM.encode("utf-8"))
    parsed_rows = list(csv.reader(io.StringIO(data.decode("utf-8").removeprefix(BOM))))
    assert parsed_rows == [
        ["编号", "内容", "备注"],
        ["TS-2026-000001", "'=1+1", "多行\n文本, 带逗号"],
    ]


def test_an_xlsx_export_holds_text_not_formulas() -> None:
    body = xlsx_bytes(
        "投诉记录", ["编号", "内容"], [["TS-2026-000001", '=HYPERLINK("x")\x07'], ["b", 5]]
    )
    sheet = load_workbook(io.BytesIO(body)).active
    assert sheet is not None
    values = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert values == [["编号", "内容"], ["TS-2026-000001", '\'=HYPERLINK("x")'], ["b", 5]]
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)


async def test_a_common_word_is_found_by_walking_the_log_newest_first(
    sessions: async_sessionmaker[AsyncSession], tickets: Tickets, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bot.tickets.complaint_log.RARE_MATCHES", 1)
    first = await tickets.add(description="夜间施工噪音扰民")
    second = await tickets.add(description="广场舞噪音太大")
    await tickets.add(description="路灯坏了")
    assert await numbers(sessions, parsed(q="噪音")) == [first.number, second.number]
    assert await numbers(sessions, parsed(q="噪音"), limit=1) == [first.number]


async def test_a_nul_character_in_a_search_or_category_is_left_out(
    sessions: async_sessionmaker[AsyncSession], tickets: Tickets
) -> None:
    # PostgreSQL refuses U+0000 in a query's text: a crafted console URL was a server error.
    noise = await tickets.add(description="人民路夜间施工噪音扰民")
    filters = parsed(q="噪\u0000音", category="市容\u0000环境")
    assert (filters.search, filters.category) == ("噪音", "市容环境")
    assert await numbers(sessions, filters) == [noise.number]
