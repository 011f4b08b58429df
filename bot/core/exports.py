"""Tables exported for spreadsheets: CSV (UTF-8 with a byte-order mark) and XLSX.

A resident who writes `=HYPERLINK(...)` in a complaint must not make a manager's spreadsheet run
it. A spreadsheet takes a cell for a formula when it starts with = + - or @, and it may first cut
the text into several cells (an import splitting on `;`, tab or `|`, a paste of several lines)
and drop leading spaces. So every place where a piece of text could begin — the start of the
cell and just after a comma, semicolon, tab, line break or `|` — is looked at past any spaces
and double quotes, and an apostrophe goes in front of an = + - or @ found there:
`商店欺诈;=cmd|' /C calc'!A0` is written `商店欺诈;'=cmd|' /C calc'!A0`.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

Cell = str | int | float | None
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


def guard_cell(value: Cell | dt.datetime | dt.date | bool) -> Cell:
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


def csv_line(row: Sequence[Cell]) -> str:
    """Return one CSV line (with its line break) of guarded cells."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow([guard_cell(v) for v in row])
    return buffer.getvalue()


async def csv_chunks(
    header: Sequence[str], rows: AsyncIterable[Sequence[Cell]], *, rows_per_chunk: int = 500
) -> AsyncIterator[bytes]:
    """Yield a CSV file in UTF-8 pieces: the byte-order mark (so Excel reads Chinese), the
    header, then the rows."""
    pending = [BOM + csv_line(header)]
    async for row in rows:
        pending.append(csv_line(row))
        if len(pending) >= rows_per_chunk:
            yield "".join(pending).encode("utf-8")
            pending.clear()
    if pending:
        yield "".join(pending).encode("utf-8")


def _xlsx_value(value: Cell) -> Cell:
    if isinstance(value, str):
        # XML cannot carry most control characters; openpyxl refuses them. They go first, so
        # that removing one cannot bring a formula character to the start of a piece.
        value = ILLEGAL_CHARACTERS_RE.sub("", value)
    return guard_cell(value)


def xlsx_bytes(
    title: str,
    header: Sequence[str],
    rows: Iterable[Sequence[Cell]],
    *,
    note: str = "",
) -> bytes:
    """Return an XLSX workbook of one sheet: header, rows, and an optional closing note."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=title[:31] or "Sheet1")
    sheet.append([_xlsx_value(h) for h in header])
    for count, row in enumerate(rows, start=1):
        if count > MAX_XLSX_ROWS:
            break
        sheet.append([_xlsx_value(v) for v in row])
    if note:
        sheet.append([])
        sheet.append([_xlsx_value(note)])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
