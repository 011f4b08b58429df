"""Tables exported for spreadsheets: CSV (UTF-8 with a byte-order mark) and XLSX.

A resident who writes `=HYPERLINK(...)` in a complaint must not make a manager's spreadsheet run
it. A spreadsheet takes a cell for a formula when it starts with = + - or @, and it may first cut
the text into several cells (an import splitting on `;`, tab or `|`, a paste of several lines)
and drop leading spaces. So every place where a piece of text could begin — the start of the
cell and just after a comma, semicolon, tab, line break or `|` — is looked at past any spaces
and double quotes, and an apostrophe goes in front of an = + - or @ found there:
`商店欺诈;=cmd|' /C calc'!A0` is written `商店欺诈;'=cmd|' /C calc'!A0`.

Columns are typed (`Column`): in XLSX a time is a real date with a date format, a rate a
fraction with a percentage format, a count a number; in CSV they are written as text a person
reads the same way. An XLSX sheet has its header row frozen and its columns sized to what they
hold.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import unicodedata
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.cell.cell import Cell as SheetCell
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

Cell = str | int | float | dt.datetime | dt.date | None
ColumnKind = Literal["text", "datetime", "date", "month", "percent", "count"]
# How each kind is shown: the XLSX number format, and how CSV writes it.
NUMBER_FORMATS: dict[str, str] = {
    "datetime": "yyyy-mm-dd hh:mm",
    "date": "yyyy-mm-dd",
    "month": "yyyy-mm",
    "percent": "0.0%",
    "count": "0",
}
CSV_TIME_FORMATS = {"datetime": "%Y-%m-%d %H:%M", "date": "%Y-%m-%d", "month": "%Y-%m"}
# Column widths in characters (a Chinese character counts two), and how many rows are measured.
MIN_WIDTH = 6
MAX_WIDTH = 60
MEASURED_ROWS = 2000


@dataclass(frozen=True, slots=True)
class Column:
    """A column of an export: its heading and what its cells hold.

    Times are given aware or naive; aware ones should already be in the deployment's zone (a
    spreadsheet has no time zones, so the zone is dropped)."""

    name: str
    kind: ColumnKind = "text"


def columns_of(header: Sequence[str | Column]) -> list[Column]:
    """Return a header's columns; a plain name is a text column."""
    return [h if isinstance(h, Column) else Column(h) for h in header]


FORMULA_STARTS = ("=", "+", "-", "@")
# Where a spreadsheet (or an import into one) may start a new cell.
SEPARATORS = (",", ";", "\t", "\n", "\r", "|")
# A place a piece can start, then what a spreadsheet may skip (Python's whitespace, which is also
# what `str.strip` removes, and double quotes), then a character that starts a formula.
_FORMULA_AHEAD = re.compile(
    rf"(\A|[{re.escape(''.join(SEPARATORS))}])([\s\"]*)(?=[{re.escape(''.join(FORMULA_STARTS))}])"
)
BOM = "\ufeff"
# Excel's own limit is 1,048,576 rows; a bigger export is CSV's job.
MAX_XLSX_ROWS = 200_000


def guard_cell(value: Cell | bool) -> Cell:
    """Return a value safe for a spreadsheet cell: text that looks like a formula is quoted."""
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return value
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return neutralise_formulas(str(value))


def neutralise_formulas(text: str) -> str:
    """Put an apostrophe before every = + - @ that could start a formula: at the start of the
    text or of any piece a separator cuts off, after any spaces and double quotes."""
    return _FORMULA_AHEAD.sub(r"\1\2'", text)


def _csv_value(value: Cell, column: Column | None) -> Cell:
    if isinstance(value, dt.date) and column is not None and column.kind in CSV_TIME_FORMATS:
        return value.strftime(CSV_TIME_FORMATS[column.kind])
    return guard_cell(value)


def csv_line(row: Sequence[Cell], columns: Sequence[Column] = ()) -> str:
    """Return one CSV line (with its line break) of guarded cells."""
    buffer = io.StringIO()
    kinds = list(columns) + [None] * (len(row) - len(columns))
    csv.writer(buffer, lineterminator="\r\n").writerow(
        [_csv_value(v, c) for v, c in zip(row, kinds, strict=False)]
    )
    return buffer.getvalue()


async def csv_chunks(
    header: Sequence[str | Column],
    rows: AsyncIterable[Sequence[Cell]],
    *,
    rows_per_chunk: int = 500,
) -> AsyncIterator[bytes]:
    """Yield a CSV file in UTF-8 pieces: the byte-order mark (so Excel reads Chinese), the
    header, then the rows."""
    columns = columns_of(header)
    pending = [BOM + csv_line([c.name for c in columns])]
    async for row in rows:
        pending.append(csv_line(row, columns))
        if len(pending) >= rows_per_chunk:
            yield "".join(pending).encode("utf-8")
            pending.clear()
    if pending:
        yield "".join(pending).encode("utf-8")


XlsxValue = str | int | float | dt.datetime | None


def _xlsx_value(value: Cell) -> XlsxValue:
    if isinstance(value, dt.datetime):
        # A spreadsheet has no time zones: the time is written as the clock showed it.
        return value.replace(tzinfo=None)
    if isinstance(value, dt.date):
        # A day is midnight of that day to a spreadsheet; its number format shows the day.
        return dt.datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        # XML cannot carry most control characters; openpyxl refuses them. They go first, so
        # that removing one cannot bring a formula character to the start of a piece.
        value = ILLEGAL_CHARACTERS_RE.sub("", value)
    guarded = guard_cell(value)
    assert not isinstance(guarded, dt.date)
    return guarded


def display_width(value: Cell, column: Column) -> int:
    """Return how many characters wide a cell shows (Chinese and other wide characters count
    two), at most the longest line of a text."""
    if value is None:
        return 0
    if column.kind in NUMBER_FORMATS and not isinstance(value, str):
        return len(NUMBER_FORMATS[column.kind]) if column.kind != "count" else len(str(value))
    lines = str(value).splitlines() or [""]
    return max(
        sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in line)
        for line in lines
    )


def column_widths(columns: Sequence[Column], rows: Sequence[Sequence[Cell]]) -> list[float]:
    """Return a width for each column: its heading or widest measured cell, within limits."""
    widths = [display_width(c.name, Column(c.name)) for c in columns]
    for row in rows[:MEASURED_ROWS]:
        for index, (value, column) in enumerate(zip(row, columns, strict=False)):
            widths[index] = max(widths[index], display_width(value, column))
    return [float(min(MAX_WIDTH, max(MIN_WIDTH, width + 2))) for width in widths]


def _typed_cell(sheet: WriteOnlyWorksheet, value: Cell, column: Column | None) -> SheetCell:
    cell = WriteOnlyCell(sheet, value=_xlsx_value(value))
    if column is not None and column.kind in NUMBER_FORMATS and not isinstance(value, str):
        cell.number_format = NUMBER_FORMATS[column.kind]
    elif isinstance(value, str) and (len(value) > MAX_WIDTH or "\n" in value):
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    return cell


def xlsx_bytes(
    title: str,
    header: Sequence[str | Column],
    rows: Iterable[Sequence[Cell]],
    *,
    cut_note: str = "",
) -> bytes:
    """Return an XLSX workbook of one sheet: a frozen header row, then the rows, typed by their
    columns. At most MAX_XLSX_ROWS rows are written; when there were more, `cut_note` (if
    given) says so below them."""
    columns = columns_of(header)
    kept: list[Sequence[Cell]] = []
    cut = False
    for row in rows:
        if len(kept) >= MAX_XLSX_ROWS:
            cut = True
            break
        kept.append(row)
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=title[:31] or "Sheet1")
    sheet.freeze_panes = "A2"
    for index, width in enumerate(column_widths(columns, kept), start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    bold = Font(bold=True)
    heading = []
    for column in columns:
        cell = WriteOnlyCell(sheet, value=_xlsx_value(column.name))
        cell.font = bold
        heading.append(cell)
    sheet.append(heading)
    for row in kept:
        sheet.append(
            [
                _typed_cell(sheet, value, columns[i] if i < len(columns) else None)
                for i, value in enumerate(row)
            ]
        )
    if cut and cut_note:
        sheet.append([])
        sheet.append([_xlsx_value(cut_note)])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
