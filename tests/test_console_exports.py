"""The console's exports over real HTTP, opened as a spreadsheet program would open them: typed
XLSX columns (real dates with a date format, rates as percentages, counts as numbers), sized
columns and a frozen header, the row-limit note only when rows were cut, the department's reply
in the complaint log, English category names in English, and the formula guard kept.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

import pytest
from openpyxl import load_workbook
from openpyxl.worksheet.worksheet import Worksheet

from bot.console.state import ZONE
from tests.fixtures_console import Console, LoginAs, SampleWork, add_resident, complaint

REPLY = "已安排环卫工人清运，今后每天巡查一次。"


async def xlsx_sheet(client: object, path: str, **params: str) -> Worksheet:
    async with client.http.get(path, params=params) as response:  # type: ignore[attr-defined]
        assert response.status == 200
        assert response.headers["Content-Type"] == (
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        )
        sheet = load_workbook(io.BytesIO(await response.read())).active
    assert isinstance(sheet, Worksheet)
    return sheet


def column_of(sheet: Worksheet, heading: str) -> int:
    """Return the 1-based column of a heading in the first row."""
    for cell in sheet[1]:
        if cell.value == heading:
            return int(cell.column)
    raise AssertionError(f"no column {heading!r} in {[c.value for c in sheet[1]]}")


def width(sheet: Worksheet, column: int) -> float:
    letter = sheet.cell(row=1, column=column).column_letter
    return float(sheet.column_dimensions[letter].width or 0)


async def test_the_log_xlsx_has_real_dates_numbers_widths_a_frozen_header_and_the_reply(
    console: Console, work: SampleWork, login_as: LoginAs
) -> None:
    officer = await login_as("officer")
    await officer.get(f"/tickets/{work.urban}")
    await officer.post(f"/tickets/{work.urban}/reply", {"text": REPLY})
    resident = (await console.desk.get(work.urban)).resident_id
    assert resident is not None
    await console.desk.rate(work.urban, resident, solved=True, rating=4)
    manager = await login_as("manager")
    sheet = await xlsx_sheet(manager, "/log.xlsx")
    assert sheet.freeze_panes == "A2"
    rows = {row[0].value: row for row in sheet.iter_rows(min_row=2) if row[0].value}
    urban = rows[work.urban]
    created = urban[column_of(sheet, "提交时间") - 1]
    assert created.is_date
    assert isinstance(created.value, dt.datetime)
    assert created.number_format == "yyyy-mm-dd hh:mm"
    filed = await console.desk.get(work.urban)
    local = filed.created_at.astimezone(console.app[ZONE]).replace(tzinfo=None)
    assert abs(created.value - local) < dt.timedelta(seconds=1)
    rating = urban[column_of(sheet, "评价") - 1]
    assert (rating.value, rating.data_type) == (4, "n")
    assert urban[column_of(sheet, "答复内容") - 1].value == REPLY
    assert urban[column_of(sheet, "答复时间") - 1].is_date
    # An unanswered ticket has an empty reply and an empty reply time, not a text "".
    ecology = rows[work.ecology]
    assert ecology[column_of(sheet, "答复时间") - 1].value is None
    assert ecology[column_of(sheet, "答复内容") - 1].value in (None, "")
    # Columns fit what they hold: the text is wide, the number narrow, the time readable.
    text_width = width(sheet, column_of(sheet, "内容"))
    number_width = width(sheet, column_of(sheet, "编号"))
    assert text_width > number_width >= len(work.urban)
    assert width(sheet, column_of(sheet, "提交时间")) >= len("2026-11-03 10:00")
    assert text_width <= 60
    # Three tickets are far below the limit: no note about cut rows.
    # (text cells only: a time written at .200000 of a second holds the digits too)
    assert not [
        c.value
        for row in sheet.iter_rows()
        for c in row
        if isinstance(c.value, str) and "200000" in c.value
    ]
    assert sheet.max_row == 1 + len(work.numbers)


async def test_the_row_limit_note_appears_only_when_rows_were_cut(
    console: Console, work: SampleWork, login_as: LoginAs, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bot.core.exports.MAX_XLSX_ROWS", 2)
    monkeypatch.setattr("bot.console.views.reports.MAX_XLSX_ROWS", 2)
    manager = await login_as("manager")
    sheet = await xlsx_sheet(manager, "/log.xlsx")
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert len([r for r in values[1:] if r and r[0] in work.numbers]) == 2
    assert values[-1][0] == "XLSX 最多导出 2 行；完整数据请导出 CSV。"
    # Filtered down to one ticket, nothing is cut and nothing is said.
    sheet = await xlsx_sheet(manager, "/log.xlsx", department="ecology-environment")
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert [r[0] for r in values] == ["编号", work.ecology]


async def test_the_figures_xlsx_has_percentages_counts_and_a_month_date(
    console: Console, work: SampleWork, login_as: LoginAs
) -> None:
    officer = await login_as("officer")
    await officer.get(f"/tickets/{work.urban}")
    await officer.post(f"/tickets/{work.urban}/acknowledge")
    manager = await login_as("manager")
    sheet = await xlsx_sheet(manager, "/figures.xlsx")
    assert sheet.freeze_panes == "A2"
    total = next(row for row in sheet.iter_rows(min_row=2) if row[1].value == "合计")
    month = total[column_of(sheet, "月份") - 1]
    assert month.is_date
    assert month.number_format == "yyyy-mm"
    assert month.value.day == 1
    response = total[column_of(sheet, "响应率") - 1]
    assert response.data_type == "n"
    assert response.number_format == "0.0%"
    assert 0 < response.value <= 1
    assigned = total[column_of(sheet, "交办量") - 1]
    assert (assigned.data_type, assigned.number_format) == ("n", "0")
    assert assigned.value >= 1


async def test_the_disclosure_xlsx_counts_are_numbers(console: Console, login_as: LoginAs) -> None:
    manager = await login_as("manager")
    sheet = await xlsx_sheet(manager, "/disclosure.xlsx")
    total = list(sheet.iter_rows(min_row=2))[-1]
    assert total[0].value == "合计"
    assert all(c.data_type == "n" and c.number_format == "0" for c in total[1:])


async def test_the_english_exports_name_categories_in_english_and_csv_keeps_its_guard(
    console: Console, work: SampleWork, login_as: LoginAs
) -> None:
    resident = await add_resident(console.services, 770010)
    evil = await console.desk.file(
        complaint(resident, description='=HYPERLINK("http://evil.example","点我")')
    )
    officer = await login_as("officer")
    await officer.get(f"/tickets/{evil.number}")
    await officer.post(f"/tickets/{evil.number}/reply", {"text": "=cmd|' /C calc'!A0 已处理"})
    manager = await login_as("manager")
    await manager.get("/lang/en", next="/log")
    sheet = await xlsx_sheet(manager, "/log.xlsx")
    header = [c.value for c in sheet[1]]
    assert header[2] == "Category"
    assert header[-1] == "Reply"
    categories = {row[0].value: row[2].value for row in sheet.iter_rows(min_row=2)}
    assert categories[work.urban] == "City appearance and sanitation"
    assert categories[work.ecology] == "Environment and pollution"
    assert categories[work.triage] == "Other"
    async with manager.http.get("/log.csv") as response:
        text = (await response.read()).decode("utf-8-sig")
    rows = {row[0]: row for row in csv.reader(io.StringIO(text))}
    assert rows[work.urban][2] == "City appearance and sanitation"
    assert rows[evil.number][-2] == '\'=HYPERLINK("http://evil.example","点我")'
    assert rows[evil.number][-1] == "'=cmd|' /C calc'!A0 已处理"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", rows[evil.number][5])
    assert not any("\u5e02\u5bb9" in cell for row in rows.values() for cell in row)
